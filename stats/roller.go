package stats

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/internal/lag"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/ttlcache"
	"github.com/fineline/fineline/webhooks"
)

// State is how far one merchant's rollups have come.
type State struct {
	MerchantID string
	// Rev is bumped by every save; a save expects the rev it read, so that
	// two instances never both move one merchant's rollups.
	Rev int64
	// Gen counts the pages applied; Cursor is the feed cursor after them.
	Gen    int64
	Cursor string
	// Intent, when set, is page Gen+1: written before its additions, and
	// applied again (a no-op where it already was) by whoever finds it.
	Intent *Intent
	// Events counts the events rolled up; Last is when the latest of them
	// was recorded.
	Events    int64
	Last      time.Time
	UpdatedAt time.Time
	// NotesPos is the last of the merchant's notes (rewards issued and
	// redeemed) rolled up.
	NotesPos int64
}

// Intent is a page of additions on its way to the counters.
type Intent struct {
	Gen    int64
	To     string
	Events int64
	Last   time.Time
	// NotesTo is the last note the intent counts.
	NotesTo int64
	Adds    []Add
}

// Store keeps rollup states and counters.
type Store interface {
	// RollupState returns a merchant's state; NotFound before its first.
	RollupState(ctx context.Context, merchantID string) (State, error)
	// SaveRollupState stores st if the stored rev is st.Rev-1 (or there is
	// none and st.Rev is 1), and reports whether it did.
	SaveRollupState(ctx context.Context, st State) (bool, error)
	// ApplyRollup adds a to its document unless that document already took
	// generation gen (or a later one), and marks it with gen.
	ApplyRollup(ctx context.Context, merchantID string, gen int64, a Add) error
	// RollupMonth returns a purpose's counters for a month ("2006-01"),
	// empty when there are none.
	RollupMonth(ctx context.Context, merchantID, purpose, month string) (Month, error)
	// RollupTotals returns the merchant's totals, empty when there are none.
	RollupTotals(ctx context.Context, merchantID string) (Totals, error)
	// RollupNotice returns the counters of a notice version, empty when
	// there are none.
	RollupNotice(ctx context.Context, merchantID string, version int) (NoticeCounts, error)
}

// Feed is the ledger as rollups read it.
type Feed interface {
	Changes(ctx context.Context, merchantID string, after consent.ChangesCursor, limit int, keep func(consent.Event) bool) (consent.ChangesPage, error)
	Event(ctx context.Context, merchantID, subjectID string, seq int64) (consent.Event, error)
}

// Notes are the merchant's notes beside the ledger (webhooks.Notes), at
// dense positions from 1.
type Notes interface {
	Note(ctx context.Context, merchantID string, pos int64) (webhooks.Note, error)
}

// Offers names the purposes a merchant's offers grant.
type Offers interface {
	OfferPurposes(ctx context.Context, merchantID string) ([]string, error)
}

// Terms are a merchant's published notice versions.
type Terms interface {
	Terms(ctx context.Context, merchantID string) (consent.Terms, error)
}

// Merchants lists the merchants whose rollups are kept.
type Merchants interface {
	ListMerchants(ctx context.Context, after string, limit int) ([]merchants.Merchant, error)
}

// Leaser shares merchants' rollups among instances: one moves each.
type Leaser interface {
	HoldLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
}

// Roller keeps every merchant's rollups up to date.
type Roller struct {
	Store     Store
	Feed      Feed
	Merchants Merchants
	// Terms, when set, lets rollups count the answers to material notice
	// versions.
	Terms Terms
	// Notes, when set, lets them count rewards issued and redeemed; Offers
	// how long members stay in each offer.
	Notes  Notes
	Offers Offers
	// Leases, when set, shares merchants with other instances; nil rolls
	// every merchant up in this process (the embedded store).
	Leases Leaser
	Owner  string
	Log    *slog.Logger
	// Poll is how often a caught-up pass starts again.
	Poll time.Duration
	// Page bounds the events of one feed read (at most
	// consent.MaxChangesPage); Step those of one step, whose additions are
	// written together (default 10,000).
	Page, Step int
	// Turn bounds the time one merchant holds a pass before the next
	// merchant's turn.
	Turn time.Duration

	// behind is, per merchant not caught up at its last step, when the
	// last event it rolled up was recorded.
	behind lag.Oldest
	once   sync.Once
	offers *ttlcache.Cache[string, map[string]bool]
}

const leaseTTL = 30 * time.Second

const (
	defaultStep = 10_000
	// maxStepCounters bounds the distinct counters of one step, which an
	// intent carries (a few MB at most).
	maxStepCounters = 50_000
)

// counted picks the events rollups count: consent decisions, erasures,
// and every subject's first event.
func counted(e consent.Event) bool {
	return e.Seq == 1 || e.Field == "" && (e.State.Valid() || e.State == consent.SubjectErased) || e.Field != "" && e.State == consent.Erased
}

// Run rolls up until ctx ends.
func (r *Roller) Run(ctx context.Context) {
	for ctx.Err() == nil {
		worked, err := r.Pass(ctx)
		if err != nil && ctx.Err() == nil {
			r.Log.Warn("rollups: a pass failed", "err", err)
		}
		if !worked || err != nil {
			sleep(ctx, r.Poll)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Pass gives every merchant a turn, and reports whether any had work.
func (r *Roller) Pass(ctx context.Context) (bool, error) {
	worked := false
	after := ""
	for {
		ms, err := r.Merchants.ListMerchants(ctx, after, 100)
		if err != nil {
			return worked, err
		}
		for _, m := range ms {
			w, err := r.turn(ctx, m)
			if err != nil {
				if ctx.Err() != nil {
					return worked, err
				}
				r.Log.Warn("rollups: a merchant's turn failed", "merchant", m.ID, "err", err)
			}
			worked = worked || w
		}
		if len(ms) < 100 {
			return worked, nil
		}
		after = ms[len(ms)-1].ID
	}
}

// CatchUp rolls one merchant up to the end of its feed as it is now.
func (r *Roller) CatchUp(ctx context.Context, m merchants.Merchant) error {
	for {
		more, err := r.turn(ctx, m)
		if err != nil || !more {
			return err
		}
	}
}

// turn moves one merchant's rollups on for up to Turn; true if there may
// be more to do.
func (r *Roller) turn(ctx context.Context, m merchants.Merchant) (bool, error) {
	if r.Leases != nil {
		ok, err := r.Leases.HoldLease(ctx, "stats/"+m.ID, r.Owner, leaseTTL)
		if err != nil || !ok {
			return false, err
		}
	}
	st, err := r.Store.RollupState(ctx, m.ID)
	if apperr.Is(err, apperr.NotFound) {
		st, err = State{MerchantID: m.ID}, nil
	}
	if err != nil {
		return false, err
	}
	began := time.Now()
	turn := cmp.Or(r.Turn, 5*time.Second)
	for {
		more, err := r.step(ctx, m, &st)
		if errors.Is(err, errMoved) {
			return false, nil // another instance has it now
		}
		if err != nil || !more {
			r.noteBehind(m.ID, more, st.Last)
			return more, err
		}
		if time.Since(began) > turn {
			r.noteBehind(m.ID, true, st.Last)
			return true, nil
		}
	}
}

// errMoved says another instance moved the merchant's rollups meanwhile.
var errMoved = apperr.New(apperr.Conflict, "rollups moved elsewhere")

// save stores st as the next rev.
func (r *Roller) save(ctx context.Context, st *State) error {
	next := *st
	next.Rev++
	next.UpdatedAt = time.Now().UTC()
	ok, err := r.Store.SaveRollupState(ctx, next)
	if err != nil {
		return err
	}
	if !ok {
		return errMoved
	}
	*st = next
	return nil
}

// step applies a step's pages; true if the feed had more after them.
func (r *Roller) step(ctx context.Context, m merchants.Merchant, st *State) (bool, error) {
	if st.Intent != nil {
		if err := r.finish(ctx, st); err != nil {
			return false, err
		}
	}
	cur, err := consent.ParseChangesCursor(m.ID, st.Cursor)
	if err != nil {
		return false, err
	}
	// Gather pages up to a step's worth of events: the documents they
	// touch are written once for all of them. A version published while
	// they were gathered starts the step again, knowing it.
	var (
		a      *adder
		last   time.Time
		events int
		more   bool
		next   string
	)
	offers, err := r.offerPurposes(ctx, m.ID)
	if err != nil {
		return false, err
	}
	for {
		// The terms are read once there is something to count: a merchant
		// whose feed is quiet costs one feed read a poll.
		var terms consent.Terms
		loaded := false
		a, last, events, more, next = newAdder(m.Location(), nil), st.Last, 0, true, st.Cursor
		a.offers = offers
		at := cur
		for more && events < cmp.Or(r.Step, defaultStep) && a.size() < maxStepCounters {
			page, err := r.Feed.Changes(ctx, m.ID, at, cmp.Or(r.Page, consent.MaxChangesPage), counted)
			if err != nil {
				return false, err
			}
			if len(page.Events) > 0 && !loaded {
				if terms, a.notices, err = r.notices(ctx, m.ID); err != nil {
					return false, err
				}
				loaded = true
			}
			for _, e := range page.Events {
				if err := r.count(ctx, a, e); err != nil {
					return false, err
				}
				last = e.RecordedAt
			}
			events += len(page.Events)
			more = page.More
			n := page.Next.String()
			if n == next {
				break
			}
			next, at = n, page.Next
		}
		if !loaded || r.Terms == nil {
			break
		}
		again, err := r.Terms.Terms(ctx, m.ID)
		if err != nil {
			return false, err
		}
		if len(again.Published) == len(terms.Published) {
			break
		}
	}
	notesTo, notesMore, err := r.countNotes(ctx, a, m.ID, st.NotesPos)
	if err != nil {
		return false, err
	}
	more = more || notesMore
	if next == st.Cursor && notesTo == st.NotesPos {
		return false, nil
	}
	adds := a.adds()
	if len(adds) == 0 {
		// Nothing counted (the page passed over other events): move on.
		st.Cursor, st.Gen, st.Events, st.Last, st.NotesPos = next, st.Gen+1, st.Events+int64(events), last, notesTo
		return more, r.save(ctx, st)
	}
	st.Intent = &Intent{Gen: st.Gen + 1, To: next, Events: int64(events), Last: last, NotesTo: notesTo, Adds: adds}
	if err := r.save(ctx, st); err != nil {
		return false, err
	}
	return more, r.finish(ctx, st)
}

// finish applies st's intent to the counters, then records it done.
func (r *Roller) finish(ctx context.Context, st *State) error {
	in := st.Intent
	for _, a := range in.Adds {
		if err := r.Store.ApplyRollup(ctx, st.MerchantID, in.Gen, a); err != nil {
			return err
		}
	}
	st.Gen, st.Cursor, st.Events, st.Last, st.Intent = in.Gen, in.To, st.Events+in.Events, in.Last, nil
	st.NotesPos = max(st.NotesPos, in.NotesTo)
	return r.save(ctx, st)
}

// maxStepNotes bounds the notes one step reads.
const maxStepNotes = 1000

// countNotes counts the rewards issued and redeemed in the merchant's
// notes after pos, and returns the last it read and whether there may be
// more.
func (r *Roller) countNotes(ctx context.Context, a *adder, merchantID string, pos int64) (int64, bool, error) {
	if r.Notes == nil {
		return pos, false, nil
	}
	for range maxStepNotes {
		n, err := r.Notes.Note(ctx, merchantID, pos+1)
		if apperr.Is(err, apperr.NotFound) {
			return pos, false, nil
		}
		if err != nil {
			return pos, false, err
		}
		a.note(n)
		pos++
	}
	return pos, true, nil
}

// offerTTL is how long the roller keeps a merchant's offer purposes.
const offerTTL = time.Minute

// offerPurposes returns the purposes the merchant's offers grant.
func (r *Roller) offerPurposes(ctx context.Context, merchantID string) (map[string]bool, error) {
	if r.Offers == nil {
		return nil, nil
	}
	r.once.Do(func() { r.offers = ttlcache.New[string, map[string]bool](offerTTL, 10_000, time.Now) })
	if ps, ok := r.offers.Get(merchantID); ok {
		return ps, nil
	}
	keys, err := r.Offers.OfferPurposes(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	ps := make(map[string]bool, len(keys))
	for _, k := range keys {
		ps[k] = true
	}
	r.offers.Put(merchantID, ps)
	return ps, nil
}

// notices reads the merchant's terms and the totals a step starts from,
// for counting the answers to material versions; nil without Terms.
func (r *Roller) notices(ctx context.Context, merchantID string) (consent.Terms, *noticeCounter, error) {
	if r.Terms == nil {
		return consent.Terms{}, nil, nil
	}
	terms, err := r.Terms.Terms(ctx, merchantID)
	if err != nil {
		return consent.Terms{}, nil, err
	}
	var base Totals
	if slices.ContainsFunc(terms.Published, func(v consent.PublishedVersion) bool { return v.Material }) {
		// Only counting a material version's affected subjects reads them.
		if base, err = r.Store.RollupTotals(ctx, merchantID); err != nil {
			return consent.Terms{}, nil, err
		}
	}
	return terms, newNoticeCounter(terms, base), nil
}

// count adds one event to the step's additions.
func (r *Roller) count(ctx context.Context, a *adder, e consent.Event) error {
	a.notices.before(a, e.RecordedAt)
	if e.Seq == 1 {
		a.inc("", "", "n", 1)
	}
	if e.Field != "" {
		if e.State == consent.Erased {
			a.fieldErased(e)
		}
		return nil
	}
	if e.State == consent.LevelChosen {
		return nil
	}
	if e.State == consent.SubjectErased {
		before, held, err := r.statesBefore(ctx, e)
		if err != nil {
			return err
		}
		a.erased(e, before)
		for _, f := range held {
			a.fieldErased(consent.Event{Field: f, RecordedAt: e.RecordedAt})
		}
		return nil
	}
	prev, prevNotice := e.Prev, e.PrevNotice
	if prev == "" {
		// Recorded before decisions kept what they replace: read it from
		// the chain.
		var err error
		if prev, prevNotice, err = r.prevOf(ctx, e); err != nil {
			return err
		}
	}
	a.decision(e, prev, prevNotice)
	if prev == consent.Granted && e.State != consent.Granted && a.offers[e.Purpose] {
		joined, err := r.joinedAt(ctx, e)
		if err != nil {
			return err
		}
		a.left(e.Purpose, joined, e.DecidedAt())
	}
	return nil
}

// joinedAt reads back along the subject's chain for when its grant of e's
// purpose began (the first of the grants before e that follow one another).
func (r *Roller) joinedAt(ctx context.Context, e consent.Event) (time.Time, error) {
	var at time.Time
	err := r.decisionsBefore(ctx, e, func(p consent.Event) bool {
		if p.State != consent.Granted {
			return false
		}
		at = p.DecidedAt()
		return true
	})
	return at, err
}

// prevOf reads back along the subject's chain for its state for e's
// purpose before e, and the notice version it was recorded under.
func (r *Roller) prevOf(ctx context.Context, e consent.Event) (consent.State, int, error) {
	prev, notice := consent.Undecided, 0
	err := r.decisionsBefore(ctx, e, func(p consent.Event) bool {
		prev, notice = p.State, p.NoticeVersion
		return false
	})
	return prev, notice, err
}

// decisionsBefore calls each with the subject's decisions on e's purpose
// before e, newest first, while it answers true.
func (r *Roller) decisionsBefore(ctx context.Context, e consent.Event, each func(consent.Event) bool) error {
	for seq := e.Seq - 1; seq >= 1; seq-- {
		p, err := r.Feed.Event(ctx, e.MerchantID, e.SubjectID, seq)
		if err != nil {
			return err
		}
		if p.State == consent.SubjectErased {
			return nil
		}
		if p.Field == "" && p.State.Valid() && p.Purpose == e.Purpose && !each(p) {
			return nil
		}
	}
	return nil
}

// statesBefore reads the subject's chain up to its erasure for the state
// it held for each purpose, and the fields it had values of (sorted).
func (r *Roller) statesBefore(ctx context.Context, e consent.Event) (map[string]consent.PurposeState, []string, error) {
	out, fields := map[string]consent.PurposeState{}, map[string]bool{}
	for seq := int64(1); seq < e.Seq; seq++ {
		p, err := r.Feed.Event(ctx, e.MerchantID, e.SubjectID, seq)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case p.State == consent.SubjectErased:
			clear(out)
			clear(fields)
		case p.Field != "":
			fields[p.Field] = p.State == consent.Provided
		case p.State.Valid():
			// At is when the state began: a repeated grant keeps it.
			at := p.DecidedAt()
			if was := out[p.Purpose]; was.State == p.State {
				at = was.At
			}
			out[p.Purpose] = consent.PurposeState{State: p.State, NoticeVersion: p.NoticeVersion, At: at}
		}
	}
	var held []string
	for _, f := range slices.Sorted(maps.Keys(fields)) {
		if fields[f] {
			held = append(held, f)
		}
	}
	return out, held, nil
}

func (r *Roller) noteBehind(merchantID string, more bool, last time.Time) {
	if !more {
		last = time.Time{}
	}
	r.behind.Note(merchantID, last)
}

// Behind reports how far behind its feed the most lagging merchant this
// instance rolls up is: the age of the last event it rolled up, for a
// merchant whose feed held more (0: all caught up).
func (r *Roller) Behind(now time.Time) time.Duration { return r.behind.Max(now) }

func sortIncs(incs []Inc) {
	slices.SortFunc(incs, func(a, b Inc) int { return cmp.Compare(a.Path, b.Path) })
}
