package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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
	SubjectID  string    `bson:"subject_id"`
	CreatedAt  time.Time `bson:"created_at"`
	ExpiresAt  time.Time `bson:"expires_at"`
}

// SaveLinkToken stores a sign-in link by the hash of its secret.
func (s *Store) SaveLinkToken(ctx context.Context, t signin.LinkToken) error {
	return apperr.Wrap(s.insertOne(ctx, collLinkTokens, linkTokenDoc(t)), "save sign-in link")
}

// LinkToken returns a sign-in link by hash.
func (s *Store) LinkToken(ctx context.Context, hash string) (signin.LinkToken, error) {
	var d linkTokenDoc
	if err := s.db.Collection(collLinkTokens).FindOne(ctx, bson.D{{Key: "_id", Value: hash}}).Decode(&d); err != nil {
		return signin.LinkToken{}, notFound(err, "sign-in link")
	}
	return signin.LinkToken{Hash: d.Hash, MerchantID: d.MerchantID, SubjectID: d.SubjectID, CreatedAt: d.CreatedAt.UTC(), ExpiresAt: d.ExpiresAt.UTC()}, nil
}

// UseLinkToken records the use of a link with a unique insert: of two
// concurrent uses exactly one inserts.
func (s *Store) UseLinkToken(ctx context.Context, hash string, at time.Time) (bool, error) {
	err := s.insertOne(ctx, collLinkUses, bson.D{{Key: "_id", Value: hash}, {Key: "at", Value: at}})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, apperr.Wrap(err, "use sign-in link")
}

// EndSession records an ended session until it would have expired.
func (s *Store) EndSession(ctx context.Context, id string, expires time.Time) error {
	err := s.insertOne(ctx, collEndedSessions, bson.D{{Key: "_id", Value: id}, {Key: "expires_at", Value: expires}})
	if mongo.IsDuplicateKeyError(err) {
		return nil
	}
	return apperr.Wrap(err, "end session")
}

// SessionEnded reports whether a session was ended: a point read.
func (s *Store) SessionEnded(ctx context.Context, id string) (bool, error) {
	err := s.db.Collection(collEndedSessions).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, apperr.Wrap(err, "read session")
}

// emailKey is the _id of a subject's email lookup: the merchant and a hash
// of the lower-cased address, so the address itself is not a key.
func emailKey(merchantID, email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(email)))
	return id(merchantID, hex.EncodeToString(sum[:]))
}

type emailDoc struct {
	ID        string `bson:"_id"`
	SubjectID string `bson:"subject_id"`
}

// indexEmail points the subject's email at it. A stale pointer (the
// subject changed address) is harmless: SubjectByEmail checks the subject.
func (s *Store) indexEmail(ctx context.Context, sub consent.Subject) error {
	if sub.Email == "" {
		return nil
	}
	k := emailKey(sub.MerchantID, sub.Email)
	return apperr.Wrap(s.replaceByID(ctx, collSubjectEmails, k, emailDoc{ID: k, SubjectID: sub.ID}), "index subject email")
}

// SubjectByEmail finds the merchant's subject with this email: two point reads.
func (s *Store) SubjectByEmail(ctx context.Context, merchantID, email string) (consent.Subject, error) {
	var d emailDoc
	if err := s.db.Collection(collSubjectEmails).FindOne(ctx, bson.D{{Key: "_id", Value: emailKey(merchantID, email)}}).Decode(&d); err != nil {
		return consent.Subject{}, notFound(err, "subject")
	}
	sub, err := s.Subject(ctx, merchantID, d.SubjectID)
	if err != nil {
		return consent.Subject{}, err
	}
	if !strings.EqualFold(sub.Email, email) {
		return consent.Subject{}, apperr.New(apperr.NotFound, "subject not found")
	}
	return sub, nil
}

type changeDoc struct {
	Purpose string `bson:"purpose"`
	State   string `bson:"state"`
}

type receiptDoc struct {
	ID         string      `bson:"_id"`
	MerchantID string      `bson:"merchant_id"`
	SubjectID  string      `bson:"subject_id"`
	Token      string      `bson:"token"`
	CreatedAt  time.Time   `bson:"created_at"`
	Changes    []changeDoc `bson:"changes"`
}

// SaveReceipt stores an issued receipt.
func (s *Store) SaveReceipt(ctx context.Context, r receipts.Issued) error {
	d := receiptDoc{ID: r.ID, MerchantID: r.MerchantID, SubjectID: r.SubjectID, Token: r.Token, CreatedAt: r.CreatedAt, Changes: []changeDoc{}}
	for _, c := range r.Changes {
		d.Changes = append(d.Changes, changeDoc(c))
	}
	return apperr.Wrap(s.insertOne(ctx, collReceipts, d), "save receipt")
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
