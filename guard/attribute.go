// Package guard is the personalization guard: it answers "may this
// message, for this purpose, use these details about this subject?". A
// merchant declares the attributes its messages may use (volunteered fields
// are attributes too); each answer is per attribute, with a reason and the
// plain-language line the message may show. Stated beats inferred,
// sensitive needs explicit consent, identifiers never appear in messages,
// amounts spent are not shown back, prospects get less, and the subject's
// own privacy level wins.
package guard

import (
	"context"
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
)

// Provenance is where an attribute's value comes from.
type Provenance string

// Provenances.
const (
	// Volunteered: the subject told the merchant (a form, a profile).
	Volunteered Provenance = "volunteered"
	// Observed: seen in what the subject did (orders, pages viewed).
	Observed Provenance = "observed"
	// Inferred: guessed from what was observed (an interest, a life event).
	Inferred Provenance = "inferred"
	// ThirdParty: bought or received from someone else.
	ThirdParty Provenance = "third_party"
)

// Valid reports whether p is a provenance.
func (p Provenance) Valid() bool {
	return p == Volunteered || p == Observed || p == Inferred || p == ThirdParty
}

// Text is one locale's wording of an attribute.
type Text struct {
	// Label names it ("Last order total").
	Label string `json:"label"`
	// Explanation is the line a message using it may show, in plain words
	// ("Because you ordered running shoes from us").
	Explanation string `json:"explanation"`
}

// Attribute is a detail a merchant's messages may use.
type Attribute struct {
	MerchantID    string
	Key           string
	Texts         map[string]Text
	DefaultLocale string
	// Category is one of consent.Categories.
	Category   string
	Provenance Provenance
	// Identifier marks a personal identifier (phone number, government id):
	// never in a message.
	Identifier bool
	// Field is set when the attribute is a volunteered field; Purposes are
	// then the field's purposes, the only ones that may use it.
	Field     bool
	Purposes  []string
	CreatedAt time.Time
}

// TextFor returns the wording in locale, falling back to the default locale.
func (a Attribute) TextFor(locale string) Text {
	if t, ok := a.Texts[locale]; ok {
		return t
	}
	if t, ok := a.Texts[a.DefaultLocale]; ok {
		return t
	}
	return Text{Label: a.Key}
}

// Sensitive reports whether the attribute is of a sensitive category.
func (a Attribute) Sensitive() bool { return consent.SensitiveCategory(a.Category) }

// Validate checks an attribute before it is stored.
func (a *Attribute) Validate() error {
	if !consent.ValidKey(a.Key) {
		return apperr.New(apperr.Invalid, "attribute key must be 2-64 characters of lower-case letters, digits and underscores, starting with a letter").WithDetail(CodeInvalidAttribute)
	}
	if err := consent.CheckLocales(&a.DefaultLocale, slices.Collect(maps.Keys(a.Texts))); err != nil {
		return err
	}
	for l, t := range a.Texts {
		if n := utf8.RuneCountInString(strings.TrimSpace(t.Label)); n == 0 || n > 80 {
			return apperr.New(apperr.Invalid, "texts.%s.label must be 1-80 characters", l).WithDetail(CodeInvalidAttribute)
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(t.Explanation)); n < 10 || n > 200 {
			return apperr.New(apperr.Invalid, "texts.%s.explanation must be the line a message may show, 10-200 characters", l).WithDetail(CodeInvalidAttribute)
		}
		if !fields.PlainText(t.Label) || !fields.PlainText(t.Explanation) {
			return apperr.New(apperr.Invalid, "texts.%s must be plain text", l).WithDetail(CodeInvalidAttribute)
		}
	}
	canon, err := consent.CheckCategory("category", a.Category)
	if err != nil {
		return err
	}
	a.Category = canon
	if !a.Provenance.Valid() {
		return apperr.New(apperr.Invalid, "provenance must be volunteered, observed, inferred or third_party").WithDetail(CodeInvalidAttribute)
	}
	if a.Category == consent.CategoryGovernmentID {
		a.Identifier = true // a government id is an identifier whatever the merchant says
	}
	a.Field, a.Purposes = false, nil
	return nil
}

// fromField is a volunteered field seen as an attribute. A field without a
// category counts as a stated preference, or as health if one of its
// purposes is sensitive (the field serves a purpose that needs explicit
// consent, so it is treated as sensitive).
func fromField(f fields.Field, sensitive func(purpose string) bool) Attribute {
	a := Attribute{MerchantID: f.MerchantID, Key: f.Key, Texts: make(map[string]Text, len(f.Texts)), DefaultLocale: f.DefaultLocale,
		Category: f.Category, Provenance: Volunteered, Field: true, Purposes: f.Purposes, CreatedAt: f.CreatedAt}
	for l, t := range f.Texts {
		a.Texts[l] = Text{Label: t.Label, Explanation: t.Explanation}
	}
	if a.Category == "" {
		a.Category = consent.CategoryPreference
		if slices.ContainsFunc(f.Purposes, sensitive) {
			a.Category = "health"
		}
	}
	return a
}

// Store persists declared attributes.
type Store interface {
	// CreateAttribute stores a new attribute; Conflict if the key exists.
	CreateAttribute(ctx context.Context, a Attribute) error
	// Attributes lists the merchant's declared attributes by key.
	Attributes(ctx context.Context, merchantID string) ([]Attribute, error)
}

// Error details of the guard.
const (
	CodeInvalidAttribute = "invalid_attribute"
	CodeInvalidTemplate  = "invalid_template"
	CodeInvalidChannel   = "invalid_channel"
	CodeTooManySubjects  = "too_many_subjects"
	CodeTooManyAttrs     = "too_many_attributes"
	CodeAttributeExists  = fields.CodeAttributeExists
)
