// Package access counts how often which of a merchant's systems asked about
// a subject (consent checks, reads of volunteered values, guard checks), per day and purpose: what the shopper's
// "who asked about me" shows. Counting is in memory, off the request path;
// a background loop adds the counts to the store, one document per subject
// and day, so a subject's counts are point reads.
package access

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fineline/fineline/internal/every"
)

// Kind is what was done with the subject's data.
type Kind string

// Kinds of access.
const (
	// Guard is a personalization check naming the subject.
	Guard Kind = "guard"
	// Check is a consent check (single or in a batch).
	Check Kind = "check"
	// Fields is a read of the values the subject volunteered.
	Fields Kind = "fields"
	// Export is an audience export that listed the subject (derived from
	// the merchant's exports, not counted per subject).
	Export Kind = "export"
)

// Key is one counter: a subject, a day (UTC, 2006-01-02), a kind, the
// system that asked (an API key's actor name) and the purpose.
type Key struct {
	MerchantID, SubjectID, Day string
	Kind                       Kind
	Actor, Purpose             string
}

// Count is one counter's value.
type Count struct {
	Key
	N int64
}

// Store adds counts and reads them back.
type Store interface {
	// AddAccessCounts adds each count to its counter and deletes from
	// counts each one it wrote: on an error, what is left was not written.
	AddAccessCounts(ctx context.Context, counts map[Key]int64) error
	// AccessCounts returns the subject's counters on the days named.
	AccessCounts(ctx context.Context, merchantID, subjectID string, days []string) ([]Count, error)
}

// Counter gathers counts in memory and writes them every Interval.
type Counter struct {
	Store    Store
	Interval time.Duration
	// Max is the most counters held between writes; past it a write starts
	// at once, and past twice it counts are dropped (and logged), so memory
	// stays bounded if the store is down.
	Max int
	Log *slog.Logger

	mu      sync.Mutex
	pending map[Key]int64
	dropped int64
	full    chan struct{}
	once    sync.Once
	// today caches the day's name: counting formats no time.
	today atomic.Pointer[dayName]
}

type dayName struct {
	unixDay int64
	name    string
}

// dayOf names the UTC day of at (2006-01-02).
func (c *Counter) dayOf(at time.Time) string {
	d := at.Unix() / 86400 // times before 1970 do not occur
	if cur := c.today.Load(); cur != nil && cur.unixDay == d {
		return cur.name
	}
	n := &dayName{unixDay: d, name: at.UTC().Format(time.DateOnly)}
	c.today.Store(n)
	return n.name
}

func (c *Counter) init() {
	c.once.Do(func() { c.full = make(chan struct{}, 1) })
}

// Add counts one access.
func (c *Counter) Add(k Key) {
	c.init()
	c.mu.Lock()
	if c.pending == nil {
		c.pending = make(map[Key]int64)
	}
	n := len(c.pending)
	if n < 2*c.Max {
		c.pending[k]++ // one hash of the key: the common case
	} else if _, ok := c.pending[k]; ok {
		c.pending[k]++
	} else {
		c.dropped++
	}
	c.mu.Unlock()
	if n >= c.Max {
		select {
		case c.full <- struct{}{}:
		default:
		}
	}
}

// Of returns what counts accesses of one kind.
func (c *Counter) Of(kind Kind) Of { return Of{c: c, kind: kind} }

// Of counts accesses of one kind.
type Of struct {
	c    *Counter
	kind Kind
}

// Count counts one access at time at.
func (o Of) Count(merchantID, subjectID, actor, purpose string, at time.Time) {
	o.c.Add(Key{MerchantID: merchantID, SubjectID: subjectID, Day: o.c.dayOf(at), Kind: o.kind, Actor: actor, Purpose: purpose})
}

// Run writes the counts every Interval (and when Max is reached) until ctx
// ends, then writes what is left.
func (c *Counter) Run(ctx context.Context) {
	c.init()
	every.Flush(ctx, c.Interval, 10*time.Second, c.full, c.Flush)
}

// Flush writes the counts gathered so far; on a store error those not
// written are kept for the next write (none is counted twice).
func (c *Counter) Flush(ctx context.Context) {
	c.mu.Lock()
	batch, dropped := c.pending, c.dropped
	c.pending, c.dropped = nil, 0
	c.mu.Unlock()
	if dropped > 0 {
		c.Log.Warn("access counts dropped: the store took too long to take them", "dropped", dropped)
	}
	if len(batch) == 0 {
		return
	}
	if err := c.Store.AddAccessCounts(ctx, batch); err != nil {
		c.Log.Warn("access counts not written; retrying with the next", "counters", len(batch), "err", err)
		c.mu.Lock()
		c.dropped += every.Restore(&c.pending, batch, 2*c.Max)
		c.mu.Unlock()
	}
}

// Pending is how many counters are held, not yet written.
func (c *Counter) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pending)
}

// Counts returns a subject's counters on the days named: those written,
// with what this instance holds and has not written yet.
func (c *Counter) Counts(ctx context.Context, merchantID, subjectID string, days []string) ([]Count, error) {
	out, err := c.Store.AccessCounts(ctx, merchantID, subjectID, days)
	if err != nil {
		return nil, err
	}
	at := make(map[Key]int, len(out))
	for i, n := range out {
		at[n.Key] = i
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, n := range c.pending {
		if k.MerchantID != merchantID || k.SubjectID != subjectID || !slices.Contains(days, k.Day) {
			continue
		}
		if i, ok := at[k]; ok {
			out[i].N += n
		} else {
			at[k] = len(out)
			out = append(out, Count{Key: k, N: n})
		}
	}
	return out, nil
}
