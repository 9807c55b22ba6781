// Package ttlcache is a small concurrent map whose entries expire after a
// fixed time. Fineline uses it for what changes rarely but is read on every
// request (API keys, purposes, the notice in force), so that a change made
// on another instance is seen within the expiry.
package ttlcache

import (
	"sync"
	"time"
)

// Cache maps K to V for at most TTL per entry.
type Cache[K comparable, V any] struct {
	ttl time.Duration
	now func() time.Time
	max int

	mu sync.RWMutex
	m  map[K]entry[V]
}

type entry[V any] struct {
	v  V
	at time.Time
}

// New returns a cache whose entries live ttl, holding at most max entries
// (an arbitrary entry is dropped to make room).
func New[K comparable, V any](ttl time.Duration, max int, now func() time.Time) *Cache[K, V] {
	return &Cache[K, V]{ttl: ttl, now: now, max: max, m: make(map[K]entry[V])}
}

// Get returns the value for k if it is present and younger than the TTL.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	c.mu.RLock()
	e, ok := c.m[k]
	c.mu.RUnlock()
	if !ok || c.now().Sub(e.at) >= c.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Put stores v for k.
func (c *Cache[K, V]) Put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = entry[V]{v: v, at: c.now()}
}

// Delete forgets k.
func (c *Cache[K, V]) Delete(k K) {
	c.mu.Lock()
	delete(c.m, k)
	c.mu.Unlock()
}
