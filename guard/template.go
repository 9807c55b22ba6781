package guard

import (
	"slices"
	"strings"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// MaxTemplate is the longest template the guard reads, in bytes.
const MaxTemplate = 20_000

// Placeholders returns the attribute keys a message template uses, in the
// order they first appear: each {{ key }} (spaces inside the braces are
// allowed). A "{{" without its "}}", a "}}" without its "{{", or a
// placeholder that is not a key is an invalid_template error. Single
// braces are text.
func Placeholders(tmpl string) ([]string, error) {
	if len(tmpl) > MaxTemplate {
		return nil, apperr.New(apperr.Invalid, "template is longer than %d bytes", MaxTemplate).WithDetail(CodeInvalidTemplate)
	}
	var keys []string
	rest := tmpl
	for {
		open, close := strings.Index(rest, "{{"), strings.Index(rest, "}}")
		switch {
		case open < 0 && close < 0:
			return keys, nil
		case open < 0 || (close >= 0 && close < open):
			return nil, apperr.New(apperr.Invalid, "template has a \"}}\" without its \"{{\"").WithDetail(CodeInvalidTemplate)
		}
		inner := rest[open+2:]
		end := strings.Index(inner, "}}")
		if end < 0 {
			return nil, apperr.New(apperr.Invalid, "template has a \"{{\" without its \"}}\"").WithDetail(CodeInvalidTemplate)
		}
		key := strings.TrimSpace(inner[:end])
		if strings.Contains(key, "{{") || !consent.ValidKey(key) {
			return nil, apperr.New(apperr.Invalid, "template placeholder {{%s}} is not an attribute key", key).WithDetail(CodeInvalidTemplate)
		}
		if !slices.Contains(keys, key) {
			keys = append(keys, key)
		}
		rest = inner[end+2:]
	}
}
