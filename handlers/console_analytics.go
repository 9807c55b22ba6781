package handlers

import (
	"cmp"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
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
	return a.render(c, http.StatusOK, "console/analytics", p)
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
