package consent

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/fineline/fineline/apperr"
)

// Appended is what a store did with events handed to it at once.
type Appended struct {
	// N is how many of them it inserted: a prefix.
	N int
	// Slot and Journal are where the journal lists them.
	Slot    int
	Journal int64
}

// Touched names a subject whose chain a journal entry advanced.
type Touched struct {
	MerchantID string
	SubjectID  string
	// From and Seq are the first and last sequence numbers the entry lists
	// for the subject.
	From, Seq int64
}

// JournalEntry is one batch of events as a writer's journal lists it, in
// the order that writer committed them.
type JournalEntry struct {
	Slot    int
	Pos     int64
	At      time.Time
	Touched []Touched
}

// FeedEntry is one merchant's events of one journal entry.
type FeedEntry struct {
	MerchantID string
	Slot       int
	Pos        int64
	// Journal is the position of the journal entry it belongs to.
	Journal int64
	At      time.Time
	Events  []Event
}

// Journal is the ledger in the order it was written: per writer (a slot),
// entries at dense positions, each written with its events.
type Journal interface {
	// Slot is the slot this process writes.
	Slot() int
	// AtomicBatches reports whether a batch's entries and events land
	// together or not at all (one transaction).
	AtomicBatches() bool
	// Slots lists every slot that was ever written, this process's among them.
	Slots(ctx context.Context) ([]int, error)
	// JournalCommitted is the last position of this process's slot whose
	// batch is settled (in, or failed).
	JournalCommitted() int64
	// JournalTail returns the slot's last position, 0 if empty.
	JournalTail(ctx context.Context, slot int) (int64, error)
	// JournalEntry returns one entry; NotFound if none (yet).
	JournalEntry(ctx context.Context, slot int, pos int64) (JournalEntry, error)
	// FeedEntry returns one merchant's events of one batch; NotFound if none.
	FeedEntry(ctx context.Context, merchantID string, slot int, pos int64) (FeedEntry, error)
	// FeedTail returns the merchant's last feed position in the slot, 0 if
	// none.
	FeedTail(ctx context.Context, merchantID string, slot int) (int64, error)
	// Checkpoint returns the position up to which the slot's journal is in
	// stored projections; SaveCheckpoint records it.
	Checkpoint(ctx context.Context, slot int) (int64, error)
	SaveCheckpoint(ctx context.Context, slot int, pos int64) error
}

// RecoverReport says what Recover found.
type RecoverReport struct {
	// Checkpoint and Tail bound what was replayed.
	Checkpoint, Tail int64
	// Subjects counts the subjects whose projection was read and rolled forward.
	Subjects int
}

// Recover finishes, at start, what a crash left unfinished in this
// process's slot: it replays the journal from the checkpoint to its tail and
// rolls forward every projection it lists, then records the new checkpoint.
// After a clean stop the checkpoint is the tail and nothing is read but the
// two; the work is proportional to what was in flight, never to the number
// of subjects.
func (l *Ledger) Recover(ctx context.Context) (RecoverReport, error) {
	slot := l.store.Slot()
	var rep RecoverReport
	var err error
	if rep.Checkpoint, err = l.store.Checkpoint(ctx, slot); err != nil {
		return rep, err
	}
	if rep.Tail, err = l.store.JournalTail(ctx, slot); err != nil {
		return rep, err
	}
	seen := map[string]bool{}
	for p := rep.Checkpoint + 1; p <= rep.Tail; p++ {
		e, err := l.store.JournalEntry(ctx, slot, p)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return rep, err
		}
		for _, t := range e.Touched {
			k := cacheKey(t.MerchantID, t.SubjectID)
			if seen[k] {
				continue
			}
			seen[k] = true
			if _, err := l.current(ctx, t.MerchantID, t.SubjectID); err != nil {
				return rep, err
			}
			rep.Subjects++
		}
	}
	if err := l.flushOnce(ctx); err != nil {
		return rep, err
	}
	if rep.Tail > rep.Checkpoint {
		if err := l.store.SaveCheckpoint(ctx, slot, rep.Tail); err != nil {
			return rep, err
		}
	}
	l.savedCheckpoint.Store(rep.Tail)
	return rep, nil
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// Interval between polls of every other writer's journal.
	Interval time.Duration
	// SlotsEvery is how often the list of writers is read again (one point
	// read per writer); a writer that starts is followed within it, so it
	// must be shorter than the cache's Bound.
	SlotsEvery time.Duration
	// Settle is how long an entry listing an event that is not in the store
	// (a writer that died or lost a race half-way) waits before it is passed.
	Settle time.Duration
}

// Follow reads every other writer's journal until ctx ends, dropping from
// the cache each subject another instance changed. Idle, it costs one point
// read per writer per poll, however long the ledger. Each completed round
// lets the cache answer for Bound more; if rounds fail for longer,
// decisions are read from the store (and fail closed if it is down).
func (l *Ledger) Follow(ctx context.Context, o FollowOptions) {
	c := l.mem.cache
	if c == nil {
		return
	}
	if o.SlotsEvery == 0 {
		o.SlotsEvery = time.Second
	}
	if o.Settle == 0 {
		o.Settle = 30 * time.Second
	}
	next := map[int]int64{} // the next position to read of each slot
	followed := false       // a round completed: the slots known then are followed from their tails
	var slots []int
	var slotsAt time.Time
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		began := time.Now()
		err := func() error {
			if time.Since(slotsAt) >= o.SlotsEvery {
				s, err := l.store.Slots(ctx)
				if err != nil {
					return err
				}
				slots, slotsAt = s, time.Now()
			}
			for _, slot := range slots {
				if slot == l.store.Slot() {
					continue
				}
				if _, ok := next[slot]; !ok && !followed {
					// Changes before this instance started are in the store,
					// and its cache was empty then.
					tail, err := l.store.JournalTail(ctx, slot)
					if err != nil {
						return err
					}
					next[slot] = tail + 1
				} else if !ok {
					// A writer that claimed its slot since: everything it
					// wrote may be newer than this cache.
					next[slot] = 1
				}
				for {
					e, err := l.store.JournalEntry(ctx, slot, next[slot])
					if apperr.Is(err, apperr.NotFound) {
						break
					}
					if err != nil {
						return err
					}
					settled, err := l.settled(ctx, e, o.Settle)
					if err != nil {
						return err
					}
					if !settled {
						break // its events are still on their way: read it again next round
					}
					for _, t := range e.Touched {
						c.invalidate(cacheKey(t.MerchantID, t.SubjectID), t.Seq, began)
					}
					next[slot]++
				}
			}
			return nil
		}()
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.WarnContext(ctx, "following other instances' journals failed; the cache stops answering after its bound", "err", err)
		} else {
			followed = true
			l.mem.polled.Store(began.UnixNano())
			c.prune(began.Add(-time.Minute))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// settled reports whether a journal entry's events are where they will
// stay: each subject's last listed event is in the store, or the writer
// has moved on (the next entry exists: a writer finishes one batch before
// the next), or the entry is older than settle (its writer died).
func (l *Ledger) settled(ctx context.Context, e JournalEntry, settle time.Duration) (bool, error) {
	all := true
	for _, t := range e.Touched {
		_, err := l.store.Event(ctx, t.MerchantID, t.SubjectID, t.Seq)
		if apperr.Is(err, apperr.NotFound) {
			all = false
			break
		}
		if err != nil {
			return false, err
		}
	}
	if all || time.Since(e.At) > settle {
		return true, nil
	}
	_, err := l.store.JournalEntry(ctx, e.Slot, e.Pos+1)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// RecordScanner reads every stored projection, for jobs that go through
// every subject.
type RecordScanner interface {
	// EachSubjectState calls fn for every stored projection.
	EachSubjectState(ctx context.Context, fn func(SubjectState) error) error
}

// EachState calls fn with the current state of every subject that has a
// stored projection or an acknowledged event, for jobs that go through every
// subject (building an announcement, exports). Every write acknowledged
// before the call is seen: projections written behind here are flushed
// first; the subjects other instances wrote since their last checkpoint (a
// projection they may not have stored yet) are read from their events; and
// a state cached here that is newer than the stored one is given instead.
func (l *Ledger) EachState(ctx context.Context, scan RecordScanner, fn func(SubjectState) error) error {
	if err := l.Flush(ctx); err != nil {
		return err
	}
	behind, err := l.writtenElsewhere(ctx)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(behind))
	err = scan.EachSubjectState(ctx, func(st SubjectState) error {
		k := cacheKey(st.MerchantID, st.SubjectID)
		if _, ok := behind[k]; ok {
			if seen[k] {
				return nil // stored while the scan ran, and given already
			}
			seen[k] = true
			cur, err := l.current(ctx, st.MerchantID, st.SubjectID)
			if err != nil {
				return err
			}
			st = cur
		} else if cur, ok := l.mem.cached(st.MerchantID, st.SubjectID); ok && cur.Seq > st.Seq {
			st = cur
		}
		return fn(st)
	})
	if err != nil {
		return err
	}
	rest := make([]Touched, 0, len(behind)-len(seen))
	for k, t := range behind {
		if !seen[k] {
			rest = append(rest, t)
		}
	}
	slices.SortFunc(rest, func(a, b Touched) int {
		return cmp.Or(cmp.Compare(a.MerchantID, b.MerchantID), cmp.Compare(a.SubjectID, b.SubjectID))
	})
	for _, t := range rest {
		st, err := l.current(ctx, t.MerchantID, t.SubjectID)
		if err != nil {
			return err
		}
		if st.Seq == 0 {
			continue // the batch that listed them failed
		}
		if err := fn(st); err != nil {
			return err
		}
	}
	return nil
}

// writtenElsewhere lists the subjects that other instances' journals name
// past their checkpoints: their projections may not be stored yet. The work
// is what those instances had in flight (about a second of writes each),
// never the number of subjects.
func (l *Ledger) writtenElsewhere(ctx context.Context) (map[string]Touched, error) {
	out := map[string]Touched{}
	if l.store.StatesInStep() {
		return out, nil // projections are written with their events
	}
	slots, err := l.store.Slots(ctx)
	if err != nil {
		return nil, err
	}
	for _, slot := range slots {
		if slot == l.store.Slot() {
			continue
		}
		from, err := l.store.Checkpoint(ctx, slot)
		if err != nil {
			return nil, err
		}
		tail, err := l.store.JournalTail(ctx, slot)
		if err != nil {
			return nil, err
		}
		for p := from + 1; p <= tail; p++ {
			e, err := l.store.JournalEntry(ctx, slot, p)
			if apperr.Is(err, apperr.NotFound) {
				continue // a batch that failed
			}
			if err != nil {
				return nil, err
			}
			for _, t := range e.Touched {
				out[cacheKey(t.MerchantID, t.SubjectID)] = t
			}
		}
	}
	return out, nil
}
