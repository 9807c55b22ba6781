// Package stats counts consent from the change feed: per purpose and day
// (in the merchant's time zone) how many subjects granted, denied and
// withdrew, through which channel and in which language, and how many are
// allowed and were asked at the end of each day.
//
// Rollups follow each merchant's feed from a persisted cursor (work
// proportional to new events), and are exact after a crash: a page's
// additions are written first as an intent with the state, then applied to
// the counters, each of which remembers the last generation it took, so an
// intent applied again after a crash adds nothing twice.
package stats

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/webhooks"
)

// Format names the counters' layout. A change to what is counted (a new
// counter, a new rule) bumps it: the rollups then count again from the
// beginning of every merchant's feed, under the new format.
const Format = 1

// Flows counts the decisions of a day (or a period) that changed a
// subject's state for a purpose: into granted, denied or withdrawn. A
// decision that repeats the state (a re-acceptance of changed terms) is
// not a flow.
type Flows struct {
	Grants, Denials, Withdrawals int64
}

// Add adds o's counts to f's.
func (f *Flows) Add(o Flows) {
	f.Grants += o.Grants
	f.Denials += o.Denials
	f.Withdrawals += o.Withdrawals
}

// Zero reports whether nothing was counted.
func (f Flows) Zero() bool { return f == Flows{} }

// Day is one purpose's counts for one day.
type Day struct {
	Flows
	// Allowed and Asked are the day's net change of the subjects whose
	// latest choice is a grant, and of those who made any choice (an
	// erased subject leaves both).
	Allowed, Asked int64
	ByChannel      map[string]Flows
	ByLocale       map[string]Flows
	// LeftWithin counts, of those who joined an offer's purpose on the day,
	// how many left within each of Stays days.
	LeftWithin map[int]int64
	// Extra are the counts of the documents beside the purposes' (fields
	// erased, rewards), by name.
	Extra map[string]int64
}

// Month is one purpose's days of one calendar month, by day of month.
type Month struct {
	Days map[int]Day
}

// Totals are, per purpose, the subjects allowed and asked now, and the
// subjects with a ledger (not erased), as far as the rollups have come.
type Totals struct {
	Allowed, Asked map[string]int64
	Subjects       int64
	// Granted counts, per purpose, the subjects whose grant stands under
	// each notice version; Taken the material versions whose affected
	// subjects were counted as they took effect.
	Granted map[string]map[int]int64
	Taken   map[int]bool
}

// NoLocale is the locale of decisions whose channel knew none.
const NoLocale = "und"

// Flow letters as counters name them.
const (
	letterGrant    = "g"
	letterDeny     = "d"
	letterWithdraw = "w"
)

func letterOf(s consent.State) string {
	switch s {
	case consent.Granted:
		return letterGrant
	case consent.Denied:
		return letterDeny
	}
	return letterWithdraw
}

// Inc adds N to the counter at Path of one document.
type Inc struct {
	Path string `json:"k"`
	N    int64  `json:"n"`
}

// Add is what one step adds to one document: a purpose's month (Purpose
// and Month set), the answers to a notice version (Notice set) or the
// merchant's totals (all empty).
type Add struct {
	Purpose string `json:"p,omitempty"`
	// Month is "2006-01".
	Month  string `json:"m,omitempty"`
	Notice int    `json:"v,omitempty"`
	Incs   []Inc  `json:"i"`
}

// Totals reports whether the add is to the merchant's totals.
func (a Add) Totals() bool { return a.Purpose == "" && a.Notice == 0 }

// docKey names one counters document of a merchant.
type docKey struct {
	purpose, month string
	notice         int
}

var totalsDoc = docKey{}

// adder gathers a step's additions, by document and path.
type adder struct {
	loc  *time.Location
	docs map[docKey]map[string]int64
	// n counts the distinct counters.
	n int
	// order keeps the documents in the order first touched, so that the
	// same page always gives the same adds.
	order []docKey
	// notices follows the answers to material notice versions (nil: none
	// are followed).
	notices *noticeCounter
	// offers are the purposes offers grant: how long members stay counts.
	offers map[string]bool
}

func newAdder(loc *time.Location, notices *noticeCounter) *adder {
	return &adder{loc: loc, docs: map[docKey]map[string]int64{}, notices: notices}
}

func (a *adder) inc(purpose, month, path string, n int64) {
	a.incDoc(docKey{purpose: purpose, month: month}, path, n)
}

// pending is what the step adds so far at path of doc.
func (a *adder) pending(k docKey, path string) int64 { return a.docs[k][path] }

func (a *adder) incDoc(k docKey, path string, n int64) {
	if n == 0 {
		return
	}
	m, ok := a.docs[k]
	if !ok {
		m = map[string]int64{}
		a.docs[k] = m
		a.order = append(a.order, k)
	}
	if _, ok := m[path]; !ok {
		a.n++
	}
	m[path] += n
}

// size is the number of distinct counters gathered.
func (a *adder) size() int { return a.n }

// day returns the month and the day's path prefix of t in the merchant's
// time zone.
func (a *adder) day(t time.Time) (month, prefix string) {
	l := t.In(a.loc)
	return l.Format("2006-01"), "d." + l.Format("02") + "."
}

// decision counts a decision that moved the subject's state for purpose
// from prev to e.State, on the day it was made (an imported one on the
// day the shopper made it).
func (a *adder) decision(e consent.Event, prev consent.State, prevNotice int) {
	a.notices.decision(a, e, prev, prevNotice)
	month, day := a.day(e.DecidedAt())
	if prev != e.State {
		x := letterOf(e.State)
		loc := e.Locale
		if loc == "" {
			loc = NoLocale
		}
		a.inc(e.Purpose, month, day+x, 1)
		a.inc(e.Purpose, month, day+"c."+string(e.Channel)+"."+x, 1)
		a.inc(e.Purpose, month, day+"l."+loc+"."+x, 1)
	}
	allowed := int64(0)
	if e.State == consent.Granted {
		allowed++
	}
	if prev == consent.Granted {
		allowed--
	}
	var asked int64
	if prev == consent.Undecided {
		asked = 1
	}
	a.stock(e.Purpose, month, day, allowed, asked)
}

// erased counts a subject's erasure: it leaves every purpose it decided.
func (a *adder) erased(e consent.Event, before map[string]consent.PurposeState) {
	a.notices.erased(a, e, before)
	for p, st := range before {
		if st.State == consent.Granted && a.offers[p] {
			a.left(p, st.At, e.RecordedAt)
		}
	}
	month, day := a.day(e.RecordedAt)
	a.inc("", "", "n", -1)
	for p, st := range before {
		var allowed int64
		if st.State == consent.Granted {
			allowed = -1
		}
		a.stock(p, month, day, allowed, -1)
	}
}

// Stays are the days after which a member who joined is still counted.
var Stays = []int{30, 90, 365}

// left counts a member leaving an offer's purpose, joined at joined, on
// the day they joined: in each stay they did not outlast.
func (a *adder) left(purpose string, joined, left time.Time) {
	if joined.IsZero() {
		return
	}
	month, day := a.day(joined)
	for _, d := range Stays {
		if left.Before(joined.AddDate(0, 0, d)) {
			a.inc(purpose, month, day+"l"+strconv.Itoa(d), 1)
		}
	}
}

// Names of the documents beside the purposes': fields erased, rewards.
const (
	FieldsDoc  = "~fields"
	RewardsDoc = "~rewards"
)

// fieldErased counts a volunteered value erased, by field.
func (a *adder) fieldErased(e consent.Event) {
	month, day := a.day(e.RecordedAt)
	a.inc(FieldsDoc, month, day+"x."+e.Field, 1)
}

// note counts a reward issued or redeemed, by offer.
func (a *adder) note(n webhooks.Note) {
	letter := map[string]string{webhooks.TypeRewardIssued: "i", webhooks.TypeRewardRedeemed: "r"}[n.Type]
	offer, _ := n.Data["offer"].(string)
	if letter == "" || offer == "" {
		return
	}
	month, day := a.day(n.At)
	a.inc(RewardsDoc, month, day+"x."+offer+"."+letter, 1)
}

func (a *adder) stock(purpose, month, day string, allowed, asked int64) {
	a.inc(purpose, month, day+"a", allowed)
	a.inc(purpose, month, day+"s", asked)
	a.inc("", "", "a."+purpose, allowed)
	a.inc("", "", "s."+purpose, asked)
}

// adds returns the page's additions, paths sorted within each document.
func (a *adder) adds() []Add {
	out := make([]Add, 0, len(a.order))
	for _, k := range a.order {
		m := a.docs[k]
		add := Add{Purpose: k.purpose, Month: k.month, Notice: k.notice, Incs: make([]Inc, 0, len(m))}
		for p, n := range m {
			if n != 0 {
				add.Incs = append(add.Incs, Inc{Path: p, N: n})
			}
		}
		sortIncs(add.Incs)
		if len(add.Incs) > 0 {
			out = append(out, add)
		}
	}
	return out
}

// Counts are one document's counters by path, as the store keeps them.
type Counts map[string]int64

// Encode writes c as the store keeps it: a line "path n" per counter,
// sorted by path (far quicker to read back than a JSON object).
func (c Counts) Encode() string {
	var b strings.Builder
	b.Grow(len(c) * 20)
	for _, p := range slices.Sorted(maps.Keys(c)) {
		b.WriteString(p)
		b.WriteByte(' ')
		b.WriteString(strconv.FormatInt(c[p], 10))
		b.WriteByte('\n')
	}
	return b.String()
}

// DecodeCounts reads what Encode wrote.
func DecodeCounts(s string) (Counts, error) {
	c := make(Counts, strings.Count(s, "\n"))
	for line := range strings.Lines(s) {
		path, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		v, err := strconv.ParseInt(n, 10, 64)
		if !ok || err != nil || path == "" {
			return nil, fmt.Errorf("a counters line %q does not read", line)
		}
		c[path] = v
	}
	return c, nil
}

// Apply adds incs to c, dropping counters that come back to zero.
func (c Counts) Apply(incs []Inc) {
	for _, i := range incs {
		if n := c[i.Path] + i.N; n != 0 {
			c[i.Path] = n
		} else {
			delete(c, i.Path)
		}
	}
}

// MonthOf reads a purpose's month from its counters.
func MonthOf(c Counts) Month {
	out := Month{Days: map[int]Day{}}
	for path, n := range c {
		// d.DD.<rest>
		if len(path) < 6 || path[:2] != "d." || path[4] != '.' {
			continue
		}
		dd, err := strconv.Atoi(path[2:4])
		if err != nil {
			continue
		}
		day, ok := out.Days[dd]
		if !ok {
			day = Day{ByChannel: map[string]Flows{}, ByLocale: map[string]Flows{}, LeftWithin: map[int]int64{}, Extra: map[string]int64{}}
		}
		switch rest := path[5:]; rest {
		case "l30", "l90", "l365":
			d, _ := strconv.Atoi(rest[1:])
			day.LeftWithin[d] += n
		case "a":
			day.Allowed += n
		case "s":
			day.Asked += n
		case letterGrant, letterDeny, letterWithdraw:
			addFlow(&day.Flows, rest, n)
		default:
			kind, name, ok := strings.Cut(rest, ".")
			if !ok {
				continue
			}
			if kind == "x" {
				day.Extra[name] += n
				out.Days[dd] = day
				continue
			}
			i := strings.LastIndexByte(name, '.')
			if i < 0 {
				continue
			}
			var by map[string]Flows
			switch kind {
			case "c":
				by = day.ByChannel
			case "l":
				by = day.ByLocale
			default:
				continue
			}
			f := by[name[:i]]
			addFlow(&f, name[i+1:], n)
			by[name[:i]] = f
		}
		out.Days[dd] = day
	}
	return out
}

func addFlow(f *Flows, letter string, n int64) {
	switch letter {
	case letterGrant:
		f.Grants += n
	case letterDeny:
		f.Denials += n
	case letterWithdraw:
		f.Withdrawals += n
	}
}

// TotalsOf reads a merchant's totals from their counters.
func TotalsOf(c Counts) Totals {
	t := Totals{Allowed: map[string]int64{}, Asked: map[string]int64{}, Subjects: c["n"], Granted: map[string]map[int]int64{}, Taken: map[int]bool{}}
	for path, n := range c {
		kind, rest, _ := strings.Cut(path, ".")
		switch kind {
		case "a":
			t.Allowed[rest] = n
		case "s":
			t.Asked[rest] = n
		case "g":
			p, v, ok := cutVersion(rest)
			if !ok {
				continue
			}
			if t.Granted[p] == nil {
				t.Granted[p] = map[int]int64{}
			}
			t.Granted[p][v] = n
		case "t":
			if v, err := strconv.Atoi(rest); err == nil {
				t.Taken[v] = true
			}
		}
	}
	return t
}

// cutVersion splits "<purpose>.<version>".
func cutVersion(s string) (string, int, bool) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(s[i+1:])
	return s[:i], v, err == nil
}
