package store

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/consent"
)

// bulkChunk is how many ids one $in query names on MongoDB.
const bulkChunk = 1000

// SubjectStates reads many subjects' projections: $in queries on MongoDB,
// parallel point reads on the embedded store.
func (s *Store) SubjectStates(ctx context.Context, merchantID string, subjectIDs []string) (map[string]consent.SubjectState, error) {
	out := make(map[string]consent.SubjectState, len(subjectIDs))
	if s.local {
		return s.statesFromFile(ctx, merchantID, subjectIDs) // in step with the events (see Pending)
	}
	for chunk := range chunks(subjectIDs, bulkChunk) {
		keys := make([]string, len(chunk))
		for i, sid := range chunk {
			keys[i] = id(merchantID, sid)
		}
		cur, err := s.db.Collection(collRecords).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		if err != nil {
			return nil, storeError(err, "read consent states")
		}
		var docs []recordDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, storeError(err, "read consent states")
		}
		for _, d := range docs {
			out[d.SubjectID] = d.state()
		}
	}
	return out, nil
}

// SubjectsByID returns those of the merchant's subjects named that exist,
// by id: point reads in bulk.
func (s *Store) SubjectsByID(ctx context.Context, merchantID string, subjectIDs []string) (map[string]consent.Subject, error) {
	if s.fileReads() {
		return s.subjectsFromFile(ctx, merchantID, subjectIDs)
	}
	out := make(map[string]consent.Subject, len(subjectIDs))
	for chunk := range chunks(subjectIDs, bulkChunk) {
		keys := make([]string, len(chunk))
		for i, sid := range chunk {
			keys[i] = id(merchantID, sid)
		}
		cur, err := s.db.Collection(collSubjects).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}})
		if err != nil {
			return nil, storeError(err, "read subjects")
		}
		var docs []subjectDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, storeError(err, "read subjects")
		}
		for _, d := range docs {
			out[d.SubjectID] = d.subject()
		}
	}
	return out, nil
}

// Pending returns the subjects that have an event numbered heads[s]+1.
func (s *Store) Pending(ctx context.Context, merchantID string, heads map[string]int64) ([]string, error) {
	ids := make([]string, 0, len(heads))
	for sid := range heads {
		ids = append(ids, sid)
	}
	if s.local {
		return nil, nil // projections written with their events are never behind them
	}
	var out []string
	for chunk := range chunks(ids, bulkChunk) {
		keys := make([]string, len(chunk))
		for i, sid := range chunk {
			keys[i] = eventID(merchantID, sid, heads[sid]+1)
		}
		cur, err := s.db.Collection(collEvents).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}}},
			options.Find().SetProjection(bson.D{{Key: "subject_id", Value: 1}}))
		if err != nil {
			return nil, storeError(err, "probe consent events")
		}
		var docs []struct {
			SubjectID string `bson:"subject_id"`
		}
		if err := cur.All(ctx, &docs); err != nil {
			return nil, storeError(err, "probe consent events")
		}
		for _, d := range docs {
			out = append(out, d.SubjectID)
		}
	}
	return out, nil
}

func chunks(ids []string, n int) func(func([]string) bool) {
	return func(yield func([]string) bool) {
		for len(ids) > 0 {
			c := ids[:min(n, len(ids))]
			ids = ids[len(c):]
			if !yield(c) {
				return
			}
		}
	}
}

// EachSubjectState calls fn for every stored projection.
func (s *Store) EachSubjectState(ctx context.Context, fn func(consent.SubjectState) error) error {
	if s.local {
		return s.embedded.eachStateInFile(ctx, fn)
	}
	cur, err := s.db.Collection(collRecords).Find(ctx, bson.D{}, options.Find().SetBatchSize(5000))
	if err != nil {
		return storeError(err, "scan consent states")
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d recordDoc
		if err := cur.Decode(&d); err != nil {
			return storeError(err, "scan consent states")
		}
		if err := fn(d.state()); err != nil {
			return err
		}
	}
	return storeError(cur.Err(), "scan consent states")
}
