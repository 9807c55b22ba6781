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
	if !l.writeBehind {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
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
			case l.kick <- struct{}{}:
			default:
			}
		}
	}
}

// Flush writes every dirty projection now; at shutdown, before the clean
// mark.
func (l *Ledger) Flush(ctx context.Context) error {
	if !l.writeBehind {
		return nil
	}
	for {
		l.dirtyMu.Lock()
		n := len(l.dirty)
		l.dirtyMu.Unlock()
		if n == 0 {
			return nil
		}
		if err := l.flushOnce(ctx); err != nil {
			return err
		}
	}
}

// flushOnce takes the dirty set and writes it; what fails goes back.
func (l *Ledger) flushOnce(ctx context.Context) error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	l.dirtyMu.Lock()
	batch := l.dirty
	l.dirty = make(map[string]Record, len(batch))
	l.dirtyMu.Unlock()
	for k, rec := range batch {
		if err := l.store.SaveRecord(ctx, rec); err != nil {
			l.dirtyMu.Lock()
			for k2, r2 := range batch {
				if cur, ok := l.dirty[k2]; !ok || cur.Seq < r2.Seq {
					l.dirty[k2] = r2
				}
			}
			l.dirtyMu.Unlock()
			return err
		}
		delete(batch, k)
	}
	return nil
}
