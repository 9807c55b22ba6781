package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/notices"
)

var _ notices.Store = (*Store)(nil)

type noticeTextDoc struct {
	Summary string `bson:"summary"`
	Text    string `bson:"text"`
}

type noticeDoc struct {
	ID          string                   `bson:"_id"`
	MerchantID  string                   `bson:"merchant_id"`
	Number      int                      `bson:"number"`
	Status      string                   `bson:"status"`
	Texts       map[string]noticeTextDoc `bson:"texts"`
	PolicyURL   string                   `bson:"policy_url"`
	Material    bool                     `bson:"material"`
	Purposes    []string                 `bson:"purposes"`
	CreatedAt   time.Time                `bson:"created_at"`
	PublishedAt time.Time                `bson:"published_at,omitempty"`
	EffectiveAt time.Time                `bson:"effective_at,omitempty"`
}

func noticeID(merchantID string, n int) string { return id(merchantID, fmt.Sprintf("%06d", n)) }

// PutVersion creates or replaces a notice version.
func (s *Store) PutVersion(ctx context.Context, v notices.Version) error {
	d := noticeDoc{ID: noticeID(v.MerchantID, v.Number), MerchantID: v.MerchantID, Number: v.Number, Status: string(v.Status),
		Texts: map[string]noticeTextDoc{}, PolicyURL: v.PolicyURL, Material: v.Material, Purposes: v.Purposes,
		CreatedAt: v.CreatedAt, PublishedAt: v.PublishedAt, EffectiveAt: v.EffectiveAt}
	if d.Purposes == nil {
		d.Purposes = []string{}
	}
	for l, t := range v.Texts {
		d.Texts[l] = noticeTextDoc(t)
	}
	return apperr.Wrap(s.replaceByID(ctx, collNotices, d.ID, d), "save notice version")
}

// Version returns one notice version: a point read.
func (s *Store) Version(ctx context.Context, merchantID string, number int) (notices.Version, error) {
	var d noticeDoc
	if err := s.db.Collection(collNotices).FindOne(ctx, bson.D{{Key: "_id", Value: noticeID(merchantID, number)}}).Decode(&d); err != nil {
		return notices.Version{}, notFound(err, "notice version")
	}
	v := notices.Version{MerchantID: d.MerchantID, Number: d.Number, Status: notices.Status(d.Status), Texts: map[string]notices.Summary{},
		PolicyURL: d.PolicyURL, Material: d.Material, Purposes: d.Purposes, CreatedAt: d.CreatedAt.UTC(), PublishedAt: d.PublishedAt.UTC(), EffectiveAt: d.EffectiveAt.UTC()}
	for l, t := range d.Texts {
		v.Texts[l] = notices.Summary(t)
	}
	return v, nil
}

type noticeHeadDoc struct {
	MerchantID string `bson:"_id"`
	Latest     int    `bson:"latest"`
}

// Latest returns the newest published version number, 0 if none.
func (s *Store) Latest(ctx context.Context, merchantID string) (int, error) {
	var d noticeHeadDoc
	err := s.db.Collection(collNoticeHeads).FindOne(ctx, bson.D{{Key: "_id", Value: merchantID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, apperr.Wrap(err, "read notice head")
	}
	return d.Latest, nil
}

// SetLatest records the newest published version number.
func (s *Store) SetLatest(ctx context.Context, merchantID string, number int) error {
	return apperr.Wrap(s.replaceByID(ctx, collNoticeHeads, merchantID, noticeHeadDoc{MerchantID: merchantID, Latest: number}), "save notice head")
}
