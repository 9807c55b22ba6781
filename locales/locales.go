// Package locales holds Fineline's translations (go-i18n message files, one
// per language, embedded) and picks a language for each request.
package locales

import (
	"embed"
	"fmt"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nicksnyder/go-i18n/v2/i18n"
	"github.com/pelletier/go-toml/v2"
	"golang.org/x/text/language"

	"github.com/fineline/fineline/consent"
)

//go:embed active.*.toml console.*.toml
var files embed.FS

// Supported lists the languages of the center, the first being the
// fallback: the languages purposes are written in (consent.Locales).
func Supported() []string { return consent.Locales() }

// Name is a language's name in that language, for the language switcher.
func Name(lang string) string {
	switch lang {
	case "es":
		return "Español"
	case "de":
		return "Deutsch"
	case "fr":
		return "Français"
	default:
		return "English"
	}
}

// Bundle holds every message of every language; one per process.
type Bundle struct {
	b       *i18n.Bundle
	matcher language.Matcher
}

// NewBundle loads the embedded message files; a file that does not parse is
// an error at start, not at the first request.
func NewBundle() (*Bundle, error) {
	b := i18n.NewBundle(language.English)
	b.RegisterUnmarshalFunc("toml", toml.Unmarshal)
	tags := make([]language.Tag, 0, len(Supported()))
	for _, l := range Supported() {
		for _, f := range messageFiles(l) {
			if _, err := b.LoadMessageFileFS(files, f); err != nil {
				return nil, fmt.Errorf("load %s messages: %w", l, err)
			}
		}
		tags = append(tags, language.Make(l))
	}
	return &Bundle{b: b, matcher: language.NewMatcher(tags)}, nil
}

// messageFiles are a language's message files: the center's, then the
// merchant console's.
func messageFiles(lang string) []string {
	return []string{"active." + lang + ".toml", "console." + lang + ".toml"}
}

// MessageIDs returns the ids of the messages of lang, for completeness
// checks; an id in two of its files is an error.
func MessageIDs(lang string) ([]string, error) {
	var ids []string
	for _, f := range messageFiles(lang) {
		raw, err := files.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var m map[string]any
		if err := toml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for id := range m {
			if slices.Contains(ids, id) {
				return nil, fmt.Errorf("%s: message %q is in another file too", f, id)
			}
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Pick chooses the language: an explicit choice (?lang=), then the
// cookie of the language switcher, then Accept-Language, then English.
func (b *Bundle) Pick(explicit, cookie, acceptLanguage string) string {
	for _, l := range []string{explicit, cookie} {
		if slices.Contains(Supported(), l) {
			return l
		}
	}
	if acceptLanguage != "" && len(acceptLanguage) < 512 {
		tags, _, err := language.ParseAcceptLanguage(acceptLanguage)
		if err == nil && len(tags) > 0 {
			_, i, conf := b.matcher.Match(tags...)
			if conf != language.No {
				return Supported()[i]
			}
		}
	}
	return Supported()[0]
}

// Localizer translates for one request. Templates call its methods: the
// localizer travels in the page data, never in shared template functions.
type Localizer struct {
	Lang string
	l    *i18n.Localizer
}

// For returns a Localizer for lang (one of Supported).
func (b *Bundle) For(lang string) *Localizer {
	return &Localizer{Lang: lang, l: i18n.NewLocalizer(b.b, lang, "en")}
}

// T translates a message without arguments.
func (l *Localizer) T(id string) string { return l.localize(&i18n.LocalizeConfig{MessageID: id}) }

// Tf translates a message with named arguments given as pairs: "Name", v, ...
func (l *Localizer) Tf(id string, pairs ...any) string {
	return l.localize(&i18n.LocalizeConfig{MessageID: id, TemplateData: data(pairs)})
}

// Tn translates a message whose form depends on the count n (CLDR plural
// rules); n is also available as {{.Count}}.
func (l *Localizer) Tn(id string, n int, pairs ...any) string {
	d := data(pairs)
	d["Count"] = n
	return l.localize(&i18n.LocalizeConfig{MessageID: id, PluralCount: n, TemplateData: d})
}

func (l *Localizer) localize(c *i18n.LocalizeConfig) string {
	s, err := l.l.Localize(c)
	if err != nil {
		// A missing message shows its id (a test keeps every language
		// complete) rather than breaking the page.
		return c.MessageID
	}
	return s
}

func data(pairs []any) map[string]any {
	d := make(map[string]any, len(pairs)/2+1)
	for i := 0; i+1 < len(pairs); i += 2 {
		if k, ok := pairs[i].(string); ok {
			d[k] = pairs[i+1]
		}
	}
	return d
}

// Category names a data category in plain words ("your email address"),
// falling back to the key with spaces.
func (l *Localizer) Category(key string) string {
	id := "cat_" + key
	if s := l.T(id); s != id {
		return s
	}
	return strings.ReplaceAll(key, "_", " ")
}

// LowerFirst lower-cases the first letter of a label so that it reads
// inside a sentence ("Your shoe size" in "Because you told us your shoe
// size"). Labels begin with a possessive in every supported language, so
// this holds for German too.
func LowerFirst(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	if n == 0 {
		return s
	}
	return string(unicode.ToLower(r)) + s[n:]
}
