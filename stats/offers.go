package stats

import (
	"context"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/merchants"
)

// Offer is what an offer report needs of an offer.
type Offer struct {
	Key, Purpose string
	Fields       []string
	// CreatedAt starts its stays: joins before the offer are not its.
	CreatedAt time.Time
}

// OfferPeriod is one period of an offer: who joined (a grant of its
// purpose), who left (a withdrawal, a denial or an erasure of a member),
// the volunteered values erased, and the rewards issued and redeemed.
type OfferPeriod struct {
	Start, End                      time.Time
	Joins, Leaves, Issued, Redeemed int64
	Erased                          map[string]int64
}

// Stay is, over the members who joined at least Days days ago (in the
// last two years), how many joined and how many were still members Days
// days later.
type Stay struct {
	Days           int
	Joined, Stayed int64
}

// Share is the share of those who joined that stayed; false when nobody
// joined that long ago.
func (s Stay) Share() (float64, bool) {
	if s.Joined == 0 {
		return 0, false
	}
	return float64(s.Stayed) / float64(s.Joined), true
}

// OfferReport is an offer's periods, its members now and how long they
// stay.
type OfferReport struct {
	Interval Interval
	Location *time.Location
	Through  time.Time
	Members  int64
	Periods  []OfferPeriod
	Stays    []Stay
}

// stayMonths is how far back the stays look: two years of joins.
const stayMonths = 24

// months reads the counters of doc (a purpose, FieldsDoc or RewardsDoc)
// for each month, a few at a time.
func (r Reporter) months(ctx context.Context, merchantID, doc string, months []time.Time) ([]Month, error) {
	out := make([]Month, len(months))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readsAtOnce)
	for i, mo := range months {
		g.Go(func() error {
			var err error
			out[i], err = r.Store.RollupMonth(gctx, merchantID, doc, mo.Format("2006-01"))
			return err
		})
	}
	return out, g.Wait()
}

// monthsFrom lists the first days of the months from first's to last's.
func monthsFrom(first, last time.Time) []time.Time {
	var out []time.Time
	for mo := time.Date(first.Year(), first.Month(), 1, 0, 0, 0, 0, first.Location()); !mo.After(last); mo = mo.AddDate(0, 1, 0) {
		out = append(out, mo)
	}
	return out
}

// dayIn returns the counts of day d from months read for monthsFrom.
func dayIn(months []time.Time, read []Month, d time.Time) Day {
	for i, mo := range months {
		if mo.Year() == d.Year() && mo.Month() == d.Month() {
			return read[i].Days[d.Day()]
		}
	}
	return Day{}
}

// Offer reports an offer over the periods of interval that cover
// first..last (days from Range).
func (r Reporter) Offer(ctx context.Context, m merchants.Merchant, o Offer, interval Interval, first, last time.Time) (OfferReport, error) {
	loc := m.Location()
	today := dayOf(r.Now(), loc)
	st, err := r.Store.RollupState(ctx, m.ID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return OfferReport{}, err
	}
	totals, err := r.Store.RollupTotals(ctx, m.ID)
	if err != nil {
		return OfferReport{}, err
	}
	out := OfferReport{Interval: interval, Location: loc, Through: st.Last, Members: totals.Allowed[o.Purpose]}
	spans := spans(interval, first, last)
	ms := monthsFrom(spans[0][0], last)
	var purpose, fields, rewards []Month
	for _, doc := range []struct {
		name string
		into *[]Month
	}{{o.Purpose, &purpose}, {FieldsDoc, &fields}, {RewardsDoc, &rewards}} {
		if *doc.into, err = r.months(ctx, m.ID, doc.name, ms); err != nil {
			return OfferReport{}, err
		}
	}
	for _, sp := range spans {
		p := OfferPeriod{Start: sp[0], End: sp[1], Erased: map[string]int64{}}
		for d := sp[0]; !d.After(sp[1]); d = d.AddDate(0, 0, 1) {
			day := dayIn(ms, purpose, d)
			p.Joins += day.Grants
			p.Leaves += day.Grants - day.Allowed
			for _, f := range o.Fields {
				if n := dayIn(ms, fields, d).Extra[f]; n != 0 {
					p.Erased[f] += n
				}
			}
			rw := dayIn(ms, rewards, d).Extra
			p.Issued += rw[o.Key+".i"]
			p.Redeemed += rw[o.Key+".r"]
		}
		out.Periods = append(out.Periods, p)
	}
	// Stays: every join day of the last two years far enough back, from
	// the day the offer was made (the rollups count how long members stay
	// once they know the purpose is an offer's, within a minute of it).
	since := time.Date(today.Year(), today.Month(), 1, 0, 0, 0, 0, loc).AddDate(0, -stayMonths, 0)
	if made := dayOf(o.CreatedAt, loc); !o.CreatedAt.IsZero() && made.After(since) {
		since = made
	}
	back := monthsFrom(since, today)
	joins, err := r.months(ctx, m.ID, o.Purpose, back)
	if err != nil {
		return OfferReport{}, err
	}
	for _, days := range Stays {
		s := Stay{Days: days}
		// A join day counts once all of its members' stays are over: the
		// last of them ends before today began.
		for d := since; d.AddDate(0, 0, days).Before(today); d = d.AddDate(0, 0, 1) {
			day := dayIn(back, joins, d)
			s.Joined += day.Grants
			s.Stayed += day.Grants - day.LeftWithin[days]
		}
		out.Stays = append(out.Stays, s)
	}
	return out, nil
}
