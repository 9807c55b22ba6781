package locales

import (
	"slices"
	"strings"
	"testing"
)

// TestEveryLanguageHasEveryMessage fails when a language misses a message
// English has, or has one English does not.
func TestEveryLanguageHasEveryMessage(t *testing.T) {
	en, err := MessageIDs("en")
	if err != nil {
		t.Fatal(err)
	}
	if len(en) < 50 {
		t.Fatalf("only %d English messages", len(en))
	}
	for _, lang := range Supported()[1:] {
		ids, err := MessageIDs(lang)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range en {
			if !slices.Contains(ids, id) {
				t.Errorf("%s misses %q", lang, id)
			}
		}
		for _, id := range ids {
			if !slices.Contains(en, id) {
				t.Errorf("%s has %q, which English does not", lang, id)
			}
		}
	}
}

func TestBundleTranslatesAndPicks(t *testing.T) {
	b, err := NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	for _, lang := range Supported() {
		l := b.For(lang)
		if got := l.Tf("signin_lead", "Merchant", "Demo Shop"); !strings.Contains(got, "Demo Shop") || got == "signin_lead" {
			t.Errorf("%s signin_lead = %q", lang, got)
		}
		if one, many := l.Tn("unsaved", 1, "N", 1), l.Tn("unsaved", 3, "N", 3); one == many || !strings.Contains(many, "3") {
			t.Errorf("%s plural forms: %q / %q", lang, one, many)
		}
	}
	if b.For("de").T("save_button") == b.For("en").T("save_button") {
		t.Error("German falls back to English")
	}
	tests := []struct{ explicit, cookie, accept, want string }{
		{"fr", "de", "es", "fr"},
		{"", "de", "es", "de"},
		{"xx", "", "es-MX,es;q=0.9,en;q=0.5", "es"},
		{"", "", "de-CH", "de"},
		{"", "", "ja", "en"},
		{"", "", "", "en"},
		{"", "", strings.Repeat("a,", 400), "en"},
	}
	for _, tt := range tests {
		if got := b.Pick(tt.explicit, tt.cookie, tt.accept); got != tt.want {
			t.Errorf("Pick(%q, %q, %q) = %s, want %s", tt.explicit, tt.cookie, tt.accept, got, tt.want)
		}
	}
	if got := b.For("en").Category("purchase_history"); got != "what you bought" {
		t.Errorf("category: %q", got)
	}
}
