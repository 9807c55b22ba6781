package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

type seedDoc struct {
	Name string    `bson:"_id"`
	At   time.Time `bson:"at"`
}

// Seeded reports whether the named one-time seed completed.
func (s *Store) Seeded(ctx context.Context, name string) (bool, error) {
	err := s.db.Collection(collSeeds).FindOne(ctx, bson.D{{Key: "_id", Value: name}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	if err != nil {
		return false, storeError(err, "read seed mark")
	}
	return true, nil
}

// MarkSeeded records that the named seed completed.
func (s *Store) MarkSeeded(ctx context.Context, name string, at time.Time) error {
	return storeError(s.replaceByID(ctx, collSeeds, name, seedDoc{Name: name, At: at}), "write seed mark")
}
