package notices

import (
	"context"
	"time"

	"github.com/fineline/fineline/ttlcache"
)

// CachedStore is a Store that reads each merchant's newest published version
// number at most once per TTL: every consent write asks for it.
type CachedStore struct {
	Store
	latest *ttlcache.Cache[string, int]
}

// NewCachedStore wraps s.
func NewCachedStore(s Store, ttl time.Duration, now func() time.Time) *CachedStore {
	return &CachedStore{Store: s, latest: ttlcache.New[string, int](ttl, 100_000, now)}
}

// Latest returns the newest published version number, from the cache when it can.
func (c *CachedStore) Latest(ctx context.Context, merchantID string) (int, error) {
	if n, ok := c.latest.Get(merchantID); ok {
		return n, nil
	}
	n, err := c.Store.Latest(ctx, merchantID)
	if err == nil {
		c.latest.Put(merchantID, n)
	}
	return n, err
}

// SetLatest records the newest version and forgets the cached one.
func (c *CachedStore) SetLatest(ctx context.Context, merchantID string, number int) error {
	err := c.Store.SetLatest(ctx, merchantID, number)
	c.latest.Delete(merchantID)
	return err
}
