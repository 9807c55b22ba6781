package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

var _ consent.PurposeStore = (*Store)(nil)

type textDoc struct {
	Name      string `bson:"name"`
	Statement string `bson:"statement"`
}

type purposeDoc struct {
	ID             string             `bson:"_id"`
	MerchantID     string             `bson:"merchant_id"`
	Key            string             `bson:"key"`
	Texts          map[string]textDoc `bson:"texts"`
	DefaultLocale  string             `bson:"default_locale"`
	DataCategories []string           `bson:"data_categories"`
	Sensitive      bool               `bson:"sensitive"`
	SaleOrShare    bool               `bson:"sale_or_share"`
	LegalBasis     string             `bson:"legal_basis"`
	CreatedAt      time.Time          `bson:"created_at"`
	RetiredAt      time.Time          `bson:"retired_at,omitempty"`
}

// CreatePurpose stores a new purpose under "<merchant>/<key>".
func (s *Store) CreatePurpose(ctx context.Context, p consent.Purpose) error {
	d := purposeDoc{ID: id(p.MerchantID, p.Key), MerchantID: p.MerchantID, Key: p.Key, Texts: map[string]textDoc{},
		DefaultLocale: p.DefaultLocale, DataCategories: p.DataCategories, Sensitive: p.Sensitive,
		SaleOrShare: p.SaleOrShare, LegalBasis: string(p.LegalBasis), CreatedAt: p.CreatedAt}
	if d.DataCategories == nil {
		d.DataCategories = []string{}
	}
	for l, t := range p.Texts {
		d.Texts[l] = textDoc(t)
	}
	err := s.insertOne(ctx, collPurposes, d)
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "purpose %q already exists", p.Key).WithDetail("purpose_exists")
	}
	return storeError(err, "create purpose")
}

func (d purposeDoc) purpose() consent.Purpose {
	p := consent.Purpose{MerchantID: d.MerchantID, Key: d.Key, Texts: map[string]consent.Text{}, DefaultLocale: d.DefaultLocale,
		DataCategories: d.DataCategories, Sensitive: d.Sensitive, SaleOrShare: d.SaleOrShare,
		LegalBasis: consent.LegalBasis(d.LegalBasis), CreatedAt: d.CreatedAt, RetiredAt: d.RetiredAt}
	for l, t := range d.Texts {
		p.Texts[l] = consent.Text(t)
	}
	return p
}

// Purpose returns one purpose: a point read.
func (s *Store) Purpose(ctx context.Context, merchantID, key string) (consent.Purpose, error) {
	return findOne(ctx, s, collPurposes, id(merchantID, key), "purpose", purposeDoc.purpose)
}

// RetirePurpose sets the purpose's retired_at.
func (s *Store) RetirePurpose(ctx context.Context, merchantID, key string, at time.Time) error {
	matched, err := s.updateByID(ctx, collPurposes, id(merchantID, key), bson.D{{Key: "$set", Value: bson.D{{Key: "retired_at", Value: at}}}})
	if err == nil && !matched {
		return apperr.New(apperr.NotFound, "purpose not found")
	}
	return storeError(err, "retire purpose")
}

// PutPurposeWords replaces the purpose's texts and data categories.
func (s *Store) PutPurposeWords(ctx context.Context, merchantID, key string, texts map[string]consent.Text, categories []string) error {
	ts := map[string]textDoc{}
	for l, t := range texts {
		ts[l] = textDoc(t)
	}
	if categories == nil {
		categories = []string{}
	}
	matched, err := s.updateByID(ctx, collPurposes, id(merchantID, key), bson.D{{Key: "$set", Value: bson.D{{Key: "texts", Value: ts}, {Key: "data_categories", Value: categories}}}})
	if err == nil && !matched {
		return apperr.New(apperr.NotFound, "purpose not found")
	}
	return storeError(err, "reword purpose")
}

// Purposes lists the merchant's purposes by key.
func (s *Store) Purposes(ctx context.Context, merchantID string) ([]consent.Purpose, error) {
	return listByMerchant(ctx, s, collPurposes, merchantID, "key", purposeDoc.purpose)
}
