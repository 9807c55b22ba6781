package handlers

import (
	"context"
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
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/stats"
)

// Reports reads analytics from the rollups.
type Reports interface {
	Range(m merchants.Merchant, interval stats.Interval, from, to string) (time.Time, time.Time, error)
	Purposes(ctx context.Context, m merchants.Merchant, purposes []string, interval stats.Interval, first, last time.Time) (stats.Report, error)
	Notice(ctx context.Context, m merchants.Merchant, v consent.PublishedVersion) (stats.NoticeReport, error)
	Banner(ctx context.Context, m merchants.Merchant, interval stats.Interval, first, last time.Time) (stats.BannerReport, error)
	Offer(ctx context.Context, m merchants.Merchant, o stats.Offer, interval stats.Interval, first, last time.Time) (stats.OfferReport, error)
}

type flowsJSON struct {
	Grants      int64 `json:"grants"`
	Denials     int64 `json:"denials"`
	Withdrawals int64 `json:"withdrawals"`
}

type purposeStatsJSON struct {
	Purpose string `json:"purpose"`
	Allowed int64  `json:"allowed"`
	Asked   int64  `json:"asked"`
	flowsJSON
	OptInRate      *float64             `json:"opt_in_rate"`
	WithdrawalRate *float64             `json:"withdrawal_rate"`
	ByChannel      map[string]flowsJSON `json:"by_channel"`
	ByLocale       map[string]flowsJSON `json:"by_locale"`
}

type periodJSON struct {
	Start    string             `json:"start"`
	End      string             `json:"end"`
	Purposes []purposeStatsJSON `json:"purposes"`
}

type purposeReportJSON struct {
	Interval string       `json:"interval"`
	TimeZone string       `json:"time_zone"`
	Through  *time.Time   `json:"through"`
	Subjects int64        `json:"subjects"`
	Periods  []periodJSON `json:"periods"`
}

func toFlowsJSON(f stats.Flows) flowsJSON {
	return flowsJSON{Grants: f.Grants, Denials: f.Denials, Withdrawals: f.Withdrawals}
}

// rate rounds a share to four places; nil when it is not defined.
func rate(v float64, ok bool) *float64 {
	if !ok {
		return nil
	}
	r := math.Round(v*10000) / 10000
	return &r
}

func toPurposeReportJSON(r stats.Report) purposeReportJSON {
	out := purposeReportJSON{Interval: string(r.Interval), TimeZone: r.Location.String(), Subjects: r.Subjects, Periods: make([]periodJSON, 0, len(r.Periods))}
	if !r.Through.IsZero() {
		t := r.Through
		out.Through = &t
	}
	for _, p := range r.Periods {
		pj := periodJSON{Start: p.Start.Format(stats.DateLayout), End: p.End.Format(stats.DateLayout), Purposes: make([]purposeStatsJSON, 0, len(p.Purposes))}
		for _, pp := range p.Purposes {
			j := purposeStatsJSON{Purpose: pp.Purpose, Allowed: pp.Allowed, Asked: pp.Asked, flowsJSON: toFlowsJSON(pp.Flows),
				OptInRate: rate(pp.OptInRate()), WithdrawalRate: rate(pp.WithdrawalRate()),
				ByChannel: map[string]flowsJSON{}, ByLocale: map[string]flowsJSON{}}
			for k, f := range pp.ByChannel {
				j.ByChannel[k] = toFlowsJSON(f)
			}
			for k, f := range pp.ByLocale {
				j.ByLocale[k] = toFlowsJSON(f)
			}
			pj.Purposes = append(pj.Purposes, j)
		}
		out.Periods = append(out.Periods, pj)
	}
	return out
}

// purposeReport reads the report a query asks for (from, to, interval,
// purpose): the API and the console's analytics page both answer with it.
func (a *API) purposeReport(ctx context.Context, m merchants.Merchant, q url.Values) (stats.Report, error) {
	interval, err := stats.ParseInterval(q.Get("interval"))
	if err != nil {
		return stats.Report{}, err
	}
	first, last, err := a.Reports.Range(m, interval, q.Get("from"), q.Get("to"))
	if err != nil {
		return stats.Report{}, err
	}
	ps, err := a.Purposes.List(ctx, m.ID)
	if err != nil {
		return stats.Report{}, err
	}
	keys := make([]string, 0, len(ps))
	for _, p := range ps {
		keys = append(keys, p.Key)
	}
	if want := q.Get("purpose"); want != "" {
		if !slices.Contains(keys, want) {
			return stats.Report{}, apperr.New(apperr.NotFound, "no purpose %q", want).WithDetail(consent.CodeUnknownPurpose)
		}
		keys = []string{want}
	}
	return a.Reports.Purposes(ctx, m, keys, interval, first, last)
}

// statsQuery checks a stats query: only the parameters named and format,
// each at most once, format json or csv (returned; "" is json).
func statsQuery(q url.Values, names ...string) (string, error) {
	for k, v := range q {
		if k != "format" && !slices.Contains(names, k) {
			return "", apperr.New(apperr.Invalid, "unknown query parameter %q", k).WithDetail("invalid_query")
		}
		if len(v) > 1 {
			return "", apperr.New(apperr.Invalid, "%s is given more than once", k).WithDetail("invalid_query")
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return "", apperr.New(apperr.Invalid, "format must be json or csv").WithDetail("invalid_query")
	}
	return format, nil
}

// statsAsk is what a report over periods asks: the merchant, the format,
// the interval and the days from the query.
type statsAsk struct {
	m           merchants.Merchant
	format      string
	interval    stats.Interval
	first, last time.Time
}

// askStats reads a report's query (from, to, interval, format and the
// other parameters named) and the merchant.
func (a *API) askStats(c *gin.Context, names ...string) (statsAsk, error) {
	q := c.Request.URL.Query()
	var s statsAsk
	var err error
	if s.format, err = statsQuery(q, append(names, "from", "to", "interval")...); err != nil {
		return s, err
	}
	if s.interval, err = stats.ParseInterval(q.Get("interval")); err != nil {
		return s, err
	}
	if s.m, err = a.Merchants.Store.Merchant(c.Request.Context(), merchantID(c)); err != nil {
		return s, err
	}
	s.first, s.last, err = a.Reports.Range(s.m, s.interval, q.Get("from"), q.Get("to"))
	return s, err
}

// purposeStats answers GET /v1/stats/purposes: per purpose and period,
// the subjects allowed and asked at its end and the decisions in it, by
// channel and by locale; format=csv downloads the same.
func (a *API) purposeStats(c *gin.Context) error {
	q := c.Request.URL.Query()
	format, err := statsQuery(q, "from", "to", "interval", "purpose")
	if err != nil {
		return err
	}
	ctx := c.Request.Context()
	m, err := a.Merchants.Store.Merchant(ctx, merchantID(c))
	if err != nil {
		return err
	}
	r, err := a.purposeReport(ctx, m, q)
	if err != nil {
		return err
	}
	if format != "csv" {
		c.JSON(http.StatusOK, toPurposeReportJSON(r))
		return nil
	}
	return sendPurposeStatsCSV(c, m.Slug, r)
}

// sendPurposeStatsCSV answers with the report as a CSV download.
func sendPurposeStatsCSV(c *gin.Context, slug string, r stats.Report) error {
	return sendCSV(c, slug+"-purposes-by-"+string(r.Interval)+".csv", purposeStatsRows(r))
}

// purposeStatsRows lays a report out one row per period, purpose, channel
// and locale: first the purpose's row for every channel and locale
// ("all", with the stocks and rates), then one per channel, then one per
// locale (flows only).
func purposeStatsRows(r stats.Report) [][]string {
	rows := [][]string{{"period_start", "period_end", "purpose", "channel", "locale", "allowed", "asked", "grants", "denials", "withdrawals", "opt_in_rate", "withdrawal_rate"}}
	n := func(v int64) string { return strconv.FormatInt(v, 10) }
	share := func(v float64, ok bool) string {
		if p := rate(v, ok); p != nil {
			return strconv.FormatFloat(*p, 'f', -1, 64)
		}
		return ""
	}
	for _, p := range r.Periods {
		start, end := p.Start.Format(stats.DateLayout), p.End.Format(stats.DateLayout)
		for _, pp := range p.Purposes {
			rows = append(rows, []string{start, end, pp.Purpose, "all", "all", n(pp.Allowed), n(pp.Asked), n(pp.Grants), n(pp.Denials), n(pp.Withdrawals),
				share(pp.OptInRate()), share(pp.WithdrawalRate())})
			for _, k := range slices.Sorted(maps.Keys(pp.ByChannel)) {
				f := pp.ByChannel[k]
				rows = append(rows, []string{start, end, pp.Purpose, k, "all", "", "", n(f.Grants), n(f.Denials), n(f.Withdrawals), "", ""})
			}
			for _, k := range slices.Sorted(maps.Keys(pp.ByLocale)) {
				f := pp.ByLocale[k]
				rows = append(rows, []string{start, end, pp.Purpose, "all", k, "", "", n(f.Grants), n(f.Denials), n(f.Withdrawals), "", ""})
			}
		}
	}
	return rows
}
