package store

import (
	"context"
	"errors"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/offers"
)

var _ offers.Store = (*Store)(nil)

type incentiveNoticeDoc struct {
	Summary         string `bson:"summary"`
	MaterialTerms   string `bson:"material_terms"`
	HowToOptIn      string `bson:"how_to_opt_in"`
	RightToWithdraw string `bson:"right_to_withdraw"`
	ValueEstimate   string `bson:"value_estimate"`
	ValueMethod     string `bson:"value_method"`
}

type offerTextDoc struct {
	Title  string             `bson:"title"`
	Reward string             `bson:"reward"`
	Notice incentiveNoticeDoc `bson:"notice"`
}

type birthdayDoc struct {
	Field     string `bson:"field"`
	On        string `bson:"on"`
	ValidDays int    `bson:"valid_days"`
}

type offerDoc struct {
	ID            string                  `bson:"_id"`
	MerchantID    string                  `bson:"merchant_id"`
	Key           string                  `bson:"key"`
	Purpose       string                  `bson:"purpose"`
	Fields        []string                `bson:"fields"`
	Texts         map[string]offerTextDoc `bson:"texts"`
	DefaultLocale string                  `bson:"default_locale"`
	Birthday      *birthdayDoc            `bson:"birthday,omitempty"`
	CreatedAt     time.Time               `bson:"created_at"`
}

func (d offerDoc) offer() offers.Offer {
	o := offers.Offer{MerchantID: d.MerchantID, Key: d.Key, Purpose: d.Purpose, Fields: d.Fields, Texts: map[string]offers.Text{},
		DefaultLocale: d.DefaultLocale, CreatedAt: d.CreatedAt.UTC()}
	for l, t := range d.Texts {
		o.Texts[l] = offers.Text{Title: t.Title, Reward: t.Reward, Notice: offers.Notice(t.Notice)}
	}
	if d.Birthday != nil {
		o.Birthday = &offers.Birthday{Field: d.Birthday.Field, On: offers.Trigger(d.Birthday.On), ValidDays: d.Birthday.ValidDays}
	}
	return o
}

// CreateOffer stores a new offer under "<merchant>/<key>".
func (s *Store) CreateOffer(ctx context.Context, o offers.Offer) error {
	d := offerDoc{ID: id(o.MerchantID, o.Key), MerchantID: o.MerchantID, Key: o.Key, Purpose: o.Purpose, Fields: o.Fields,
		Texts: map[string]offerTextDoc{}, DefaultLocale: o.DefaultLocale, CreatedAt: o.CreatedAt}
	for l, t := range o.Texts {
		d.Texts[l] = offerTextDoc{Title: t.Title, Reward: t.Reward, Notice: incentiveNoticeDoc(t.Notice)}
	}
	if b := o.Birthday; b != nil {
		d.Birthday = &birthdayDoc{Field: b.Field, On: string(b.On), ValidDays: b.ValidDays}
	}
	// The merchant's offer purposes first, so that no offer is without
	// its entry there (one left by a failed insert lists a purpose too many).
	if err := s.addOfferPurpose(ctx, o.MerchantID, o.Purpose); err != nil {
		return storeError(err, "create offer")
	}
	err := s.insertOne(ctx, collOffers, d)
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "offer %q already exists", o.Key).WithDetail("offer_exists")
	}
	return storeError(err, "create offer")
}

func (s *Store) addOfferPurpose(ctx context.Context, merchantID, purpose string) error {
	defer s.writing()()
	_, err := s.db.Collection(collOfferPurposes).UpdateOne(ctx, bson.D{{Key: "_id", Value: merchantID}},
		bson.D{{Key: "$addToSet", Value: bson.D{{Key: "purposes", Value: purpose}}}}, options.UpdateOne().SetUpsert(true))
	s.noteWrite(err)
	return err
}

// OfferPurposes lists the purposes the merchant's offers grant: a point read.
func (s *Store) OfferPurposes(ctx context.Context, merchantID string) ([]string, error) {
	var d struct {
		Purposes []string `bson:"purposes"`
	}
	err := s.db.Collection(collOfferPurposes).FindOne(ctx, bson.D{{Key: "_id", Value: merchantID}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		// Offers made before the list was kept: list them once, and keep it.
		os, err := s.Offers(ctx, merchantID)
		if err != nil {
			return nil, err
		}
		update := bson.D{{Key: "$setOnInsert", Value: bson.D{{Key: "purposes", Value: bson.A{}}}}}
		for _, o := range os {
			d.Purposes = append(d.Purposes, o.Purpose)
		}
		if len(d.Purposes) > 0 {
			update = bson.D{{Key: "$addToSet", Value: bson.D{{Key: "purposes", Value: bson.D{{Key: "$each", Value: d.Purposes}}}}}}
		}
		defer s.writing()()
		_, err = s.db.Collection(collOfferPurposes).UpdateOne(ctx, bson.D{{Key: "_id", Value: merchantID}}, update, options.UpdateOne().SetUpsert(true))
		s.noteWrite(err)
		return d.Purposes, storeError(err, "keep offer purposes")
	}
	return d.Purposes, storeError(err, "read offer purposes")
}

// Offer returns one offer: a point read.
func (s *Store) Offer(ctx context.Context, merchantID, key string) (offers.Offer, error) {
	return findOne(ctx, s, collOffers, id(merchantID, key), "offer", offerDoc.offer)
}

// Offers lists the merchant's offers by key.
func (s *Store) Offers(ctx context.Context, merchantID string) ([]offers.Offer, error) {
	return listByMerchant(ctx, s, collOffers, merchantID, "key", offerDoc.offer)
}

// AllOffers lists every offer.
func (s *Store) AllOffers(ctx context.Context) ([]offers.Offer, error) {
	return list(ctx, s, collOffers, bson.D{}, "_id", offerDoc.offer)
}

// rewardDoc is a reward under "<merchant>/<offer>/<subject>/<period>": the
// unique key that makes issuing idempotent across runs and instances.
type rewardDoc struct {
	ID           string    `bson:"_id"`
	MerchantID   string    `bson:"merchant_id"`
	Offer        string    `bson:"offer"`
	SubjectID    string    `bson:"subject_id"`
	Period       string    `bson:"period"`
	Code         string    `bson:"code"`
	IssuedAt     time.Time `bson:"issued_at"`
	ValidFrom    time.Time `bson:"valid_from"`
	ValidUntil   time.Time `bson:"valid_until"`
	Mail         string    `bson:"mail"`
	MailAttempts int       `bson:"mail_attempts"`
	MailReason   string    `bson:"mail_reason,omitempty"`
	MailNextAt   time.Time `bson:"mail_next_at"`
	LeaseOwner   string    `bson:"lease_owner,omitempty"`
	LeaseUntil   time.Time `bson:"lease_until"`
}

func (d rewardDoc) reward() offers.Reward {
	return offers.Reward{MerchantID: d.MerchantID, Offer: d.Offer, SubjectID: d.SubjectID, Period: d.Period, Code: d.Code,
		IssuedAt: d.IssuedAt.UTC(), ValidFrom: d.ValidFrom.UTC(), ValidUntil: d.ValidUntil.UTC(), Mail: offers.MailState(d.Mail),
		MailAttempts: d.MailAttempts, MailReason: d.MailReason, MailNextAt: d.MailNextAt.UTC(), LeaseOwner: d.LeaseOwner, LeaseUntil: d.LeaseUntil.UTC()}
}

func rewardID(r offers.Reward) string { return id(r.MerchantID, r.Offer, r.SubjectID, r.Period) }

func toRewardDoc(r offers.Reward) rewardDoc {
	return rewardDoc{ID: rewardID(r), MerchantID: r.MerchantID, Offer: r.Offer, SubjectID: r.SubjectID, Period: r.Period, Code: r.Code,
		IssuedAt: r.IssuedAt, ValidFrom: r.ValidFrom, ValidUntil: r.ValidUntil, Mail: string(r.Mail), MailAttempts: r.MailAttempts,
		MailReason: r.MailReason, MailNextAt: r.MailNextAt, LeaseOwner: r.LeaseOwner, LeaseUntil: r.LeaseUntil}
}

// rewardCodeDoc finds a reward by its code: "<merchant>/<code>".
type rewardCodeDoc struct {
	ID       string `bson:"_id"`
	RewardID string `bson:"reward_id"`
}

// redemptionDoc marks a reward used; its unique _id (the reward's) makes
// redeeming once an insert that only one caller wins.
type redemptionDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	RedeemedAt time.Time `bson:"redeemed_at"`
}

// IssueReward inserts the reward unless its key exists, then its code
// entry (again after a crash between the two: the code is the same).
func (s *Store) IssueReward(ctx context.Context, r offers.Reward) (bool, error) {
	d := toRewardDoc(r)
	err := s.insertOne(ctx, collRewards, d)
	inserted := err == nil
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return false, storeError(err, "issue reward")
	}
	err = s.insertOne(ctx, collRewardCodes, rewardCodeDoc{ID: id(r.MerchantID, r.Code), RewardID: d.ID})
	if err != nil && !mongo.IsDuplicateKeyError(err) {
		return inserted, storeError(err, "index reward code")
	}
	return inserted, nil
}

// withRedemption fills in when the reward was redeemed.
func (s *Store) withRedemption(ctx context.Context, r offers.Reward) (offers.Reward, error) {
	var d redemptionDoc
	err := s.db.Collection(collRedemptions).FindOne(ctx, bson.D{{Key: "_id", Value: rewardID(r)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return r, nil
	}
	if err != nil {
		return offers.Reward{}, storeError(err, "read redemption")
	}
	r.RedeemedAt = d.RedeemedAt.UTC()
	return r, nil
}

// RewardByCode returns the merchant's reward with this code.
func (s *Store) RewardByCode(ctx context.Context, merchantID, code string) (offers.Reward, error) {
	var c rewardCodeDoc
	if err := s.db.Collection(collRewardCodes).FindOne(ctx, bson.D{{Key: "_id", Value: id(merchantID, code)}}).Decode(&c); err != nil {
		return offers.Reward{}, notFound(err, "reward")
	}
	r, err := findOne(ctx, s, collRewards, c.RewardID, "reward", rewardDoc.reward)
	if err != nil {
		return offers.Reward{}, err
	}
	return s.withRedemption(ctx, r)
}

// Rewards lists a subject's rewards, newest first.
func (s *Store) Rewards(ctx context.Context, merchantID, subjectID string) ([]offers.Reward, error) {
	cur, err := s.db.Collection(collRewards).Find(ctx, bson.D{{Key: "merchant_id", Value: merchantID}, {Key: "subject_id", Value: subjectID}},
		options.Find().SetSort(bson.D{{Key: "issued_at", Value: -1}}))
	if err != nil {
		return nil, storeError(err, "list rewards")
	}
	var docs []rewardDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "list rewards")
	}
	out := make([]offers.Reward, 0, len(docs))
	for _, d := range docs {
		r, err := s.withRedemption(ctx, d.reward())
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

// Redeem inserts the reward's redemption; a second one is a duplicate key.
func (s *Store) Redeem(ctx context.Context, r offers.Reward, at time.Time) (bool, error) {
	err := s.insertOne(ctx, collRedemptions, redemptionDoc{ID: rewardID(r), MerchantID: r.MerchantID, RedeemedAt: at})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	return err == nil, storeError(err, "redeem reward")
}

// PendingMail lists rewards whose email is due and not leased.
func (s *Store) PendingMail(ctx context.Context, now time.Time, limit int) ([]offers.Reward, error) {
	cur, err := s.db.Collection(collRewards).Find(ctx, bson.D{{Key: "mail", Value: string(offers.MailPending)}, {Key: "mail_next_at", Value: bson.D{{Key: "$lte", Value: now}}}},
		options.Find().SetSort(bson.D{{Key: "mail_next_at", Value: 1}}).SetLimit(int64(4*limit)))
	if err != nil {
		return nil, storeError(err, "list reward mail")
	}
	var docs []rewardDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "list reward mail")
	}
	var out []offers.Reward
	for _, d := range docs {
		if d.LeaseUntil.After(now) {
			continue
		}
		out = append(out, d.reward())
		if len(out) == limit {
			break
		}
	}
	return out, nil
}

// ClaimMail leases a reward's email: the reward is read and, if its email
// is due and not leased, the lease taken from that state (see leases.go);
// on the embedded store, under an in-process lock.
func (s *Store) ClaimMail(ctx context.Context, r offers.Reward, owner string, now, until time.Time) (bool, error) {
	rid := rewardID(r)
	if s.local {
		defer s.casLock(rid)()
	}
	var d rewardDoc
	if err := s.db.Collection(collRewards).FindOne(ctx, bson.D{{Key: "_id", Value: rid}}).Decode(&d); err != nil {
		return false, notFound(err, "reward")
	}
	if d.Mail != string(offers.MailPending) || d.LeaseUntil.After(now) || d.MailNextAt.After(now) || d.MailAttempts != r.MailAttempts {
		return false, nil
	}
	ok, err := s.lease(ctx, collRewards, rid, d.MailAttempts, d.LeaseUntil, owner, now, until)
	return ok, storeError(err, "claim reward mail")
}

// FinishMail stores the email's outcome.
func (s *Store) FinishMail(ctx context.Context, r offers.Reward) error {
	d := toRewardDoc(r)
	return storeError(s.replaceByID(ctx, collRewards, d.ID, d), "record reward mail")
}
