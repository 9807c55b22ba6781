package consent

import (
	"context"
	"time"
)

// RecordScanner reads every projection and every chain head, for warming
// the cache at start-up and for sweeping the ledger after a crash.
type RecordScanner interface {
	// EachSubjectState calls fn for every stored projection.
	EachSubjectState(ctx context.Context, fn func(SubjectState) error) error
	// EachChainHead calls fn with the highest event number of every subject
	// that has events.
	EachChainHead(ctx context.Context, fn func(merchantID, subjectID string, seq int64) error) error
}

// WarmReport says what Warm did.
type WarmReport struct {
	Records int // projections loaded into the cache
	// RolledForward counts subjects whose projection was behind the ledger.
	RolledForward int
	// Complete is true when every subject fit in the cache.
	Complete bool
}

// Warm loads every stored projection into the cache. With sweep (after a
// start that did not follow a clean shutdown) it also reads every chain head
// and rolls forward each subject whose projection is behind its ledger.
func (l *Ledger) Warm(ctx context.Context, scan RecordScanner, sweep bool) (WarmReport, error) {
	var rep WarmReport
	c := l.mem.cache
	if c == nil {
		return rep, nil
	}
	start := time.Now()
	err := scan.EachSubjectState(ctx, func(st SubjectState) error {
		c.put(cacheKey(st.MerchantID, st.SubjectID), st, start)
		rep.Records++
		return nil
	})
	if err != nil {
		return rep, err
	}
	if sweep {
		err = scan.EachChainHead(ctx, func(merchantID, subjectID string, seq int64) error {
			if st, ok := c.get(cacheKey(merchantID, subjectID)); ok && st.Seq >= seq {
				return nil
			}
			if _, err := l.lookupFromStore(ctx, merchantID, subjectID); err != nil {
				return err
			}
			rep.RolledForward++
			return nil
		})
		if err != nil {
			return rep, err
		}
	}
	rep.Complete = c.complete()
	l.mem.warm.Store(rep.Complete)
	return rep, nil
}

func (l *Ledger) lookupFromStore(ctx context.Context, merchantID, subjectID string) (SubjectState, error) {
	start := time.Now()
	st, err := l.current(ctx, merchantID, subjectID)
	if err == nil {
		l.mem.cache.put(cacheKey(merchantID, subjectID), st, start)
	}
	return st, err
}

// Touched names a subject whose chain reached Seq.
type Touched struct {
	MerchantID string
	SubjectID  string
	Seq        int64
}

// ChangeFeed tells which subjects' ledgers changed.
type ChangeFeed interface {
	// TouchedSince returns, for every subject with events recorded at or
	// after since, its highest such event number.
	TouchedSince(ctx context.Context, since time.Time) ([]Touched, error)
}

// FollowOptions tune Follow.
type FollowOptions struct {
	// Interval between polls.
	Interval time.Duration
	// Overlap re-reads this much before the previous poll, covering clock
	// skew between instances and writes that commit a little after their
	// recorded time.
	Overlap time.Duration
	// Since is where the first poll starts (e.g. a recovery window before now).
	Since time.Time
}

// Follow polls the ledger until ctx ends, dropping from the cache every
// subject another instance changed. Each completed poll lets the cache
// answer for Bound more; if polls fail for longer, decisions are read from
// the store (and fail closed if it is down).
func (l *Ledger) Follow(ctx context.Context, feed ChangeFeed, o FollowOptions) {
	c := l.mem.cache
	if c == nil {
		return
	}
	since := o.Since
	t := time.NewTicker(o.Interval)
	defer t.Stop()
	for {
		began := time.Now()
		touched, err := feed.TouchedSince(ctx, since)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			l.log.WarnContext(ctx, "ledger poll failed; the cache stops answering after its bound", "err", err)
		} else {
			for _, t := range touched {
				c.invalidate(cacheKey(t.MerchantID, t.SubjectID), t.Seq, began)
			}
			l.mem.polled.Store(began.UnixNano())
			since = began.Add(-o.Overlap)
			c.prune(began.Add(-time.Minute))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// EachState calls fn with the current state of every subject that has a
// stored projection, for jobs that go through every subject (building an
// announcement, exports). Every write acknowledged before the call is seen:
// projections written behind are flushed first, and a state cached here
// that is newer than the stored one is given instead.
func (l *Ledger) EachState(ctx context.Context, scan RecordScanner, fn func(SubjectState) error) error {
	if err := l.Flush(ctx); err != nil {
		return err
	}
	return scan.EachSubjectState(ctx, func(st SubjectState) error {
		if cur, ok := l.mem.cached(st.MerchantID, st.SubjectID); ok && cur.Seq > st.Seq {
			st = cur
		}
		return fn(st)
	})
}
