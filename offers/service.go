package offers

import (
	"context"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
)

// MailState is where a reward's email stands.
type MailState string

// Mail states.
const (
	MailPending MailState = "pending"
	MailSent    MailState = "sent"
	// MailSkipped: the subject has no email address.
	MailSkipped MailState = "skipped"
	MailFailed  MailState = "failed"
)

// Reward is a coupon issued to one subject for one offer and period.
type Reward struct {
	MerchantID string
	Offer      string
	SubjectID  string
	Period     string
	// Code is the coupon code without separators.
	Code       string
	IssuedAt   time.Time
	ValidFrom  time.Time
	ValidUntil time.Time
	// RedeemedAt is zero until the merchant redeems the code.
	RedeemedAt time.Time

	Mail         MailState
	MailAttempts int
	MailReason   string
	MailNextAt   time.Time
	LeaseOwner   string
	LeaseUntil   time.Time
}

// Store persists offers and rewards.
type Store interface {
	// CreateOffer stores a new offer; Conflict if the key exists.
	CreateOffer(ctx context.Context, o Offer) error
	// Offer returns one offer; NotFound if absent.
	Offer(ctx context.Context, merchantID, key string) (Offer, error)
	// Offers lists the merchant's offers by key.
	Offers(ctx context.Context, merchantID string) ([]Offer, error)
	// OfferPurposes lists the purposes the merchant's offers grant.
	OfferPurposes(ctx context.Context, merchantID string) ([]string, error)
	// AllOffers lists every merchant's offers.
	AllOffers(ctx context.Context) ([]Offer, error)
	// IssueReward stores r unless the subject has a reward for this offer
	// and period (a unique key); it reports whether it stored it.
	IssueReward(ctx context.Context, r Reward) (bool, error)
	// RewardByCode returns the merchant's reward with this code; NotFound if none.
	RewardByCode(ctx context.Context, merchantID, code string) (Reward, error)
	// Rewards lists a subject's rewards, newest first.
	Rewards(ctx context.Context, merchantID, subjectID string) ([]Reward, error)
	// Redeem marks a reward used at at, once: it reports false if it was
	// redeemed before.
	Redeem(ctx context.Context, r Reward, at time.Time) (bool, error)
	// PendingMail lists up to limit rewards whose email is due at now and not leased.
	PendingMail(ctx context.Context, now time.Time, limit int) ([]Reward, error)
	// ClaimMail leases a reward's email to owner until until, if it is
	// still pending, due and unleased with the same attempt count.
	ClaimMail(ctx context.Context, r Reward, owner string, now, until time.Time) (bool, error)
	// FinishMail stores the outcome of sending the reward's email.
	FinishMail(ctx context.Context, r Reward) error
}

// Service manages offers, accepting them, and rewards.
type Service struct {
	Store    Store
	Purposes *consent.Purposes
	Fields   *fields.Service
	Ledger   *consent.Ledger
	Codes    *Codes
	Now      func() time.Time
	// Notes, when set, tells merchants' systems of joins and rewards.
	Notes Recorder
}

// Recorder records what merchants' systems hear about beside the ledger
// (webhooks.Notes).
type Recorder interface {
	Record(ctx context.Context, merchantID, typ string, data map[string]any)
}

func (s *Service) note(ctx context.Context, merchantID, typ string, data map[string]any) {
	if s.Notes != nil {
		s.Notes.Record(ctx, merchantID, typ, data)
	}
}

// Create validates and stores an offer. Its purpose must exist and rest on
// consent; every field must exist and name the purpose among those that
// need it; a birthday field must be a date.
func (s *Service) Create(ctx context.Context, o Offer) (Offer, error) {
	if err := o.Validate(); err != nil {
		return Offer{}, err
	}
	p, err := s.Purposes.Get(ctx, o.MerchantID, o.Purpose)
	if apperr.Is(err, apperr.NotFound) {
		return Offer{}, apperr.New(apperr.Invalid, "unknown purpose %q", o.Purpose).WithDetail(consent.CodeUnknownPurpose)
	}
	if err != nil {
		return Offer{}, err
	}
	if p.LegalBasis != consent.BasisConsent {
		return Offer{}, apperr.New(apperr.Invalid, "an offer's purpose must rest on consent: the shopper opts in for the reward")
	}
	for _, key := range o.Fields {
		f, err := s.Fields.Get(ctx, o.MerchantID, key)
		if apperr.Is(err, apperr.NotFound) {
			return Offer{}, apperr.New(apperr.Invalid, "unknown field %q", key).WithDetail(fields.CodeUnknownField)
		}
		if err != nil {
			return Offer{}, err
		}
		if !f.Needs(o.Purpose) {
			return Offer{}, apperr.New(apperr.Invalid, "field %q does not list purpose %q among those that need it, so it could not be kept for this offer", key, o.Purpose).WithDetail("field_not_needed")
		}
		if o.Birthday != nil && o.Birthday.Field == key && f.Type != fields.TypeDate {
			return Offer{}, apperr.New(apperr.Invalid, "birthday_reward.field must be a date field")
		}
	}
	o.CreatedAt = s.Now().UTC().Truncate(time.Millisecond)
	if err := s.Store.CreateOffer(ctx, o); err != nil {
		return Offer{}, err
	}
	return o, nil
}

// Get returns one offer.
func (s *Service) Get(ctx context.Context, merchantID, key string) (Offer, error) {
	if err := checkKey(key); err != nil {
		return Offer{}, err
	}
	return s.Store.Offer(ctx, merchantID, key)
}

// List returns the merchant's offers.
func (s *Service) List(ctx context.Context, merchantID string) ([]Offer, error) {
	return s.Store.Offers(ctx, merchantID)
}

// OfferPurposes lists the purposes the merchant's offers grant (a point
// read, for what follows the feed).
func (s *Service) OfferPurposes(ctx context.Context, merchantID string) ([]string, error) {
	return s.Store.OfferPurposes(ctx, merchantID)
}

// Acceptance is a shopper accepting an offer.
type Acceptance struct {
	MerchantID string
	SubjectID  string
	Offer      string
	// Values are the raw inputs by field key; every field of the offer is
	// required.
	Values  map[string]string
	Channel consent.Channel
	Actor   string
}

// Accept grants the offer's purpose and stores its fields in one step for
// the shopper, through the one operation that applies choices: every value
// is checked before anything is written, a purpose already allowed keeps
// its grant (and its "since"), and the values are kept under the subject's
// lock with the grant.
func (s *Service) Accept(ctx context.Context, a Acceptance) (consent.Applied, error) {
	o, err := s.Get(ctx, a.MerchantID, a.Offer)
	if err != nil {
		return consent.Applied{}, err
	}
	values := make(map[string]string, len(o.Fields))
	for _, key := range o.Fields {
		v := a.Values[key]
		if strings.TrimSpace(v) == "" {
			return consent.Applied{}, &fields.ValueError{Field: key, Err: apperr.New(apperr.Invalid, "the offer needs %s", key).WithDetail(fields.CodeInvalidValue)}
		}
		values[key] = v
	}
	applied, err := s.Ledger.Apply(ctx, consent.Choices{MerchantID: a.MerchantID, SubjectID: a.SubjectID, Channel: a.Channel, Actor: a.Actor,
		Requests: []consent.Request{{Purpose: o.Purpose, State: consent.Granted, Explicit: true}}, Values: values})
	if err == nil && !applied.Replayed {
		// Joined: the purpose was granted now (not already before).
		for _, e := range applied.Decided() {
			if e.Purpose == o.Purpose && e.State == consent.Granted {
				s.note(ctx, a.MerchantID, "offer.joined", map[string]any{"subject": a.SubjectID, "offer": o.Key, "purpose": o.Purpose, "seq": e.Seq})
			}
		}
	}
	return applied, err
}

// Rewards lists a subject's rewards.
func (s *Service) Rewards(ctx context.Context, merchantID, subjectID string) ([]Reward, error) {
	if !consent.ValidSubjectID(subjectID) {
		return nil, apperr.New(apperr.Invalid, "subject id must be 1-128 characters of letters, digits and . _ @ + : -").WithDetail(consent.CodeInvalidSubject)
	}
	return s.Store.Rewards(ctx, merchantID, subjectID)
}

// Lookup returns the reward with this code. A code whose tag is not the
// merchant's is refused before any lookup.
func (s *Service) Lookup(ctx context.Context, merchantID, code string) (Reward, error) {
	c, ok := s.Codes.Normalize(merchantID, code)
	if !ok {
		return Reward{}, apperr.New(apperr.NotFound, "no such reward code").WithDetail("invalid_code")
	}
	r, err := s.Store.RewardByCode(ctx, merchantID, c)
	if apperr.Is(err, apperr.NotFound) {
		return Reward{}, apperr.New(apperr.NotFound, "no such reward code").WithDetail("invalid_code")
	}
	return r, err
}

// Redeem marks a reward used, once, while it is valid.
func (s *Service) Redeem(ctx context.Context, merchantID, code string) (Reward, error) {
	r, err := s.Lookup(ctx, merchantID, code)
	if err != nil {
		return Reward{}, err
	}
	now := s.Now().UTC().Truncate(time.Millisecond)
	if !r.RedeemedAt.IsZero() {
		return r, apperr.New(apperr.Conflict, "this code was redeemed on %s", r.RedeemedAt.Format(time.RFC3339)).WithDetail("already_redeemed")
	}
	if now.Before(r.ValidFrom) || !now.Before(r.ValidUntil) {
		return r, apperr.New(apperr.Conflict, "this code is valid from %s until %s", r.ValidFrom.Format(time.RFC3339), r.ValidUntil.Format(time.RFC3339)).WithDetail("reward_not_valid_now")
	}
	ok, err := s.Store.Redeem(ctx, r, now)
	if err != nil {
		return Reward{}, err
	}
	if !ok {
		r, err = s.Store.RewardByCode(ctx, merchantID, r.Code)
		if err != nil {
			return Reward{}, err
		}
		return r, apperr.New(apperr.Conflict, "this code was redeemed on %s", r.RedeemedAt.Format(time.RFC3339)).WithDetail("already_redeemed")
	}
	r.RedeemedAt = now
	s.note(ctx, merchantID, "reward.redeemed", map[string]any{"subject": r.SubjectID, "offer": r.Offer, "period": r.Period, "redeemed_at": now})
	return r, nil
}
