// Package signin lets shoppers into the preference center: single-use magic
// links sent by email (stored only as a hash), signed "manage your
// preferences" links a merchant puts in its own emails, and the session
// that follows (a JWT in an HttpOnly cookie, revocable at sign-out).
package signin

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/fineline/fineline/apperr"
)

// Lifetimes.
const (
	LinkTTL           = 15 * time.Minute
	SessionTTL        = 12 * time.Hour
	PreferenceLinkTTL = 7 * 24 * time.Hour
)

// Audiences of the tokens this package signs; each parse pins its own.
const (
	audSession        = "center-session"
	audPreferenceLink = "preference-link"
	audWidget         = "widget"
	audStaffSession   = "console-session"
)

// StaffLinkTTL is how long a staff sign-in link lives; an invitation's
// link lives InviteTTL.
const (
	StaffLinkTTL = 15 * time.Minute
	InviteTTL    = 7 * 24 * time.Hour
	// StaffSessionTTL is how long a console session lasts.
	StaffSessionTTL = 8 * time.Hour
)

// WidgetTTL is how long a widget token lives: a merchant mints one per page view.
const WidgetTTL = time.Hour

// LinkToken is a stored magic link: the hash of its secret, never the secret.
type LinkToken struct {
	Hash       string
	MerchantID string
	// SubjectIDs are the subjects the address belongs to; the shopper picks
	// one when there are several.
	SubjectIDs []string
	// StaffID, set instead of SubjectIDs, makes it a link into the
	// merchant's console for that staff member; the center refuses it.
	StaffID   string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Store persists link tokens and ended sessions.
type Store interface {
	// SaveLinkToken stores a new link token.
	SaveLinkToken(ctx context.Context, t LinkToken) error
	// LinkToken returns a link token by hash; NotFound if absent.
	LinkToken(ctx context.Context, hash string) (LinkToken, error)
	// UseLinkToken marks a token used; false if it was used before. It must
	// be atomic: of two concurrent uses, one wins.
	UseLinkToken(ctx context.Context, hash string, at time.Time) (bool, error)
	// EndSession records that session id ended; it stays refused until expires.
	EndSession(ctx context.Context, id string, expires time.Time) error
	// SessionEnded reports whether session id was ended.
	SessionEnded(ctx context.Context, id string) (bool, error)
}

// Service issues and checks links and sessions.
type Service struct {
	Store Store
	// Key signs sessions and preference links (HMAC-SHA256).
	Key []byte
	// Issuer is the center's base URL.
	Issuer string
	Now    func() time.Time
}

// Session is a signed-in shopper.
type Session struct {
	ID         string
	MerchantID string
	SubjectID  string
	ExpiresAt  time.Time
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(t string) string {
	sum := sha256.Sum256([]byte(t))
	return hex.EncodeToString(sum[:])
}

// NewLink creates a single-use sign-in link secret for the subjects one
// address belongs to (one, usually; the shopper picks when there are several).
func (s *Service) NewLink(ctx context.Context, merchantID string, subjectIDs []string) (string, error) {
	if len(subjectIDs) == 0 {
		return "", apperr.New(apperr.Invalid, "a sign-in link is for at least one subject")
	}
	secret := random(32)
	now := s.Now().UTC().Truncate(time.Millisecond)
	err := s.Store.SaveLinkToken(ctx, LinkToken{Hash: hashToken(secret), MerchantID: merchantID, SubjectIDs: subjectIDs, CreatedAt: now, ExpiresAt: now.Add(LinkTTL)})
	return secret, err
}

// Link reads a link secret for the merchant without using it, for the page
// that asks for a press of its button (and the pick of a profile).
func (s *Service) Link(ctx context.Context, merchantID, secret string) (LinkToken, error) {
	return s.link(ctx, merchantID, secret, false)
}

// link reads a shopper's link (staff false) or a staff member's.
func (s *Service) link(ctx context.Context, merchantID, secret string, staff bool) (LinkToken, error) {
	if len(secret) != 43 {
		return LinkToken{}, linkError(CodeLinkInvalid)
	}
	t, err := s.Store.LinkToken(ctx, hashToken(secret))
	if apperr.Is(err, apperr.NotFound) || (err == nil && (t.MerchantID != merchantID || (t.StaffID != "") != staff)) {
		return LinkToken{}, linkError(CodeLinkInvalid)
	}
	if err != nil {
		return LinkToken{}, err
	}
	if !s.Now().Before(t.ExpiresAt) {
		return LinkToken{}, linkError(CodeLinkExpired)
	}
	return t, nil
}

// use marks a link used; link_used if it was before.
func (s *Service) use(ctx context.Context, t LinkToken) error {
	first, err := s.Store.UseLinkToken(ctx, t.Hash, s.Now().UTC())
	if err != nil {
		return err
	}
	if !first {
		return linkError(CodeLinkUsed)
	}
	return nil
}

// Error details of refused links and sessions.
const (
	CodeLinkInvalid = "link_invalid"
	CodeLinkExpired = "link_expired"
	CodeLinkUsed    = "link_used"
	CodeNoSession   = "no_session"
)

// Link errors, by detail: link_invalid, link_expired, link_used.
func linkError(detail string) error {
	return apperr.New(apperr.Invalid, "this sign-in link cannot be used").WithDetail(detail)
}

// UseLink consumes a link secret for the merchant and returns the subject
// it signs in: chosen, one of the link's subjects, or with one subject, ""
// picks it.
func (s *Service) UseLink(ctx context.Context, merchantID, secret, chosen string) (string, error) {
	t, err := s.Link(ctx, merchantID, secret)
	if err != nil {
		return "", err
	}
	subject := chosen
	switch {
	case chosen == "" && len(t.SubjectIDs) == 1:
		subject = t.SubjectIDs[0]
	case !slices.Contains(t.SubjectIDs, chosen):
		return "", linkError(CodeLinkInvalid)
	}
	if err := s.use(ctx, t); err != nil {
		return "", err
	}
	return subject, nil
}

type claims struct {
	Merchant string `json:"mer"`
	// IssuedMs is when it was signed, in Unix milliseconds: a console
	// session is compared with the member's latest invitation or removal
	// to the millisecond, which "iat" (seconds) cannot do.
	IssuedMs int64 `json:"ims,omitempty"`
	jwt.RegisteredClaims
}

func (s *Service) sign(aud, merchantID, subjectID, id string, ttl time.Duration) (string, time.Time, error) {
	return s.signAt(s.Now().UTC(), aud, merchantID, subjectID, id, ttl, false)
}

// signAt signs a token issued at now; withMs adds the issue time to the
// millisecond.
func (s *Service) signAt(now time.Time, aud, merchantID, subjectID, id string, ttl time.Duration, withMs bool) (string, time.Time, error) {
	exp := now.Add(ttl)
	c := claims{Merchant: merchantID, RegisteredClaims: jwt.RegisteredClaims{
		Issuer: s.Issuer, Subject: subjectID, Audience: jwt.ClaimStrings{aud}, ID: id,
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}}
	if withMs {
		c.IssuedMs = now.UnixMilli()
	}
	tok, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.Key)
	return tok, exp, err
}

// maxToken caps what we are willing to parse.
const maxToken = 2048

func (s *Service) parse(aud, merchantID, token string) (claims, error) {
	var c claims
	if len(token) > maxToken {
		return c, errors.New("token too long")
	}
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return s.Key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer(s.Issuer), jwt.WithAudience(aud),
		jwt.WithExpirationRequired(), jwt.WithIssuedAt(), jwt.WithLeeway(5*time.Second), jwt.WithTimeFunc(s.Now))
	if err != nil {
		return c, err
	}
	if c.Merchant != merchantID || c.Subject == "" {
		return c, errors.New("token is for another merchant")
	}
	return c, nil
}

// NewSession signs a session for the subject; the string goes in a cookie.
func (s *Service) NewSession(merchantID, subjectID string) (string, Session, error) {
	id := random(16)
	tok, exp, err := s.sign(audSession, merchantID, subjectID, id, SessionTTL)
	return tok, Session{ID: id, MerchantID: merchantID, SubjectID: subjectID, ExpiresAt: exp}, err
}

// ErrNoSession means the request carries no valid session for the merchant.
var ErrNoSession = apperr.New(apperr.Unauthorized, "not signed in").WithDetail(CodeNoSession)

// ParseSession checks a session cookie for the merchant: signature, issuer,
// audience, expiry, and that it was not ended.
func (s *Service) ParseSession(ctx context.Context, merchantID, token string) (Session, error) {
	c, err := s.parse(audSession, merchantID, token)
	if err != nil || c.ID == "" {
		return Session{}, ErrNoSession
	}
	ended, err := s.Store.SessionEnded(ctx, c.ID)
	if err != nil {
		return Session{}, err
	}
	if ended {
		return Session{}, ErrNoSession
	}
	return Session{ID: c.ID, MerchantID: c.Merchant, SubjectID: c.Subject, ExpiresAt: c.ExpiresAt.Time}, nil
}

// End ends a session before its expiry.
func (s *Service) End(ctx context.Context, sess Session) error {
	return s.Store.EndSession(ctx, sess.ID, sess.ExpiresAt)
}

// NewPreferenceLink signs a 7-day link secret a merchant can put in its
// emails; it signs the subject in without an email round trip.
func (s *Service) NewPreferenceLink(merchantID, subjectID string) (string, time.Time, error) {
	return s.sign(audPreferenceLink, merchantID, subjectID, random(12), PreferenceLinkTTL)
}

// UsePreferenceLink checks a preference link for the merchant and returns its subject.
func (s *Service) UsePreferenceLink(merchantID, token string) (string, error) {
	c, err := s.parse(audPreferenceLink, merchantID, token)
	if errors.Is(err, jwt.ErrTokenExpired) {
		return "", linkError(CodeLinkExpired)
	}
	if err != nil {
		return "", linkError(CodeLinkInvalid)
	}
	return c.Subject, nil
}

// NewWidgetToken signs a short-lived token that lets the consent widget on
// a merchant's page read and write one subject's choices.
func (s *Service) NewWidgetToken(merchantID, subjectID string) (string, time.Time, error) {
	return s.sign(audWidget, merchantID, subjectID, random(12), WidgetTTL)
}

// ParseWidgetToken checks a widget token for the merchant (algorithm,
// issuer, audience, expiry) and returns its subject.
func (s *Service) ParseWidgetToken(merchantID, token string) (string, error) {
	c, err := s.parse(audWidget, merchantID, token)
	if err != nil {
		return "", apperr.New(apperr.Unauthorized, "the widget token is invalid, expired, or for another merchant").WithDetail("invalid_widget_token")
	}
	return c.Subject, nil
}

// NewStaffLink creates a single-use link secret into the merchant's
// console for one staff member, living ttl (StaffLinkTTL when asked for
// at the sign-in form, InviteTTL in an invitation).
func (s *Service) NewStaffLink(ctx context.Context, merchantID, staffID string, ttl time.Duration) (string, error) {
	if staffID == "" {
		return "", apperr.New(apperr.Invalid, "a console link is for a staff member")
	}
	secret := random(32)
	now := s.Now().UTC().Truncate(time.Millisecond)
	err := s.Store.SaveLinkToken(ctx, LinkToken{Hash: hashToken(secret), MerchantID: merchantID, StaffID: staffID, CreatedAt: now, ExpiresAt: now.Add(ttl)})
	return secret, err
}

// StaffLink reads a console link for the merchant without using it. A
// shopper's link is not one (link_invalid), nor is the reverse.
func (s *Service) StaffLink(ctx context.Context, merchantID, secret string) (LinkToken, error) {
	return s.link(ctx, merchantID, secret, true)
}

// UseStaffLink consumes a console link and returns it (its StaffID is the
// member it signs in).
func (s *Service) UseStaffLink(ctx context.Context, merchantID, secret string) (LinkToken, error) {
	t, err := s.StaffLink(ctx, merchantID, secret)
	if err != nil {
		return LinkToken{}, err
	}
	return t, s.use(ctx, t)
}

// StaffSession is a staff member signed in to a merchant's console.
type StaffSession struct {
	ID         string
	MerchantID string
	StaffID    string
	IssuedAt   time.Time
	ExpiresAt  time.Time
}

// NewStaffSession signs a console session: its own audience, so neither a
// shopper's session nor a widget token is ever taken for one.
func (s *Service) NewStaffSession(merchantID, staffID string) (string, StaffSession, error) {
	id := random(16)
	now := s.Now().UTC().Truncate(time.Millisecond)
	tok, exp, err := s.signAt(now, audStaffSession, merchantID, staffID, id, StaffSessionTTL, true)
	return tok, StaffSession{ID: id, MerchantID: merchantID, StaffID: staffID, IssuedAt: now, ExpiresAt: exp}, err
}

// ParseStaffSession checks a console session cookie for the merchant:
// signature, issuer, audience, expiry, and that it was not ended.
func (s *Service) ParseStaffSession(ctx context.Context, merchantID, token string) (StaffSession, error) {
	c, err := s.parse(audStaffSession, merchantID, token)
	if err != nil || c.ID == "" || c.IssuedMs == 0 {
		return StaffSession{}, ErrNoSession
	}
	ended, err := s.Store.SessionEnded(ctx, c.ID)
	if err != nil {
		return StaffSession{}, err
	}
	if ended {
		return StaffSession{}, ErrNoSession
	}
	return StaffSession{ID: c.ID, MerchantID: c.Merchant, StaffID: c.Subject, IssuedAt: time.UnixMilli(c.IssuedMs).UTC(), ExpiresAt: c.ExpiresAt.Time}, nil
}

// EndStaffSession ends a console session before its expiry.
func (s *Service) EndStaffSession(ctx context.Context, sess StaffSession) error {
	return s.Store.EndSession(ctx, sess.ID, sess.ExpiresAt)
}
