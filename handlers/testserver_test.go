package handlers_test

import (
	"testing"
	"time"

	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/server/servertest"
)

// testServer is Fineline wired by server.Open, as cmd/fineline wires it
// (the same caches, the projections written behind).
type testServer = servertest.Running

type testOptions = servertest.Options

// newTestServer starts Fineline for a test and stops it when the test ends.
func newTestServer(t testing.TB, o testOptions) *testServer { return servertest.Start(t, o) }

// formatTime is how the center shows a time in every language.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04 UTC") }

// textFor picks a version's wording in lang, falling back to English.
func textFor(v notices.Version, lang string) notices.Summary {
	if t, ok := v.Texts[lang]; ok {
		return t
	}
	return v.Texts["en"]
}

// rewardJSON is a reward as the merchant API lists it.
type rewardJSON struct {
	Code       string     `json:"code"`
	Offer      string     `json:"offer"`
	Subject    string     `json:"subject"`
	Period     string     `json:"period"`
	IssuedAt   time.Time  `json:"issued_at"`
	ValidFrom  time.Time  `json:"valid_from"`
	ValidUntil time.Time  `json:"valid_until"`
	Redeemed   bool       `json:"redeemed"`
	RedeemedAt *time.Time `json:"redeemed_at,omitempty"`
	Email      string     `json:"email"`
}
