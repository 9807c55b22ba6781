package stats

import (
	"context"
	"maps"
	"slices"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/merchants"
)

// readsAtOnce bounds a report's concurrent reads of the store.
const readsAtOnce = 8

// Interval is the length of a report's periods.
type Interval string

// Intervals a report can be by. Weeks begin on Monday.
const (
	Daily   Interval = "day"
	Weekly  Interval = "week"
	Monthly Interval = "month"
)

// maxPeriods bounds a report's periods per interval: a year of days, three
// years of weeks, ten years of months.
var maxPeriods = map[Interval]int{Daily: 366, Weekly: 157, Monthly: 120}

// maxYearsBack bounds how far back a report starts.
const maxYearsBack = 10

// DateLayout is how report dates are written: days in the merchant's time
// zone.
const DateLayout = "2006-01-02"

// PurposePeriod is one purpose's counts over one period.
type PurposePeriod struct {
	Purpose string
	// Allowed and Asked are at the end of the period; AllowedBefore is
	// Allowed at its start.
	Allowed, Asked, AllowedBefore int64
	Flows
	ByChannel map[string]Flows
	ByLocale  map[string]Flows
}

// OptInRate is the share of the subjects asked who are allowed at the end
// of the period; false when none was asked.
func (p PurposePeriod) OptInRate() (float64, bool) {
	if p.Asked <= 0 {
		return 0, false
	}
	return float64(p.Allowed) / float64(p.Asked), true
}

// WithdrawalRate is the share of those who could withdraw in the period
// (allowed at its start, or granting during it) who did; false when none
// could.
func (p PurposePeriod) WithdrawalRate() (float64, bool) {
	d := p.AllowedBefore + p.Grants
	if d <= 0 {
		return 0, false
	}
	return float64(p.Withdrawals) / float64(d), true
}

// Period is one period of a report: Start to End, both days included.
type Period struct {
	Start, End time.Time
	Purposes   []PurposePeriod
}

// Report is a merchant's purposes over a run of periods.
type Report struct {
	Interval Interval
	Location *time.Location
	Periods  []Period
	// Through is when the latest event rolled up was recorded (zero: none
	// yet).
	Through time.Time
	// Subjects counts the merchant's subjects now (not erased).
	Subjects int64
}

// Reporter reads reports from the rollups.
type Reporter struct {
	Store Store
	// Reach reads the banner's counts (nil: none are kept).
	Reach Reach
	Now   func() time.Time
}

// ParseInterval checks an interval's name; "" is Daily.
func ParseInterval(s string) (Interval, error) {
	switch i := Interval(s); i {
	case "":
		return Daily, nil
	case Daily, Weekly, Monthly:
		return i, nil
	}
	return "", apperr.New(apperr.Invalid, "interval must be day, week or month").WithDetail("invalid_interval")
}

// Range resolves a report's from and to ("2006-01-02" in the merchant's
// time zone, "" for the default: the last 30 days, 12 weeks or 12 months
// up to today) into the first and last day, to no later than today.
func (r Reporter) Range(m merchants.Merchant, interval Interval, from, to string) (time.Time, time.Time, error) {
	loc := m.Location()
	today := dayOf(r.Now(), loc)
	parse := func(name, s string, def time.Time) (time.Time, error) {
		if s == "" {
			return def, nil
		}
		t, err := time.ParseInLocation(DateLayout, s, loc)
		if err != nil {
			return time.Time{}, apperr.New(apperr.Invalid, "%s must be a date as 2026-12-01", name).WithDetail("invalid_date")
		}
		return t, nil
	}
	last, err := parse("to", to, today)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	last = minTime(last, today)
	var def time.Time
	switch interval {
	case Daily:
		def = last.AddDate(0, 0, -29)
	case Weekly:
		def = startOf(Weekly, last).AddDate(0, 0, -7*11)
	default:
		def = startOf(Monthly, last).AddDate(0, -11, 0)
	}
	first, err := parse("from", from, def)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if first.After(last) {
		return time.Time{}, time.Time{}, apperr.New(apperr.Invalid, "from must be on or before to (and today)").WithDetail("invalid_range")
	}
	// A report walks from its first day to today: reports reach back ten
	// years at most.
	if first.Before(today.AddDate(-maxYearsBack, 0, 0)) {
		return time.Time{}, time.Time{}, apperr.New(apperr.Invalid, "from must be within the last %d years", maxYearsBack).WithDetail("invalid_range")
	}
	n := 0
	for s := startOf(interval, first); !s.After(last) && n <= maxPeriods[interval]; s = nextStart(interval, s) {
		n++
	}
	if n > maxPeriods[interval] {
		return time.Time{}, time.Time{}, apperr.New(apperr.Invalid, "a report by %s covers at most %d periods", interval, maxPeriods[interval]).WithDetail("invalid_range")
	}
	return first, last, nil
}

// Purposes reports the purposes over the periods of interval that cover
// first..last (days from Range).
func (r Reporter) Purposes(ctx context.Context, m merchants.Merchant, purposes []string, interval Interval, first, last time.Time) (Report, error) {
	loc := m.Location()
	today := dayOf(r.Now(), loc)
	start := startOf(interval, first)
	var periods []Period
	for _, p := range spans(interval, first, last) {
		periods = append(periods, Period{Start: p[0], End: p[1]})
	}
	st, err := r.Store.RollupState(ctx, m.ID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return Report{}, err
	}
	totals, err := r.Store.RollupTotals(ctx, m.ID)
	if err != nil {
		return Report{}, err
	}
	// Days from start to today, whose changes walk the totals back.
	nDays := daysBetween(start, today) + 1
	var months []time.Time
	for mo := time.Date(start.Year(), start.Month(), 1, 0, 0, 0, 0, loc); !mo.After(today); mo = mo.AddDate(0, 1, 0) {
		months = append(months, mo)
	}
	// Every purpose's months, read a few at a time: each is one document.
	read := make([]Month, len(purposes)*len(months))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readsAtOnce)
	for i := range read {
		g.Go(func() error {
			var err error
			read[i], err = r.Store.RollupMonth(gctx, m.ID, purposes[i/len(months)], months[i%len(months)].Format("2006-01"))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Report{}, err
	}
	for pi, p := range purposes {
		days := make([]Day, nDays)
		for mi, mo := range months {
			for d, counts := range read[pi*len(months)+mi].Days {
				if i := daysBetween(start, time.Date(mo.Year(), mo.Month(), d, 0, 0, 0, 0, loc)); i >= 0 && i < nDays {
					days[i] = counts
				}
			}
		}
		// allowed[i], asked[i]: at the end of day i.
		allowed, asked := make([]int64, nDays), make([]int64, nDays)
		allowed[nDays-1], asked[nDays-1] = totals.Allowed[p], totals.Asked[p]
		for i := nDays - 2; i >= 0; i-- {
			allowed[i] = allowed[i+1] - days[i+1].Allowed
			asked[i] = asked[i+1] - days[i+1].Asked
		}
		for k := range periods {
			pp := PurposePeriod{Purpose: p, ByChannel: map[string]Flows{}, ByLocale: map[string]Flows{}}
			lo, hi := daysBetween(start, periods[k].Start), daysBetween(start, periods[k].End)
			pp.Allowed, pp.Asked = allowed[hi], asked[hi]
			pp.AllowedBefore = allowed[lo] - days[lo].Allowed
			for i := lo; i <= hi; i++ {
				pp.Flows.Add(days[i].Flows)
				mergeFlows(pp.ByChannel, days[i].ByChannel)
				mergeFlows(pp.ByLocale, days[i].ByLocale)
			}
			periods[k].Purposes = append(periods[k].Purposes, pp)
		}
	}
	return Report{Interval: interval, Location: loc, Periods: periods, Through: st.Last, Subjects: totals.Subjects}, nil
}

// spans are the first and last days of the periods of interval that
// cover first..last, the last cut at last.
func spans(interval Interval, first, last time.Time) [][2]time.Time {
	var out [][2]time.Time
	for s := startOf(interval, first); !s.After(last); s = nextStart(interval, s) {
		out = append(out, [2]time.Time{s, minTime(nextStart(interval, s).AddDate(0, 0, -1), last)})
	}
	return out
}

func mergeFlows(into, from map[string]Flows) {
	for _, k := range slices.Sorted(maps.Keys(from)) {
		f := into[k]
		f.Add(from[k])
		into[k] = f
	}
}

// dayOf is the start of t's day in loc.
func dayOf(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), 0, 0, 0, 0, loc)
}

// daysBetween counts calendar days from a to b (midnights in one zone;
// a day of a clock change is still one day).
func daysBetween(a, b time.Time) int {
	ua := time.Date(a.Year(), a.Month(), a.Day(), 0, 0, 0, 0, time.UTC)
	ub := time.Date(b.Year(), b.Month(), b.Day(), 0, 0, 0, 0, time.UTC)
	return int(ub.Sub(ua).Hours() / 24)
}

func startOf(i Interval, t time.Time) time.Time {
	switch i {
	case Weekly:
		back := (int(t.Weekday()) + 6) % 7 // days since Monday
		return t.AddDate(0, 0, -back)
	case Monthly:
		return time.Date(t.Year(), t.Month(), 1, 0, 0, 0, 0, t.Location())
	}
	return t
}

func nextStart(i Interval, t time.Time) time.Time {
	switch i {
	case Weekly:
		return t.AddDate(0, 0, 7)
	case Monthly:
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, 1)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
