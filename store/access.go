package store

import (
	"context"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/access"
)

var _ access.Store = (*Store)(nil)

// accessDoc holds one subject's access counters of one day, under
// "<merchant>/<subject>/<day>", each counter named "<kind>|<actor>|<purpose>".
type accessDoc struct {
	ID         string           `bson:"_id"`
	MerchantID string           `bson:"merchant_id"`
	SubjectID  string           `bson:"subject_id"`
	Day        string           `bson:"day"`
	Counts     map[string]int64 `bson:"counts"`
}

// counterName keeps a counter's name a plain field name (no dots or $).
var counterName = strings.NewReplacer(".", "_", "$", "_", "|", "_")

// AddAccessCounts adds the counts with one upsert per subject and day.
func (s *Store) AddAccessCounts(ctx context.Context, counts map[access.Key]int64) error {
	type day struct{ merchant, subject, day string }
	incs := make(map[day]bson.D)
	for k, n := range counts {
		d := day{k.MerchantID, k.SubjectID, k.Day}
		name := "counts." + string(k.Kind) + "|" + counterName.Replace(k.Actor) + "|" + k.Purpose
		incs[d] = append(incs[d], bson.E{Key: name, Value: n})
	}
	models := make([]mongo.WriteModel, 0, len(incs))
	for d, inc := range incs {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id(d.merchant, d.subject, d.day)}}).
			SetUpdate(bson.D{{Key: "$inc", Value: inc}, {Key: "$setOnInsert", Value: bson.D{
				{Key: "merchant_id", Value: d.merchant}, {Key: "subject_id", Value: d.subject}, {Key: "day", Value: d.day}}}}).
			SetUpsert(true))
	}
	for lo := 0; lo < len(models); lo += 1000 {
		if _, err := s.db.Collection(collAccessCounts).BulkWrite(ctx, models[lo:min(lo+1000, len(models))], options.BulkWrite().SetOrdered(false)); err != nil {
			return storeError(err, "add access counts")
		}
	}
	return nil
}

// AccessCounts reads a subject's counters on the days named: a point read
// per day.
func (s *Store) AccessCounts(ctx context.Context, merchantID, subjectID string, days []string) ([]access.Count, error) {
	var out []access.Count
	for _, day := range days {
		var d accessDoc
		err := s.db.Collection(collAccessCounts).FindOne(ctx, bson.D{{Key: "_id", Value: id(merchantID, subjectID, day)}}).Decode(&d)
		if errors.Is(err, mongo.ErrNoDocuments) {
			continue
		}
		if err != nil {
			return nil, storeError(err, "read access counts")
		}
		for name, n := range d.Counts {
			parts := strings.SplitN(name, "|", 3)
			if len(parts) != 3 {
				continue
			}
			out = append(out, access.Count{Key: access.Key{MerchantID: merchantID, SubjectID: subjectID, Day: day,
				Kind: access.Kind(parts[0]), Actor: parts[1], Purpose: parts[2]}, N: n})
		}
	}
	return out, nil
}
