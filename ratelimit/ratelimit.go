// Package ratelimit keeps a token bucket per key (an email, a client
// address) in memory, forgetting keys that have been idle.
package ratelimit

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter limits events per key.
type Limiter struct {
	every time.Duration
	burst int
	max   int
	now   func() time.Time

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	lim  *rate.Limiter
	seen time.Time
}

// New allows burst events at once per key, then one every every. It holds
// at most max keys, dropping idle ones first.
func New(every time.Duration, burst, max int, now func() time.Time) *Limiter {
	return &Limiter{every: every, burst: burst, max: max, now: now, keys: make(map[string]*entry)}
}

// Allow reports whether key may have one more event now, and counts it.
func (l *Limiter) Allow(key string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		if len(l.keys) >= l.max {
			l.evict(now)
		}
		e = &entry{lim: rate.NewLimiter(rate.Every(l.every), l.burst)}
		l.keys[key] = e
	}
	e.seen = now
	return e.lim.AllowN(now, 1)
}

// evict drops keys idle long enough to have refilled, or failing that the
// oldest one.
func (l *Limiter) evict(now time.Time) {
	full := l.every * time.Duration(l.burst)
	var oldest string
	var oldestAt time.Time
	for k, e := range l.keys {
		if now.Sub(e.seen) > full {
			delete(l.keys, k)
			continue
		}
		if oldest == "" || e.seen.Before(oldestAt) {
			oldest, oldestAt = k, e.seen
		}
	}
	if len(l.keys) >= l.max && oldest != "" {
		delete(l.keys, oldest)
	}
}
