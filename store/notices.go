package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
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
	Deadline    time.Time                `bson:"deadline,omitempty"`
	Wordings    []wordingDoc             `bson:"wordings,omitempty"`
}

// wordingDoc is new words for a purpose that a version carries.
type wordingDoc struct {
	Purpose        string             `bson:"purpose"`
	Texts          map[string]textDoc `bson:"texts"`
	DataCategories []string           `bson:"data_categories,omitempty"`
	// Categories says DataCategories is set (an empty list included).
	Categories bool `bson:"categories"`
}

func noticeID(merchantID string, n int) string { return id(merchantID, fmt.Sprintf("%06d", n)) }

func toNoticeDoc(v notices.Version) noticeDoc {
	d := noticeDoc{ID: noticeID(v.MerchantID, v.Number), MerchantID: v.MerchantID, Number: v.Number, Status: string(v.Status),
		Texts: map[string]noticeTextDoc{}, PolicyURL: v.PolicyURL, Material: v.Material, Purposes: v.Purposes,
		CreatedAt: v.CreatedAt, PublishedAt: v.PublishedAt, EffectiveAt: v.EffectiveAt, Deadline: v.Deadline}
	if d.Purposes == nil {
		d.Purposes = []string{}
	}
	for l, t := range v.Texts {
		d.Texts[l] = noticeTextDoc(t)
	}
	for _, w := range v.Wordings {
		wd := wordingDoc{Purpose: w.Purpose, Texts: map[string]textDoc{}, DataCategories: w.DataCategories, Categories: w.DataCategories != nil}
		for l, t := range w.Texts {
			wd.Texts[l] = textDoc(t)
		}
		d.Wordings = append(d.Wordings, wd)
	}
	return d
}

// CreateVersion inserts a new version; Conflict if the number is taken.
func (s *Store) CreateVersion(ctx context.Context, v notices.Version) error {
	err := s.insertOne(ctx, collNotices, toNoticeDoc(v))
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "version %d exists", v.Number)
	}
	return storeError(err, "create notice version")
}

// PutVersion replaces a notice version.
func (s *Store) PutVersion(ctx context.Context, v notices.Version) error {
	d := toNoticeDoc(v)
	return storeError(s.replaceByID(ctx, collNotices, d.ID, d), "save notice version")
}

// DeleteVersion removes a notice version.
func (s *Store) DeleteVersion(ctx context.Context, merchantID string, number int) error {
	_, err := s.deleteByID(ctx, collNotices, noticeID(merchantID, number))
	return storeError(err, "delete notice version")
}

// Version returns one notice version: a point read.
func (s *Store) Version(ctx context.Context, merchantID string, number int) (notices.Version, error) {
	return findOne(ctx, s, collNotices, noticeID(merchantID, number), "notice version", noticeDoc.version)
}

func (d noticeDoc) version() notices.Version {
	v := notices.Version{MerchantID: d.MerchantID, Number: d.Number, Status: notices.Status(d.Status), Texts: map[string]notices.Summary{},
		PolicyURL: d.PolicyURL, Material: d.Material, Purposes: d.Purposes, CreatedAt: d.CreatedAt.UTC(), PublishedAt: d.PublishedAt.UTC(),
		EffectiveAt: d.EffectiveAt.UTC(), Deadline: d.Deadline.UTC()}
	for l, t := range d.Texts {
		v.Texts[l] = notices.Summary(t)
	}
	for _, wd := range d.Wordings {
		w := consent.Wording{Purpose: wd.Purpose, Texts: map[string]consent.Text{}}
		for l, t := range wd.Texts {
			w.Texts[l] = consent.Text(t)
		}
		if wd.Categories {
			w.DataCategories = append([]string{}, wd.DataCategories...)
		}
		v.Wordings = append(v.Wordings, w)
	}
	if v.Deadline.IsZero() {
		v.Deadline = v.EffectiveAt
	}
	return v
}

type publishedDoc struct {
	Number      int       `bson:"number"`
	Material    bool      `bson:"material"`
	Purposes    []string  `bson:"purposes"`
	EffectiveAt time.Time `bson:"effective_at"`
	Deadline    time.Time `bson:"deadline"`
}

// noticeHeadDoc indexes a merchant's versions under the merchant's id.
type noticeHeadDoc struct {
	MerchantID string         `bson:"_id"`
	Highest    int            `bson:"highest"`
	Published  []publishedDoc `bson:"published"`
	// Latest is the single number kept before publication records existed.
	Latest int `bson:"latest,omitempty"`
}

func (s *Store) head(ctx context.Context, merchantID string) (noticeHeadDoc, bool, error) {
	var d noticeHeadDoc
	err := s.db.Collection(collNoticeHeads).FindOne(ctx, bson.D{{Key: "_id", Value: merchantID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return noticeHeadDoc{MerchantID: merchantID}, false, nil
	}
	return d, err == nil, storeError(err, "read notice head")
}

// Head returns the merchant's index of notice versions: a point read.
func (s *Store) Head(ctx context.Context, merchantID string) (notices.Head, error) {
	d, _, err := s.head(ctx, merchantID)
	if err != nil {
		return notices.Head{}, err
	}
	h := notices.Head{Highest: max(d.Highest, d.Latest)}
	seen := map[int]bool{}
	for _, p := range d.Published {
		if seen[p.Number] {
			continue
		}
		seen[p.Number] = true
		h.Published = append(h.Published, consent.PublishedVersion{Number: p.Number, Material: p.Material, Purposes: p.Purposes, EffectiveAt: p.EffectiveAt.UTC(), Deadline: p.Deadline.UTC()})
	}
	// A head written before publication records existed knows only its
	// latest number: read those versions once.
	if len(h.Published) == 0 && d.Latest > 0 {
		for n := 1; n <= d.Latest; n++ {
			v, err := s.Version(ctx, merchantID, n)
			if apperr.Is(err, apperr.NotFound) {
				continue
			}
			if err != nil {
				return notices.Head{}, err
			}
			if v.Status == notices.Published {
				h.Published = append(h.Published, consent.PublishedVersion{Number: n, Material: v.Material, Purposes: v.Purposes, EffectiveAt: v.EffectiveAt, Deadline: v.Deadline})
			}
		}
	}
	return h, nil
}

// NoteCreated raises the head's highest version number.
func (s *Store) NoteCreated(ctx context.Context, merchantID string, number int) error {
	defer s.writing()()
	c := s.db.Collection(collNoticeHeads)
	filter := bson.D{{Key: "_id", Value: merchantID}}
	update := bson.D{{Key: "$max", Value: bson.D{{Key: "highest", Value: number}}}}
	_, err := c.UpdateOne(ctx, filter, update, options.UpdateOne().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		_, err = c.UpdateOne(ctx, filter, update)
	}
	return storeError(err, "note notice version")
}

// NotePublished appends a publication to the head unless it is there.
func (s *Store) NotePublished(ctx context.Context, merchantID string, p consent.PublishedVersion) error {
	d, _, err := s.head(ctx, merchantID)
	if err != nil {
		return err
	}
	for _, q := range d.Published {
		if q.Number == p.Number {
			return nil
		}
	}
	entry := publishedDoc{Number: p.Number, Material: p.Material, Purposes: p.Purposes, EffectiveAt: p.EffectiveAt, Deadline: p.Deadline}
	if entry.Purposes == nil {
		entry.Purposes = []string{}
	}
	_, err = s.updateByID(ctx, collNoticeHeads, merchantID, bson.D{{Key: "$push", Value: bson.D{{Key: "published", Value: entry}}}})
	return storeError(err, "note notice publication")
}
