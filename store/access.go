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

// AddAccessCounts adds the counts with one upsert per subject and day, in
// small chunks, each under the writer lock: the ledger's appends and the
// server's own reads take turns with a large flush instead of waiting
// behind all of it. It deletes from counts what it wrote, so that on an
// error what is left is exactly what was not.
func (s *Store) AddAccessCounts(ctx context.Context, counts map[access.Key]int64) error {
	type day struct{ merchant, subject, day string }
	incs := make(map[day]bson.D)
	keys := make(map[day][]access.Key)
	for k, n := range counts {
		d := day{k.MerchantID, k.SubjectID, k.Day}
		name := "counts." + string(k.Kind) + "|" + counterName.Replace(k.Actor) + "|" + k.Purpose
		incs[d] = append(incs[d], bson.E{Key: name, Value: n})
		keys[d] = append(keys[d], k)
	}
	models := make([]mongo.WriteModel, 0, accessChunk)
	var written []day
	flush := func() error {
		if len(models) == 0 {
			return nil
		}
		if err := s.addAccessChunk(ctx, models); err != nil {
			return err
		}
		for _, d := range written {
			for _, k := range keys[d] {
				delete(counts, k)
			}
		}
		models, written = models[:0], written[:0]
		return nil
	}
	for d, inc := range incs {
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id(d.merchant, d.subject, d.day)}}).
			SetUpdate(bson.D{{Key: "$inc", Value: inc}, {Key: "$setOnInsert", Value: bson.D{
				{Key: "merchant_id", Value: d.merchant}, {Key: "subject_id", Value: d.subject}, {Key: "day", Value: d.day}}}}).
			SetUpsert(true))
		written = append(written, d)
		if len(models) == accessChunk {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// accessChunk is how many counter documents one write updates.
const accessChunk = 200

func (s *Store) addAccessChunk(ctx context.Context, models []mongo.WriteModel) error {
	defer s.writing()()
	_, err := s.db.Collection(collAccessCounts).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	return storeError(err, "add access counts")
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
