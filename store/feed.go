package store

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/consent"
)

var (
	_ consent.ChangeFeed    = (*Store)(nil)
	_ consent.RecordScanner = (*Store)(nil)
)

// TouchedSince returns every subject with events recorded at or after since
// and its highest such event number. On MongoDB it reads the recorded_at
// index; on the embedded store it scans, which is why an embedded
// deployment (one process) does not poll.
func (s *Store) TouchedSince(ctx context.Context, since time.Time) ([]consent.Touched, error) {
	cur, err := s.db.Collection(collEvents).Find(ctx, bson.D{{Key: "recorded_at", Value: bson.D{{Key: "$gte", Value: since}}}},
		options.Find().SetProjection(bson.D{{Key: "merchant_id", Value: 1}, {Key: "subject_id", Value: 1}, {Key: "seq", Value: 1}}))
	if err != nil {
		return nil, storeError(err, "poll ledger")
	}
	var docs []struct {
		MerchantID string `bson:"merchant_id"`
		SubjectID  string `bson:"subject_id"`
		Seq        int64  `bson:"seq"`
	}
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "poll ledger")
	}
	heads := make(map[[2]string]int64, len(docs))
	for _, d := range docs {
		k := [2]string{d.MerchantID, d.SubjectID}
		heads[k] = max(heads[k], d.Seq)
	}
	out := make([]consent.Touched, 0, len(heads))
	for k, seq := range heads {
		out = append(out, consent.Touched{MerchantID: k[0], SubjectID: k[1], Seq: seq})
	}
	return out, nil
}

// cleanMark is the marker a clean shutdown leaves: every acknowledged event
// had reached its projection.
const cleanMark = "clean-shutdown"

// TakeCleanMark reports whether the previous run shut down cleanly, and
// removes the mark so that a crash of this run is noticed by the next.
func (s *Store) TakeCleanMark(ctx context.Context) (bool, error) {
	deleted, err := s.deleteByID(ctx, collSeeds, cleanMark)
	return deleted, storeError(err, "take clean-shutdown mark")
}

// MarkClean leaves the clean-shutdown mark.
func (s *Store) MarkClean(ctx context.Context, at time.Time) error {
	return s.MarkSeeded(ctx, cleanMark, at)
}
