package stats

import (
	"context"
	"time"

	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/reach"
)

// Reach reads the banner's anonymous counts.
type Reach interface {
	ReachMonth(ctx context.Context, merchantID, month string) (map[int]map[string]int64, error)
}

// BannerPeriod is what the banner met in one period.
type BannerPeriod struct {
	Start, End time.Time
	reach.Day
}

// NoChoiceRate is the share of the banner's showings no choice followed.
func (p BannerPeriod) NoChoiceRate() (float64, bool) {
	if p.Shown == 0 {
		return 0, false
	}
	return max(0, 1-float64(p.Chose)/float64(p.Shown)), true
}

// Share is a first-layer button's share of the first layer's presses.
func (p BannerPeriod) Share(n int64) (float64, bool) {
	all := p.Accept + p.Decline + p.Choose
	if all == 0 {
		return 0, false
	}
	return float64(n) / float64(all), true
}

// BannerReport is the banner's counts by period.
type BannerReport struct {
	Interval Interval
	Location *time.Location
	Periods  []BannerPeriod
}

// Banner reports the banner's counts over the periods of interval that
// cover first..last (days from Range).
func (r Reporter) Banner(ctx context.Context, m merchants.Merchant, interval Interval, first, last time.Time) (BannerReport, error) {
	loc := m.Location()
	out := BannerReport{Interval: interval, Location: loc}
	months := map[string]map[int]map[string]int64{}
	for _, sp := range spans(interval, first, last) {
		p := BannerPeriod{Start: sp[0], End: sp[1], Day: reach.DayOf(nil)}
		for d := sp[0]; !d.After(sp[1]); d = d.AddDate(0, 0, 1) {
			key := d.Format("2006-01")
			month, ok := months[key]
			if !ok {
				var err error
				if month, err = r.Reach.ReachMonth(ctx, m.ID, key); err != nil {
					return BannerReport{}, err
				}
				months[key] = month
			}
			p.Add(reach.DayOf(month[d.Day()]))
		}
		out.Periods = append(out.Periods, p)
	}
	return out, nil
}
