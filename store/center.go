package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/signin"
)

var (
	_ signin.Store   = (*Store)(nil)
	_ receipts.Store = (*Store)(nil)
)

type linkTokenDoc struct {
	Hash       string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	SubjectIDs []string  `bson:"subject_ids"`
	StaffID    string    `bson:"staff_id,omitempty"`
	CreatedAt  time.Time `bson:"created_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
}

// SaveLinkToken stores a sign-in link by the hash of its secret.
func (s *Store) SaveLinkToken(ctx context.Context, t signin.LinkToken) error {
	d := linkTokenDoc{Hash: t.Hash, MerchantID: t.MerchantID, SubjectIDs: t.SubjectIDs, StaffID: t.StaffID, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
	return storeError(s.insertOne(ctx, collLinkTokens, d), "save sign-in link")
}

// LinkToken returns a sign-in link by hash.
func (s *Store) LinkToken(ctx context.Context, hash string) (signin.LinkToken, error) {
	var d linkTokenDoc
	if err := s.db.Collection(collLinkTokens).FindOne(ctx, bson.D{{Key: "_id", Value: hash}}).Decode(&d); err != nil {
		return signin.LinkToken{}, notFound(err, "sign-in link")
	}
	return signin.LinkToken{Hash: d.Hash, MerchantID: d.MerchantID, SubjectIDs: d.SubjectIDs, StaffID: d.StaffID, CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}, nil
}

// UseLinkToken records the use of a link with a unique insert: of two
// concurrent uses exactly one inserts.
func (s *Store) UseLinkToken(ctx context.Context, hash string, at time.Time) (bool, error) {
	err := s.insertOne(ctx, collLinkUses, bson.D{{Key: "_id", Value: hash}, {Key: "at", Value: at}})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, storeError(err, "use sign-in link")
}

// EndSession records an ended session until it would have expired.
func (s *Store) EndSession(ctx context.Context, id string, expires time.Time) error {
	err := s.insertOne(ctx, collEndedSessions, bson.D{{Key: "_id", Value: id}, {Key: "expires_at", Value: expires}})
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return storeError(err, "end session")
}

// SessionEnded reports whether a session was ended: a point read.
func (s *Store) SessionEnded(ctx context.Context, id string) (bool, error) {
	err := s.db.Collection(collEndedSessions).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, storeError(err, "read session")
}

// emailKey is the _id of an address's entry in the email lookup: the
// merchant and a hash of the lower-cased address, so the address itself is
// not a key.
func emailKey(merchantID, email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return id(merchantID, hex.EncodeToString(sum[:]))
}

// emailDoc lists the subjects that have (or had) one address: several
// subjects may share it. An entry that no longer matches its subject is
// harmless (SubjectsByEmail checks each subject); a missing one would lock
// the subject out of signing in, so entries are added before a subject
// takes an address and removed only after it left it.
type emailDoc struct {
	ID       string   `bson:"_id"`
	Subjects []string `bson:"subjects"`
	// SubjectID is the one subject an entry written before addresses were
	// shared names; it still counts.
	SubjectID string `bson:"subject_id,omitempty"`
}

// all lists every subject the entry names.
func (d emailDoc) all() []string {
	if d.SubjectID != "" && !slices.Contains(d.Subjects, d.SubjectID) {
		return append([]string{d.SubjectID}, d.Subjects...)
	}
	return d.Subjects
}

// maxPerEmail bounds the subjects one address lists.
const maxPerEmail = 50

// editEmail changes an address's entry on the embedded store: a read and a
// replace under the in-process lock (one process owns that store). edit
// returns the subjects to keep, or false to write nothing.
func (s *Store) editEmail(ctx context.Context, k string, edit func(subjects []string) ([]string, bool)) error {
	defer s.casLock(k)()
	var d emailDoc
	err := s.db.Collection(collSubjectEmails).FindOne(ctx, bson.D{{Key: "_id", Value: k}}).Decode(&d)
	if err != nil && !errors.Is(err, mongo.ErrNoDocuments) {
		return storeError(err, "read subject email")
	}
	subjects, write := edit(d.all())
	if !write {
		return nil
	}
	return storeError(s.replaceByID(ctx, collSubjectEmails, k, emailDoc{ID: k, Subjects: subjects}), "index subject email")
}

// addEmail lists the subject under its address.
func (s *Store) addEmail(ctx context.Context, merchantID, email, subjectID string) error {
	if email == "" {
		return nil
	}
	k := emailKey(merchantID, email)
	if s.local {
		return s.editEmail(ctx, k, func(subjects []string) ([]string, bool) {
			if slices.Contains(subjects, subjectID) {
				return nil, false
			}
			subjects = append(subjects, subjectID)
			return subjects[max(0, len(subjects)-maxPerEmail):], true
		})
	}
	_, err := s.db.Collection(collSubjectEmails).UpdateOne(ctx, bson.D{{Key: "_id", Value: k}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "subjects", Value: subjectID}}}}, options.UpdateOne().SetUpsert(true))
	return storeError(err, "index subject email")
}

// dropEmail removes the subject from an address it left.
func (s *Store) dropEmail(ctx context.Context, merchantID, email, subjectID string) error {
	if email == "" {
		return nil
	}
	k := emailKey(merchantID, email)
	if s.local {
		return s.editEmail(ctx, k, func(subjects []string) ([]string, bool) {
			if !slices.Contains(subjects, subjectID) {
				return nil, false
			}
			return slices.DeleteFunc(subjects, func(x string) bool { return x == subjectID }), true
		})
	}
	_, err := s.db.Collection(collSubjectEmails).UpdateOne(ctx, bson.D{{Key: "_id", Value: k}},
		bson.D{{Key: "$pull", Value: bson.D{{Key: "subjects", Value: subjectID}}}})
	if err == nil {
		_, err = s.db.Collection(collSubjectEmails).UpdateOne(ctx, bson.D{{Key: "_id", Value: k}, {Key: "subject_id", Value: subjectID}},
			bson.D{{Key: "$unset", Value: bson.D{{Key: "subject_id", Value: ""}}}})
	}
	return storeError(err, "unindex subject email")
}

// SubjectsByEmail finds the merchant's subjects with this email: a point
// read of the address's entry, then one per subject it lists.
func (s *Store) SubjectsByEmail(ctx context.Context, merchantID, email string) ([]consent.Subject, error) {
	var d emailDoc
	err := s.db.Collection(collSubjectEmails).FindOne(ctx, bson.D{{Key: "_id", Value: emailKey(merchantID, email)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err, "read subject email")
	}
	var out []consent.Subject
	for _, sid := range d.all() {
		sub, err := s.Subject(ctx, merchantID, sid)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if strings.EqualFold(sub.Email, email) {
			out = append(out, sub)
		}
	}
	slices.SortFunc(out, func(a, b consent.Subject) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

type changeDoc struct {
	Purpose string `bson:"purpose"`
	State   string `bson:"state"`
	Level   string `bson:"level,omitempty"`
}

type receiptDoc struct {
	ID         string      `bson:"_id"`
	MerchantID string      `bson:"merchant_id"`
	SubjectID  string      `bson:"subject_id"`
	Token      string      `bson:"token"`
	CreatedAt  time.Time   `bson:"created_at"`
	Changes    []changeDoc `bson:"changes"`
}

// SaveReceipt stores an issued receipt, its entry in the subject's list
// first (an entry without its receipt, after a crash, is skipped).
func (s *Store) SaveReceipt(ctx context.Context, r receipts.Issued) error {
	if err := s.insertOne(ctx, collSubjectReceipts, subjectEntryDoc{ID: id(r.MerchantID, r.SubjectID, r.ID)}); err != nil {
		return storeError(err, "save receipt")
	}
	d := receiptDoc{ID: r.ID, MerchantID: r.MerchantID, SubjectID: r.SubjectID, Token: r.Token, CreatedAt: r.CreatedAt, Changes: []changeDoc{}}
	for _, c := range r.Changes {
		d.Changes = append(d.Changes, changeDoc(c))
	}
	return storeError(s.insertOne(ctx, collReceipts, d), "save receipt")
}

// SubjectReceipts lists the subject's receipts (those issued since receipts
// were listed per subject), oldest first.
func (s *Store) SubjectReceipts(ctx context.Context, merchantID, subjectID string) ([]receipts.Issued, error) {
	ids, err := s.subjectEntries(ctx, collSubjectReceipts, merchantID, subjectID)
	if err != nil {
		return nil, err
	}
	var out []receipts.Issued
	for _, rid := range ids {
		r, err := s.Receipt(ctx, rid)
		if apperr.Is(err, apperr.NotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b receipts.Issued) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

// Receipt returns one receipt: a point read.
func (s *Store) Receipt(ctx context.Context, rid string) (receipts.Issued, error) {
	var d receiptDoc
	if err := s.db.Collection(collReceipts).FindOne(ctx, bson.D{{Key: "_id", Value: rid}}).Decode(&d); err != nil {
		return receipts.Issued{}, notFound(err, "receipt")
	}
	r := receipts.Issued{ID: d.ID, MerchantID: d.MerchantID, SubjectID: d.SubjectID, Token: d.Token, CreatedAt: d.CreatedAt.UTC()}
	for _, c := range d.Changes {
		r.Changes = append(r.Changes, receipts.Change(c))
	}
	return r, nil
}
