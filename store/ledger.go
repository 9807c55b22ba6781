package store

import (
	"context"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

var _ consent.LedgerStore = (*Store)(nil)

// eventDoc is one consent event, under "<merchant>/<subject>/<seq>". Events
// are only ever inserted: this package has no code that updates or deletes one.
type eventDoc struct {
	ID             string    `bson:"_id"`
	MerchantID     string    `bson:"merchant_id"`
	SubjectID      string    `bson:"subject_id"`
	Seq            int64     `bson:"seq"`
	Purpose        string    `bson:"purpose"`
	State          string    `bson:"state"`
	NoticeVersion  int       `bson:"notice_version"`
	Channel        string    `bson:"channel"`
	Actor          string    `bson:"actor"`
	RecordedAt     time.Time `bson:"recorded_at"`
	IdempotencyKey string    `bson:"idempotency_key,omitempty"`
	PrevHash       string    `bson:"prev_hash"`
	Hash           string    `bson:"hash"`
	Field          string    `bson:"field,omitempty"`
	// GivenAt, Source and Proof are set on imported decisions only.
	GivenAt *time.Time `bson:"given_at,omitempty"`
	Source  string     `bson:"source,omitempty"`
	Proof   string     `bson:"proof,omitempty"`
	// Level is set on privacy-level events only.
	Level string `bson:"level,omitempty"`
	// Prev and Locale are set on consent decisions only.
	Prev   string `bson:"prev,omitempty"`
	Locale string `bson:"locale,omitempty"`
	// PrevNotice is set on decisions that replace one.
	PrevNotice int `bson:"prev_notice,omitempty"`
}

func eventID(merchantID, subjectID string, seq int64) string {
	return id(merchantID, subjectID, fmt.Sprintf("%012d", seq))
}

func toEventDoc(e consent.Event) eventDoc {
	d := eventDoc{ID: eventID(e.MerchantID, e.SubjectID, e.Seq), MerchantID: e.MerchantID, SubjectID: e.SubjectID, Seq: e.Seq,
		Purpose: e.Purpose, State: string(e.State), NoticeVersion: e.NoticeVersion, Channel: string(e.Channel), Actor: e.Actor,
		RecordedAt: e.RecordedAt, IdempotencyKey: e.IdempotencyKey, PrevHash: e.PrevHash, Hash: e.Hash, Field: e.Field,
		Source: e.Source, Proof: e.Proof, Level: string(e.Level), Prev: string(e.Prev), Locale: e.Locale, PrevNotice: e.PrevNotice}
	if !e.GivenAt.IsZero() {
		at := e.GivenAt
		d.GivenAt = &at
	}
	return d
}

// AppendEvents inserts one subject's next events in order, group-committed
// with other writers' events and listed in the journal and the merchant's
// feed in the same insert (see journal.go). The unique _id makes an event
// whose sequence number is taken a Conflict, and stops the insert there.
func (s *Store) AppendEvents(ctx context.Context, events []consent.Event, after consent.SubjectState) (consent.Appended, error) {
	docs := make([]eventDoc, len(events))
	for i, e := range events {
		docs[i] = toEventDoc(e)
	}
	var state *recordDoc
	if s.local {
		// The embedded store writes the state after the events in the
		// same transaction (see appender.insert).
		d := toRecordDoc(after)
		state = &d
	}
	n, pos, err := s.appender.append(ctx, docs, state)
	return consent.Appended{N: n, Slot: s.slot, Journal: pos}, err
}

// Event returns one event: a point read.
func (s *Store) Event(ctx context.Context, merchantID, subjectID string, seq int64) (consent.Event, error) {
	if s.fileReads() {
		return s.eventFromFile(ctx, eventID(merchantID, subjectID, seq))
	}
	var d eventDoc
	if err := s.db.Collection(collEvents).FindOne(ctx, bson.D{{Key: "_id", Value: eventID(merchantID, subjectID, seq)}}).Decode(&d); err != nil {
		return consent.Event{}, notFound(err, "event")
	}
	return d.event(), nil
}

type purposeStateDoc struct {
	State         string    `bson:"state"`
	Seq           int64     `bson:"seq"`
	NoticeVersion int       `bson:"notice_version"`
	Channel       string    `bson:"channel"`
	At            time.Time `bson:"at"`
	GPCSeq        int64     `bson:"gpc_seq,omitempty"`
}

// recordDoc is a subject's consent state projection, under "<merchant>/<subject>".
type recordDoc struct {
	ID         string                     `bson:"_id"`
	MerchantID string                     `bson:"merchant_id"`
	SubjectID  string                     `bson:"subject_id"`
	Seq        int64                      `bson:"seq"`
	HeadHash   string                     `bson:"head_hash"`
	Purposes   map[string]purposeStateDoc `bson:"purposes"`
	UpdatedAt  time.Time                  `bson:"updated_at"`
	Level      string                     `bson:"level,omitempty"`
	LevelSeq   int64                      `bson:"level_seq,omitempty"`
	ErasedSeq  int64                      `bson:"erased_seq,omitempty"`
}

// SubjectState returns the subject's projection: a point read.
func (s *Store) SubjectState(ctx context.Context, merchantID, subjectID string) (consent.SubjectState, error) {
	if s.local {
		return s.stateFromFile(ctx, merchantID, subjectID)
	}
	return findOne(ctx, s, collRecords, id(merchantID, subjectID), "consent state", recordDoc.state)
}

func (d recordDoc) state() consent.SubjectState {
	rec := consent.SubjectState{MerchantID: d.MerchantID, SubjectID: d.SubjectID, Seq: d.Seq, HeadHash: d.HeadHash, Purposes: make(map[string]consent.PurposeState, len(d.Purposes)), UpdatedAt: d.UpdatedAt.UTC(),
		Level: consent.Level(d.Level), LevelSeq: d.LevelSeq, ErasedSeq: d.ErasedSeq}
	for k, v := range d.Purposes {
		rec.Purposes[k] = consent.PurposeState{State: consent.State(v.State), Seq: v.Seq, NoticeVersion: v.NoticeVersion, Channel: consent.Channel(v.Channel), At: v.At.UTC(), GPCSeq: v.GPCSeq}
	}
	return rec
}

// StatesInStep reports whether each projection is written in the same
// transaction as the events it follows (the embedded store), so that it is
// never behind them.
func (s *Store) StatesInStep() bool { return s.local }

// SaveSubjectState advances the projection to rec unless it is already at
// or past rec.Seq, with the sequence check in the update's filter. On the
// embedded store it does nothing: AppendEvents wrote it with the events.
func (s *Store) SaveSubjectState(ctx context.Context, rec consent.SubjectState) error {
	if s.local {
		return nil
	}
	d := toRecordDoc(rec)
	coll := s.db.Collection(collRecords)
	_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: d.ID}, {Key: "seq", Value: bson.D{{Key: "$lt", Value: d.Seq}}}}, d, options.Replace().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		return nil // the stored projection is already at or past rec.Seq
	}
	return storeError(err, "save consent state")
}

func toRecordDoc(rec consent.SubjectState) recordDoc {
	d := recordDoc{ID: id(rec.MerchantID, rec.SubjectID), MerchantID: rec.MerchantID, SubjectID: rec.SubjectID, Seq: rec.Seq, HeadHash: rec.HeadHash, Purposes: make(map[string]purposeStateDoc, len(rec.Purposes)), UpdatedAt: rec.UpdatedAt,
		Level: string(rec.Level), LevelSeq: rec.LevelSeq, ErasedSeq: rec.ErasedSeq}
	for k, v := range rec.Purposes {
		d.Purposes[k] = purposeStateDoc{State: string(v.State), Seq: v.Seq, NoticeVersion: v.NoticeVersion, Channel: string(v.Channel), At: v.At, GPCSeq: v.GPCSeq}
	}
	return d
}

type idempotencyDoc struct {
	ID          string    `bson:"_id"`
	MerchantID  string    `bson:"merchant_id"`
	Key         string    `bson:"key"`
	Fingerprint string    `bson:"fingerprint"`
	SubjectID   string    `bson:"subject_id"`
	Seq         int64     `bson:"seq"`
	CreatedAt   time.Time `bson:"created_at"`
}

// ClaimIdempotencyKey inserts the claim; a duplicate returns the earlier one.
func (s *Store) ClaimIdempotencyKey(ctx context.Context, c consent.IdempotencyClaim) (consent.IdempotencyClaim, bool, error) {
	coll := s.db.Collection(collIdempotency)
	d := idempotencyDoc{ID: id(c.MerchantID, c.Key), MerchantID: c.MerchantID, Key: c.Key, Fingerprint: c.Fingerprint, SubjectID: c.SubjectID, CreatedAt: c.CreatedAt}
	err := s.insertOne(ctx, collIdempotency, d)
	if err == nil {
		return c, true, nil
	}
	if !mongo.IsDuplicateKeyError(err) {
		return consent.IdempotencyClaim{}, false, storeError(err, "claim idempotency key")
	}
	var prev idempotencyDoc
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: d.ID}}).Decode(&prev); err != nil {
		return consent.IdempotencyClaim{}, false, storeError(err, "read idempotency key")
	}
	return consent.IdempotencyClaim{MerchantID: prev.MerchantID, Key: prev.Key, Fingerprint: prev.Fingerprint, SubjectID: prev.SubjectID, Seq: prev.Seq, CreatedAt: prev.CreatedAt.UTC()}, false, nil
}

// CompleteIdempotencyKey records the event the key's request produced.
func (s *Store) CompleteIdempotencyKey(ctx context.Context, merchantID, key string, seq int64) error {
	_, err := s.updateByID(ctx, collIdempotency, id(merchantID, key), bson.D{{Key: "$set", Value: bson.D{{Key: "seq", Value: seq}}}})
	return storeError(err, "complete idempotency key")
}

// Import inserts whole chains at once: subjects, their events (listed in
// the journal and the feeds like every write) and their projections, as
// computed by the caller. It is for loading consent
// histories in bulk (and seeding benchmarks) into subjects that have no
// events yet; a duplicate anywhere fails the batch.
func (s *Store) Import(ctx context.Context, subjects []consent.Subject, events []consent.Event, recs []consent.SubjectState) error {
	var docs []any
	for _, sub := range subjects {
		docs = append(docs, subjectDoc{ID: id(sub.MerchantID, sub.ID), MerchantID: sub.MerchantID, SubjectID: sub.ID, Email: sub.Email, Locale: sub.Locale, TimeZone: sub.TimeZone, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt})
	}
	if err := s.insertMany(ctx, collSubjects, docs); err != nil {
		return err
	}
	// Events go through the appender, in the order given, as every write
	// does, listed in the journal and the merchants' feeds: as one batch.
	evs := make([]eventDoc, len(events))
	for i, e := range events {
		evs[i] = toEventDoc(e)
	}
	if len(evs) > 0 {
		n, _, err := s.appender.appendBulk(ctx, evs)
		if err != nil && n == 0 && !apperr.Is(err, apperr.Conflict) {
			return err
		}
		if n != len(evs) {
			return apperr.New(apperr.Conflict, "import: an event exists already")
		}
	}
	docs = docs[:0]
	for _, rec := range recs {
		docs = append(docs, toRecordDoc(rec))
	}
	return s.insertMany(ctx, collRecords, docs)
}

// insertMany inserts docs into coll; a duplicate fails the rest.
func (s *Store) insertMany(ctx context.Context, coll string, docs []any) error {
	if len(docs) == 0 {
		return nil
	}
	if s.local {
		enc, err := encodeAll(docs)
		if err != nil {
			return apperr.Wrap(err, "encode %s documents", coll)
		}
		defer s.writing()()
		n, err := s.embedded.insertFile(ctx, coll, enc)
		if n < len(docs) && apperr.Is(err, apperr.Conflict) {
			return apperr.New(apperr.Conflict, "import: a document of %s exists already", coll)
		}
		return err
	}
	defer s.writing()()
	_, err := s.db.Collection(coll).InsertMany(ctx, docs)
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "import: a document of %s exists already", coll)
	}
	return storeError(err, "import into %s", coll)
}
