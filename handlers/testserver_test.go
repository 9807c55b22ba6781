package handlers_test

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/server"
	"github.com/fineline/fineline/store/storetest"
)

// testServer is Fineline wired by server.Open, as cmd/fineline wires it
// (the same caches, the projections written behind), over a real embedded
// store in a temporary directory, serving on a loopback port.
type testServer struct {
	*server.Server
	URL  string
	http *httptest.Server
}

// testOptions change what a test server is wired with.
type testOptions struct {
	// Mailer receives every email; nil writes them to an outbox.
	Mailer mail.Sender
	// Now is the sign-in clock; nil: time.Now.
	Now func() time.Time
	// AdminToken enables the operator API.
	AdminToken string
	// Log receives the server's log; nil discards all but errors.
	Log *slog.Logger
	// DataDir, when set, is the store's directory (restart tests).
	DataDir string
	// NoCache runs without the state cache.
	NoCache bool
}

// newTestServer starts Fineline for a test and stops it when the test ends.
func newTestServer(t testing.TB, o testOptions) *testServer {
	t.Helper()
	dir := o.DataDir
	if dir == "" {
		// A short directory: the embedded store's socket path has a length limit.
		d, err := os.MkdirTemp("", "fl")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	log := o.Log
	if log == nil {
		log = storetest.Logger()
	}
	cfg := server.Config{DataDir: dir, BaseURL: base, AdminToken: o.AdminToken, CacheSubjects: 100_000, CacheBound: 2 * time.Second,
		PollInterval: 250 * time.Millisecond, MailFrom: "Fineline <no-reply@localhost>", RewardInterval: time.Hour, Jurisdiction: "EU",
		AnnounceRate: 100, Mailer: o.Mailer, Now: o.Now, StoreLog: storetest.Logger()}
	if o.NoCache {
		cfg.CacheSubjects = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := server.Open(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, _, err := s.Start(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	h, err := s.Handler()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	ts := &testServer{Server: s, URL: base, http: hs}
	t.Cleanup(func() {
		hs.Close()
		cancel()
		stopCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = s.Stop(stopCtx)
		_ = s.Close(stopCtx)
	})
	return ts
}

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
