package handlers

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/stats"
)

type offerPeriodJSON struct {
	Start           string           `json:"start"`
	End             string           `json:"end"`
	Joins           int64            `json:"joins"`
	Leaves          int64            `json:"leaves"`
	Erased          map[string]int64 `json:"erased"`
	RewardsIssued   int64            `json:"rewards_issued"`
	RewardsRedeemed int64            `json:"rewards_redeemed"`
}

type stayJSON struct {
	Days        int      `json:"days"`
	Joined      int64    `json:"joined"`
	StillJoined int64    `json:"still_joined"`
	Share       *float64 `json:"share"`
}

type offerReportJSON struct {
	Offer    string            `json:"offer"`
	Purpose  string            `json:"purpose"`
	Interval string            `json:"interval"`
	TimeZone string            `json:"time_zone"`
	Through  *time.Time        `json:"through"`
	Members  int64             `json:"members"`
	Periods  []offerPeriodJSON `json:"periods"`
	Stays    []stayJSON        `json:"stays"`
}

// offerStats answers GET /v1/stats/offers/{key}: per period, who joined
// and left the offer, the values erased, the rewards issued and redeemed;
// its members now, and the share still members 30, 90 and 365 days after
// joining. format=csv downloads the periods.
func (a *API) offerStats(c *gin.Context) error {
	s, err := a.askStats(c)
	if err != nil {
		return err
	}
	ctx, m, format := c.Request.Context(), s.m, s.format
	o, err := a.Offers.Get(ctx, m.ID, c.Param("key"))
	if err != nil {
		return err
	}
	r, err := a.Reports.Offer(ctx, m, stats.Offer{Key: o.Key, Purpose: o.Purpose, Fields: o.Fields, CreatedAt: o.CreatedAt}, s.interval, s.first, s.last)
	if err != nil {
		return err
	}
	out := offerReportJSON{Offer: o.Key, Purpose: o.Purpose, Interval: string(r.Interval), TimeZone: r.Location.String(), Members: r.Members,
		Periods: make([]offerPeriodJSON, 0, len(r.Periods))}
	if !r.Through.IsZero() {
		out.Through = &r.Through
	}
	for _, p := range r.Periods {
		out.Periods = append(out.Periods, offerPeriodJSON{Start: p.Start.Format(stats.DateLayout), End: p.End.Format(stats.DateLayout),
			Joins: p.Joins, Leaves: p.Leaves, Erased: p.Erased, RewardsIssued: p.Issued, RewardsRedeemed: p.Redeemed})
	}
	for _, s := range r.Stays {
		out.Stays = append(out.Stays, stayJSON{Days: s.Days, Joined: s.Joined, StillJoined: s.Stayed, Share: rate(s.Share())})
	}
	if format != "csv" {
		c.JSON(http.StatusOK, out)
		return nil
	}
	num := func(v int64) string { return strconv.FormatInt(v, 10) }
	rows := [][]string{{"period_start", "period_end", "joins", "leaves", "values_erased", "rewards_issued", "rewards_redeemed"}}
	for _, p := range out.Periods {
		var erased int64
		for _, n := range p.Erased {
			erased += n
		}
		rows = append(rows, []string{p.Start, p.End, num(p.Joins), num(p.Leaves), num(erased), num(p.RewardsIssued), num(p.RewardsRedeemed)})
	}
	return sendCSV(c, m.Slug+"-offer-"+o.Key+"-by-"+string(r.Interval)+".csv", rows)
}
