package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/erasure"
)

var _ erasure.Store = (*Store)(nil)

// erasureDoc is an erasure under way, under "<merchant>/<subject>": written
// before anything is erased and deleted once everything is, so the
// collection holds only what is in flight.
type erasureDoc struct {
	ID          string    `bson:"_id"`
	MerchantID  string    `bson:"merchant_id"`
	SubjectID   string    `bson:"subject_id"`
	Email       string    `bson:"email,omitempty"`
	Locale      string    `bson:"locale,omitempty"`
	Channel     string    `bson:"channel"`
	Actor       string    `bson:"actor"`
	RequestedAt time.Time `bson:"requested_at"`
}

func (d erasureDoc) pending() erasure.Pending {
	return erasure.Pending{MerchantID: d.MerchantID, SubjectID: d.SubjectID, Email: d.Email, Locale: d.Locale,
		Channel: consent.Channel(d.Channel), Actor: d.Actor, RequestedAt: d.RequestedAt.UTC()}
}

// PutErasure records an erasure under way (replacing one for the subject).
func (s *Store) PutErasure(ctx context.Context, p erasure.Pending) error {
	d := erasureDoc{ID: id(p.MerchantID, p.SubjectID), MerchantID: p.MerchantID, SubjectID: p.SubjectID, Email: p.Email, Locale: p.Locale,
		Channel: string(p.Channel), Actor: p.Actor, RequestedAt: p.RequestedAt}
	return storeError(s.replaceByID(ctx, collErasures, d.ID, d), "record the erasure")
}

// Erasure returns the subject's erasure under way; NotFound if none.
func (s *Store) Erasure(ctx context.Context, merchantID, subjectID string) (erasure.Pending, error) {
	return findOne(ctx, s, collErasures, id(merchantID, subjectID), "erasure", erasureDoc.pending)
}

// Erasures lists up to limit erasures under way, in _id order: the
// collection holds only those in flight.
func (s *Store) Erasures(ctx context.Context, limit int) ([]erasure.Pending, error) {
	return find(ctx, s, collErasures, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)), "list erasures", erasureDoc.pending)
}

// DeleteErasure marks the subject's erasure done.
func (s *Store) DeleteErasure(ctx context.Context, merchantID, subjectID string) error {
	_, err := s.deleteByID(ctx, collErasures, id(merchantID, subjectID))
	return storeError(err, "finish the erasure")
}

// DeleteAccessCounts removes every day of the subject's access counters:
// one range of _id ("<merchant>/<subject>/<day>"; ids hold no "/").
func (s *Store) DeleteAccessCounts(ctx context.Context, merchantID, subjectID string) error {
	return s.deleteSubjectEntries(ctx, collAccessCounts, merchantID, subjectID)
}

// DeleteSubjectReceipts removes the subject's receipts and their list.
func (s *Store) DeleteSubjectReceipts(ctx context.Context, merchantID, subjectID string) error {
	ids, err := s.subjectEntries(ctx, collSubjectReceipts, merchantID, subjectID)
	if err != nil {
		return err
	}
	for _, rid := range ids {
		if _, err := s.deleteByID(ctx, collReceipts, rid); err != nil {
			return storeError(err, "delete receipt")
		}
	}
	return s.deleteSubjectEntries(ctx, collSubjectReceipts, merchantID, subjectID)
}

// Scrub makes deleted documents leave the embedded store's files: deleted
// records are overwritten with zeros (secure_delete), and a checkpoint
// copies the log into the file and truncates it, so no older copy of a
// page stays in the write-ahead log. On MongoDB it does nothing (its own
// storage engine and backups are the operator's).
func (s *Store) Scrub(ctx context.Context) error {
	if !s.local {
		return nil
	}
	defer s.writing()()
	w, err := s.embedded.writer()
	if err != nil {
		return storeError(err, "open the store's file")
	}
	_, err = w.db.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return storeError(err, "checkpoint the store's file")
}

// Queues is what waits in the work queues that hold only pending items.
type Queues struct {
	// Announcements waiting to be sent, and when the most overdue of
	// them was due (zero when none is due).
	Announcements int64
	OldestDue     time.Time
	// Erasures begun and not finished.
	Erasures int64
}

// Queued reads the work queues that hold only pending items (each item
// leaves once done), so it reads little: announcements to send and
// erasures under way.
func (s *Store) Queued(ctx context.Context) (Queues, error) {
	var q Queues
	var err error
	if q.Announcements, err = s.db.Collection(collQueue).CountDocuments(ctx, bson.D{}); err != nil {
		return q, storeError(err, "count the announcement queue")
	}
	var first queueDoc
	err = s.db.Collection(collQueue).FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "next_at", Value: 1}})).Decode(&first)
	switch {
	case err == nil:
		q.OldestDue = first.NextAt.UTC()
	case !errors.Is(err, mongo.ErrNoDocuments):
		return q, storeError(err, "read the announcement queue")
	}
	if q.Erasures, err = s.db.Collection(collErasures).CountDocuments(ctx, bson.D{}); err != nil {
		return q, storeError(err, "count erasures under way")
	}
	return q, nil
}
