// Package lag tracks how far behind a set of followers (webhook endpoints,
// merchants' rollups) is: per follower, when the oldest thing it has not
// yet handled was recorded.
package lag

import (
	"sync"
	"time"
)

// Oldest holds, per follower, the time of the oldest thing it has not
// handled; safe for concurrent use. The zero value is ready.
type Oldest struct {
	mu sync.Mutex
	at map[string]time.Time
}

// Note records that key has nothing older than at to handle; a zero at
// means it has caught up.
func (o *Oldest) Note(key string, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if at.IsZero() {
		delete(o.at, key)
		return
	}
	if o.at == nil {
		o.at = map[string]time.Time{}
	}
	o.at[key] = at
}

// Max is how far behind the most lagging follower is at now (0: all
// caught up).
func (o *Oldest) Max(now time.Time) time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	var most time.Duration
	for _, at := range o.at {
		most = max(most, now.Sub(at))
	}
	return most
}
