package consent

import (
	"sync"
	"time"
)

// stateCache holds subjects' states in memory: written through by every
// write of this instance, invalidated by what the ledger poll finds from
// other instances.
type stateCache struct {
	mu      sync.RWMutex
	entries map[string]SubjectState
	// gone remembers when a key was last invalidated, so a read that began
	// before the invalidation cannot put back what it read.
	gone map[string]time.Time
	max  int
	// overflowed is set once an entry had to be dropped for room: from then
	// on a miss no longer means "no record".
	overflowed bool
}

func newStateCache(max int) *stateCache {
	return &stateCache{entries: make(map[string]SubjectState), gone: make(map[string]time.Time), max: max}
}

func cacheKey(merchantID, subjectID string) string { return merchantID + "/" + subjectID }

func (c *stateCache) get(k string) (SubjectState, bool) {
	c.mu.RLock()
	r, ok := c.entries[k]
	c.mu.RUnlock()
	return r, ok
}

// put stores st, read from the store at loadedAt, unless the key was
// invalidated since or a newer record is cached.
func (c *stateCache) put(k string, st SubjectState, loadedAt time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if g, ok := c.gone[k]; ok && g.After(loadedAt) {
		return
	}
	if cur, ok := c.entries[k]; ok {
		if cur.Seq > st.Seq {
			return
		}
	} else if len(c.entries) >= c.max {
		for old := range c.entries {
			delete(c.entries, old)
			break
		}
		c.overflowed = true
	}
	c.entries[k] = st
}

// invalidate drops the entry unless it already holds seq or later.
func (c *stateCache) invalidate(k string, seq int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cur, ok := c.entries[k]; ok && cur.Seq >= seq {
		return
	}
	delete(c.entries, k)
	c.gone[k] = at
}

// prune forgets invalidation times older than before.
func (c *stateCache) prune(before time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, at := range c.gone {
		if at.Before(before) {
			delete(c.gone, k)
		}
	}
}

// distrust marks the cache as not holding every subject.
func (c *stateCache) distrust() {
	c.mu.Lock()
	c.overflowed = true
	c.mu.Unlock()
}

func (c *stateCache) complete() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return !c.overflowed
}
