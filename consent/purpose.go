package consent

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
)

// LegalBasis is the GDPR article 6 ground a purpose relies on.
type LegalBasis string

// Legal bases a purpose may declare.
const (
	BasisConsent            LegalBasis = "consent"
	BasisContract           LegalBasis = "contract"
	BasisLegitimateInterest LegalBasis = "legitimate_interest"
	BasisLegalObligation    LegalBasis = "legal_obligation"
)

// SensitiveCategories are data categories that make a purpose sensitive
// (special categories of personal data, plus finances and relationship status).
func SensitiveCategories() []string {
	return []string{"health", "finances", "religion", "politics", "sexual_orientation", "relationship_status", "ethnicity", "biometrics", "genetics", "trade_union"}
}

// Text is one locale's wording of a purpose.
type Text struct {
	// Name is a short title ("Newsletter").
	Name string `json:"name"`
	// Statement says in plain language what is done and why.
	Statement string `json:"statement"`
}

// Purpose is one use of a subject's data. Its default is always off.
type Purpose struct {
	MerchantID     string
	Key            string
	Texts          map[string]Text // by locale
	DefaultLocale  string
	DataCategories []string
	Sensitive      bool
	SaleOrShare    bool
	LegalBasis     LegalBasis
	CreatedAt      time.Time
	// RetiredAt is when the merchant retired the purpose; zero while it is
	// offered. A retired purpose is no longer offered or granted, checks
	// answer purpose_retired, and its history stays.
	RetiredAt time.Time
}

// CodePurposeRetired is the error code of a grant of a retired purpose.
const CodePurposeRetired = "purpose_retired"

// Retired reports whether the merchant retired the purpose.
func (p Purpose) Retired() bool { return !p.RetiredAt.IsZero() }

// Offered keeps the purposes shoppers are asked about: all but the retired.
func Offered(ps []Purpose) []Purpose {
	out := make([]Purpose, 0, len(ps))
	for _, p := range ps {
		if !p.Retired() {
			out = append(out, p)
		}
	}
	return out
}

// TextFor returns the wording in locale, falling back to the purpose's
// default locale and then to any locale it has.
func (p Purpose) TextFor(locale string) Text {
	if t, ok := p.Texts[locale]; ok {
		return t
	}
	if t, ok := p.Texts[p.DefaultLocale]; ok {
		return t
	}
	for _, l := range Locales() {
		if t, ok := p.Texts[l]; ok {
			return t
		}
	}
	return Text{Name: p.Key}
}

// Validate checks a purpose before it is stored.
func (p *Purpose) Validate() error {
	if err := checkPurposeKey(p.Key); err != nil {
		return err
	}
	if len(p.Texts) == 0 {
		return apperr.New(apperr.Invalid, "a purpose needs a name and a plain-language statement in at least one locale")
	}
	if err := CheckLocales(&p.DefaultLocale, slices.Collect(maps.Keys(p.Texts))); err != nil {
		return err
	}
	for l, t := range p.Texts {
		if _, err := CheckLine("texts."+l+".name", t.Name, 80); err != nil {
			return err
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(t.Statement)); n < 10 || n > 600 {
			return apperr.New(apperr.Invalid, "texts.%s.statement must be a plain-language sentence of 10-600 characters", l)
		}
	}
	if len(p.DataCategories) > 20 {
		return apperr.New(apperr.Invalid, "at most 20 data categories")
	}
	cats := make([]string, 0, len(p.DataCategories))
	for _, c := range p.DataCategories {
		canon, err := CheckCategory("data category", c)
		if err != nil {
			return err
		}
		if !slices.Contains(cats, canon) {
			cats = append(cats, canon)
		}
	}
	p.DataCategories = cats
	for _, c := range p.DataCategories {
		if SensitiveCategory(c) && !p.Sensitive {
			return apperr.New(apperr.Invalid, "data category %q is sensitive: set \"sensitive\": true", c)
		}
	}
	switch p.LegalBasis {
	case "":
		p.LegalBasis = BasisConsent
	case BasisConsent, BasisContract, BasisLegitimateInterest, BasisLegalObligation:
	default:
		return apperr.New(apperr.Invalid, "legal_basis must be consent, contract, legitimate_interest or legal_obligation")
	}
	if p.Sensitive && p.LegalBasis != BasisConsent {
		return apperr.New(apperr.Invalid, "a sensitive purpose must rely on explicit consent (legal_basis \"consent\")")
	}
	return nil
}

// PurposeStore persists purposes.
type PurposeStore interface {
	// CreatePurpose stores a new purpose; Conflict if the key exists for the merchant.
	CreatePurpose(ctx context.Context, p Purpose) error
	// Purpose returns one purpose; NotFound if the merchant has none by that key.
	Purpose(ctx context.Context, merchantID, key string) (Purpose, error)
	// Purposes lists the merchant's purposes in key order, retired ones included.
	Purposes(ctx context.Context, merchantID string) ([]Purpose, error)
	// RetirePurpose sets the purpose's RetiredAt; NotFound if there is none.
	RetirePurpose(ctx context.Context, merchantID, key string, at time.Time) error
	// PutPurposeWords replaces the purpose's texts and data categories;
	// NotFound if there is none.
	PutPurposeWords(ctx context.Context, merchantID, key string, texts map[string]Text, categories []string) error
}

// Purposes manages a merchant's purposes.
type Purposes struct {
	Store PurposeStore
	Now   func() time.Time
}

// Create validates and stores a new purpose.
func (s *Purposes) Create(ctx context.Context, p Purpose) (Purpose, error) {
	if err := p.Validate(); err != nil {
		return Purpose{}, err
	}
	p.CreatedAt = s.Now().UTC().Truncate(time.Millisecond)
	if err := s.Store.CreatePurpose(ctx, p); err != nil {
		return Purpose{}, err
	}
	return p, nil
}

// Get returns one purpose of the merchant.
func (s *Purposes) Get(ctx context.Context, merchantID, key string) (Purpose, error) {
	if err := checkPurposeKey(key); err != nil {
		return Purpose{}, err
	}
	return s.Store.Purpose(ctx, merchantID, key)
}

// Retire retires one of the merchant's purposes: from now on it is not
// offered, a grant of it is refused, and checks answer purpose_retired (on
// other instances within the cache bound). Its events stay. Retiring a
// retired purpose keeps the first time.
func (s *Purposes) Retire(ctx context.Context, merchantID, key string) (Purpose, error) {
	p, err := s.Get(ctx, merchantID, key)
	if err != nil || p.Retired() {
		return p, err
	}
	p.RetiredAt = s.Now().UTC().Truncate(time.Millisecond)
	return p, s.Store.RetirePurpose(ctx, merchantID, key, p.RetiredAt)
}

// Wording is new words for a purpose: the texts of the locales it names
// (the others stay) and, when set, its data categories.
type Wording struct {
	Purpose        string
	Texts          map[string]Text
	DataCategories []string // nil: unchanged
}

// CheckWording validates new words for one of the merchant's purposes
// against the purpose they would make, and returns them canonical (data
// categories as the vocabulary spells them). A retired purpose takes none.
func (s *Purposes) CheckWording(ctx context.Context, merchantID string, w Wording) (Wording, Purpose, error) {
	p, err := s.Get(ctx, merchantID, w.Purpose)
	if err != nil {
		return Wording{}, Purpose{}, err
	}
	if p.Retired() {
		return Wording{}, Purpose{}, apperr.New(apperr.Conflict, "purpose %q is retired", p.Key).WithDetail(CodePurposeRetired)
	}
	if len(w.Texts) == 0 && w.DataCategories == nil {
		return Wording{}, Purpose{}, apperr.New(apperr.Invalid, "give texts or data_categories to change").WithDetail("nothing_to_change")
	}
	next := reworded(p, w)
	if err := next.Validate(); err != nil {
		return Wording{}, Purpose{}, err
	}
	if w.DataCategories != nil {
		w.DataCategories = next.DataCategories
	}
	return w, p, nil
}

func reworded(p Purpose, w Wording) Purpose {
	p.Texts = maps.Clone(p.Texts)
	for l, t := range w.Texts {
		p.Texts[l] = Text{Name: strings.TrimSpace(t.Name), Statement: strings.TrimSpace(t.Statement)}
	}
	if w.DataCategories != nil {
		p.DataCategories = slices.Clone(w.DataCategories)
	}
	return p
}

// Reword stores a purpose's new words (a notice carrying them was
// published). Applying the same words twice changes nothing.
func (s *Purposes) Reword(ctx context.Context, merchantID string, w Wording) error {
	p, err := s.Get(ctx, merchantID, w.Purpose)
	if err != nil {
		return err
	}
	next := reworded(p, w)
	if err := next.Validate(); err != nil {
		return err
	}
	return s.Store.PutPurposeWords(ctx, merchantID, p.Key, next.Texts, next.DataCategories)
}

// List returns all purposes of the merchant.
func (s *Purposes) List(ctx context.Context, merchantID string) ([]Purpose, error) {
	return s.Store.Purposes(ctx, merchantID)
}
