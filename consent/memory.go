package consent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// memory is what a Ledger keeps of subjects' states in this process: a
// cache within a memory budget, written through by every write here and
// invalidated by what the journal says other instances wrote (Follow); the
// projections whose write failed, retried by the write-behind loop; and how
// far the journal is reflected in stored projections, the checkpoint a
// start after a crash replays from (Recover).
type memory struct {
	opts  Options
	cache *stateCache // nil without a cache
	// polled is the wall time (UnixNano) at which the last completed
	// follow of every other instance's journal began: every change
	// acknowledged before it is in the cache.
	polled atomic.Int64

	// flushMu makes one flush at a time: Flush at shutdown waits for a
	// batch the write-behind loop is writing.
	flushMu sync.Mutex
	dirtyMu sync.Mutex
	dirty   map[string]dirtyState
	// writing is the batch being written, readable while it is.
	writing map[string]dirtyState
	kick    chan struct{}

	// flight holds, for every append under way, the journal position the
	// store had committed when it began: its own position is later.
	flightMu   sync.Mutex
	flight     map[uint64]int64
	nextTicket uint64
}

// dirtyState is a projection still to be written, with the journal
// position of the oldest event it holds that the store's projection lacks.
type dirtyState struct {
	st    SubjectState
	first int64
}

func newMemory(opts Options) *memory {
	m := &memory{opts: opts, dirty: make(map[string]dirtyState), kick: make(chan struct{}, 1), flight: make(map[uint64]int64)}
	if opts.CacheBytes > 0 {
		m.cache = newStateCache(opts.CacheBytes)
	}
	return m
}

// cached returns the cached state of a subject, if any.
func (m *memory) cached(merchantID, subjectID string) (SubjectState, bool) {
	if m.cache == nil {
		return SubjectState{}, false
	}
	return m.cache.get(cacheKey(merchantID, subjectID))
}

// unsaved returns a state not yet in the store.
func (m *memory) unsaved(merchantID, subjectID string) (SubjectState, bool) {
	k := cacheKey(merchantID, subjectID)
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	if d, ok := m.dirty[k]; ok {
		return d.st, true
	}
	d, ok := m.writing[k]
	return d.st, ok
}

// fresh reports whether cached states may answer now.
func (m *memory) fresh() bool {
	if m.cache == nil {
		return false
	}
	if m.opts.Exclusive {
		return true
	}
	return time.Since(time.Unix(0, m.polled.Load())) <= m.opts.Bound
}

// followLag is how long ago the last round of following the other
// instances' journals completed; 0 for the only writer of its store.
func (m *memory) followLag() time.Duration {
	if m.opts.Exclusive {
		return 0
	}
	return time.Since(time.Unix(0, m.polled.Load()))
}

// beginAppend notes an append under way; end it with endAppend.
func (m *memory) beginAppend(committed int64) uint64 {
	m.flightMu.Lock()
	defer m.flightMu.Unlock()
	m.nextTicket++
	m.flight[m.nextTicket] = committed
	return m.nextTicket
}

func (m *memory) endAppend(t uint64) {
	m.flightMu.Lock()
	delete(m.flight, t)
	m.flightMu.Unlock()
}

// checkpoint is the journal position up to which every event is in a
// stored projection, given that the store has committed up to committed.
func (m *memory) checkpoint(committed int64) int64 {
	c := committed
	m.flightMu.Lock()
	for _, floor := range m.flight {
		c = min(c, floor)
	}
	m.flightMu.Unlock()
	m.dirtyMu.Lock()
	for _, d := range m.dirty {
		if d.first > 0 {
			c = min(c, d.first-1)
		}
	}
	for _, d := range m.writing {
		if d.first > 0 {
			c = min(c, d.first-1)
		}
	}
	m.dirtyMu.Unlock()
	return c
}

// markDirty keeps st to be written, from the journal position of its
// newest event (0: none known).
func (m *memory) markDirty(st SubjectState, pos int64) {
	m.dirtyMu.Lock()
	k := cacheKey(st.MerchantID, st.SubjectID)
	cur, ok := m.dirty[k]
	switch {
	case !ok:
		m.dirty[k] = dirtyState{st: st, first: pos}
	case cur.st.Seq < st.Seq:
		first := cur.first
		if first == 0 || (pos > 0 && pos < first) {
			first = pos
		}
		m.dirty[k] = dirtyState{st: st, first: first}
	}
	m.dirtyMu.Unlock()
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// saveProjection stores st as the subject's projection, at once; if that
// fails, the write-behind loop retries it (and the next read rolls it
// forward meanwhile). pos is the journal position of st's newest event, 0
// if unknown.
func (l *Ledger) saveProjection(ctx context.Context, st SubjectState, pos int64) {
	if err := l.store.SaveSubjectState(ctx, st); err != nil {
		l.mem.markDirty(st, pos)
		l.log.WarnContext(ctx, "consent projection not advanced; retrying, and the next read rolls it forward", "seq", st.Seq, "err", err)
	}
}

// lookup returns the subject's state from the cache when it may answer,
// else from the store (rolling forward), caching what it read.
func (l *Ledger) lookup(ctx context.Context, merchantID, subjectID string) (SubjectState, error) {
	m := l.mem
	k := cacheKey(merchantID, subjectID)
	if m.fresh() {
		if st, ok := m.cache.get(k); ok {
			return st, nil
		}
	}
	start := time.Now()
	st, err := l.current(ctx, merchantID, subjectID)
	if err == nil && m.cache != nil {
		m.cache.put(k, st, start)
	}
	return st, err
}

// lookupPurpose returns one purpose of the subject's state: from the cache
// without unpacking the rest when it may answer (the check path).
func (l *Ledger) lookupPurpose(ctx context.Context, merchantID, subjectID, purpose string) (stateLookup, error) {
	m := l.mem
	if m.fresh() {
		if p, ok := m.cache.getPacked(cacheKey(merchantID, subjectID)); ok {
			ps, decided := p.purpose(purpose)
			return stateLookup{ps: ps, decided: decided, erased: p.erasedSeq != 0, recorded: p.seq > 0}, nil
		}
	}
	st, err := l.lookup(ctx, merchantID, subjectID)
	if err != nil {
		return stateLookup{}, err
	}
	ps, decided := st.Purposes[purpose]
	return stateLookup{ps: ps, decided: decided, erased: st.Erased(), recorded: st.Seq > 0}, nil
}

// stateLookup is what a check reads of one subject: their state on one
// purpose (decided false: none), whether they were erased, and whether
// they have any events at all.
type stateLookup struct {
	ps                        PurposeState
	decided, erased, recorded bool
}

// lookupMany returns many subjects' states: from the cache where it may
// answer, the rest read from the store in bulk.
func (l *Ledger) lookupMany(ctx context.Context, merchantID string, subjectIDs []string) (map[string]SubjectState, error) {
	m := l.mem
	out := make(map[string]SubjectState, len(subjectIDs))
	fresh := m.fresh()
	var missing []string
	for _, id := range subjectIDs {
		if _, done := out[id]; done {
			continue
		}
		if fresh {
			if st, ok := m.cache.get(cacheKey(merchantID, id)); ok {
				out[id] = st
				continue
			}
		}
		out[id] = SubjectState{}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return out, nil
	}
	read, err := l.loadMany(ctx, merchantID, missing)
	if err != nil {
		return nil, err
	}
	for id, st := range read {
		out[id] = st
	}
	return out, nil
}

// loadMany reads many subjects' states from the store in bulk, rolls
// forward the few that have events past their projection, and caches them.
func (l *Ledger) loadMany(ctx context.Context, merchantID string, ids []string) (map[string]SubjectState, error) {
	start := time.Now()
	stored, err := l.store.SubjectStates(ctx, merchantID, ids)
	if err != nil {
		return nil, err
	}
	heads := make(map[string]int64, len(ids))
	out := make(map[string]SubjectState, len(ids))
	for _, id := range ids {
		st, ok := stored[id]
		if !ok {
			st = SubjectState{MerchantID: merchantID, SubjectID: id}
		}
		if pending, ok := l.mem.unsaved(merchantID, id); ok && pending.Seq > st.Seq {
			st = pending
		}
		out[id] = st
		heads[id] = st.Seq
	}
	behind, err := l.store.Pending(ctx, merchantID, heads)
	if err != nil {
		return nil, err
	}
	for _, id := range behind {
		st, err := l.current(ctx, merchantID, id)
		if err != nil {
			return nil, err
		}
		out[id] = st
	}
	if l.mem.cache != nil {
		for id, st := range out {
			l.mem.cache.put(cacheKey(merchantID, id), st, start)
		}
	}
	return out, nil
}

// refreshWith puts a state just read from the store into the cache, over
// whatever it held.
func (l *Ledger) refreshWith(st SubjectState) {
	if c := l.mem.cache; c != nil {
		k := cacheKey(st.MerchantID, st.SubjectID)
		c.invalidate(k, st.Seq, time.Now())
		c.put(k, st, time.Now())
	}
}

// remember writes st through to the cache.
func (l *Ledger) remember(st SubjectState) {
	if l.mem.cache != nil {
		l.mem.cache.put(cacheKey(st.MerchantID, st.SubjectID), st, time.Now())
	}
}

// forget drops a subject from the cache after a write whose outcome is
// unknown: the next read goes to the store.
func (l *Ledger) forget(merchantID, subjectID string) {
	if c := l.mem.cache; c != nil {
		c.invalidate(cacheKey(merchantID, subjectID), 1<<62, time.Now())
	}
}

// FollowLag is how long ago this instance last caught up with every other
// instance's journal (the change feed's lag here); 0 on the embedded store,
// where every change passes through this instance.
func (l *Ledger) FollowLag() time.Duration { return l.mem.followLag() }

// ProjectionsComplete reports whether every event this Ledger appended also
// reached its subject's projection in the store.
func (l *Ledger) ProjectionsComplete() bool {
	m := l.mem
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	return len(m.dirty) == 0 && len(m.writing) == 0
}

// CacheStats returns the state cache's figures (zero without a cache).
func (l *Ledger) CacheStats() CacheStats {
	if l.mem.cache == nil {
		return CacheStats{}
	}
	return l.mem.cache.stats()
}
