package notices

import (
	"context"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/ttlcache"
)

// CachedStore is a Store that reads each merchant's head at most once per
// TTL: every consent check asks for it. A publication through this
// instance is seen at once; one through another instance within the TTL.
type CachedStore struct {
	Store
	heads *ttlcache.Cache[string, Head]
}

// NewCachedStore wraps s.
func NewCachedStore(s Store, ttl time.Duration, now func() time.Time) *CachedStore {
	return &CachedStore{Store: s, heads: ttlcache.New[string, Head](ttl, 100_000, now)}
}

// Head returns the merchant's index, from the cache when it can.
func (c *CachedStore) Head(ctx context.Context, merchantID string) (Head, error) {
	if h, ok := c.heads.Get(merchantID); ok {
		return h, nil
	}
	h, err := c.Store.Head(ctx, merchantID)
	if err == nil {
		c.heads.Put(merchantID, h)
	}
	return h, err
}

// NoteCreated updates the head and forgets the cached one.
func (c *CachedStore) NoteCreated(ctx context.Context, merchantID string, number int) error {
	err := c.Store.NoteCreated(ctx, merchantID, number)
	c.heads.Delete(merchantID)
	return err
}

// NotePublished updates the head and forgets the cached one.
func (c *CachedStore) NotePublished(ctx context.Context, merchantID string, p consent.PublishedVersion) error {
	err := c.Store.NotePublished(ctx, merchantID, p)
	c.heads.Delete(merchantID)
	return err
}
