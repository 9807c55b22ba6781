package handlers

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/reach"
	"github.com/fineline/fineline/stats"
)

type firstLayerJSON struct {
	Accept       int64    `json:"accept"`
	Decline      int64    `json:"decline"`
	Choose       int64    `json:"choose"`
	AcceptShare  *float64 `json:"accept_share"`
	DeclineShare *float64 `json:"decline_share"`
	ChooseShare  *float64 `json:"choose_share"`
}

type parityJSON struct {
	Grants                 int64 `json:"grants"`
	MedianClicksToGrant    *int  `json:"median_clicks_to_grant"`
	Withdrawals            int64 `json:"withdrawals"`
	MedianClicksToWithdraw *int  `json:"median_clicks_to_withdraw"`
}

type bannerPeriodJSON struct {
	Start        string                `json:"start"`
	End          string                `json:"end"`
	Shown        int64                 `json:"shown"`
	Chose        int64                 `json:"chose"`
	NoChoiceRate *float64              `json:"no_choice_rate"`
	FirstLayer   firstLayerJSON        `json:"first_layer"`
	Parity       map[string]parityJSON `json:"parity"`
}

type bannerReportJSON struct {
	Interval string             `json:"interval"`
	TimeZone string             `json:"time_zone"`
	Periods  []bannerPeriodJSON `json:"periods"`
}

func median(byClicks map[int]int64) (*int, int64) {
	m, n := reach.Median(byClicks)
	if n == 0 {
		return nil, 0
	}
	return &m, n
}

func toBannerPeriodJSON(p stats.BannerPeriod) bannerPeriodJSON {
	out := bannerPeriodJSON{Start: p.Start.Format(stats.DateLayout), End: p.End.Format(stats.DateLayout), Shown: p.Shown, Chose: p.Chose,
		NoChoiceRate: rate(p.NoChoiceRate()),
		FirstLayer: firstLayerJSON{Accept: p.Accept, Decline: p.Decline, Choose: p.Choose,
			AcceptShare: rate(p.Share(p.Accept)), DeclineShare: rate(p.Share(p.Decline)), ChooseShare: rate(p.Share(p.Choose))}}
	out.Parity = map[string]parityJSON{}
	for _, ch := range []string{reach.ChannelWidget, reach.ChannelCenter} {
		var w parityJSON
		w.MedianClicksToGrant, w.Grants = median(p.GrantClicks[ch])
		w.MedianClicksToWithdraw, w.Withdrawals = median(p.WithdrawClicks[ch])
		out.Parity[ch] = w
	}
	return out
}

// bannerStats answers GET /v1/stats/banner: per period, how often the
// widget's banner was shown, whether a choice followed, the shares of its
// first layer's buttons, and the median clicks a grant and a withdrawal
// took; format=csv downloads the same.
func (a *API) bannerStats(c *gin.Context) error {
	s, err := a.askStats(c)
	if err != nil {
		return err
	}
	m, format := s.m, s.format
	r, err := a.Reports.Banner(c.Request.Context(), m, s.interval, s.first, s.last)
	if err != nil {
		return err
	}
	out := bannerReportJSON{Interval: string(r.Interval), TimeZone: r.Location.String(), Periods: make([]bannerPeriodJSON, 0, len(r.Periods))}
	for _, p := range r.Periods {
		out.Periods = append(out.Periods, toBannerPeriodJSON(p))
	}
	if format != "csv" {
		c.JSON(http.StatusOK, out)
		return nil
	}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	share := func(v *float64) string {
		if v == nil {
			return ""
		}
		return strconv.FormatFloat(*v, 'f', -1, 64)
	}
	clicks := func(v *int) string {
		if v == nil {
			return ""
		}
		return strconv.Itoa(*v)
	}
	rows := [][]string{{"period_start", "period_end", "shown", "chose", "no_choice_rate", "accept", "decline", "choose", "accept_share", "decline_share", "choose_share",
		"widget_grants", "widget_median_clicks_to_grant", "widget_withdrawals", "widget_median_clicks_to_withdraw",
		"center_grants", "center_median_clicks_to_grant", "center_withdrawals", "center_median_clicks_to_withdraw"}}
	for _, p := range out.Periods {
		f, w, ce := p.FirstLayer, p.Parity[reach.ChannelWidget], p.Parity[reach.ChannelCenter]
		rows = append(rows, []string{p.Start, p.End, num(p.Shown), num(p.Chose), share(p.NoChoiceRate), num(f.Accept), num(f.Decline), num(f.Choose),
			share(f.AcceptShare), share(f.DeclineShare), share(f.ChooseShare), num(w.Grants), clicks(w.MedianClicksToGrant), num(w.Withdrawals), clicks(w.MedianClicksToWithdraw),
			num(ce.Grants), clicks(ce.MedianClicksToGrant), num(ce.Withdrawals), clicks(ce.MedianClicksToWithdraw)})
	}
	return sendCSV(c, m.Slug+"-banner-by-"+string(r.Interval)+".csv", rows)
}
