// Package merchants manages tenants and their API keys. A key is shown once
// at creation and stored only as a SHA-256 hash; it names its own record
// ("fl_<id>_<secret>"), so authenticating is one point read.
package merchants

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Scope is a permission an API key carries.
type Scope string

// Scopes a key can carry.
const (
	ScopeConsentRead  Scope = "consent:read"
	ScopeConsentWrite Scope = "consent:write"
	ScopeAdmin        Scope = "admin"
	// ScopeFieldsRead reads the data shoppers volunteered, for a purpose
	// that needs it and that they granted.
	ScopeFieldsRead Scope = "fields:read"
	// ScopeRewardsRedeem checks and redeems reward codes: a till's scope.
	ScopeRewardsRedeem Scope = "rewards:redeem"
)

func scopeList() string {
	var names []string
	for _, s := range AllScopes() {
		names = append(names, string(s))
	}
	return strings.Join(names, ", ")
}

// AllScopes lists every scope, for a merchant's first key.
func AllScopes() []Scope {
	return []Scope{ScopeConsentRead, ScopeConsentWrite, ScopeFieldsRead, ScopeRewardsRedeem, ScopeAdmin}
}

// Merchant is a tenant.
type Merchant struct {
	ID            string
	Slug          string
	Name          string
	DefaultLocale string
	// TimeZone is the IANA name of the zone the merchant's days are
	// counted in (analytics): "Europe/Berlin"; "" is UTC.
	TimeZone string
	// AllowedOrigins are the sites (scheme://host[:port]) whose pages may
	// embed the consent widget.
	AllowedOrigins []string
	// ConsentMode maps each Google Consent Mode type the widget signals to
	// the purposes it needs (all of them allowed for the type to be granted).
	ConsentMode map[string][]string
	CreatedAt   time.Time
	// SuspendedAt is when the operator suspended the merchant; zero while
	// it is active. A suspended merchant's keys, widget and center are
	// refused; its data stays.
	SuspendedAt time.Time
}

// CodeSuspended is the error code of everything a suspended merchant is refused.
const CodeSuspended = "merchant_suspended"

// Active refuses a suspended merchant (Forbidden, merchant_suspended).
func (m Merchant) Active() error {
	if m.SuspendedAt.IsZero() {
		return nil
	}
	return apperr.New(apperr.Forbidden, "this merchant is suspended; its operator can resume it").WithDetail(CodeSuspended)
}

// WidgetSettings is what a merchant sets for its widget.
type WidgetSettings struct {
	AllowedOrigins []string
	ConsentMode    map[string][]string
}

// APIKey is a stored key: everything but the secret.
type APIKey struct {
	ID         string
	MerchantID string
	Name       string
	Hash       string // hex SHA-256 of the whole key
	Scopes     []Scope
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while active
	// LastUsedAt is when the key last authenticated a request, to within
	// Usage's resolution and interval; zero if never (or not yet written).
	LastUsedAt time.Time
}

// Has reports whether the key carries scope s. Admin implies every scope.
func (k APIKey) Has(s Scope) bool {
	return slices.Contains(k.Scopes, s) || slices.Contains(k.Scopes, ScopeAdmin)
}

// Store persists merchants and keys.
type Store interface {
	// CreateMerchant stores m; Conflict if the slug is taken.
	CreateMerchant(ctx context.Context, m Merchant) error
	// Merchant returns a merchant by id; NotFound if absent.
	Merchant(ctx context.Context, id string) (Merchant, error)
	// MerchantBySlug returns a merchant by slug; NotFound if absent.
	MerchantBySlug(ctx context.Context, slug string) (Merchant, error)
	// CreateKey stores k.
	CreateKey(ctx context.Context, k APIKey) error
	// Key returns a key by id; NotFound if absent.
	Key(ctx context.Context, id string) (APIKey, error)
	// Keys lists a merchant's keys.
	Keys(ctx context.Context, merchantID string) ([]APIKey, error)
	// RevokeKey sets the key's RevokedAt; NotFound if the merchant has no such key.
	RevokeKey(ctx context.Context, merchantID, id string, at time.Time) error
	// DeleteMerchant removes a merchant and frees its slug.
	DeleteMerchant(ctx context.Context, m Merchant) error
	// SetWidgetSettings replaces the merchant's widget settings; NotFound
	// if there is no such merchant.
	SetWidgetSettings(ctx context.Context, id string, ws WidgetSettings) error
	// SetSuspended sets SuspendedAt (zero resumes); NotFound if there is no
	// such merchant.
	SetSuspended(ctx context.Context, id string, at time.Time) error
	// ListMerchants lists up to limit merchants with ids after after, in id order.
	ListMerchants(ctx context.Context, after string, limit int) ([]Merchant, error)
}

// Service creates merchants and keys and authenticates keys.
type Service struct {
	Store Store
	Now   func() time.Time
	// Usage, when set, notes each key's last use.
	Usage *Usage
}

var slugPattern = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9-]{0,46}[a-z0-9])?$`)

// ValidSlug reports whether s is a merchant slug: lower-case letters,
// digits and inner hyphens, 1 to 48 characters.
func ValidSlug(s string) bool { return slugPattern.MatchString(s) }

// NewMerchant is what an operator gives to onboard a merchant.
type NewMerchant struct {
	Slug          string
	Name          string
	DefaultLocale string
	// TimeZone is an IANA zone name; "" is UTC.
	TimeZone string
}

// Location returns the merchant's time zone (UTC when unset or unknown
// to this machine).
func (m Merchant) Location() *time.Location {
	if loc, err := LoadZone(m.TimeZone); err == nil {
		return loc
	}
	return time.UTC
}

// LoadZone loads an IANA time-zone name; "" is UTC. A name that is not
// one is Invalid (invalid_time_zone).
func LoadZone(name string) (*time.Location, error) {
	if name == "" || name == "UTC" {
		return time.UTC, nil
	}
	loc, err := time.LoadLocation(name)
	if err != nil || len(name) > 64 || strings.ContainsAny(name, " \\") || name == "Local" {
		return nil, apperr.New(apperr.Invalid, "time_zone must be an IANA time zone such as Europe/Berlin or Asia/Tokyo").WithDetail("invalid_time_zone")
	}
	return loc, nil
}

// Create stores a new merchant and returns it with its first key (all
// scopes). The key's secret is in the returned string only.
func (s *Service) Create(ctx context.Context, nm NewMerchant) (Merchant, APIKey, string, error) {
	if !ValidSlug(nm.Slug) {
		return Merchant{}, APIKey{}, "", apperr.New(apperr.Invalid, "slug must be 1-48 lower-case letters, digits and inner hyphens").WithDetail("invalid_slug")
	}
	name, err := consent.CheckLine("name", nm.Name, 100)
	if err != nil {
		return Merchant{}, APIKey{}, "", err
	}
	if nm.DefaultLocale == "" {
		nm.DefaultLocale = "en"
	}
	if !consent.SupportedLocale(nm.DefaultLocale) {
		return Merchant{}, APIKey{}, "", apperr.New(apperr.Invalid, "default_locale must be one of %s", strings.Join(consent.Locales(), ", "))
	}
	if _, err := LoadZone(nm.TimeZone); err != nil {
		return Merchant{}, APIKey{}, "", err
	}
	m := Merchant{ID: "mer_" + randomToken(10), Slug: nm.Slug, Name: name, DefaultLocale: nm.DefaultLocale, TimeZone: nm.TimeZone, CreatedAt: s.now()}
	if err := s.Store.CreateMerchant(ctx, m); err != nil {
		return Merchant{}, APIKey{}, "", err
	}
	k, secret, err := s.CreateKey(ctx, m.ID, "first key", AllScopes())
	if err != nil {
		return Merchant{}, APIKey{}, "", errors.Join(err, s.Abandon(ctx, m))
	}
	return m, k, secret, nil
}

// Suspend suspends the merchant: its keys, widget and center answer 403
// merchant_suspended (on other instances within the cache bound); its
// data stays. Suspending a suspended merchant keeps the first time. It
// always writes, so an instance whose cached merchant is stale still
// suspends it.
func (s *Service) Suspend(ctx context.Context, id string) (Merchant, error) {
	m, err := s.Store.Merchant(ctx, id)
	if err != nil {
		return m, err
	}
	if m.SuspendedAt.IsZero() {
		m.SuspendedAt = s.now()
	}
	return m, s.Store.SetSuspended(ctx, id, m.SuspendedAt)
}

// Resume lifts a suspension (always writing, as Suspend).
func (s *Service) Resume(ctx context.Context, id string) (Merchant, error) {
	m, err := s.Store.Merchant(ctx, id)
	if err != nil {
		return m, err
	}
	m.SuspendedAt = time.Time{}
	return m, s.Store.SetSuspended(ctx, id, time.Time{})
}

// MaxPage bounds a page of merchants.
const MaxPage = 200

// List returns a page of merchants in id order after the cursor after
// (empty: from the start), and the cursor of the next page ("" at the end).
func (s *Service) List(ctx context.Context, after string, limit int) ([]Merchant, string, error) {
	if limit <= 0 || limit > MaxPage {
		return nil, "", apperr.New(apperr.Invalid, "limit must be 1 to %d", MaxPage).WithDetail("invalid_limit")
	}
	if after != "" && !strings.HasPrefix(after, "mer_") {
		return nil, "", apperr.New(apperr.Invalid, "after must be a merchant id from an earlier page").WithDetail("invalid_cursor")
	}
	ms, err := s.Store.ListMerchants(ctx, after, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(ms) > limit {
		ms = ms[:limit]
		next = ms[limit-1].ID
	}
	return ms, next, nil
}

// Abandon undoes a merchant whose onboarding failed half-way: its keys
// are revoked and its slug freed, so the operator can simply retry.
func (s *Service) Abandon(ctx context.Context, m Merchant) error {
	keys, err := s.Store.Keys(ctx, m.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := s.Store.RevokeKey(ctx, m.ID, k.ID, s.now()); err != nil {
			return err
		}
	}
	return s.Store.DeleteMerchant(ctx, m)
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Millisecond) }

// CreateKey issues a key with the given scopes; the secret is returned once.
func (s *Service) CreateKey(ctx context.Context, merchantID, name string, scopes []Scope) (APIKey, string, error) {
	name = strings.TrimSpace(name)
	if utf8.RuneCountInString(name) > 100 {
		return APIKey{}, "", apperr.New(apperr.Invalid, "key name must be at most 100 characters")
	}
	if len(scopes) == 0 {
		return APIKey{}, "", apperr.New(apperr.Invalid, "a key needs at least one scope")
	}
	for _, sc := range scopes {
		if !slices.Contains(AllScopes(), sc) {
			return APIKey{}, "", apperr.New(apperr.Invalid, "unknown scope %q; use one of %s", sc, scopeList())
		}
	}
	id := randomToken(12)
	secret := "fl_" + id + "_" + randomToken(32)
	k := APIKey{ID: id, MerchantID: merchantID, Name: name, Hash: hashKey(secret), Scopes: slices.Compact(slices.Sorted(slices.Values(scopes))), CreatedAt: s.now()}
	if err := s.Store.CreateKey(ctx, k); err != nil {
		return APIKey{}, "", err
	}
	return k, secret, nil
}

// Authenticate returns the active key that secret is; Unauthorized otherwise.
func (s *Service) Authenticate(ctx context.Context, secret string) (APIKey, error) {
	unauthorized := apperr.New(apperr.Unauthorized, "missing, unknown or revoked API key")
	id, ok := keyID(secret)
	if !ok {
		return APIKey{}, unauthorized
	}
	k, err := s.Store.Key(ctx, id)
	if apperr.Is(err, apperr.NotFound) {
		return APIKey{}, unauthorized
	}
	if err != nil {
		return APIKey{}, err
	}
	if subtle.ConstantTimeCompare([]byte(k.Hash), []byte(hashKey(secret))) != 1 || !k.RevokedAt.IsZero() {
		return APIKey{}, unauthorized
	}
	m, err := s.Store.Merchant(ctx, k.MerchantID)
	if err != nil {
		return APIKey{}, err
	}
	if err := m.Active(); err != nil {
		return APIKey{}, err
	}
	s.Usage.Seen(k.ID, s.Now())
	return k, nil
}

// Revoke revokes one of the merchant's keys. The last active key with the
// admin scope cannot be revoked: without it the merchant could never make
// another key.
func (s *Service) Revoke(ctx context.Context, merchantID, id string) error {
	if !tokenPattern.MatchString(id) {
		return apperr.New(apperr.NotFound, "no such key")
	}
	keys, err := s.Store.Keys(ctx, merchantID)
	if err != nil {
		return err
	}
	admins, target := 0, -1
	for i, k := range keys {
		if k.RevokedAt.IsZero() && slices.Contains(k.Scopes, ScopeAdmin) {
			admins++
		}
		if k.ID == id {
			target = i
		}
	}
	if target < 0 {
		return apperr.New(apperr.NotFound, "no such key")
	}
	k := keys[target]
	if k.RevokedAt.IsZero() && slices.Contains(k.Scopes, ScopeAdmin) && admins == 1 {
		return apperr.New(apperr.Conflict, "this is your last active admin key; create another admin key before revoking it").WithDetail("last_admin_key")
	}
	return s.Store.RevokeKey(ctx, merchantID, id, s.now())
}

// Keys lists the merchant's keys.
func (s *Service) Keys(ctx context.Context, merchantID string) ([]APIKey, error) {
	return s.Store.Keys(ctx, merchantID)
}

var tokenPattern = regexp.MustCompile(`^[A-Za-z0-9]{12}$`)

// keyID extracts the id from "fl_<12 chars>_<32 chars>".
func keyID(secret string) (string, bool) {
	if len(secret) != 3+12+1+32 || !strings.HasPrefix(secret, "fl_") || secret[15] != '_' {
		return "", false
	}
	id := secret[3:15]
	if !tokenPattern.MatchString(id) {
		return "", false
	}
	return id, true
}

func hashKey(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// randomToken returns n characters drawn uniformly from [A-Za-z0-9].
func randomToken(n int) string {
	out := make([]byte, n)
	buf := make([]byte, 1)
	for i := 0; i < n; {
		if _, err := rand.Read(buf); err != nil {
			panic(err) // crypto/rand never fails on Linux
		}
		if int(buf[0]) >= 256-256%len(alphabet) {
			continue
		}
		out[i] = alphabet[int(buf[0])%len(alphabet)]
		i++
	}
	return string(out)
}

// MaxOrigins bounds a merchant's widget origins.
const MaxOrigins = 20

// ConsentModeTypes are the Google Consent Mode (v2) types the widget
// signals, in the order it sends them.
func ConsentModeTypes() []string {
	return []string{"ad_storage", "ad_user_data", "ad_personalization", "analytics_storage", "functionality_storage", "personalization_storage", "security_storage"}
}

// SetWidgetSettings validates the whole of ws, then stores it: the sites
// that may embed the widget (normalised, sorted, without repeats) and the
// Consent Mode map, whose types must be known and whose purposes (1 to 20
// per type) must be among purposes, the merchant's own.
func (s *Service) SetWidgetSettings(ctx context.Context, merchantID string, ws WidgetSettings, purposes []string) (WidgetSettings, error) {
	origins, err := normaliseOrigins(ws.AllowedOrigins)
	if err != nil {
		return WidgetSettings{}, err
	}
	mode := make(map[string][]string, len(ws.ConsentMode))
	for typ, ps := range ws.ConsentMode {
		if !slices.Contains(ConsentModeTypes(), typ) {
			return WidgetSettings{}, apperr.New(apperr.Invalid, "consent_mode: %q is not a Consent Mode type (%s)", typ, strings.Join(ConsentModeTypes(), ", ")).WithDetail("invalid_consent_mode")
		}
		if len(ps) == 0 || len(ps) > 20 {
			return WidgetSettings{}, apperr.New(apperr.Invalid, "consent_mode.%s must name 1 to 20 purposes (leave a type out to keep it denied)", typ).WithDetail("invalid_consent_mode")
		}
		for _, p := range ps {
			if !slices.Contains(purposes, p) {
				return WidgetSettings{}, apperr.New(apperr.Invalid, "consent_mode.%s: no purpose %q", typ, p).WithDetail("unknown_purpose")
			}
		}
		mode[typ] = slices.Compact(slices.Sorted(slices.Values(ps)))
	}
	out := WidgetSettings{AllowedOrigins: origins, ConsentMode: mode}
	return out, s.Store.SetWidgetSettings(ctx, merchantID, out)
}

// AllowOrigins adds origins to the merchant's widget origins, keeping the
// rest of its settings.
func (s *Service) AllowOrigins(ctx context.Context, merchantID string, origins ...string) error {
	m, err := s.Store.Merchant(ctx, merchantID)
	if err != nil {
		return err
	}
	all, err := normaliseOrigins(append(slices.Clone(m.AllowedOrigins), origins...))
	if err != nil {
		return err
	}
	return s.Store.SetWidgetSettings(ctx, merchantID, WidgetSettings{AllowedOrigins: all, ConsentMode: m.ConsentMode})
}

// normaliseOrigins checks that each origin is scheme://host[:port] and
// returns them lower-cased, sorted, without repeats.
func normaliseOrigins(origins []string) ([]string, error) {
	if len(origins) > MaxOrigins {
		return nil, apperr.New(apperr.Invalid, "at most %d origins", MaxOrigins)
	}
	out := make([]string, 0, len(origins))
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, apperr.New(apperr.Invalid, "origin %q must be scheme://host[:port], e.g. https://shop.example", o).WithDetail("invalid_origin")
		}
		out = append(out, strings.ToLower(u.Scheme+"://"+u.Host))
	}
	return slices.Compact(slices.Sorted(slices.Values(out))), nil
}
