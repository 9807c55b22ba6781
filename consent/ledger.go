package consent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fineline/fineline/apperr"
)

// LedgerStore persists the ledger and its projection. Every method is a
// single-document atomic step; the Ledger sequences them so that a crash
// between two of them rolls forward.
type LedgerStore interface {
	// AppendEvent inserts e. Conflict if the subject already has an event
	// with e.Seq: the (merchant, subject, seq) key is unique.
	AppendEvent(ctx context.Context, e Event) error
	// Event returns the subject's event number seq; NotFound if absent.
	Event(ctx context.Context, merchantID, subjectID string, seq int64) (Event, error)
	// Record returns the stored projection; NotFound if none was saved.
	Record(ctx context.Context, merchantID, subjectID string) (Record, error)
	// SaveRecord stores rec unless the stored projection is already at or
	// past rec.Seq.
	SaveRecord(ctx context.Context, rec Record) error
	// ClaimIdempotencyKey stores c unless the merchant used c.Key before;
	// then it returns the earlier claim and false.
	ClaimIdempotencyKey(ctx context.Context, c IdempotencyClaim) (IdempotencyClaim, bool, error)
	// CompleteIdempotencyKey records the event a claimed key produced.
	CompleteIdempotencyKey(ctx context.Context, merchantID, key string, seq int64) error
	// EachSubject calls fn for every subject of every merchant, in no set order.
	EachSubject(ctx context.Context, fn func(merchantID, subjectID string) error) error
	// Records returns the stored projections of those of the subjects that
	// have one, read in bulk.
	Records(ctx context.Context, merchantID string, subjectIDs []string) (map[string]Record, error)
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

// Change is a decision to record.
type Change struct {
	MerchantID string
	SubjectID  string
	Purpose    string
	State      State
	Channel    Channel
	// Actor names who recorded it: "api_key:<id>", "session:<subject>", ...
	Actor string
	// IdempotencyKey, when set, makes a retried request return the first result.
	IdempotencyKey string
	// ExplicitOptIn must be true to grant a sensitive purpose: the caller
	// vouches that the subject ticked this very purpose themselves.
	ExplicitOptIn bool
	// NoticeVersion is the published version the subject decided under,
	// when they were shown one (re-accepting changed terms before they take
	// effect); 0 records the version in force.
	NoticeVersion int
}

// Result is what recording a change produced.
type Result struct {
	Event    Event
	Decision Decision
	// Replayed is true when an Idempotency-Key matched an earlier request
	// and nothing new was written.
	Replayed bool
}

// Options tune a Ledger's state cache.
type Options struct {
	// Exclusive says this process is the only writer of the store (the
	// embedded store, whose data directory is locked to one process): every
	// change passes through this Ledger, so its cache is always current.
	Exclusive bool
	// Bound is, when not Exclusive, the longest a decision may rest on the
	// cache without a completed poll of the ledger (see Follow) newer than
	// that. A change acknowledged by another instance is seen here within Bound.
	Bound time.Duration
	// CacheSize caps the subjects held in memory; 0 disables the cache.
	CacheSize int
}

// Ledger records consent events and derives state and decisions from them.
type Ledger struct {
	store    LedgerStore
	purposes PurposeStore
	subjects SubjectStore
	notices  NoticeSource
	now      func() time.Time
	log      *slog.Logger
	locks    [256]sync.Mutex

	opts  Options
	cache *stateCache // nil without a cache
	// polled is the wall time (UnixNano) at which the last completed ledger
	// poll began: every change acknowledged before it is in the cache.
	polled atomic.Int64
	// warm is set once the cache holds every subject with a record, so that
	// (when Exclusive) a miss means "no record".
	warm atomic.Bool
	// lagging is set when a projection could not be saved after its event:
	// the next start must then sweep the ledger.
	lagging atomic.Bool

	// With Exclusive, projections are written behind: the cache is the
	// current state, and dirty holds what the store has yet to get.
	writeBehind bool
	// flushMu makes one flush at a time: Flush at shutdown waits for a
	// batch the write-behind loop is writing, so the clean mark never comes
	// before the last projection.
	flushMu sync.Mutex
	dirtyMu sync.Mutex
	dirty   map[string]Record
	kick    chan struct{}

	afterWithdraw []func(ctx context.Context, rec Record, e Event) error
}

// NewLedger wires a Ledger.
func NewLedger(ls LedgerStore, ps PurposeStore, ss SubjectStore, ns NoticeSource, now func() time.Time, log *slog.Logger, opts Options) *Ledger {
	l := &Ledger{store: ls, purposes: ps, subjects: ss, notices: ns, now: now, log: log, opts: opts}
	if opts.CacheSize > 0 {
		l.cache = newStateCache(opts.CacheSize)
		if opts.Exclusive {
			l.writeBehind = true
			l.dirty = make(map[string]Record)
			l.kick = make(chan struct{}, 1)
		}
	}
	return l
}

// saveProjection stores rec as the subject's projection: at once, or with
// Exclusive, by the write-behind loop (see WriteBehind).
func (l *Ledger) saveProjection(ctx context.Context, rec Record) {
	if l.writeBehind {
		l.dirtyMu.Lock()
		k := cacheKey(rec.MerchantID, rec.SubjectID)
		if cur, ok := l.dirty[k]; !ok || cur.Seq < rec.Seq {
			l.dirty[k] = rec
		}
		l.dirtyMu.Unlock()
		select {
		case l.kick <- struct{}{}:
		default:
		}
		return
	}
	if err := l.store.SaveRecord(ctx, rec); err != nil {
		l.lagging.Store(true)
		l.log.WarnContext(ctx, "consent projection not advanced; it will roll forward on next read", "seq", rec.Seq, "err", err)
	}
}

// fresh reports whether cached records may answer now.
func (l *Ledger) fresh() bool {
	if l.cache == nil {
		return false
	}
	if l.opts.Exclusive {
		return true
	}
	return time.Since(time.Unix(0, l.polled.Load())) <= l.opts.Bound
}

// lookup returns the subject's record from the cache when it may answer,
// else from the store (rolling forward), caching what it read.
func (l *Ledger) lookup(ctx context.Context, merchantID, subjectID string) (Record, error) {
	k := cacheKey(merchantID, subjectID)
	if l.fresh() {
		if rec, ok := l.cache.get(k); ok {
			return rec, nil
		}
		if l.opts.Exclusive && l.warm.Load() && l.cache.complete() {
			return Record{MerchantID: merchantID, SubjectID: subjectID}, nil
		}
	}
	start := time.Now()
	rec, err := l.current(ctx, merchantID, subjectID)
	if err == nil && l.cache != nil {
		l.cache.put(k, rec, start)
	}
	return rec, err
}

// refreshWith puts a record just read from the store into the cache, over
// whatever it held.
func (l *Ledger) refreshWith(rec Record) {
	if l.cache != nil {
		k := cacheKey(rec.MerchantID, rec.SubjectID)
		l.cache.invalidate(k, rec.Seq, time.Now())
		l.cache.put(k, rec, time.Now())
	}
}

// remember writes rec through to the cache.
func (l *Ledger) remember(rec Record) {
	if l.cache != nil {
		l.cache.put(cacheKey(rec.MerchantID, rec.SubjectID), rec, time.Now())
	}
}

// refresh reloads a subject into the cache from the store after a write
// whose outcome is unknown. If even that fails, the cache stops treating a
// miss as "no record" and this subject is read from the store next time.
func (l *Ledger) refresh(ctx context.Context, merchantID, subjectID string) {
	if l.cache == nil {
		return
	}
	k := cacheKey(merchantID, subjectID)
	rec, err := l.current(ctx, merchantID, subjectID)
	if err != nil {
		l.cache.invalidate(k, 1<<62, time.Now())
		l.cache.distrust()
		l.log.WarnContext(ctx, "consent state not reloaded after an uncertain write", "err", err)
		return
	}
	l.cache.invalidate(k, 1<<62, time.Now())
	l.cache.put(k, rec, time.Now())
}

// ProjectionsComplete reports whether every event this Ledger appended also
// reached its subject's projection in the store.
func (l *Ledger) ProjectionsComplete() bool {
	if l.lagging.Load() {
		return false
	}
	if !l.writeBehind {
		return true
	}
	l.dirtyMu.Lock()
	defer l.dirtyMu.Unlock()
	return len(l.dirty) == 0
}

// maxAppendAttempts bounds retries when another instance appends to the
// same subject's chain at the same moment.
const maxAppendAttempts = 50

// inFlightWindow is how long a claimed Idempotency-Key without an event is
// treated as a request still in progress.
const inFlightWindow = 30 * time.Second

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
		return Purpose{}, apperr.New(apperr.Invalid, "unknown purpose %q", key).WithDetail("unknown_purpose")
	}
	return p, err
}

// Record appends c to the subject's chain (creating the subject if the
// merchant never named it before) and returns the event and the new decision.
func (l *Ledger) Record(ctx context.Context, c Change) (Result, error) {
	if err := checkSubjectID(c.SubjectID); err != nil {
		return Result{}, err
	}
	if !c.State.Valid() {
		return Result{}, apperr.New(apperr.Invalid, "state must be granted, denied or withdrawn").WithDetail("invalid_state")
	}
	if c.IdempotencyKey != "" && !validIdempotencyKey(c.IdempotencyKey) {
		return Result{}, apperr.New(apperr.Invalid, "Idempotency-Key must be 1-128 printable ASCII characters").WithDetail("invalid_idempotency_key")
	}
	p, err := l.purpose(ctx, c.MerchantID, c.Purpose)
	if err != nil {
		return Result{}, err
	}
	if p.Sensitive && c.State == Granted && !c.ExplicitOptIn {
		return Result{}, apperr.New(apperr.Invalid, "purpose %q is sensitive: it can only be granted with explicit opt-in by the subject (\"explicit_opt_in\": true)", p.Key).WithDetail("explicit_opt_in_required")
	}
	if err := l.ensureSubject(ctx, c.MerchantID, c.SubjectID); err != nil {
		return Result{}, err
	}
	if c.IdempotencyKey != "" {
		res, done, err := l.claim(ctx, c, p)
		if err != nil || done {
			return res, err
		}
	}
	terms, err := l.notices.Terms(ctx, c.MerchantID)
	if err != nil {
		return Result{}, err
	}
	version := terms.InForce(l.now())
	if c.NoticeVersion != 0 {
		if !terms.Has(c.NoticeVersion) || c.NoticeVersion < version {
			return Result{}, apperr.New(apperr.Invalid, "notice version %d is not a published version at or after the one in force", c.NoticeVersion).WithDetail("invalid_notice_version")
		}
		version = c.NoticeVersion
	}

	e, next, err := l.appendLocked(ctx, c.MerchantID, c.SubjectID, func(rec Record) Event {
		return Event{Purpose: c.Purpose, State: c.State, NoticeVersion: version, Channel: c.Channel,
			Actor: c.Actor, IdempotencyKey: c.IdempotencyKey}
	})
	if err != nil {
		return Result{}, err
	}
	if c.IdempotencyKey != "" {
		if err := l.store.CompleteIdempotencyKey(ctx, c.MerchantID, c.IdempotencyKey, e.Seq); err != nil {
			l.log.WarnContext(ctx, "idempotency key not completed; a retry finds the event in the chain", "err", err)
		}
	}
	if c.State != Granted {
		for _, fn := range l.afterWithdraw {
			// Data kept for this purpose goes now, before the caller answers.
			// A failure is logged; the value stays unreadable (every read
			// checks the grant) until the next sweep erases it.
			if err := fn(context.WithoutCancel(ctx), next, e); err != nil {
				l.log.ErrorContext(ctx, "after-withdrawal step failed; the sweep will finish it", "purpose", e.Purpose, "err", err)
			}
		}
	}
	return Result{Event: e, Decision: Decide(next, p, terms, l.now())}, nil
}

// AfterWithdraw registers fn to run after every recorded decision that is
// not a grant (withdrawal, denial), outside the subject's lock, with the new
// record. Wire it at start, before serving.
func (l *Ledger) AfterWithdraw(fn func(ctx context.Context, rec Record, e Event) error) {
	l.afterWithdraw = append(l.afterWithdraw, fn)
}

// FieldChange is a volunteered value stored or erased, recorded in the
// subject's chain by field key and purpose, never by value.
type FieldChange struct {
	MerchantID string
	SubjectID  string
	Field      string
	// State is Provided or Erased.
	State State
	// Purpose is the purpose the value was given for, or whose withdrawal
	// erased it.
	Purpose string
	Channel Channel
	Actor   string
}

// RecordField appends a field event to the subject's chain.
func (l *Ledger) RecordField(ctx context.Context, c FieldChange) (Event, error) {
	if err := checkSubjectID(c.SubjectID); err != nil {
		return Event{}, err
	}
	if c.State != Provided && c.State != Erased {
		return Event{}, apperr.New(apperr.Invalid, "a field event is provided or erased")
	}
	if c.Field == "" {
		return Event{}, apperr.New(apperr.Invalid, "a field event names its field")
	}
	e, _, err := l.appendLocked(ctx, c.MerchantID, c.SubjectID, func(rec Record) Event {
		return Event{Purpose: c.Purpose, State: c.State, NoticeVersion: rec.Purposes[c.Purpose].NoticeVersion, Channel: c.Channel, Actor: c.Actor, Field: c.Field}
	})
	return e, err
}

// appendLocked appends the event build returns for the subject's current
// record, under the subject's lock, retrying when another writer took the
// sequence number, and returns it with the new record.
func (l *Ledger) appendLocked(ctx context.Context, merchantID, subjectID string, build func(Record) Event) (Event, Record, error) {
	unlock := l.lock(merchantID, subjectID)
	defer unlock()

	var (
		rec Record
		e   Event
		err error
	)
	for attempt := 0; ; attempt++ {
		if attempt == maxAppendAttempts {
			return Event{}, Record{}, apperr.New(apperr.Conflict, "too many concurrent writes for this subject; retry").WithDetail("write_conflict")
		}
		// The cached head is a guess the unique key checks: if another
		// instance got there first, the insert conflicts and we reload.
		if attempt == 0 {
			rec, err = l.lookup(ctx, merchantID, subjectID)
		} else {
			rec, err = l.current(ctx, merchantID, subjectID)
		}
		if err != nil {
			return Event{}, Record{}, err
		}
		e = build(rec)
		e.MerchantID, e.SubjectID, e.Seq = merchantID, subjectID, rec.Seq+1
		e.RecordedAt, e.PrevHash = l.now().UTC().Truncate(time.Millisecond), rec.HeadHash
		e.Hash = e.ComputeHash()
		err = l.store.AppendEvent(ctx, e)
		if apperr.Is(err, apperr.Conflict) {
			continue // another instance took this seq; roll forward and retry
		}
		if err != nil {
			// The event may have landed all the same: the cache must not
			// keep answering from the head it had.
			l.refresh(context.WithoutCancel(ctx), merchantID, subjectID)
			return Event{}, Record{}, err
		}
		break
	}
	// The event is durable from here on: a failure below leaves a projection
	// behind the ledger, which the next read rolls forward.
	next := rec.Apply(e)
	l.remember(next)
	l.saveProjection(ctx, next)
	return e, next, nil
}

func (l *Ledger) ensureSubject(ctx context.Context, merchantID, subjectID string) error {
	if l.cache != nil {
		if rec, ok := l.cache.get(cacheKey(merchantID, subjectID)); ok && rec.Seq > 0 {
			return nil // events exist, so the subject was created before them
		}
	}
	_, err := l.subjects.Subject(ctx, merchantID, subjectID)
	if !apperr.Is(err, apperr.NotFound) {
		return err
	}
	now := l.now().UTC().Truncate(time.Millisecond)
	_, err = l.subjects.CreateSubject(ctx, Subject{MerchantID: merchantID, ID: subjectID, CreatedAt: now, UpdatedAt: now})
	return err
}

func validIdempotencyKey(k string) bool {
	if len(k) == 0 || len(k) > 128 {
		return false
	}
	for i := 0; i < len(k); i++ {
		if k[i] < 0x21 || k[i] > 0x7e {
			return false
		}
	}
	return true
}

func fingerprint(c Change) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%s\x00%s\x00%s\x00%s\x00%t", c.SubjectID, c.Purpose, c.State, c.Channel, c.ExplicitOptIn))
	return hex.EncodeToString(sum[:])
}

// claim takes the change's Idempotency-Key. done is true when the key was
// used before and res (or err) is the answer to give.
func (l *Ledger) claim(ctx context.Context, c Change, p Purpose) (res Result, done bool, err error) {
	now := l.now().UTC().Truncate(time.Millisecond)
	claim := IdempotencyClaim{MerchantID: c.MerchantID, Key: c.IdempotencyKey, Fingerprint: fingerprint(c), SubjectID: c.SubjectID, CreatedAt: now}
	terms, err := l.notices.Terms(ctx, c.MerchantID)
	if err != nil {
		return Result{}, false, err
	}
	prev, created, err := l.store.ClaimIdempotencyKey(ctx, claim)
	if err != nil || created {
		return Result{}, false, err
	}
	if prev.Fingerprint != claim.Fingerprint {
		return Result{}, true, apperr.New(apperr.Unprocessable, "this Idempotency-Key was already used with a different request").WithDetail("idempotency_key_reused")
	}
	seq := prev.Seq
	if seq == 0 {
		// The first request may have appended its event without completing
		// the claim: look for it near the head of the chain.
		seq, err = l.findByIdempotencyKey(ctx, c.MerchantID, c.SubjectID, c.IdempotencyKey)
		if err != nil {
			return Result{}, true, err
		}
		if seq == 0 {
			if now.Sub(prev.CreatedAt) < inFlightWindow {
				return Result{}, true, apperr.New(apperr.Conflict, "a request with this Idempotency-Key is still in progress; retry shortly").WithDetail("request_in_progress")
			}
			return Result{}, false, nil // the first attempt died before writing: take over
		}
		if err := l.store.CompleteIdempotencyKey(ctx, c.MerchantID, c.IdempotencyKey, seq); err != nil {
			return Result{}, true, err
		}
	}
	e, err := l.store.Event(ctx, c.MerchantID, c.SubjectID, seq)
	if err != nil {
		return Result{}, true, err
	}
	rec, err := l.current(ctx, c.MerchantID, c.SubjectID)
	if err != nil {
		return Result{}, true, err
	}
	l.refreshWith(rec)
	return Result{Event: e, Decision: Decide(rec, p, terms, l.now()), Replayed: true}, true, nil
}

// findByIdempotencyKey scans back from the head of the chain (at most 100
// events) for the event written with key; 0 if none.
func (l *Ledger) findByIdempotencyKey(ctx context.Context, merchantID, subjectID, key string) (int64, error) {
	rec, err := l.current(ctx, merchantID, subjectID)
	if err != nil {
		return 0, err
	}
	for seq := rec.Seq; seq > 0 && seq > rec.Seq-100; seq-- {
		e, err := l.store.Event(ctx, merchantID, subjectID, seq)
		if err != nil {
			return 0, err
		}
		if e.IdempotencyKey == key {
			return seq, nil
		}
	}
	return 0, nil
}

// ErrChainBroken is wrapped by errors reporting a ledger that does not verify.
var ErrChainBroken = errors.New("ledger chain broken")

// current returns the subject's record, rolling the stored projection
// forward over any events appended after it (a writer that crashed between
// appending and saving the projection leaves such events behind).
func (l *Ledger) current(ctx context.Context, merchantID, subjectID string) (Record, error) {
	rec, err := l.store.Record(ctx, merchantID, subjectID)
	switch {
	case apperr.Is(err, apperr.NotFound):
		rec = Record{MerchantID: merchantID, SubjectID: subjectID}
	case err != nil:
		return Record{}, err
	}
	rolled := false
	for {
		e, err := l.store.Event(ctx, merchantID, subjectID, rec.Seq+1)
		if apperr.Is(err, apperr.NotFound) {
			break
		}
		if err != nil {
			return Record{}, err
		}
		if e.PrevHash != rec.HeadHash || e.Hash != e.ComputeHash() {
			return Record{}, apperr.Wrap(fmt.Errorf("%w at seq %d", ErrChainBroken, e.Seq), "consent state unavailable")
		}
		rec = rec.Apply(e)
		rolled = true
	}
	if rolled {
		l.saveProjection(ctx, rec)
	}
	return rec, nil
}

// State returns the subject's current record; NotFound if the merchant has
// no such subject.
func (l *Ledger) State(ctx context.Context, merchantID, subjectID string) (Record, error) {
	if err := checkSubjectID(subjectID); err != nil {
		return Record{}, err
	}
	if _, err := l.subjects.Subject(ctx, merchantID, subjectID); err != nil {
		return Record{}, err
	}
	return l.lookup(ctx, merchantID, subjectID)
}

// AwaitingReview lists what the subject is asked to re-accept.
func (l *Ledger) AwaitingReview(ctx context.Context, merchantID string, rec Record) ([]Awaiting, error) {
	terms, err := l.notices.Terms(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	return terms.AwaitingReview(rec), nil
}

// DecideAll decides each purpose for a subject's record, under the
// merchant's terms now.
func (l *Ledger) DecideAll(ctx context.Context, merchantID string, rec Record, ps []Purpose) ([]Decision, error) {
	terms, err := l.notices.Terms(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	now := l.now()
	out := make([]Decision, len(ps))
	for i, p := range ps {
		out[i] = Decide(rec, p, terms, now)
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
	rec, err := l.lookup(ctx, merchantID, subjectID)
	if err != nil {
		return Decision{}, err
	}
	return Decide(rec, p, terms, l.now()), nil
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
			return nil, apperr.New(apperr.Invalid, "subjects[%d] is not a valid subject id", i).WithDetail("invalid_subject")
		}
	}
	p, err := l.purpose(ctx, merchantID, purpose)
	if err != nil {
		return nil, err
	}
	terms, err := l.notices.Terms(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	now := l.now()
	out := make([]Decision, len(subjectIDs))
	fresh := l.fresh()
	noRecordOnMiss := fresh && l.opts.Exclusive && l.warm.Load() && l.cache.complete()
	var missing []string
	seen := make(map[string]bool)
	for i, id := range subjectIDs {
		if fresh {
			if rec, ok := l.cache.get(cacheKey(merchantID, id)); ok {
				out[i] = Decide(rec, p, terms, now)
				continue
			}
			if noRecordOnMiss {
				out[i] = Decide(Record{MerchantID: merchantID, SubjectID: id}, p, terms, now)
				continue
			}
		}
		if !seen[id] {
			seen[id] = true
			missing = append(missing, id)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	recs, err := l.loadMany(ctx, merchantID, missing)
	if err != nil {
		return nil, err
	}
	for i, id := range subjectIDs {
		if rec, ok := recs[id]; ok {
			out[i] = Decide(rec, p, terms, now)
		}
	}
	return out, nil
}

// loadMany reads many subjects' records from the store in bulk, rolls
// forward the few that have events past their projection, and caches them.
func (l *Ledger) loadMany(ctx context.Context, merchantID string, ids []string) (map[string]Record, error) {
	start := time.Now()
	stored, err := l.store.Records(ctx, merchantID, ids)
	if err != nil {
		return nil, err
	}
	heads := make(map[string]int64, len(ids))
	for _, id := range ids {
		heads[id] = stored[id].Seq
	}
	behind, err := l.store.Pending(ctx, merchantID, heads)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Record, len(ids))
	for _, id := range ids {
		rec, ok := stored[id]
		if !ok {
			rec = Record{MerchantID: merchantID, SubjectID: id}
		}
		out[id] = rec
	}
	for _, id := range behind {
		rec, err := l.current(ctx, merchantID, id)
		if err != nil {
			return nil, err
		}
		out[id] = rec
	}
	if l.cache != nil {
		for id, rec := range out {
			l.cache.put(cacheKey(merchantID, id), rec, start)
		}
	}
	return out, nil
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
