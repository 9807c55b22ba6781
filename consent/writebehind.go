package consent

import (
	"context"
	"time"
)

// WriteBehind writes dirty projections to the store until ctx ends. With
// Exclusive the cache is the current state and a consent write costs one
// insert (the event); the projection follows here, coalesced per subject. A
// crash leaves projections behind the ledger, which the sweep at the next
// start rolls forward (see Warm).
func (l *Ledger) WriteBehind(ctx context.Context) {
	m := l.mem
	if !m.writeBehind {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		}
		// A batch once taken is written to the end, even when ctx ends
		// half-way: Flush waits for it rather than finding it missing.
		if err := l.flushOnce(context.WithoutCancel(ctx)); err != nil && ctx.Err() == nil {
			l.log.WarnContext(ctx, "projections not written; retrying", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			select {
			case m.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Flush writes every projection that was dirty when it was called (at
// shutdown, before the clean mark; before a job scans the stored
// projections, so that it sees every acknowledged write). Writes made while
// it runs are left to the write-behind loop.
func (l *Ledger) Flush(ctx context.Context) error {
	if !l.mem.writeBehind {
		return nil
	}
	// A batch the loop has under way finishes first (flushOnce's lock);
	// then one pass takes everything still dirty.
	return l.flushOnce(ctx)
}

// flushOnce takes the dirty set and writes it; what fails goes back.
func (l *Ledger) flushOnce(ctx context.Context) error {
	m := l.mem
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.dirtyMu.Lock()
	batch := m.dirty
	m.dirty = make(map[string]SubjectState, len(batch))
	m.writing = batch
	m.dirtyMu.Unlock()
	done := func() {
		m.dirtyMu.Lock()
		m.writing = nil
		m.dirtyMu.Unlock()
	}
	for k, st := range batch {
		if err := l.store.SaveSubjectState(ctx, st); err != nil {
			m.dirtyMu.Lock()
			for k2, s2 := range batch {
				if cur, ok := m.dirty[k2]; !ok || cur.Seq < s2.Seq {
					m.dirty[k2] = s2
				}
			}
			m.writing = nil
			m.dirtyMu.Unlock()
			return err
		}
		m.dirtyMu.Lock()
		delete(batch, k)
		m.dirtyMu.Unlock()
	}
	done()
	return nil
}
