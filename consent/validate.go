package consent

import (
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/language"

	"github.com/fineline/fineline/apperr"
)

// Locales are the languages every purpose statement may be written in.
// The first is the fallback.
func Locales() []string { return []string{"en", "es", "de", "fr"} }

// SupportedLocale reports whether l is one of Locales.
func SupportedLocale(l string) bool { return slices.Contains(Locales(), l) }

// maxLocale bounds a locale tag as a decision records it.
const maxLocale = 35

// CanonicalLocale returns the BCP 47 tag s in its canonical form ("en-us"
// becomes "en-US"), "" for ""; a tag that is not one is Invalid
// (invalid_locale).
func CanonicalLocale(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	t, err := language.Parse(s)
	if err != nil || len(s) > maxLocale || t == language.Und {
		return "", apperr.New(apperr.Invalid, "locale must be a BCP 47 language tag such as en or de-CH").WithDetail(CodeInvalidLocale)
	}
	return t.String(), nil
}

var (
	subjectIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._@+:-]{0,127}$`)
	keyPattern       = regexp.MustCompile(`^[a-z][a-z0-9_]{1,63}$`)
	emailPattern     = regexp.MustCompile(`^[^\s@<>()\[\]\\,;:"]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63}$`)
)

// ValidKey reports whether k is a key as merchants name purposes, data
// categories, fields and offers: lower-case letters, digits and
// underscores, 2 to 64 characters, starting with a letter. Keys are parts
// of document ids and URLs, so nothing else is allowed.
func ValidKey(k string) bool { return keyPattern.MatchString(k) }

// ValidSubjectID reports whether id is acceptable as a merchant's customer id:
// 1 to 128 characters of letters, digits and . _ @ + : -, starting with a
// letter or digit. No slash (ids are parts of document keys) and no "$".
func ValidSubjectID(id string) bool { return subjectIDPattern.MatchString(id) }

// ValidPurposeKey reports whether k is a purpose key: lower-case letters,
// digits and underscores, 2 to 64 characters, starting with a letter.
func ValidPurposeKey(k string) bool { return ValidKey(k) }

// ValidEmail reports whether e looks like a deliverable address.
func ValidEmail(e string) bool { return len(e) <= 254 && emailPattern.MatchString(e) }

// CheckLocales checks the locales of a text map: the default (set to "en"
// when empty) and every locale written must be supported, and the default
// must be among those written.
func CheckLocales(defaultLocale *string, written []string) error {
	if *defaultLocale == "" {
		*defaultLocale = "en"
	}
	if !SupportedLocale(*defaultLocale) {
		return apperr.New(apperr.Invalid, "default_locale must be one of %s", strings.Join(Locales(), ", "))
	}
	if !slices.Contains(written, *defaultLocale) {
		return apperr.New(apperr.Invalid, "texts must include the default locale %q", *defaultLocale)
	}
	for _, l := range written {
		if !SupportedLocale(l) {
			return apperr.New(apperr.Invalid, "unsupported locale %q; use one of %s", l, strings.Join(Locales(), ", "))
		}
	}
	return nil
}

func checkSubjectID(id string) error {
	if !ValidSubjectID(id) {
		return apperr.New(apperr.Invalid, "subject id must be 1-128 characters of letters, digits and . _ @ + : - (starting with a letter or digit)").WithDetail(CodeInvalidSubject)
	}
	return nil
}

func checkPurposeKey(k string) error {
	if !ValidPurposeKey(k) {
		return apperr.New(apperr.Invalid, "purpose key must be 2-64 characters of lower-case letters, digits and underscores, starting with a letter").WithDetail(CodeInvalidPurpose)
	}
	return nil
}

// CheckLine validates a text that ends up in a mail header or a page title
// (a merchant's name, a purpose's name): trimmed, 1 to max characters, one
// line, no control or format characters (a "\r\nBcc:" in a name would make
// every mail that carries it refused). Invalid, invalid_text.
func CheckLine(what, s string, max int) (string, error) {
	s = strings.TrimSpace(s)
	if n := utf8.RuneCountInString(s); n == 0 || n > max {
		return "", apperr.New(apperr.Invalid, "%s must be 1-%d characters", what, max).WithDetail("invalid_text")
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' || r == utf8.RuneError {
			return "", apperr.New(apperr.Invalid, "%s must be one line of text without control characters", what).WithDetail("invalid_text")
		}
	}
	return s, nil
}
