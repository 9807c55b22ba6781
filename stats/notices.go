package stats

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
)

// A material notice version affects the subjects whose grant of one of its
// purposes stands under an older version when it takes effect, and those
// who answer it before then. Rollups keep, in the totals, how many grants
// stand under each version; at the first event recorded once a version is
// in effect they count its affected subjects from them (the step that does
// carries it with its other additions, so a crash counts them once). A
// decision that replaces a grant given under an older version, recorded
// under the new one or a later one, answers it: a grant re-accepts, a
// denial or withdrawal declines. An erasure of an affected subject who had
// not answered is counted apart.

// Answer letters as notice counters name them.
const (
	letterReaccept = "r"
	letterDecline  = "x"
	letterErase    = "e"
)

// noticeCounter follows the answers to a merchant's material versions
// over one step.
type noticeCounter struct {
	versions []consent.PublishedVersion
	// base are the totals before the step.
	base Totals
}

// newNoticeCounter follows terms' material versions from totals.
func newNoticeCounter(terms consent.Terms, base Totals) *noticeCounter {
	c := &noticeCounter{base: base}
	for _, v := range terms.Published {
		if v.Material && len(v.Purposes) > 0 {
			c.versions = append(c.versions, v)
		}
	}
	slices.SortFunc(c.versions, func(a, b consent.PublishedVersion) int { return a.Number - b.Number })
	return c
}

func noticeDoc(v int) docKey { return docKey{notice: v} }

func grantedPath(purpose string, v int) string { return "g." + purpose + "." + strconv.Itoa(v) }

func takenPath(v int) string { return "t." + strconv.Itoa(v) }

func (c *noticeCounter) taken(a *adder, v int) bool {
	return c.base.Taken[v] || a.pending(totalsDoc, takenPath(v)) != 0
}

// before counts the affected subjects of the versions that took effect by
// t and were not counted yet: called before each event is counted.
func (c *noticeCounter) before(a *adder, t time.Time) {
	if c == nil {
		return
	}
	for _, v := range c.versions {
		if v.EffectiveAt.After(t) || c.taken(a, v.Number) {
			continue
		}
		for _, p := range v.Purposes {
			var n int64
			for under, k := range c.base.Granted[p] {
				if under < v.Number {
					n += k
				}
			}
			for under := range v.Number {
				n += a.pending(totalsDoc, grantedPath(p, under))
			}
			a.incDoc(noticeDoc(v.Number), "a."+p, n)
		}
		a.incDoc(totalsDoc, takenPath(v.Number), 1)
	}
}

// answerDay is the day an answer to v counts on: its own, or the day v took
// effect for an answer given before.
func (a *adder) answerDay(e consent.Event, v consent.PublishedVersion) string {
	at := e.RecordedAt
	if at.Before(v.EffectiveAt) {
		at = v.EffectiveAt
	}
	return at.In(a.loc).Format(DateLayout)
}

// decision counts a decision on a purpose that replaced prev, given under
// notice version prevNotice.
func (c *noticeCounter) decision(a *adder, e consent.Event, prev consent.State, prevNotice int) {
	if c == nil {
		return
	}
	if prev == consent.Granted {
		a.incDoc(totalsDoc, grantedPath(e.Purpose, prevNotice), -1)
	}
	if e.State == consent.Granted {
		a.incDoc(totalsDoc, grantedPath(e.Purpose, e.NoticeVersion), 1)
	}
	if prev != consent.Granted {
		return
	}
	letter := letterDecline
	if e.State == consent.Granted {
		letter = letterReaccept
	}
	for _, v := range c.versions {
		if prevNotice >= v.Number || e.NoticeVersion < v.Number || !slices.Contains(v.Purposes, e.Purpose) {
			continue
		}
		if !c.taken(a, v.Number) {
			// Answered before it took effect: affected, though no longer
			// among the grants under older versions it will count.
			a.incDoc(noticeDoc(v.Number), "a."+e.Purpose, 1)
		}
		a.incDoc(noticeDoc(v.Number), "d."+a.answerDay(e, v)+"."+e.Purpose+"."+letter, 1)
	}
}

// erased counts a subject's erasure, given the states it held.
func (c *noticeCounter) erased(a *adder, e consent.Event, before map[string]consent.PurposeState) {
	if c == nil {
		return
	}
	for p, st := range before {
		if st.State != consent.Granted {
			continue
		}
		a.incDoc(totalsDoc, grantedPath(p, st.NoticeVersion), -1)
		for _, v := range c.versions {
			if st.NoticeVersion < v.Number && slices.Contains(v.Purposes, p) && c.taken(a, v.Number) {
				a.incDoc(noticeDoc(v.Number), "d."+a.answerDay(e, v)+"."+p+"."+letterErase, 1)
			}
		}
	}
}

// Answers counts one purpose's answers to a notice version on one day.
type Answers struct {
	Reaccepted, Declined, Erased int64
}

// NoticeCounts are the counters of one notice version.
type NoticeCounts struct {
	// Affected is per purpose; nil for a purpose until the version took
	// effect in the rollups (but answers given before count).
	Affected map[string]int64
	// Days are, per purpose, the answers by day ("2006-01-02").
	Days map[string]map[string]Answers
}

// NoticeOf reads a notice version's counters.
func NoticeOf(c Counts) NoticeCounts {
	out := NoticeCounts{Affected: map[string]int64{}, Days: map[string]map[string]Answers{}}
	for path, n := range c {
		if p, ok := strings.CutPrefix(path, "a."); ok {
			out.Affected[p] = n
			continue
		}
		rest, ok := strings.CutPrefix(path, "d.")
		if !ok || len(rest) < len(DateLayout)+3 || rest[len(DateLayout)] != '.' {
			continue
		}
		day, rest := rest[:len(DateLayout)], rest[len(DateLayout)+1:]
		i := strings.LastIndexByte(rest, '.')
		if i < 0 {
			continue
		}
		p := rest[:i]
		if out.Days[p] == nil {
			out.Days[p] = map[string]Answers{}
		}
		ans := out.Days[p][day]
		switch rest[i+1:] {
		case letterReaccept:
			ans.Reaccepted += n
		case letterDecline:
			ans.Declined += n
		case letterErase:
			ans.Erased += n
		}
		out.Days[p][day] = ans
	}
	return out
}

// NoticeDay is one purpose's answers to a version on one day since it
// took effect, and the subjects left at the day's end: still due before
// the deadline, lapsed once it passed.
type NoticeDay struct {
	Date time.Time
	Answers
	StillDue, Lapsed int64
}

// NoticePurpose is one purpose of a material version: its affected
// subjects, their answers so far, those left, and the days.
type NoticePurpose struct {
	Purpose  string
	Affected int64
	Answers
	StillDue, Lapsed int64
	Days             []NoticeDay
}

// NoticeReport is what became of a material version.
type NoticeReport struct {
	Version  consent.PublishedVersion
	Location *time.Location
	// Through is when the latest event counted was recorded.
	Through  time.Time
	Purposes []NoticePurpose
}

// maxNoticeDays bounds a notice report's days: a year from taking effect.
const maxNoticeDays = 366

// Notice reports on a material version v: per purpose it affects, and per
// day from the day it took effect (at most a year).
func (r Reporter) Notice(ctx context.Context, m merchants.Merchant, v consent.PublishedVersion) (NoticeReport, error) {
	loc := m.Location()
	now := r.Now()
	st, err := r.Store.RollupState(ctx, m.ID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return NoticeReport{}, err
	}
	totals, err := r.Store.RollupTotals(ctx, m.ID)
	if err != nil {
		return NoticeReport{}, err
	}
	counts, err := r.Store.RollupNotice(ctx, m.ID, v.Number)
	if err != nil {
		return NoticeReport{}, err
	}
	out := NoticeReport{Version: v, Location: loc, Through: st.Last}
	first, today := dayOf(v.EffectiveAt, loc), dayOf(now, loc)
	nDays := min(daysBetween(first, today)+1, maxNoticeDays)
	for _, p := range v.Purposes {
		np := NoticePurpose{Purpose: p, Affected: counts.Affected[p]}
		if !totals.Taken[v.Number] {
			// Not in effect in the rollups yet: the grants under older
			// versions as they stand.
			for under, n := range totals.Granted[p] {
				if under < v.Number {
					np.Affected += n
				}
			}
		}
		days := counts.Days[p]
		var answered int64
		for i := range nDays {
			d := NoticeDay{Date: first.AddDate(0, 0, i)}
			d.Answers = days[d.Date.Format(DateLayout)]
			answered += d.Reaccepted + d.Declined + d.Erased
			left := np.Affected - answered
			if !v.Deadline.After(d.Date.AddDate(0, 0, 1)) {
				d.Lapsed = left
			} else {
				d.StillDue = left
			}
			np.Days = append(np.Days, d)
		}
		for _, a := range days {
			np.Reaccepted += a.Reaccepted
			np.Declined += a.Declined
			np.Erased += a.Erased
		}
		left := np.Affected - np.Reaccepted - np.Declined - np.Erased
		if !v.Deadline.After(now) {
			np.Lapsed = left
		} else {
			np.StillDue = left
		}
		out.Purposes = append(out.Purposes, np)
	}
	return out, nil
}
