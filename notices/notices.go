// Package notices holds the versioned terms and privacy notice of each
// merchant: which version is in force, and (later) who must re-accept.
package notices

import (
	"context"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
)

// Status is where a version is in its life.
type Status string

// Statuses of a notice version.
const (
	Draft     Status = "draft"
	Published Status = "published"
)

// Summary is one locale's plain-language summary of a version.
type Summary struct {
	Summary string `json:"summary"`
	Text    string `json:"text"`
}

// Version is one version of a merchant's notice.
type Version struct {
	MerchantID  string
	Number      int
	Status      Status
	Texts       map[string]Summary // by locale
	PolicyURL   string
	Material    bool
	Purposes    []string // purposes a material change affects
	CreatedAt   time.Time
	PublishedAt time.Time
	EffectiveAt time.Time
}

// Store persists notice versions.
type Store interface {
	// PutVersion creates or replaces a version.
	PutVersion(ctx context.Context, v Version) error
	// Version returns one version; NotFound if absent.
	Version(ctx context.Context, merchantID string, number int) (Version, error)
	// Latest returns the number of the newest published version, 0 if none.
	Latest(ctx context.Context, merchantID string) (int, error)
	// SetLatest records number as the newest published version.
	SetLatest(ctx context.Context, merchantID string, number int) error
}

// Service reads and publishes notice versions.
type Service struct {
	Store Store
	Now   func() time.Time
}

// VersionInForce returns the number of the newest published version, 0 if
// the merchant has published none.
func (s *Service) VersionInForce(ctx context.Context, merchantID string) (int, error) {
	return s.Store.Latest(ctx, merchantID)
}

// Current returns the version in force; NotFound if none is published.
func (s *Service) Current(ctx context.Context, merchantID string) (Version, error) {
	n, err := s.Store.Latest(ctx, merchantID)
	if err != nil {
		return Version{}, err
	}
	if n == 0 {
		return Version{}, apperr.New(apperr.NotFound, "no notice published")
	}
	return s.Store.Version(ctx, merchantID, n)
}

// PublishFirst publishes version 1 with texts, effective now. It is what a
// new merchant starts with; later versions go through the full lifecycle.
func (s *Service) PublishFirst(ctx context.Context, merchantID string, texts map[string]Summary, policyURL string) (Version, error) {
	if len(texts) == 0 {
		texts = DefaultFirstTexts()
	}
	for l, t := range texts {
		if strings.TrimSpace(t.Summary) == "" {
			return Version{}, apperr.New(apperr.Invalid, "texts.%s.summary is empty", l)
		}
	}
	now := s.Now().UTC().Truncate(time.Millisecond)
	v := Version{MerchantID: merchantID, Number: 1, Status: Published, Texts: texts, PolicyURL: policyURL, CreatedAt: now, PublishedAt: now, EffectiveAt: now}
	if err := s.Store.PutVersion(ctx, v); err != nil {
		return Version{}, err
	}
	if err := s.Store.SetLatest(ctx, merchantID, 1); err != nil {
		return Version{}, err
	}
	return v, nil
}

// DefaultFirstTexts is the summary a merchant's first notice version gets
// when the operator gives none.
func DefaultFirstTexts() map[string]Summary {
	return map[string]Summary{
		"en": {Summary: "We only use your data for the purposes you switch on here, and you can switch any of them off at any time."},
		"es": {Summary: "Solo usamos tus datos para los fines que actives aquí, y puedes desactivar cualquiera de ellos en cualquier momento."},
		"de": {Summary: "Wir nutzen deine Daten nur für die Zwecke, die du hier einschaltest, und du kannst jeden davon jederzeit ausschalten."},
		"fr": {Summary: "Nous n'utilisons vos données que pour les finalités que vous activez ici, et vous pouvez les désactiver à tout moment."},
	}
}
