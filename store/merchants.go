package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/merchants"
)

var _ merchants.Store = (*Store)(nil)

type merchantDoc struct {
	ID             string              `bson:"_id"`
	Slug           string              `bson:"slug"`
	Name           string              `bson:"name"`
	DefaultLocale  string              `bson:"default_locale"`
	TimeZone       string              `bson:"time_zone,omitempty"`
	AllowedOrigins []string            `bson:"allowed_origins,omitempty"`
	ConsentMode    map[string][]string `bson:"consent_mode,omitempty"`
	CreatedAt      time.Time           `bson:"created_at"`
	SuspendedAt    time.Time           `bson:"suspended_at,omitempty"`
}

type slugDoc struct {
	Slug       string `bson:"_id"`
	MerchantID string `bson:"merchant_id"`
}

type apiKeyDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	Name       string    `bson:"name"`
	Hash       string    `bson:"hash"`
	Scopes     []string  `bson:"scopes"`
	CreatedAt  time.Time `bson:"created_at"`
	RevokedAt  time.Time `bson:"revoked_at,omitempty"`
	LastUsedAt time.Time `bson:"last_used_at,omitempty"`
}

func (d merchantDoc) merchant() merchants.Merchant {
	return merchants.Merchant{ID: d.ID, Slug: d.Slug, Name: d.Name, DefaultLocale: d.DefaultLocale, TimeZone: d.TimeZone, AllowedOrigins: d.AllowedOrigins, ConsentMode: d.ConsentMode, CreatedAt: d.CreatedAt, SuspendedAt: d.SuspendedAt}
}

// CreateMerchant stores the merchant, then claims its slug. A crash between
// the two leaves an unreachable merchant document and a free slug.
func (s *Store) CreateMerchant(ctx context.Context, m merchants.Merchant) error {
	doc := merchantDoc{ID: m.ID, Slug: m.Slug, Name: m.Name, DefaultLocale: m.DefaultLocale, TimeZone: m.TimeZone, CreatedAt: m.CreatedAt}
	if err := s.insertOne(ctx, collMerchants, doc); err != nil {
		return storeError(err, "create merchant")
	}
	err := s.insertOne(ctx, collSlugs, slugDoc{Slug: m.Slug, MerchantID: m.ID})
	if mongo.IsDuplicateKeyError(err) {
		if _, derr := s.deleteByID(ctx, collMerchants, m.ID); derr != nil {
			s.log.WarnContext(ctx, "orphan merchant document left after slug conflict", "merchant_id", m.ID, "err", derr)
		}
		return apperr.New(apperr.Conflict, "slug %q is taken", m.Slug).WithDetail("slug_taken")
	}
	return storeError(err, "claim slug")
}

// DeleteMerchant frees the slug (if it still points at m) and removes the
// merchant document.
func (s *Store) DeleteMerchant(ctx context.Context, m merchants.Merchant) error {
	var sd slugDoc
	err := s.db.Collection(collSlugs).FindOne(ctx, bson.D{{Key: "_id", Value: m.Slug}}).Decode(&sd)
	if err == nil && sd.MerchantID == m.ID {
		if _, err := s.deleteByID(ctx, collSlugs, m.Slug); err != nil {
			return storeError(err, "free slug")
		}
	}
	_, err = s.deleteByID(ctx, collMerchants, m.ID)
	return storeError(err, "delete merchant")
}

// Merchant returns a merchant by id.
func (s *Store) Merchant(ctx context.Context, id string) (merchants.Merchant, error) {
	return findOne(ctx, s, collMerchants, id, "merchant", merchantDoc.merchant)
}

// MerchantBySlug returns a merchant by slug: two point reads.
func (s *Store) MerchantBySlug(ctx context.Context, slug string) (merchants.Merchant, error) {
	var sd slugDoc
	if err := s.db.Collection(collSlugs).FindOne(ctx, bson.D{{Key: "_id", Value: slug}}).Decode(&sd); err != nil {
		return merchants.Merchant{}, notFound(err, "merchant")
	}
	return s.Merchant(ctx, sd.MerchantID)
}

// CreateKey stores an API key (its hash, never the secret).
func (s *Store) CreateKey(ctx context.Context, k merchants.APIKey) error {
	scopes := make([]string, len(k.Scopes))
	for i, sc := range k.Scopes {
		scopes[i] = string(sc)
	}
	err := s.insertOne(ctx, collAPIKeys, apiKeyDoc{ID: k.ID, MerchantID: k.MerchantID, Name: k.Name, Hash: k.Hash, Scopes: scopes, CreatedAt: k.CreatedAt})
	return storeError(err, "create key")
}

func (d apiKeyDoc) key() merchants.APIKey {
	k := merchants.APIKey{ID: d.ID, MerchantID: d.MerchantID, Name: d.Name, Hash: d.Hash, CreatedAt: d.CreatedAt, RevokedAt: d.RevokedAt, LastUsedAt: utc(d.LastUsedAt)}
	for _, sc := range d.Scopes {
		k.Scopes = append(k.Scopes, merchants.Scope(sc))
	}
	return k
}

// Key returns a key by id.
func (s *Store) Key(ctx context.Context, id string) (merchants.APIKey, error) {
	return findOne(ctx, s, collAPIKeys, id, "key", apiKeyDoc.key)
}

// Keys lists a merchant's keys, oldest first.
func (s *Store) Keys(ctx context.Context, merchantID string) ([]merchants.APIKey, error) {
	return listByMerchant(ctx, s, collAPIKeys, merchantID, "created_at", apiKeyDoc.key)
}

// RevokeKey marks one of the merchant's keys revoked (keeping the first
// revocation time).
func (s *Store) RevokeKey(ctx context.Context, merchantID, id string, at time.Time) error {
	k, err := s.Key(ctx, id)
	if err != nil {
		return err
	}
	if k.MerchantID != merchantID {
		return apperr.New(apperr.NotFound, "key not found")
	}
	if !k.RevokedAt.IsZero() {
		return nil
	}
	_, err = s.updateByID(ctx, collAPIKeys, id, bson.D{{Key: "$set", Value: bson.D{{Key: "revoked_at", Value: at}}}})
	return storeError(err, "revoke key")
}

// TouchKey raises the key's last use to at ($max: instances writing in
// any order never move it back).
func (s *Store) TouchKey(ctx context.Context, id string, at time.Time) error {
	_, err := s.updateByID(ctx, collAPIKeys, id, bson.D{{Key: "$max", Value: bson.D{{Key: "last_used_at", Value: at}}}})
	return storeError(err, "record key use")
}

// SetSuspended sets or (with a zero time) clears the merchant's suspension.
func (s *Store) SetSuspended(ctx context.Context, merchantID string, at time.Time) error {
	update := bson.D{{Key: "$set", Value: bson.D{{Key: "suspended_at", Value: at}}}}
	if at.IsZero() {
		update = bson.D{{Key: "$unset", Value: bson.D{{Key: "suspended_at", Value: ""}}}}
	}
	matched, err := s.updateByID(ctx, collMerchants, merchantID, update)
	if err == nil && !matched {
		return apperr.New(apperr.NotFound, "merchant not found")
	}
	return storeError(err, "set suspended")
}

// ListMerchants lists merchants in id order after the id after. A range
// on _id: on MongoDB an index walk; the embedded store filters the
// merchants collection (one document per tenant, not per shopper).
func (s *Store) ListMerchants(ctx context.Context, after string, limit int) ([]merchants.Merchant, error) {
	return find(ctx, s, collMerchants, bson.D{{Key: "_id", Value: bson.D{{Key: "$gt", Value: after}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), "list merchants", merchantDoc.merchant)
}

// SetWidgetSettings replaces the merchant's widget settings in one update.
func (s *Store) SetWidgetSettings(ctx context.Context, merchantID string, ws merchants.WidgetSettings) error {
	origins := ws.AllowedOrigins
	if origins == nil {
		origins = []string{}
	}
	mode := ws.ConsentMode
	if mode == nil {
		mode = map[string][]string{}
	}
	matched, err := s.updateByID(ctx, collMerchants, merchantID, bson.D{{Key: "$set", Value: bson.D{{Key: "allowed_origins", Value: origins}, {Key: "consent_mode", Value: mode}}}})
	if err == nil && !matched {
		return apperr.New(apperr.NotFound, "merchant not found")
	}
	return storeError(err, "set widget settings")
}
