// Package fields is the data shoppers volunteer for something of value: a
// birthday for a birthday reward, a shoe size for better recommendations.
// A merchant defines each field with the purposes that need it. A value is
// accepted only while one of those purposes is granted, kept encrypted with
// the subject's own data key, disclosed only for a purpose that needs it and
// is allowed, and erased the moment the last purpose that needs it is
// withdrawn. The subject's ledger records each value given and erased, by
// field and purpose, never the value.
package fields

import (
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Type is the kind of value a field holds.
type Type string

// Field types.
const (
	// TypeDate holds a calendar date, "2006-01-02"; with OmitYear, only the
	// month and day, "--01-02" (ISO 8601), which is all a birthday reward needs.
	TypeDate   Type = "date"
	TypeText   Type = "text"
	TypeChoice Type = "choice"
	TypeNumber Type = "number"
)

// Text is one locale's wording of a field.
type Text struct {
	// Label names the field ("Your birthday").
	Label string `json:"label"`
	// Explanation says, next to the field, what it is used for.
	Explanation string `json:"explanation"`
}

// Field is one piece of data a merchant asks shoppers to volunteer.
type Field struct {
	MerchantID    string
	Key           string
	Texts         map[string]Text
	DefaultLocale string
	Type          Type
	// OmitYear, for dates, asks for the month and day only.
	OmitYear bool
	// Choices are the values a choice field accepts, in display order.
	Choices []string
	// Min and Max bound a number field when set.
	Min, Max *float64
	// Purposes need this field; a value is kept only while one is granted.
	Purposes []string
	// Category is the field's data category (consent.Categories), for the
	// personalization guard; "" counts as consent.CategoryPreference.
	Category  string
	CreatedAt time.Time
}

// TextFor returns the wording in locale, falling back to the default locale.
func (f Field) TextFor(locale string) Text {
	if t, ok := f.Texts[locale]; ok {
		return t
	}
	if t, ok := f.Texts[f.DefaultLocale]; ok {
		return t
	}
	return Text{Label: f.Key}
}

// Needs reports whether purpose needs the field.
func (f Field) Needs(purpose string) bool { return slices.Contains(f.Purposes, purpose) }

// ValidKey reports whether k is a field key: lower-case letters, digits and
// underscores, 2 to 64 characters, starting with a letter.
func ValidKey(k string) bool { return consent.ValidKey(k) }

func checkKey(k string) error {
	if !ValidKey(k) {
		return apperr.New(apperr.Invalid, "field key must be 2-64 characters of lower-case letters, digits and underscores, starting with a letter").WithDetail(CodeInvalidFieldKey)
	}
	return nil
}

// PlainText reports whether s is text a shopper may safely be shown: no
// control characters other than newlines and tabs, and no invisible
// direction overrides that could make it read as something else.
func PlainText(s string) bool {
	return !strings.ContainsFunc(s, func(r rune) bool {
		return (unicode.IsControl(r) && r != '\n' && r != '\t') || unicode.Is(unicode.Bidi_Control, r) || r == utf8.RuneError
	})
}

// Validate checks a field definition before it is stored (the purposes'
// existence is checked by the Service).
func (f *Field) Validate() error {
	if err := checkKey(f.Key); err != nil {
		return err
	}
	if err := consent.CheckLocales(&f.DefaultLocale, slices.Collect(maps.Keys(f.Texts))); err != nil {
		return err
	}
	for l, t := range f.Texts {
		if n := utf8.RuneCountInString(strings.TrimSpace(t.Label)); n == 0 || n > 80 {
			return apperr.New(apperr.Invalid, "texts.%s.label must be 1-80 characters", l)
		}
		if n := utf8.RuneCountInString(strings.TrimSpace(t.Explanation)); n < 10 || n > 400 {
			return apperr.New(apperr.Invalid, "texts.%s.explanation must say in 10-400 characters what the field is used for", l)
		}
		if !PlainText(t.Label) || !PlainText(t.Explanation) {
			return apperr.New(apperr.Invalid, "texts.%s must be plain text, without control characters or direction overrides", l)
		}
	}
	switch f.Type {
	case TypeDate, TypeText, TypeNumber:
		if len(f.Choices) > 0 {
			return apperr.New(apperr.Invalid, "only a choice field has choices")
		}
	case TypeChoice:
		if len(f.Choices) == 0 || len(f.Choices) > 100 {
			return apperr.New(apperr.Invalid, "a choice field needs 1-100 choices")
		}
		for i, c := range f.Choices {
			if n := utf8.RuneCountInString(c); n == 0 || n > 60 || strings.TrimSpace(c) != c || !PlainText(c) {
				return apperr.New(apperr.Invalid, "choices must be 1-60 characters without surrounding spaces")
			}
			if slices.Contains(f.Choices[:i], c) {
				return apperr.New(apperr.Invalid, "choice %q is listed twice", c)
			}
		}
	default:
		return apperr.New(apperr.Invalid, "type must be date, text, choice or number")
	}
	if f.OmitYear && f.Type != TypeDate {
		return apperr.New(apperr.Invalid, "omit_year applies to date fields only")
	}
	if (f.Min != nil || f.Max != nil) && f.Type != TypeNumber {
		return apperr.New(apperr.Invalid, "min and max apply to number fields only")
	}
	if f.Min != nil && f.Max != nil && *f.Min > *f.Max {
		return apperr.New(apperr.Invalid, "min must not exceed max")
	}
	if f.Category != "" {
		canon, err := consent.CheckCategory("category", f.Category)
		if err != nil {
			return err
		}
		f.Category = canon
	}
	if len(f.Purposes) == 0 || len(f.Purposes) > 10 {
		return apperr.New(apperr.Invalid, "name the 1-10 purposes that need this field; it is kept only while one of them is granted")
	}
	for i, p := range f.Purposes {
		if !consent.ValidPurposeKey(p) {
			return apperr.New(apperr.Invalid, "purposes must be purpose keys").WithDetail(consent.CodeInvalidPurpose)
		}
		if slices.Contains(f.Purposes[:i], p) {
			return apperr.New(apperr.Invalid, "purpose %q is listed twice", p)
		}
	}
	return nil
}

// Normalize checks a value a shopper gave and returns its stored form; now
// bounds dates (no birthday in the future).
func (f Field) Normalize(raw string, now time.Time) (string, error) {
	v := strings.TrimSpace(raw)
	bad := func(format string, args ...any) (string, error) {
		return "", apperr.New(apperr.Invalid, format, args...).WithDetail(CodeInvalidValue)
	}
	if v == "" {
		return bad("%s: a value is required", f.Key)
	}
	switch f.Type {
	case TypeDate:
		if f.OmitYear {
			if len(v) == 10 && v[4] == '-' { // a full date: keep only what is needed
				v = "--" + v[5:]
			}
			if _, _, ok := MonthDay(v); !ok {
				return bad("%s: give a month and day, --MM-DD", f.Key)
			}
			return v, nil
		}
		d, err := time.Parse(time.DateOnly, v)
		if err != nil {
			return bad("%s: give a date, YYYY-MM-DD", f.Key)
		}
		if d.Year() < 1900 || d.After(now) {
			return bad("%s: the date must be between 1900 and today", f.Key)
		}
		return v, nil
	case TypeText:
		if utf8.RuneCountInString(v) > 200 || strings.ContainsFunc(v, unicode.IsControl) || !PlainText(v) {
			return bad("%s: at most 200 characters of plain text", f.Key)
		}
		return v, nil
	case TypeChoice:
		if !slices.Contains(f.Choices, v) {
			return bad("%s: choose one of the listed values", f.Key)
		}
		return v, nil
	case TypeNumber:
		n, err := strconv.ParseFloat(v, 64)
		if err != nil || n != n || n > 1e15 || n < -1e15 {
			return bad("%s: give a number", f.Key)
		}
		if (f.Min != nil && n < *f.Min) || (f.Max != nil && n > *f.Max) {
			return bad("%s: the number is out of range", f.Key)
		}
		return strconv.FormatFloat(n, 'f', -1, 64), nil
	}
	return bad("%s: unknown field type", f.Key)
}

// MonthDay reads the month and day of a stored date value, either
// "YYYY-MM-DD" or "--MM-DD". February 29 is a valid month and day.
func MonthDay(v string) (time.Month, int, bool) {
	var md string
	switch {
	case len(v) == 7 && strings.HasPrefix(v, "--"):
		md = v[2:]
	case len(v) == 10 && v[4] == '-':
		md = v[5:]
	default:
		return 0, 0, false
	}
	// Parse in a leap year so that 02-29 is accepted.
	d, err := time.Parse("2006-01-02", "2000-"+md)
	if err != nil {
		return 0, 0, false
	}
	return d.Month(), d.Day(), true
}
