package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/guard"
)

var _ guard.Store = (*Store)(nil)

type attributeTextDoc struct {
	Label       string `bson:"label"`
	Explanation string `bson:"explanation"`
}

type attributeDoc struct {
	ID            string                      `bson:"_id"`
	MerchantID    string                      `bson:"merchant_id"`
	Key           string                      `bson:"key"`
	Texts         map[string]attributeTextDoc `bson:"texts"`
	DefaultLocale string                      `bson:"default_locale"`
	Category      string                      `bson:"category"`
	Provenance    string                      `bson:"provenance"`
	Identifier    bool                        `bson:"identifier"`
	CreatedAt     time.Time                   `bson:"created_at"`
}

func (d attributeDoc) attribute() guard.Attribute {
	a := guard.Attribute{MerchantID: d.MerchantID, Key: d.Key, Texts: make(map[string]guard.Text, len(d.Texts)), DefaultLocale: d.DefaultLocale,
		Category: d.Category, Provenance: guard.Provenance(d.Provenance), Identifier: d.Identifier, CreatedAt: d.CreatedAt.UTC()}
	for l, t := range d.Texts {
		a.Texts[l] = guard.Text(t)
	}
	return a
}

// CreateAttribute stores a new declared attribute under "<merchant>/<key>".
func (s *Store) CreateAttribute(ctx context.Context, a guard.Attribute) error {
	d := attributeDoc{ID: id(a.MerchantID, a.Key), MerchantID: a.MerchantID, Key: a.Key, Texts: make(map[string]attributeTextDoc, len(a.Texts)),
		DefaultLocale: a.DefaultLocale, Category: a.Category, Provenance: string(a.Provenance), Identifier: a.Identifier, CreatedAt: a.CreatedAt}
	for l, t := range a.Texts {
		d.Texts[l] = attributeTextDoc(t)
	}
	err := s.insertOne(ctx, collAttributes, d)
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "attribute %q already exists", a.Key).WithDetail(guard.CodeAttributeExists)
	}
	return storeError(err, "create attribute")
}

// Attributes lists the merchant's declared attributes by key.
func (s *Store) Attributes(ctx context.Context, merchantID string) ([]guard.Attribute, error) {
	return listByMerchant(ctx, s, collAttributes, merchantID, "key", attributeDoc.attribute)
}
