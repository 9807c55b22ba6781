package consent

import (
	"context"
	"time"
)

// WriteBehind writes projections whose write failed until ctx ends, and
// records the checkpoint every second. A crash leaves projections behind
// the journal, which the next start replays from the checkpoint (see
// Recover); reads roll them forward meanwhile.
func (l *Ledger) WriteBehind(ctx context.Context) {
	m := l.mem
	var saved time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.kick:
		case <-time.After(time.Second):
		}
		// A batch once taken is written to the end, even when ctx ends
		// half-way: Flush waits for it rather than finding it missing.
		err := l.flushOnce(context.WithoutCancel(ctx))
		if err != nil && ctx.Err() == nil {
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
			continue
		}
		if time.Since(saved) >= time.Second {
			if err := l.saveCheckpoint(context.WithoutCancel(ctx)); err != nil && ctx.Err() == nil {
				l.log.WarnContext(ctx, "ledger checkpoint not saved; a start after a crash replays a little more", "err", err)
			}
			saved = time.Now()
		}
	}
}

// saveCheckpoint records how far the journal is in stored projections.
func (l *Ledger) saveCheckpoint(ctx context.Context) error {
	c := l.mem.checkpoint(l.store.JournalCommitted())
	if c <= l.savedCheckpoint.Load() {
		return nil
	}
	if err := l.store.SaveCheckpoint(ctx, l.store.Slot(), c); err != nil {
		return err
	}
	l.savedCheckpoint.Store(c)
	return nil
}

// Flush writes every projection that was dirty when it was called and
// records the checkpoint: at shutdown (after which the next start has
// nothing to replay), and before a job scans the stored projections, so that
// it sees every acknowledged write. Writes made while it runs are left to
// the write-behind loop.
func (l *Ledger) Flush(ctx context.Context) error {
	// A batch the loop has under way finishes first (flushOnce's lock);
	// then one pass takes everything still dirty.
	if err := l.flushOnce(ctx); err != nil {
		return err
	}
	return l.saveCheckpoint(ctx)
}

// flushOnce takes the dirty set and writes it; what fails goes back.
func (l *Ledger) flushOnce(ctx context.Context) error {
	m := l.mem
	m.flushMu.Lock()
	defer m.flushMu.Unlock()
	m.dirtyMu.Lock()
	batch := m.dirty
	if len(batch) == 0 {
		m.dirtyMu.Unlock()
		return nil
	}
	m.dirty = make(map[string]dirtyState, len(batch))
	m.writing = batch
	m.dirtyMu.Unlock()
	for k, d := range batch {
		if err := l.store.SaveSubjectState(ctx, d.st); err != nil {
			m.dirtyMu.Lock()
			for k2, d2 := range batch {
				if cur, ok := m.dirty[k2]; !ok {
					m.dirty[k2] = d2
				} else if d2.first > 0 && (cur.first == 0 || d2.first < cur.first) {
					cur.first = d2.first
					m.dirty[k2] = cur
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
	m.dirtyMu.Lock()
	m.writing = nil
	m.dirtyMu.Unlock()
	return nil
}
