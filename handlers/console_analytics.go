package handlers

import (
	"cmp"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/reach"
	"github.com/fineline/fineline/stats"
)

type optionRow struct {
	Value, Label string
	Selected     bool
}

type flowRow struct {
	Name                         string
	Grants, Denials, Withdrawals int64
}

// flowTable is the decisions of the range by channel or by locale.
type flowTable struct {
	L                 *locales.Localizer
	ID, Caption, Head string
	Rows              []flowRow
}

type periodRow struct {
	Label                                        string
	Allowed, Asked, Grants, Denials, Withdrawals int64
	OptIn, Withdrawal                            string
}

type analyticsPage struct {
	consoleBase
	Purposes, Intervals []optionRow
	From, To            string
	Error               string
	PurposeName         string
	TimeZone            string
	Through             string
	Subjects            int64
	Stock, Flows        chart
	Periods             []periodRow
	ByChannel, ByLocale flowTable
	CSV                 string
	// The banner over the same periods; nil when no counts are kept.
	Banner *bannerSection
	// Notices are the material changes of terms, newest first; Renewals
	// charts the newest's answers by day.
	Notices     []renewalSum
	Renewals    *chart
	RenewalRows []renewalRow
	// Offers are the merchant's offers over the page's range.
	Offers []offerSum
}

type offerSum struct {
	Title                                    string
	Members, Joins, Leaves, Issued, Redeemed int64
	Stays                                    []string
	// Chart draws the joins and leaves of each period; Rows are its table.
	Chart chart
	Rows  []offerPeriodRow
}

type offerPeriodRow struct {
	Label                                   string
	Joins, Leaves, Erased, Issued, Redeemed int64
}

type renewalRow struct {
	Label                string
	Reaccepted, Declined int64
}

type bannerRow struct {
	Label                                   string
	Shown, Chose                            int64
	NoChoice, Accept, Decline, Choose       string
	GrantClicks, WithdrawClicks             string
	CenterGrantClicks, CenterWithdrawClicks string
}

type bannerSection struct {
	Chart chart
	Rows  []bannerRow
}

type renewalSum struct {
	Version                                             int
	Effective, Purpose                                  string
	Affected, Reaccepted, Declined, Erased, Due, Lapsed int64
}

// consoleAnalytics shows one purpose over a run of periods: who is
// allowed and was asked, the decisions of each period, and by which
// channel and in which language they came, each chart with its table.
// The form is a GET: it works without JavaScript and the URL can be kept.
func (a *API) consoleAnalytics(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	p := analyticsPage{consoleBase: a.consolePage(c, "analytics"), TimeZone: m.Location().String()}
	l := p.L
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return err
	}
	q := analyticsQuery(c)
	if q.Get("purpose") == "" && len(consent.Offered(ps)) > 0 {
		q.Set("purpose", consent.Offered(ps)[0].Key)
	}
	for _, pur := range ps {
		name := pur.TextFor(l.Lang).Name
		if pur.Key == q.Get("purpose") {
			p.PurposeName = name
		}
		p.Purposes = append(p.Purposes, optionRow{Value: pur.Key, Label: name, Selected: pur.Key == q.Get("purpose")})
	}
	interval := cmp.Or(q.Get("interval"), string(stats.Daily))
	for _, i := range []stats.Interval{stats.Daily, stats.Weekly, stats.Monthly} {
		p.Intervals = append(p.Intervals, optionRow{Value: string(i), Label: l.T("console_by_" + string(i)), Selected: string(i) == interval})
	}
	p.From, p.To = q.Get("from"), q.Get("to")
	r, err := a.purposeReport(ctx, m, q)
	if apperr.Is(err, apperr.Invalid) || apperr.Is(err, apperr.NotFound) {
		p.Error = l.T("console_analytics_bad_query")
		return a.render(c, http.StatusBadRequest, "console/analytics", p)
	}
	if err != nil {
		return err
	}
	if len(r.Periods) > 0 {
		p.From, p.To = r.Periods[0].Start.Format(stats.DateLayout), r.Periods[len(r.Periods)-1].End.Format(stats.DateLayout)
	}
	p.Subjects = r.Subjects
	if !r.Through.IsZero() {
		p.Through = formatTime(r.Through)
	}
	p.CSV = p.Base + "analytics.csv?" + q.Encode()
	var labels []string
	var allowed, asked, grants, denials, withdrawals []int64
	channels, locales := map[string]stats.Flows{}, map[string]stats.Flows{}
	for _, per := range r.Periods {
		if len(per.Purposes) == 0 {
			continue
		}
		pp := per.Purposes[0]
		label := per.Start.Format(stats.DateLayout)
		labels = append(labels, label)
		allowed, asked = append(allowed, pp.Allowed), append(asked, pp.Asked)
		grants, denials, withdrawals = append(grants, pp.Grants), append(denials, pp.Denials), append(withdrawals, pp.Withdrawals)
		row := periodRow{Label: label, Allowed: pp.Allowed, Asked: pp.Asked, Grants: pp.Grants, Denials: pp.Denials, Withdrawals: pp.Withdrawals,
			OptIn: percent(pp.OptInRate()), Withdrawal: percent(pp.WithdrawalRate())}
		p.Periods = append(p.Periods, row)
		mergeFlowsInto(channels, pp.ByChannel)
		mergeFlowsInto(locales, pp.ByLocale)
	}
	p.Stock = lineChart("stock", l.T("console_chart_stock"), l.Tf("console_chart_stock_desc", "Purpose", p.PurposeName), labels, []chartSeries{
		{Name: l.T("console_asked"), Class: "s-asked", Values: asked},
		{Name: l.T("console_allowed"), Class: "s-allowed", Values: allowed},
	})
	p.Flows = barChart("flows", l.T("console_chart_flows"), l.Tf("console_chart_flows_desc", "Purpose", p.PurposeName), labels, []chartSeries{
		{Name: l.T("console_grants"), Class: "s-grants", Values: grants},
		{Name: l.T("console_denials"), Class: "s-denials", Values: denials},
		{Name: l.T("console_withdrawals"), Class: "s-withdrawals", Values: withdrawals},
	})
	p.ByChannel = flowTable{L: l, ID: "channels-table", Caption: l.T("console_by_channel_caption"), Head: l.T("console_channel")}
	p.ByLocale = flowTable{L: l, ID: "locales-table", Caption: l.T("console_by_locale_caption"), Head: l.T("console_locale")}
	for _, k := range slices.Sorted(maps.Keys(channels)) {
		f := channels[k]
		p.ByChannel.Rows = append(p.ByChannel.Rows, flowRow{Name: l.T("console_channel_" + k), Grants: f.Grants, Denials: f.Denials, Withdrawals: f.Withdrawals})
	}
	for _, k := range slices.Sorted(maps.Keys(locales)) {
		f := locales[k]
		name := k
		if k == stats.NoLocale {
			name = l.T("console_locale_unknown")
		}
		p.ByLocale.Rows = append(p.ByLocale.Rows, flowRow{Name: name, Grants: f.Grants, Denials: f.Denials, Withdrawals: f.Withdrawals})
	}
	// The purposes' report took the query: the other areas cover its days.
	first, last, err := a.Reports.Range(m, stats.Interval(interval), q.Get("from"), q.Get("to"))
	if err != nil {
		return err
	}
	if err := a.analyticsBanner(c, &p, stats.Interval(interval), first, last); err != nil {
		return err
	}
	if err := a.analyticsNotices(c, &p); err != nil {
		return err
	}
	if err := a.analyticsOffers(c, &p, stats.Interval(interval), first, last); err != nil {
		return err
	}
	return a.render(c, http.StatusOK, "console/analytics", p)
}

// clicksLabel shows a median of clicks, "—" when none was counted.
func clicksLabel(byClicks map[int]int64) string {
	if m, n := median(byClicks); n > 0 {
		return strconv.Itoa(*m)
	}
	return "—"
}

// analyticsBanner adds what the widget's banner met over the page's periods.
func (a *API) analyticsBanner(c *gin.Context, p *analyticsPage, interval stats.Interval, first, last time.Time) error {
	if a.Reach == nil {
		return nil
	}
	m, l := merchant(c), p.L
	r, err := a.Reports.Banner(c.Request.Context(), m, interval, first, last)
	if err != nil {
		return err
	}
	var labels []string
	var shown, chose []int64
	b := &bannerSection{}
	for _, per := range r.Periods {
		label := per.Start.Format(stats.DateLayout)
		labels, shown, chose = append(labels, label), append(shown, per.Shown), append(chose, per.Chose)
		b.Rows = append(b.Rows, bannerRow{Label: label, Shown: per.Shown, Chose: per.Chose, NoChoice: percent(per.NoChoiceRate()),
			Accept: percent(per.Share(per.Accept)), Decline: percent(per.Share(per.Decline)), Choose: percent(per.Share(per.Choose)),
			GrantClicks: clicksLabel(per.GrantClicks[reach.ChannelWidget]), WithdrawClicks: clicksLabel(per.WithdrawClicks[reach.ChannelWidget]),
			CenterGrantClicks: clicksLabel(per.GrantClicks[reach.ChannelCenter]), CenterWithdrawClicks: clicksLabel(per.WithdrawClicks[reach.ChannelCenter])})
	}
	b.Chart = barChart("banner", l.T("console_chart_banner"), l.T("console_chart_banner_desc"), labels, []chartSeries{
		{Name: l.T("console_banner_shown"), Class: "s-asked", Values: shown},
		{Name: l.T("console_banner_chose"), Class: "s-allowed", Values: chose},
	})
	p.Banner = b
	return nil
}

// analyticsOffers adds each offer over the page's range: joins, leaves,
// rewards, members now and how long they stay.
func (a *API) analyticsOffers(c *gin.Context, p *analyticsPage, interval stats.Interval, first, last time.Time) error {
	if a.Offers == nil {
		return nil
	}
	ctx, m, l := c.Request.Context(), merchant(c), p.L
	os, err := a.Offers.List(ctx, m.ID)
	if err != nil {
		return err
	}
	for i, o := range os {
		r, err := a.Reports.Offer(ctx, m, stats.Offer{Key: o.Key, Purpose: o.Purpose, Fields: o.Fields, CreatedAt: o.CreatedAt}, interval, first, last)
		if err != nil {
			return err
		}
		sum := offerSum{Title: o.TextFor(l.Lang).Title, Members: r.Members}
		var labels []string
		var joins, leaves []int64
		for _, per := range r.Periods {
			sum.Joins, sum.Leaves, sum.Issued, sum.Redeemed = sum.Joins+per.Joins, sum.Leaves+per.Leaves, sum.Issued+per.Issued, sum.Redeemed+per.Redeemed
			label := per.Start.Format(stats.DateLayout)
			labels, joins, leaves = append(labels, label), append(joins, per.Joins), append(leaves, per.Leaves)
			var erased int64
			for _, n := range per.Erased {
				erased += n
			}
			sum.Rows = append(sum.Rows, offerPeriodRow{Label: label, Joins: per.Joins, Leaves: per.Leaves, Erased: erased, Issued: per.Issued, Redeemed: per.Redeemed})
		}
		sum.Chart = barChart("offer-"+strconv.Itoa(i), l.Tf("console_chart_offer", "Offer", sum.Title), l.Tf("console_chart_offer_desc", "Offer", sum.Title), labels, []chartSeries{
			{Name: l.T("console_joins"), Class: "s-grants", Values: joins},
			{Name: l.T("console_leaves"), Class: "s-withdrawals", Values: leaves},
		})
		for _, s := range r.Stays {
			sum.Stays = append(sum.Stays, percent(s.Share()))
		}
		p.Offers = append(p.Offers, sum)
	}
	return nil
}

// maxRenewalDays bounds the days the renewals chart draws.
const maxRenewalDays = 60

// analyticsNotices adds what became of each material change of terms.
func (a *API) analyticsNotices(c *gin.Context, p *analyticsPage) error {
	ctx, m, l := c.Request.Context(), merchant(c), p.L
	vs, err := a.Notices.List(ctx, m.ID)
	if err != nil {
		return err
	}
	slices.SortFunc(vs, func(x, y notices.Version) int { return y.Number - x.Number })
	for _, v := range vs {
		if v.Status != notices.Published || !v.Material {
			continue
		}
		r, err := a.Reports.Notice(ctx, m, consent.PublishedVersion{Number: v.Number, Material: true, Purposes: v.Purposes, EffectiveAt: v.EffectiveAt, Deadline: v.Deadline})
		if err != nil {
			return err
		}
		for _, np := range r.Purposes {
			name := np.Purpose
			if pur, err := a.Purposes.Get(ctx, m.ID, np.Purpose); err == nil {
				name = pur.TextFor(l.Lang).Name
			}
			p.Notices = append(p.Notices, renewalSum{Version: v.Number, Effective: formatTime(v.EffectiveAt), Purpose: name, Affected: np.Affected,
				Reaccepted: np.Reaccepted, Declined: np.Declined, Erased: np.Erased, Due: np.StillDue, Lapsed: np.Lapsed})
		}
		if p.Renewals != nil || len(r.Purposes) == 0 {
			continue
		}
		var labels []string
		var re, de []int64
		for i := range min(len(r.Purposes[0].Days), maxRenewalDays) {
			labels = append(labels, r.Purposes[0].Days[i].Date.Format(stats.DateLayout))
			var rs, ds int64
			for _, np := range r.Purposes {
				rs, ds = rs+np.Days[i].Reaccepted, ds+np.Days[i].Declined+np.Days[i].Erased
			}
			re, de = append(re, rs), append(de, ds)
			p.RenewalRows = append(p.RenewalRows, renewalRow{Label: labels[i], Reaccepted: rs, Declined: ds})
		}
		if len(labels) > 0 {
			ch := barChart("renewals", l.Tf("console_chart_renewals", "Version", v.Number), l.T("console_chart_renewals_desc"), labels, []chartSeries{
				{Name: l.T("console_reaccepted"), Class: "s-grants", Values: re},
				{Name: l.T("console_declined"), Class: "s-withdrawals", Values: de},
			})
			p.Renewals = &ch
		}
	}
	return nil
}

// consoleAnalyticsCSV downloads what the analytics page shows, as
// GET /v1/stats/purposes?format=csv gives it.
func (a *API) consoleAnalyticsCSV(c *gin.Context) error {
	ctx := c.Request.Context()
	m := merchant(c)
	r, err := a.purposeReport(ctx, m, analyticsQuery(c))
	if err != nil {
		return err
	}
	return sendPurposeStatsCSV(c, m.Slug, r)
}

// analyticsQuery is what the analytics form asks, as the report reads it.
func analyticsQuery(c *gin.Context) url.Values {
	q := url.Values{}
	for _, k := range []string{"purpose", "interval", "from", "to"} {
		if v := c.Query(k); v != "" {
			q.Set(k, v)
		}
	}
	return q
}

func mergeFlowsInto(into, from map[string]stats.Flows) {
	for k, f := range from {
		t := into[k]
		t.Add(f)
		into[k] = t
	}
}

// percent shows a share as a percentage with one decimal, "—" when it is
// not defined.
func percent(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(math.Round(v*1000)/10, 'f', 1, 64) + " %"
}
