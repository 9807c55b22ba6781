package consent

import (
	"context"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/ttlcache"
)

type purposeLookup struct {
	p     Purpose
	found bool
}

// CachedPurposes is a PurposeStore that reads each purpose, and each
// merchant's list, from the store at most once per TTL. The TTL bounds how
// long a purpose created or retired on another instance stays unseen here;
// one created or retired through this instance is seen at once.
type CachedPurposes struct {
	store PurposeStore
	one   *ttlcache.Cache[string, purposeLookup]
	list  *ttlcache.Cache[string, []Purpose]
}

var _ PurposeStore = (*CachedPurposes)(nil)

// NewCachedPurposes wraps s.
func NewCachedPurposes(s PurposeStore, ttl time.Duration, now func() time.Time) *CachedPurposes {
	return &CachedPurposes{store: s, one: ttlcache.New[string, purposeLookup](ttl, 100_000, now), list: ttlcache.New[string, []Purpose](ttl, 10_000, now)}
}

// CreatePurpose stores p and forgets what was cached about it.
func (c *CachedPurposes) CreatePurpose(ctx context.Context, p Purpose) error {
	err := c.store.CreatePurpose(ctx, p)
	c.one.Delete(p.MerchantID + "/" + p.Key)
	c.list.Delete(p.MerchantID)
	return err
}

// RetirePurpose retires the purpose and forgets what was cached about it,
// so this instance stops offering it at once.
func (c *CachedPurposes) RetirePurpose(ctx context.Context, merchantID, key string, at time.Time) error {
	err := c.store.RetirePurpose(ctx, merchantID, key, at)
	c.one.Delete(merchantID + "/" + key)
	c.list.Delete(merchantID)
	return err
}

// PutPurposeWords stores new words and forgets what was cached about the
// purpose, so this instance shows them at once.
func (c *CachedPurposes) PutPurposeWords(ctx context.Context, merchantID, key string, texts map[string]Text, categories []string) error {
	err := c.store.PutPurposeWords(ctx, merchantID, key, texts, categories)
	c.one.Delete(merchantID + "/" + key)
	c.list.Delete(merchantID)
	return err
}

// Purpose returns one purpose, from the cache when it can; NotFound answers
// are cached too, so unknown keys cannot make every request read the store.
func (c *CachedPurposes) Purpose(ctx context.Context, merchantID, key string) (Purpose, error) {
	k := merchantID + "/" + key
	if l, ok := c.one.Get(k); ok {
		if !l.found {
			return Purpose{}, apperr.New(apperr.NotFound, "purpose not found")
		}
		return l.p, nil
	}
	p, err := c.store.Purpose(ctx, merchantID, key)
	switch {
	case err == nil:
		c.one.Put(k, purposeLookup{p: p, found: true})
	case apperr.Is(err, apperr.NotFound):
		c.one.Put(k, purposeLookup{})
	}
	return p, err
}

// Purposes lists the merchant's purposes, from the cache when it can.
func (c *CachedPurposes) Purposes(ctx context.Context, merchantID string) ([]Purpose, error) {
	if ps, ok := c.list.Get(merchantID); ok {
		return ps, nil
	}
	ps, err := c.store.Purposes(ctx, merchantID)
	if err == nil {
		c.list.Put(merchantID, ps)
	}
	return ps, err
}
