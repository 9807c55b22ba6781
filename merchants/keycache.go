package merchants

import (
	"context"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/ttlcache"
)

type keyLookup struct {
	k     APIKey
	found bool
}

// CachedStore is a Store that reads each API key from the store at most once
// per TTL, so authenticating a request costs no database read. A key revoked
// through this instance is refused at once; one revoked on another instance
// within the TTL.
type CachedStore struct {
	Store
	keys *ttlcache.Cache[string, keyLookup]
}

// NewCachedStore wraps s.
func NewCachedStore(s Store, ttl time.Duration, now func() time.Time) *CachedStore {
	return &CachedStore{Store: s, keys: ttlcache.New[string, keyLookup](ttl, 100_000, now)}
}

// Key returns a key, from the cache when it can (unknown ids included).
func (c *CachedStore) Key(ctx context.Context, id string) (APIKey, error) {
	if l, ok := c.keys.Get(id); ok {
		if !l.found {
			return APIKey{}, apperr.New(apperr.NotFound, "key not found")
		}
		return l.k, nil
	}
	k, err := c.Store.Key(ctx, id)
	switch {
	case err == nil:
		c.keys.Put(id, keyLookup{k: k, found: true})
	case apperr.Is(err, apperr.NotFound):
		c.keys.Put(id, keyLookup{})
	}
	return k, err
}

// CreateKey stores k and forgets any cached miss for its id.
func (c *CachedStore) CreateKey(ctx context.Context, k APIKey) error {
	err := c.Store.CreateKey(ctx, k)
	c.keys.Delete(k.ID)
	return err
}

// RevokeKey revokes the key and forgets it, so this instance refuses it at once.
func (c *CachedStore) RevokeKey(ctx context.Context, merchantID, id string, at time.Time) error {
	err := c.Store.RevokeKey(ctx, merchantID, id, at)
	c.keys.Delete(id)
	return err
}
