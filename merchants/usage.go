package merchants

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/fineline/fineline/internal/every"
)

// Usage remembers when each API key was last used, for the console's key
// list, without a write per request: a key's use is noted in memory at
// most once per Resolution and written by Run every Interval (a crash
// loses at most that much). Memory is one entry per key used recently.
type Usage struct {
	Store interface {
		// TouchKey raises the key's last use to at (never lowers it).
		TouchKey(ctx context.Context, id string, at time.Time) error
	}
	Resolution, Interval time.Duration
	Log                  *slog.Logger

	mu      sync.Mutex
	noted   map[string]time.Time // last use noted, by key id
	pending map[string]time.Time // noted and not yet written
}

// Seen notes a use of the key at at. Safe on a nil Usage.
func (u *Usage) Seen(id string, at time.Time) {
	if u == nil {
		return
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if last, ok := u.noted[id]; ok && at.Sub(last) < u.Resolution {
		return
	}
	if u.noted == nil {
		u.noted, u.pending = map[string]time.Time{}, map[string]time.Time{}
	}
	u.noted[id], u.pending[id] = at, at
}

// Run writes what was noted every Interval until ctx ends, then once more.
func (u *Usage) Run(ctx context.Context) {
	every.Flush(ctx, u.Interval, 5*time.Second, nil, u.Flush)
}

// Flush writes every noted use; one that fails is kept for the next time.
func (u *Usage) Flush(ctx context.Context) {
	u.mu.Lock()
	batch := u.pending
	u.pending = map[string]time.Time{}
	// Forget keys not used for a while, so the map holds the recent ones.
	for id, at := range u.noted {
		if time.Since(at) > 10*u.Interval+u.Resolution {
			delete(u.noted, id)
		}
	}
	u.mu.Unlock()
	for id, at := range batch {
		if err := u.Store.TouchKey(ctx, id, at); err != nil {
			u.Log.WarnContext(ctx, "key use not recorded; retrying later", "key_id", id, "err", err)
			u.mu.Lock()
			if cur, ok := u.pending[id]; !ok || cur.Before(at) {
				u.pending[id] = at
			}
			u.mu.Unlock()
		}
	}
}
