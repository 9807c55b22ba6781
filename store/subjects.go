package store

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

var _ consent.SubjectStore = (*Store)(nil)

type subjectDoc struct {
	ID         string `bson:"_id"`
	MerchantID string `bson:"merchant_id"`
	SubjectID  string `bson:"subject_id"`
	Email      string `bson:"email,omitempty"`
	Locale     string `bson:"locale,omitempty"`
	TimeZone   string `bson:"time_zone,omitempty"`
	// Relationship is customer or prospect, when the merchant said.
	Relationship string    `bson:"relationship,omitempty"`
	CreatedAt    time.Time `bson:"created_at"`
	UpdatedAt    time.Time `bson:"updated_at"`
	// ErasedAt is set on an erased subject, whose record keeps nothing else.
	ErasedAt *time.Time `bson:"erased_at,omitempty"`
}

// Subject returns one subject: a point read.
func (s *Store) Subject(ctx context.Context, merchantID, subjectID string) (consent.Subject, error) {
	if s.fileReads() {
		return s.subjectFromFile(ctx, id(merchantID, subjectID))
	}
	return findOne(ctx, s, collSubjects, id(merchantID, subjectID), "subject", subjectDoc.subject)
}

func (d subjectDoc) subject() consent.Subject {
	return consent.Subject{MerchantID: d.MerchantID, ID: d.SubjectID, Email: d.Email, Locale: d.Locale, TimeZone: d.TimeZone,
		Relationship: consent.Relationship(d.Relationship), CreatedAt: d.CreatedAt.UTC(), UpdatedAt: d.UpdatedAt.UTC(), ErasedAt: erasedAt(d.ErasedAt)}
}

func erasedAt(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// EraseSubject replaces the subject's record by one that keeps only its id
// and the time of the erasure, then drops the subject from its address's
// lookup (an entry left behind names a subject without that address, which
// SubjectsByEmail skips).
func (s *Store) EraseSubject(ctx context.Context, merchantID, subjectID string, at time.Time) error {
	old, err := s.Subject(ctx, merchantID, subjectID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	created := at
	if err == nil {
		created = old.CreatedAt
	}
	d := subjectDoc{ID: id(merchantID, subjectID), MerchantID: merchantID, SubjectID: subjectID, CreatedAt: created, UpdatedAt: at, ErasedAt: &at}
	if err := storeError(s.replaceByID(ctx, collSubjects, d.ID, d), "erase subject"); err != nil {
		return err
	}
	return s.dropEmail(ctx, merchantID, old.Email, subjectID)
}

// PutSubject creates or replaces a subject. The email lookup lists the
// subject under its new address before the subject takes it, and drops it
// from the old one after.
func (s *Store) PutSubject(ctx context.Context, sub consent.Subject) error {
	d := subjectDoc{ID: id(sub.MerchantID, sub.ID), MerchantID: sub.MerchantID, SubjectID: sub.ID, Email: sub.Email, Locale: sub.Locale, TimeZone: sub.TimeZone,
		Relationship: string(sub.Relationship), CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt}
	old, err := s.Subject(ctx, sub.MerchantID, sub.ID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return err
	}
	if err := s.addEmail(ctx, sub.MerchantID, sub.Email, sub.ID); err != nil {
		return err
	}
	if err := storeError(s.replaceByID(ctx, collSubjects, d.ID, d), "save subject"); err != nil {
		return err
	}
	if old.Email != "" && !strings.EqualFold(old.Email, sub.Email) {
		return s.dropEmail(ctx, sub.MerchantID, old.Email, sub.ID)
	}
	return nil
}

// CreateSubject inserts the subject unless it exists; it reports whether it did.
func (s *Store) CreateSubject(ctx context.Context, sub consent.Subject) (bool, error) {
	d := subjectDoc{ID: id(sub.MerchantID, sub.ID), MerchantID: sub.MerchantID, SubjectID: sub.ID, Email: sub.Email, Locale: sub.Locale, TimeZone: sub.TimeZone, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt}
	if err := s.addEmail(ctx, sub.MerchantID, sub.Email, sub.ID); err != nil {
		return false, err
	}
	err := s.insertOne(ctx, collSubjects, d)
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, storeError(err, "create subject")
}

// CreateSubjects inserts those of subs the merchant does not have yet, in
// bulk: on the embedded store, the absent ones found by reads of the file
// and inserted straight into it, a transaction per chunk; on MongoDB,
// unordered inserts whose duplicates are the subjects that exist. Subjects
// created so carry no email (the email lookup is not written).
func (s *Store) CreateSubjects(ctx context.Context, subs []consent.Subject) error {
	const chunk = 500
	for lo := 0; lo < len(subs); lo += chunk {
		part := subs[lo:min(lo+chunk, len(subs))]
		docs := make([]any, 0, len(part))
		ids := make([]string, len(part))
		for i, sub := range part {
			if sub.Email != "" {
				return apperr.New(apperr.Invalid, "subjects created in bulk carry no email")
			}
			ids[i] = id(sub.MerchantID, sub.ID)
		}
		var have map[string]bool
		if s.local {
			var err error
			if have, err = s.idsInFile(ctx, collSubjects, ids); err != nil {
				return storeError(err, "create subjects")
			}
		}
		for i, sub := range part {
			if !have[ids[i]] {
				docs = append(docs, subjectDoc{ID: ids[i], MerchantID: sub.MerchantID, SubjectID: sub.ID, CreatedAt: sub.CreatedAt, UpdatedAt: sub.UpdatedAt})
			}
		}
		if len(docs) == 0 {
			continue
		}
		if err := s.insertAbsent(ctx, collSubjects, docs); err != nil {
			return err
		}
	}
	return nil
}

// insertAbsent inserts docs into coll, skipping those whose _id is taken.
func (s *Store) insertAbsent(ctx context.Context, coll string, docs []any) error {
	if s.local {
		enc, err := encodeAll(docs)
		if err != nil {
			return apperr.Wrap(err, "encode %s documents", coll)
		}
		defer s.writing()()
		_, err = s.embedded.inFileTx(ctx, func(tx *fileTx) (int, error) {
			total := 0
			for len(enc) > 0 {
				n, err := tx.insert(coll, enc)
				total += n
				if !apperr.Is(err, apperr.Conflict) {
					return total, err
				}
				enc = enc[n+1:] // enc[n] was taken meanwhile
			}
			return total, nil
		})
		s.noteWrite(err)
		return err
	}
	defer s.writing()()
	_, err := s.db.Collection(coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
	if onlyDuplicates(err) {
		err = nil // every document refused exists
	}
	s.noteWrite(err)
	return storeError(err, "insert into %s", coll)
}

// onlyDuplicates reports whether err is an unordered insert's refusal of
// documents that exist, and of nothing else.
func onlyDuplicates(err error) bool {
	var bwe mongo.BulkWriteException
	if !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 {
		return false
	}
	for _, we := range bwe.WriteErrors {
		if !mongo.IsDuplicateKeyError(we) {
			return false
		}
	}
	return true
}

// EachSubject calls fn for every subject of every merchant.
func (s *Store) EachSubject(ctx context.Context, fn func(merchantID, subjectID string) error) error {
	cur, err := s.db.Collection(collSubjects).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "merchant_id", Value: 1}, {Key: "subject_id", Value: 1}}))
	if err != nil {
		return storeError(err, "list subjects")
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d subjectDoc
		if err := cur.Decode(&d); err != nil {
			return storeError(err, "list subjects")
		}
		if err := fn(d.MerchantID, d.SubjectID); err != nil {
			return err
		}
	}
	return storeError(cur.Err(), "list subjects")
}
