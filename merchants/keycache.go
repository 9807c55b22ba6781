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
	keys  *ttlcache.Cache[string, keyLookup]
	slugs *ttlcache.Cache[string, Merchant]
	byID  *ttlcache.Cache[string, Merchant]
}

// NewCachedStore wraps s.
func NewCachedStore(s Store, ttl time.Duration, now func() time.Time) *CachedStore {
	return &CachedStore{Store: s, keys: ttlcache.New[string, keyLookup](ttl, 100_000, now),
		slugs: ttlcache.New[string, Merchant](ttl, 10_000, now), byID: ttlcache.New[string, Merchant](ttl, 10_000, now)}
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

// MerchantBySlug returns a merchant by slug, from the cache when it can:
// every page of the center starts with it.
func (c *CachedStore) MerchantBySlug(ctx context.Context, slug string) (Merchant, error) {
	if m, ok := c.slugs.Get(slug); ok {
		return m, nil
	}
	m, err := c.Store.MerchantBySlug(ctx, slug)
	if err == nil {
		c.slugs.Put(slug, m)
	}
	return m, err
}

// Merchant returns a merchant by id, from the cache when it can.
func (c *CachedStore) Merchant(ctx context.Context, id string) (Merchant, error) {
	if m, ok := c.byID.Get(id); ok {
		return m, nil
	}
	m, err := c.Store.Merchant(ctx, id)
	if err == nil {
		c.byID.Put(id, m)
	}
	return m, err
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

// SetWidgetSettings stores the settings and forgets the cached merchant.
func (c *CachedStore) SetWidgetSettings(ctx context.Context, id string, ws WidgetSettings) error {
	m, err := c.Store.Merchant(ctx, id)
	if err != nil {
		return err
	}
	err = c.Store.SetWidgetSettings(ctx, id, ws)
	c.byID.Delete(id)
	c.slugs.Delete(m.Slug)
	return err
}

// SetSuspended stores the suspension and forgets the cached merchant, so
// this instance refuses (or serves again) at once.
func (c *CachedStore) SetSuspended(ctx context.Context, id string, at time.Time) error {
	m, err := c.Store.Merchant(ctx, id)
	if err != nil {
		return err
	}
	err = c.Store.SetSuspended(ctx, id, at)
	c.byID.Delete(id)
	c.slugs.Delete(m.Slug)
	return err
}
