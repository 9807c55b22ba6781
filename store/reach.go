package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/reach"
)

var _ reach.Store = (*Store)(nil)

// reachName is a counter's field within its month: "d05_shown".
func reachName(day int, name string) string { return fmt.Sprintf("d%02d_%s", day, name) }

// AddReachCounts adds the banner counts with one upsert per merchant and
// month, all in one write under the writer lock.
func (s *Store) AddReachCounts(ctx context.Context, counts map[reach.Key]int64) error {
	type month struct{ merchant, month string }
	incs := map[month]bson.D{}
	keys := map[month][]reach.Key{}
	for k, n := range counts {
		m := month{k.MerchantID, k.Month}
		incs[m] = append(incs[m], bson.E{Key: "counts." + reachName(k.Day, k.Name), Value: n})
		keys[m] = append(keys[m], k)
	}
	models := make([]mongo.WriteModel, 0, len(incs))
	order := make([]month, 0, len(incs))
	for m, inc := range incs {
		order = append(order, m)
		models = append(models, mongo.NewUpdateOneModel().SetFilter(bson.D{{Key: "_id", Value: id(m.merchant, m.month)}}).
			SetUpdate(bson.D{{Key: "$inc", Value: inc}, {Key: "$setOnInsert", Value: bson.D{
				{Key: "merchant_id", Value: m.merchant}, {Key: "month", Value: m.month}}}}).
			SetUpsert(true))
	}
	defer s.writing()()
	_, err := s.db.Collection(collBannerReach).BulkWrite(ctx, models, options.BulkWrite().SetOrdered(false))
	s.noteWrite(err)
	written := order
	if err != nil {
		// What the store said it wrote is not written again; on any other
		// error everything is kept for the next write.
		var bwe mongo.BulkWriteException
		if !errors.As(err, &bwe) || bwe.WriteConcernError != nil {
			return storeError(err, "add banner counts")
		}
		failed := map[int]bool{}
		for _, we := range bwe.WriteErrors {
			failed[we.Index] = true
		}
		written = nil
		for i, m := range order {
			if !failed[i] {
				written = append(written, m)
			}
		}
	}
	for _, m := range written {
		for _, k := range keys[m] {
			delete(counts, k)
		}
	}
	return storeError(err, "add banner counts")
}

// ReachMonth reads a merchant's banner counts of one month.
func (s *Store) ReachMonth(ctx context.Context, merchantID, month string) (map[int]map[string]int64, error) {
	var d struct {
		Counts map[string]int64 `bson:"counts"`
	}
	err := s.db.Collection(collBannerReach).FindOne(ctx, bson.D{{Key: "_id", Value: id(merchantID, month)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return map[int]map[string]int64{}, nil
	}
	if err != nil {
		return nil, storeError(err, "read banner counts")
	}
	out := map[int]map[string]int64{}
	for k, n := range d.Counts {
		dd, name, ok := strings.Cut(k, "_")
		if !ok || len(dd) != 3 || dd[0] != 'd' {
			continue
		}
		day, err := strconv.Atoi(dd[1:])
		if err != nil {
			continue
		}
		if out[day] == nil {
			out[day] = map[string]int64{}
		}
		out[day][name] = n
	}
	return out, nil
}
