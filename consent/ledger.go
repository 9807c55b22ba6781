package consent

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/ttlcache"
)

// LedgerStore persists the ledger and its projection. Every method is a
// single-document atomic step, or a sequence of them that rolls forward
// after a crash; the Ledger orders them.
type LedgerStore interface {
	Journal
	// AppendEvents inserts the events, which continue one subject's chain
	// in order and lead to the state after, lists them in the journal, and
	// says how many it inserted: a prefix of them. Conflict if the subject
	// already has an event with the sequence number of the first not
	// inserted: the (merchant, subject, seq) key is unique.
	AppendEvents(ctx context.Context, events []Event, after SubjectState) (Appended, error)
	// Event returns the subject's event number seq; NotFound if absent.
	Event(ctx context.Context, merchantID, subjectID string, seq int64) (Event, error)
	// SubjectState returns the stored projection; NotFound if none was saved.
	SubjectState(ctx context.Context, merchantID, subjectID string) (SubjectState, error)
	// SaveSubjectState stores st unless the stored projection is already
	// at or past st.Seq. A store that derives state from its events (the
	// embedded store) may do nothing.
	SaveSubjectState(ctx context.Context, st SubjectState) error
	// StatesInStep reports whether the store writes each projection in the
	// same transaction as the events it follows, so that it is never behind
	// them: nothing to roll forward.
	StatesInStep() bool
	// ClaimIdempotencyKey stores c unless the merchant used c.Key before;
	// then it returns the earlier claim and false.
	ClaimIdempotencyKey(ctx context.Context, c IdempotencyClaim) (IdempotencyClaim, bool, error)
	// CompleteIdempotencyKey records the event a claimed key produced.
	CompleteIdempotencyKey(ctx context.Context, merchantID, key string, seq int64) error
	// EachSubject calls fn for every subject of every merchant, in no set order.
	EachSubject(ctx context.Context, fn func(merchantID, subjectID string) error) error
	// SubjectStates returns the stored projections of those of the
	// subjects that have one, read in bulk.
	SubjectStates(ctx context.Context, merchantID string, subjectIDs []string) (map[string]SubjectState, error)
	// Pending returns the subjects that have an event numbered heads[s]+1:
	// their projection is behind the ledger.
	Pending(ctx context.Context, merchantID string, heads map[string]int64) ([]string, error)
}

// NoticeSource tells a merchant's published notice versions.
type NoticeSource interface {
	// Terms returns the merchant's published versions (none: zero Terms).
	Terms(ctx context.Context, merchantID string) (Terms, error)
}

// IdempotencyClaim ties a merchant's Idempotency-Key to the one request it
// was first used with and, once written, the event that request produced.
type IdempotencyClaim struct {
	MerchantID  string
	Key         string
	Fingerprint string
	SubjectID   string
	Seq         int64 // 0 while the request is in flight
	CreatedAt   time.Time
}

// Options tune a Ledger's state cache.
type Options struct {
	// Exclusive says this process is the only writer of the store (the
	// embedded store, whose data directory is locked to one process): every
	// change passes through this Ledger, so its cache is always current.
	Exclusive bool
	// Bound is, when not Exclusive, the longest a decision may rest on the
	// cache without a completed round of following the other instances'
	// journals (see Follow) newer than that. A change acknowledged by
	// another instance is seen here within Bound.
	Bound time.Duration
	// CacheBytes is the memory budget of the state cache; 0 disables it.
	CacheBytes int64
	// Appended, when set, is told of every append: how many events, and
	// how long the store took (queueing and group commit included).
	Appended func(events int, took time.Duration)
}

// Ledger appends consent events and derives state and decisions from them.
// Every change of a subject's state goes through Apply (or Locked, for field
// events), under the subject's lock.
type Ledger struct {
	store    LedgerStore
	purposes PurposeStore
	subjects SubjectStore
	notices  NoticeSource
	now      func() time.Time
	log      *slog.Logger
	locks    [256]sync.Mutex
	// keeper keeps volunteered data; nil: none is kept.
	keeper Keeper
	// mem is what the ledger keeps in memory: cached states, projections
	// still to be written, what was learnt from other instances.
	mem *memory
	// savedCheckpoint is the last checkpoint recorded.
	savedCheckpoint atomic.Int64
	// bigEntries keeps the last large feed entries read (an import's):
	// the change feed pages through one in several calls.
	bigEntries *ttlcache.Cache[string, FeedEntry]
	// appended observes appends; nil: nothing does.
	appended func(events int, took time.Duration)
}

// NewLedger wires a Ledger.
func NewLedger(ls LedgerStore, ps PurposeStore, ss SubjectStore, ns NoticeSource, now func() time.Time, log *slog.Logger, opts Options) *Ledger {
	return &Ledger{store: ls, purposes: ps, subjects: ss, notices: ns, now: now, log: log, mem: newMemory(opts),
		bigEntries: ttlcache.New[string, FeedEntry](time.Minute, 8, time.Now), appended: opts.Appended}
}

// KeepVolunteeredData makes k the keeper of the data subjects volunteer:
// Apply checks values with it before writing anything and lets it erase
// what a withdrawal leaves without a purpose. Wire it at start, before serving.
func (l *Ledger) KeepVolunteeredData(k Keeper) { l.keeper = k }

// maxAppendAttempts bounds retries when another instance appends to the
// same subject's chain at the same moment.
const maxAppendAttempts = 50

func (l *Ledger) lock(merchantID, subjectID string) func() {
	h := fnv.New32a()
	h.Write([]byte(merchantID))
	h.Write([]byte{'/'})
	h.Write([]byte(subjectID))
	m := &l.locks[h.Sum32()%uint32(len(l.locks))]
	m.Lock()
	return m.Unlock
}

func (l *Ledger) purpose(ctx context.Context, merchantID, key string) (Purpose, error) {
	if err := checkPurposeKey(key); err != nil {
		return Purpose{}, err
	}
	p, err := l.purposes.Purpose(ctx, merchantID, key)
	if apperr.Is(err, apperr.NotFound) {
		return Purpose{}, apperr.New(apperr.Invalid, "unknown purpose %q", key).WithDetail(CodeUnknownPurpose)
	}
	return p, err
}

func (l *Ledger) ensureSubject(ctx context.Context, merchantID, subjectID string) error {
	_, err := l.subjects.Subject(ctx, merchantID, subjectID)
	if !apperr.Is(err, apperr.NotFound) {
		return err
	}
	now := l.now().UTC().Truncate(time.Millisecond)
	_, err = l.subjects.CreateSubject(ctx, Subject{MerchantID: merchantID, ID: subjectID, CreatedAt: now, UpdatedAt: now})
	return err
}

// ErrChainBroken is wrapped by errors reporting a ledger that does not verify.
var ErrChainBroken = errors.New("ledger chain broken")

// current returns the subject's state from the store, rolling the stored
// projection forward over any events appended after it (a writer that
// crashed between appending and saving the projection leaves such events
// behind).
func (l *Ledger) current(ctx context.Context, merchantID, subjectID string) (SubjectState, error) {
	st, err := l.store.SubjectState(ctx, merchantID, subjectID)
	switch {
	case apperr.Is(err, apperr.NotFound):
		st = SubjectState{MerchantID: merchantID, SubjectID: subjectID}
	case err != nil:
		return SubjectState{}, err
	}
	if l.store.StatesInStep() {
		return st, nil
	}
	if pending, ok := l.mem.unsaved(merchantID, subjectID); ok && pending.Seq > st.Seq {
		st = pending // written behind, not in the store yet
	}
	rolled := false
	for {
		e, err := l.store.Event(ctx, merchantID, subjectID, st.Seq+1)
		if apperr.Is(err, apperr.NotFound) {
			break
		}
		if err != nil {
			return SubjectState{}, err
		}
		if e.PrevHash != st.HeadHash || e.Hash != e.ComputeHash() {
			return SubjectState{}, apperr.Wrap(fmt.Errorf("%w at seq %d", ErrChainBroken, e.Seq), "consent state unavailable")
		}
		st = st.Next(e)
		rolled = true
	}
	if rolled {
		l.saveProjection(ctx, st, 0)
	}
	return st, nil
}

// StateOf returns the subject's current state; NotFound if the merchant has
// no such subject.
func (l *Ledger) StateOf(ctx context.Context, merchantID, subjectID string) (SubjectState, error) {
	if err := checkSubjectID(subjectID); err != nil {
		return SubjectState{}, err
	}
	if _, err := l.subjects.Subject(ctx, merchantID, subjectID); err != nil {
		return SubjectState{}, err
	}
	return l.lookup(ctx, merchantID, subjectID)
}

// Latest is StateOf read from the store, never from the cache (which may
// lag another instance's write by up to its bound): for jobs that act on a
// subject's state, such as sending an announcement only to who still needs
// it.
func (l *Ledger) Latest(ctx context.Context, merchantID, subjectID string) (SubjectState, error) {
	if err := checkSubjectID(subjectID); err != nil {
		return SubjectState{}, err
	}
	if _, err := l.subjects.Subject(ctx, merchantID, subjectID); err != nil {
		return SubjectState{}, err
	}
	return l.current(ctx, merchantID, subjectID)
}

// AwaitingReview lists what the subject is asked to re-accept.
func (l *Ledger) AwaitingReview(ctx context.Context, merchantID string, st SubjectState) ([]Awaiting, error) {
	terms, err := l.notices.Terms(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	// A retired purpose is no longer offered, so there is nothing to renew.
	out := terms.AwaitingReview(st)
	if len(out) == 0 {
		return out, nil
	}
	ps, err := l.purposes.Purposes(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	offered := Offered(ps)
	kept := out[:0]
	for _, a := range out {
		if slices.ContainsFunc(offered, func(p Purpose) bool { return p.Key == a.Purpose }) {
			kept = append(kept, a)
		}
	}
	return kept, nil
}

// DecideAll decides each purpose for a subject's state, under the
// merchant's terms now.
func (l *Ledger) DecideAll(ctx context.Context, merchantID string, st SubjectState, ps []Purpose) ([]Decision, error) {
	terms, err := l.notices.Terms(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	now := l.now()
	out := make([]Decision, len(ps))
	for i, p := range ps {
		out[i] = Decide(st, p, terms, now)
	}
	return out, nil
}

// Check decides whether the merchant may use the subject's data for purpose.
// An unknown subject is no_record; an unknown purpose is an Invalid error.
func (l *Ledger) Check(ctx context.Context, merchantID, subjectID, purpose string) (Decision, error) {
	if err := checkSubjectID(subjectID); err != nil {
		return Decision{}, err
	}
	p, err := l.purpose(ctx, merchantID, purpose)
	if err != nil {
		return Decision{}, err
	}
	terms, err := l.notices.Terms(ctx, merchantID)
	if err != nil {
		return Decision{}, err
	}
	lk, err := l.lookupPurpose(ctx, merchantID, subjectID, purpose)
	if err != nil {
		return Decision{}, err
	}
	if lk.erased {
		return erasedDecision(subjectID, purpose), nil
	}
	d := decideOne(subjectID, lk.ps, lk.decided, p, terms, l.now())
	d.Recorded = lk.recorded
	return d, nil
}

// MaxBatch is the most subjects one batch check may name.
const MaxBatch = 10000

// CheckMany decides for each subject, in the order given.
func (l *Ledger) CheckMany(ctx context.Context, merchantID, purpose string, subjectIDs []string) ([]Decision, error) {
	if len(subjectIDs) == 0 {
		return nil, apperr.New(apperr.Invalid, "subjects must name at least one subject").WithDetail("empty_batch")
	}
	if len(subjectIDs) > MaxBatch {
		return nil, apperr.New(apperr.Invalid, "a batch check takes at most %d subjects; got %d", MaxBatch, len(subjectIDs)).WithDetail("batch_too_large")
	}
	for i, id := range subjectIDs {
		if !ValidSubjectID(id) {
			return nil, apperr.New(apperr.Invalid, "subjects[%d] is not a valid subject id", i).WithDetail(CodeInvalidSubject)
		}
	}
	p, err := l.purpose(ctx, merchantID, purpose)
	if err != nil {
		return nil, err
	}
	out, _, err := l.DecideMany(ctx, p, subjectIDs)
	return out, err
}

// DecideMany decides purpose p for each subject, in the order given, and
// returns each subject's state with its decision (what the guard needs
// besides: the privacy level). Subject ids must be valid.
func (l *Ledger) DecideMany(ctx context.Context, p Purpose, subjectIDs []string) ([]Decision, []SubjectState, error) {
	terms, err := l.notices.Terms(ctx, p.MerchantID)
	if err != nil {
		return nil, nil, err
	}
	now := l.now()
	sts, err := l.lookupMany(ctx, p.MerchantID, subjectIDs)
	if err != nil {
		return nil, nil, err
	}
	out := make([]Decision, len(subjectIDs))
	states := make([]SubjectState, len(subjectIDs))
	for i, id := range subjectIDs {
		st := sts[id]
		if st.SubjectID == "" {
			st.MerchantID, st.SubjectID = p.MerchantID, id
		}
		out[i], states[i] = Decide(st, p, terms, now), st
	}
	return out, states, nil
}

// MaxPage is the largest page of events one call returns.
const MaxPage = 200

// Events returns up to limit events of the subject after seq `after`, and
// the cursor of the next page (0 when there is none).
func (l *Ledger) Events(ctx context.Context, merchantID, subjectID string, after int64, limit int) ([]Event, int64, error) {
	if err := checkSubjectID(subjectID); err != nil {
		return nil, 0, err
	}
	if after < 0 {
		return nil, 0, apperr.New(apperr.Invalid, "after must be 0 or a sequence number")
	}
	if limit <= 0 || limit > MaxPage {
		return nil, 0, apperr.New(apperr.Invalid, "limit must be between 1 and %d", MaxPage)
	}
	if _, err := l.subjects.Subject(ctx, merchantID, subjectID); err != nil {
		return nil, 0, err
	}
	events := make([]Event, 0, limit)
	for seq := after + 1; len(events) <= limit; seq++ {
		e, err := l.store.Event(ctx, merchantID, subjectID, seq)
		if apperr.Is(err, apperr.NotFound) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		events = append(events, e)
	}
	var next int64
	if len(events) > limit {
		events = events[:limit]
		next = events[limit-1].Seq
	}
	return events, next, nil
}

// Event returns one event of the subject's chain.
func (l *Ledger) Event(ctx context.Context, merchantID, subjectID string, seq int64) (Event, error) {
	return l.store.Event(ctx, merchantID, subjectID, seq)
}
