package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/fields"
)

var _ fields.Store = (*Store)(nil)

type fieldTextDoc struct {
	Label       string `bson:"label"`
	Explanation string `bson:"explanation"`
}

type fieldDoc struct {
	ID            string                  `bson:"_id"`
	MerchantID    string                  `bson:"merchant_id"`
	Key           string                  `bson:"key"`
	Texts         map[string]fieldTextDoc `bson:"texts"`
	DefaultLocale string                  `bson:"default_locale"`
	Type          string                  `bson:"type"`
	OmitYear      bool                    `bson:"omit_year,omitempty"`
	Choices       []string                `bson:"choices,omitempty"`
	Min           *float64                `bson:"min,omitempty"`
	Max           *float64                `bson:"max,omitempty"`
	Purposes      []string                `bson:"purposes"`
	Category      string                  `bson:"category,omitempty"`
	CreatedAt     time.Time               `bson:"created_at"`
}

func (d fieldDoc) field() fields.Field {
	f := fields.Field{MerchantID: d.MerchantID, Key: d.Key, Texts: map[string]fields.Text{}, DefaultLocale: d.DefaultLocale, Type: fields.Type(d.Type),
		OmitYear: d.OmitYear, Choices: d.Choices, Min: d.Min, Max: d.Max, Purposes: d.Purposes, Category: d.Category, CreatedAt: d.CreatedAt.UTC()}
	for l, t := range d.Texts {
		f.Texts[l] = fields.Text(t)
	}
	return f
}

// CreateField stores a new field under "<merchant>/<key>".
func (s *Store) CreateField(ctx context.Context, f fields.Field) error {
	d := fieldDoc{ID: id(f.MerchantID, f.Key), MerchantID: f.MerchantID, Key: f.Key, Texts: map[string]fieldTextDoc{}, DefaultLocale: f.DefaultLocale,
		Type: string(f.Type), OmitYear: f.OmitYear, Choices: f.Choices, Min: f.Min, Max: f.Max, Purposes: f.Purposes, Category: f.Category, CreatedAt: f.CreatedAt}
	for l, t := range f.Texts {
		d.Texts[l] = fieldTextDoc(t)
	}
	err := s.insertOne(ctx, collFields, d)
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "field %q already exists", f.Key).WithDetail("field_exists")
	}
	return storeError(err, "create field")
}

// Field returns one field: a point read.
func (s *Store) Field(ctx context.Context, merchantID, key string) (fields.Field, error) {
	return findOne(ctx, s, collFields, id(merchantID, key), "field", fieldDoc.field)
}

// Fields lists the merchant's fields by key.
func (s *Store) Fields(ctx context.Context, merchantID string) ([]fields.Field, error) {
	return listByMerchant(ctx, s, collFields, merchantID, "key", fieldDoc.field)
}

type dataKeyDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	SubjectID  string    `bson:"subject_id"`
	Wrapped    []byte    `bson:"wrapped"`
	MasterID   string    `bson:"master_id"`
	CreatedAt  time.Time `bson:"created_at"`
}

func (d dataKeyDoc) key() fields.WrappedKey {
	return fields.WrappedKey{MerchantID: d.MerchantID, SubjectID: d.SubjectID, Wrapped: d.Wrapped, MasterID: d.MasterID, CreatedAt: d.CreatedAt.UTC()}
}

// DataKey returns the subject's wrapped data key.
func (s *Store) DataKey(ctx context.Context, merchantID, subjectID string) (fields.WrappedKey, error) {
	return findOne(ctx, s, collDataKeys, id(merchantID, subjectID), "data key", dataKeyDoc.key)
}

// CreateDataKey inserts the subject's data key; the unique _id keeps the
// first of two created at once, and both callers get it.
func (s *Store) CreateDataKey(ctx context.Context, k fields.WrappedKey) (fields.WrappedKey, error) {
	err := s.insertOne(ctx, collDataKeys, dataKeyDoc{ID: id(k.MerchantID, k.SubjectID), MerchantID: k.MerchantID, SubjectID: k.SubjectID,
		Wrapped: k.Wrapped, MasterID: k.MasterID, CreatedAt: k.CreatedAt})
	if mongo.IsDuplicateKeyError(err) {
		return s.DataKey(ctx, k.MerchantID, k.SubjectID)
	}
	if err != nil {
		return fields.WrappedKey{}, storeError(err, "create data key")
	}
	return k, nil
}

// DeleteDataKey removes the subject's data key: every value sealed with it,
// here or in a backup, can no longer be opened.
func (s *Store) DeleteDataKey(ctx context.Context, merchantID, subjectID string) error {
	_, err := s.deleteByID(ctx, collDataKeys, id(merchantID, subjectID))
	return storeError(err, "delete data key")
}

type valueDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	SubjectID  string    `bson:"subject_id"`
	Field      string    `bson:"field"`
	Sealed     []byte    `bson:"sealed,omitempty"`
	Purpose    string    `bson:"purpose"`
	UpdatedAt  time.Time `bson:"updated_at"`
	Erasing    bool      `bson:"erasing,omitempty"`
}

func (d valueDoc) value() fields.Value {
	return fields.Value{MerchantID: d.MerchantID, SubjectID: d.SubjectID, Field: d.Field, Sealed: d.Sealed, Purpose: d.Purpose,
		UpdatedAt: d.UpdatedAt.UTC(), Erasing: d.Erasing}
}

func valueID(merchantID, subjectID, field string) string { return id(merchantID, subjectID, field) }

// Value returns one sealed value: a point read.
func (s *Store) Value(ctx context.Context, merchantID, subjectID, field string) (fields.Value, error) {
	return findOne(ctx, s, collValues, valueID(merchantID, subjectID, field), "value", valueDoc.value)
}

// PutValue stores or replaces a sealed value.
func (s *Store) PutValue(ctx context.Context, v fields.Value) error {
	d := valueDoc{ID: valueID(v.MerchantID, v.SubjectID, v.Field), MerchantID: v.MerchantID, SubjectID: v.SubjectID, Field: v.Field,
		Sealed: v.Sealed, Purpose: v.Purpose, UpdatedAt: v.UpdatedAt, Erasing: v.Erasing}
	if s.local {
		defer s.casLock(d.ID)() // ordered with DeleteErasing
	}
	return storeError(s.replaceByID(ctx, collValues, d.ID, d), "store value")
}

// DeleteValue removes a value.
func (s *Store) DeleteValue(ctx context.Context, merchantID, subjectID, field string) error {
	_, err := s.deleteByID(ctx, collValues, valueID(merchantID, subjectID, field))
	return storeError(err, "delete value")
}

// DeleteErasing removes a value marked erasing: a conditional delete on
// MongoDB; on the embedded store, a read and a delete under an in-process
// lock (one process owns that store).
func (s *Store) DeleteErasing(ctx context.Context, merchantID, subjectID, field string) error {
	vid := valueID(merchantID, subjectID, field)
	if s.local {
		defer s.casLock(vid)()
		var d valueDoc
		err := s.db.Collection(collValues).FindOne(ctx, bson.D{{Key: "_id", Value: vid}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) || (err == nil && !d.Erasing) {
			return nil
		}
		if err != nil {
			return storeError(err, "read value")
		}
		_, err = s.deleteByID(ctx, collValues, vid)
		return storeError(err, "delete value")
	}
	defer s.writing()()
	_, err := s.db.Collection(collValues).DeleteOne(ctx, bson.D{{Key: "_id", Value: vid}, {Key: "erasing", Value: true}})
	return storeError(err, "delete value")
}

// Values lists the merchant's stored values of one field.
func (s *Store) Values(ctx context.Context, merchantID, field string) ([]fields.Value, error) {
	return list(ctx, s, collValues, bson.D{{Key: "merchant_id", Value: merchantID}, {Key: "field", Value: field}}, "_id", valueDoc.value)
}

// EachValue calls fn for every stored value.
func (s *Store) EachValue(ctx context.Context, fn func(fields.Value) error) error {
	vs, err := list(ctx, s, collValues, bson.D{}, "_id", valueDoc.value)
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := fn(v); err != nil {
			return err
		}
	}
	return nil
}
