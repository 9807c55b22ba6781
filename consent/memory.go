package consent

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// memory is what a Ledger keeps of subjects' states in this process: a
// cache written through by every write here and invalidated by what the
// ledger poll finds from other instances (Follow), and, with Exclusive, the
// projections still to be written behind (WriteBehind).
type memory struct {
	opts  Options
	cache *stateCache // nil without a cache
	// polled is the wall time (UnixNano) at which the last completed ledger
	// poll began: every change acknowledged before it is in the cache.
	polled atomic.Int64
	// warm is set once the cache holds every subject with a state, so that
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
	dirty   map[string]SubjectState
	// writing is the batch being written, readable while it is.
	writing map[string]SubjectState
	kick    chan struct{}
}

func newMemory(opts Options) *memory {
	m := &memory{opts: opts}
	if opts.CacheSize > 0 {
		m.cache = newStateCache(opts.CacheSize)
		if opts.Exclusive {
			m.writeBehind = true
			m.dirty = make(map[string]SubjectState)
			m.kick = make(chan struct{}, 1)
		}
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

// unsaved returns a state written behind and not yet in the store.
func (m *memory) unsaved(merchantID, subjectID string) (SubjectState, bool) {
	if !m.writeBehind {
		return SubjectState{}, false
	}
	k := cacheKey(merchantID, subjectID)
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	if st, ok := m.dirty[k]; ok {
		return st, true
	}
	st, ok := m.writing[k]
	return st, ok
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

// missMeansNone reports whether a subject absent from a fresh cache has
// no state at all.
func (m *memory) missMeansNone() bool {
	return m.opts.Exclusive && m.warm.Load() && m.cache.complete()
}

// saveProjection stores st as the subject's projection: at once, or with
// Exclusive, by the write-behind loop (see WriteBehind).
func (l *Ledger) saveProjection(ctx context.Context, st SubjectState) {
	m := l.mem
	if m.writeBehind {
		m.dirtyMu.Lock()
		k := cacheKey(st.MerchantID, st.SubjectID)
		if cur, ok := m.dirty[k]; !ok || cur.Seq < st.Seq {
			m.dirty[k] = st
		}
		m.dirtyMu.Unlock()
		select {
		case m.kick <- struct{}{}:
		default:
		}
		return
	}
	if err := l.store.SaveSubjectState(ctx, st); err != nil {
		m.lagging.Store(true)
		l.log.WarnContext(ctx, "consent projection not advanced; it will roll forward on next read", "seq", st.Seq, "err", err)
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
		if m.missMeansNone() {
			return SubjectState{MerchantID: merchantID, SubjectID: subjectID}, nil
		}
	}
	start := time.Now()
	st, err := l.current(ctx, merchantID, subjectID)
	if err == nil && m.cache != nil {
		m.cache.put(k, st, start)
	}
	return st, err
}

// lookupMany returns many subjects' states: from the cache where it may
// answer, the rest read from the store in bulk.
func (l *Ledger) lookupMany(ctx context.Context, merchantID string, subjectIDs []string) (map[string]SubjectState, error) {
	m := l.mem
	out := make(map[string]SubjectState, len(subjectIDs))
	fresh := m.fresh()
	none := fresh && m.missMeansNone()
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
			if none {
				out[id] = SubjectState{MerchantID: merchantID, SubjectID: id}
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
	for _, id := range ids {
		heads[id] = stored[id].Seq
	}
	behind, err := l.store.Pending(ctx, merchantID, heads)
	if err != nil {
		return nil, err
	}
	out := make(map[string]SubjectState, len(ids))
	for _, id := range ids {
		st, ok := stored[id]
		if !ok {
			st = SubjectState{MerchantID: merchantID, SubjectID: id}
		}
		out[id] = st
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

// refresh reloads a subject into the cache from the store after a write
// whose outcome is unknown. If even that fails, the cache stops treating a
// miss as "no record" and this subject is read from the store next time.
func (l *Ledger) refresh(ctx context.Context, merchantID, subjectID string) {
	c := l.mem.cache
	if c == nil {
		return
	}
	k := cacheKey(merchantID, subjectID)
	st, err := l.current(ctx, merchantID, subjectID)
	c.invalidate(k, 1<<62, time.Now())
	if err != nil {
		c.distrust()
		l.log.WarnContext(ctx, "consent state not reloaded after an uncertain write", "err", err)
		return
	}
	c.put(k, st, time.Now())
}

// ProjectionsComplete reports whether every event this Ledger appended also
// reached its subject's projection in the store.
func (l *Ledger) ProjectionsComplete() bool {
	m := l.mem
	if m.lagging.Load() {
		return false
	}
	if !m.writeBehind {
		return true
	}
	m.dirtyMu.Lock()
	defer m.dirtyMu.Unlock()
	return len(m.dirty) == 0
}
