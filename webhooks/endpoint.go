// Package webhooks tells a merchant's systems what changed, as it happens:
// endpoints registered by the merchant receive its ledger events, signed
// per the Standard Webhooks specification (v1), delivered at least once
// with retries, and replayable from the ledger over any window. Messages
// are derived from the change feed (consent.Ledger.Changes), never stored
// twice: a retry or a replay re-reads the event, and a message's id is
// derived from the event, so it is the same on every attempt, on every
// instance, after a crash.
package webhooks

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Event types a webhook endpoint can subscribe to.
const (
	TypeGranted        = consent.TypeGranted
	TypeDenied         = consent.TypeDenied
	TypeWithdrawn      = consent.TypeWithdrawn
	TypePrivacyLevel   = consent.TypePrivacyLevel
	TypeFieldErased    = consent.TypeFieldErased
	TypeSubjectErased  = consent.TypeSubjectErase
	TypeNoticePublish  = "notice.published"
	TypeOfferJoined    = "offer.joined"
	TypeRewardIssued   = "reward.issued"
	TypeRewardRedeemed = "reward.redeemed"
)

// Types returns every event type an endpoint may subscribe to.
func Types() []string {
	return []string{TypeGranted, TypeDenied, TypeWithdrawn, TypePrivacyLevel, TypeFieldErased, TypeSubjectErased,
		TypeNoticePublish, TypeOfferJoined, TypeRewardIssued, TypeRewardRedeemed}
}

// Limits of a registration.
const (
	MaxEndpoints = 20
	maxLabel     = 100
	maxURL       = 2048
	// SecretOverlap is how long a rotated-out secret still signs, beside
	// the new one, so a receiver can switch without losing a message.
	SecretOverlap = 24 * time.Hour
	secretPrefix  = "whsec_"
	secretBytes   = 32
)

// Status of an endpoint.
type Status string

// Statuses.
const (
	Enabled  Status = "enabled"
	Disabled Status = "disabled"
)

// Secret is one signing secret, sealed (see SecretBox).
type Secret struct {
	Sealed []byte
	// ExpiresAt is zero for the current secret; a rotated-out one signs
	// until then.
	ExpiresAt time.Time
}

// Endpoint is a merchant URL that receives its changes.
type Endpoint struct {
	MerchantID string
	ID         string
	URL        string
	// Types are the event types sent; empty sends every type.
	Types []string
	Label string
	// ContactEmail is told when the endpoint is disabled.
	ContactEmail string
	// Secrets sign each message, the current one first.
	Secrets []Secret
	// Start is the change-feed cursor delivery starts from: the feed's end
	// when the endpoint was registered.
	Start string
	// StartNote is the first note position sent (see Notes).
	StartNote int64
	CreatedAt time.Time
	// Version counts changes to the registration.
	Version int64
}

// Wants reports whether the endpoint receives events of type t.
func (e Endpoint) Wants(t string) bool { return len(e.Types) == 0 || slices.Contains(e.Types, t) }

// Registration is what a merchant gives to register an endpoint.
type Registration struct {
	URL          string
	Types        []string
	Label        string
	ContactEmail string
}

// SecretBox seals signing secrets at rest with the master key.
type SecretBox interface {
	SealSecret(use, name string, plain []byte) []byte
	OpenSecret(use, name string, sealed []byte) ([]byte, error)
}

const secretUse = "webhook signing secret"

// Feed is the ledger as webhooks read it.
type Feed interface {
	Changes(ctx context.Context, merchantID string, after consent.ChangesCursor, limit int, keep func(consent.Event) bool) (consent.ChangesPage, error)
	ChangesEnd(ctx context.Context, merchantID string) (consent.ChangesCursor, error)
	ChangesFrom(ctx context.Context, merchantID string, t time.Time) (consent.ChangesCursor, error)
	Event(ctx context.Context, merchantID, subjectID string, seq int64) (consent.Event, error)
}

// Store persists endpoints, their delivery state, attempts and replays.
type Store interface {
	// CreateEndpoint stores a new endpoint; Conflict past MaxEndpoints is
	// the caller's check.
	CreateEndpoint(ctx context.Context, e Endpoint) error
	// Endpoint returns one; NotFound if none (or another merchant's).
	Endpoint(ctx context.Context, merchantID, id string) (Endpoint, error)
	// Endpoints lists a merchant's endpoints, oldest first.
	Endpoints(ctx context.Context, merchantID string) ([]Endpoint, error)
	// AllEndpoints lists every merchant's endpoints (the dispatcher's round).
	AllEndpoints(ctx context.Context) ([]Endpoint, error)
	// ReplaceEndpoint writes e if the stored version is still version.
	ReplaceEndpoint(ctx context.Context, e Endpoint, version int64) (bool, error)
	// DeleteEndpoint removes an endpoint and its delivery state.
	DeleteEndpoint(ctx context.Context, merchantID, id string) (bool, error)

	// DeliveryState returns an endpoint's delivery state; NotFound before
	// its first delivery.
	DeliveryState(ctx context.Context, merchantID, id string) (State, error)
	SaveDeliveryState(ctx context.Context, s State) error
	// SaveAttempts stores batch n of an endpoint's attempts (the n-th,
	// kept in a ring of AttemptBatches).
	SaveAttempts(ctx context.Context, merchantID, id string, n int64, batch []Attempt) error
	// Attempts returns batch n; NotFound if none.
	Attempts(ctx context.Context, merchantID, id string, n int64) ([]Attempt, error)
	// CreateReplay stores replay r.N of an endpoint; Conflict if it exists.
	CreateReplay(ctx context.Context, r Replay) error
	// Replay returns replay n of an endpoint; NotFound if none.
	Replay(ctx context.Context, merchantID, id string, n int) (Replay, error)
	NoteStore
}

// Service registers and manages endpoints.
type Service struct {
	Store   Store
	Feed    Feed
	Secrets SecretBox
	Guard   *Guard
	Now     func() time.Time
}

func invalid(format string, args ...any) error {
	return apperr.New(apperr.Invalid, format, args...).WithDetail("invalid_webhook_endpoint")
}

func randomID(prefix string, n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return prefix + strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "=")
}

// newSecret returns a fresh signing secret and its whsec_ form.
func newSecret() ([]byte, string) {
	raw := make([]byte, secretBytes)
	_, _ = rand.Read(raw)
	return raw, secretPrefix + base64.StdEncoding.EncodeToString(raw)
}

func (s *Service) validate(ctx context.Context, r Registration) (Registration, error) {
	if len(r.URL) > maxURL {
		return r, invalid("url is longer than %d characters", maxURL)
	}
	u, err := s.Guard.CheckURL(ctx, r.URL)
	if err != nil {
		return r, err
	}
	r.URL = u.String()
	seen := map[string]bool{}
	for _, t := range r.Types {
		if !slices.Contains(Types(), t) {
			return r, invalid("types: %q is not one of %s", t, strings.Join(Types(), ", "))
		}
		if seen[t] {
			return r, invalid("types: %q is given twice", t)
		}
		seen[t] = true
	}
	r.Label = strings.TrimSpace(r.Label)
	if utf8.RuneCountInString(r.Label) > maxLabel || strings.ContainsFunc(r.Label, func(c rune) bool { return c < ' ' || c == 0x7f }) {
		return r, invalid("label must be at most %d characters, without control characters", maxLabel)
	}
	if r.ContactEmail != "" {
		a, err := mail.ParseAddress(r.ContactEmail)
		if err != nil || a.Address != r.ContactEmail || len(r.ContactEmail) > 254 {
			return r, invalid("contact_email is not one plain email address")
		}
	}
	return r, nil
}

// Create registers an endpoint and returns it with its signing secret,
// which is shown this once. Delivery starts with the changes after now.
func (s *Service) Create(ctx context.Context, merchantID string, r Registration) (Endpoint, string, error) {
	r, err := s.validate(ctx, r)
	if err != nil {
		return Endpoint{}, "", err
	}
	have, err := s.Store.Endpoints(ctx, merchantID)
	if err != nil {
		return Endpoint{}, "", err
	}
	if len(have) >= MaxEndpoints {
		return Endpoint{}, "", apperr.New(apperr.Conflict, "a merchant may register at most %d endpoints", MaxEndpoints).WithDetail("too_many_endpoints")
	}
	start, err := s.Feed.ChangesEnd(ctx, merchantID)
	if err != nil {
		return Endpoint{}, "", err
	}
	noteTail, err := s.Store.NotesTail(ctx, merchantID)
	if err != nil {
		return Endpoint{}, "", err
	}
	e := Endpoint{MerchantID: merchantID, ID: randomID("ep_", 12), URL: r.URL, Types: r.Types, Label: r.Label, ContactEmail: r.ContactEmail,
		Start: start.String(), StartNote: noteTail + 1, CreatedAt: s.Now().UTC().Truncate(time.Millisecond), Version: 1}
	raw, secret := newSecret()
	e.Secrets = []Secret{{Sealed: s.Secrets.SealSecret(secretUse, merchantID+"/"+e.ID, raw)}}
	if err := s.Store.CreateEndpoint(ctx, e); err != nil {
		return Endpoint{}, "", err
	}
	return e, secret, nil
}

// View is an endpoint with how its delivery stands.
type View struct {
	Endpoint
	State State
}

// Status says whether the endpoint is sent to.
func (v View) Status() Status {
	if !v.State.DisabledAt.IsZero() {
		return Disabled
	}
	return Enabled
}

func (s *Service) view(ctx context.Context, e Endpoint) (View, error) {
	st, err := s.Store.DeliveryState(ctx, e.MerchantID, e.ID)
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return View{}, err
	}
	return View{Endpoint: e, State: st}, nil
}

// Get returns one of the merchant's endpoints.
func (s *Service) Get(ctx context.Context, merchantID, id string) (View, error) {
	e, err := s.Store.Endpoint(ctx, merchantID, id)
	if err != nil {
		return View{}, err
	}
	return s.view(ctx, e)
}

// List returns the merchant's endpoints.
func (s *Service) List(ctx context.Context, merchantID string) ([]View, error) {
	es, err := s.Store.Endpoints(ctx, merchantID)
	if err != nil {
		return nil, err
	}
	out := make([]View, 0, len(es))
	for _, e := range es {
		v, err := s.view(ctx, e)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// Delete removes an endpoint: nothing more is sent to it.
func (s *Service) Delete(ctx context.Context, merchantID, id string) error {
	ok, err := s.Store.DeleteEndpoint(ctx, merchantID, id)
	if err != nil {
		return err
	}
	if !ok {
		return apperr.New(apperr.NotFound, "no such webhook endpoint").WithDetail("endpoint_not_found")
	}
	return nil
}

// RotateSecret makes a new current secret and returns it (shown this
// once); the one it replaces still signs, beside it, for SecretOverlap.
func (s *Service) RotateSecret(ctx context.Context, merchantID, id string) (Endpoint, string, error) {
	for range 5 {
		e, err := s.Store.Endpoint(ctx, merchantID, id)
		if err != nil {
			return Endpoint{}, "", err
		}
		now := s.Now().UTC()
		raw, secret := newSecret()
		keep := []Secret{{Sealed: s.Secrets.SealSecret(secretUse, merchantID+"/"+e.ID, raw)}}
		for _, old := range e.Secrets {
			if old.ExpiresAt.IsZero() {
				old.ExpiresAt = now.Add(SecretOverlap).Truncate(time.Millisecond)
			}
			if old.ExpiresAt.After(now) {
				keep = append(keep, old)
			}
		}
		prev := e.Version
		e.Secrets, e.Version = keep, prev+1
		ok, err := s.Store.ReplaceEndpoint(ctx, e, prev)
		if err != nil {
			return Endpoint{}, "", err
		}
		if ok {
			return e, secret, nil
		}
	}
	return Endpoint{}, "", apperr.New(apperr.Conflict, "the endpoint changed while rotating; try again").WithDetail("conflict")
}

// signingKeys opens the endpoint's secrets that still sign at now.
func signingKeys(box SecretBox, e Endpoint, now time.Time) ([][]byte, error) {
	var out [][]byte
	for _, sec := range e.Secrets {
		if !sec.ExpiresAt.IsZero() && !sec.ExpiresAt.After(now) {
			continue
		}
		k, err := box.OpenSecret(secretUse, e.MerchantID+"/"+e.ID, sec.Sealed)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// AttemptLog returns the endpoint's latest attempts, newest first, up to
// limit.
func (s *Service) AttemptLog(ctx context.Context, merchantID, id string, limit int) ([]Attempt, error) {
	v, err := s.Get(ctx, merchantID, id)
	if err != nil {
		return nil, err
	}
	var out []Attempt
	for n := v.State.AttemptBatches - 1; n >= 0 && n >= v.State.AttemptBatches-AttemptBatches && len(out) < limit; n-- {
		batch, err := s.Store.Attempts(ctx, merchantID, id, n)
		if apperr.Is(err, apperr.NotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		for i := len(batch) - 1; i >= 0 && len(out) < limit; i-- {
			out = append(out, batch[i])
		}
	}
	return out, nil
}

// Replay asks for the endpoint's events recorded in [since, until] to be
// sent again, however old: they are read from the ledger. Replays are
// taken in the order asked, after what is new.
func (s *Service) Replay(ctx context.Context, merchantID, id string, since, until time.Time) (Replay, error) {
	if since.IsZero() || until.IsZero() || !since.Before(until) {
		return Replay{}, apperr.New(apperr.Invalid, "since must be before until").WithDetail("invalid_replay")
	}
	v, err := s.Get(ctx, merchantID, id)
	if err != nil {
		return Replay{}, err
	}
	if v.Status() == Disabled {
		return Replay{}, apperr.New(apperr.Conflict, "the endpoint is disabled (%s)", v.State.DisabledReason).WithDetail("endpoint_disabled")
	}
	from, err := s.Feed.ChangesFrom(ctx, merchantID, since)
	if err != nil {
		return Replay{}, err
	}
	fromNote, err := notesFrom(ctx, s.Store, merchantID, since)
	if err != nil {
		return Replay{}, err
	}
	n := max(v.State.ReplayNext, 1)
	for range 1000 {
		_, err := s.Store.Replay(ctx, merchantID, id, n)
		if apperr.Is(err, apperr.NotFound) {
			r := Replay{MerchantID: merchantID, EndpointID: id, N: n, Since: since.UTC(), Until: until.UTC(), From: from.String(), FromNote: fromNote, CreatedAt: s.Now().UTC()}
			err = s.Store.CreateReplay(ctx, r)
			if err == nil {
				return r, nil
			}
			if !apperr.Is(err, apperr.Conflict) {
				return Replay{}, err
			}
			continue
		}
		if err != nil {
			return Replay{}, err
		}
		n++
	}
	return Replay{}, apperr.New(apperr.Conflict, "too many replays waiting").WithDetail("too_many_replays")
}
