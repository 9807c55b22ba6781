package consent_test

import (
	"slices"
	"testing"

	"github.com/fineline/fineline/consent"
)

// The fast membership tests agree with the published lists.
func TestCategoryVocabulary(t *testing.T) {
	for _, c := range consent.Categories() {
		if got, ok := consent.CanonicalCategory(c); !ok || got != c {
			t.Errorf("CanonicalCategory(%q) = %q, %v", c, got, ok)
		}
		if consent.SensitiveCategory(c) != slices.Contains(consent.SensitiveCategories(), c) {
			t.Errorf("SensitiveCategory(%q) disagrees with SensitiveCategories", c)
		}
	}
	for alias, want := range map[string]string{"email": "contact", "birthday": "demographic", "browsing_history": "browsing", "shoe_size": "physical_description"} {
		if got, ok := consent.CanonicalCategory(alias); !ok || got != want {
			t.Errorf("CanonicalCategory(%q) = %q, %v; want %q", alias, got, ok, want)
		}
	}
	if _, ok := consent.CanonicalCategory("feelings"); ok {
		t.Error("an unknown category is known")
	}
	if len(consent.Categories()) != 21 {
		t.Errorf("%d categories, want 21", len(consent.Categories()))
	}
}
