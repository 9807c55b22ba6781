// Package servertest starts Fineline for tests exactly as cmd/fineline
// wires it (server.Open, Start, Handler), over a real embedded store in a
// temporary directory, serving on a loopback port.
package servertest

import (
	"context"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/server"
	"github.com/fineline/fineline/store/storetest"
)

// Options change what a test server is wired with.
type Options struct {
	// Mailer receives every email; nil writes them to an outbox.
	Mailer mail.Sender
	// Now is the clock of sign-in, webhook retries and reports' today;
	// LedgerNow the clock events are recorded by. Nil: time.Now.
	Now, LedgerNow func() time.Time
	// AdminToken enables the operator API.
	AdminToken string
	// Log receives the server's log; nil discards all but errors.
	Log *slog.Logger
	// DataDir, when set, is the store's directory (restart tests).
	DataDir string
	// NoCache runs without the state cache.
	NoCache bool
	// WebhooksAllowLoopback lets webhook receivers run in the test, on
	// loopback over http; WebhookTimeout bounds an attempt (0: 15 s).
	WebhooksAllowLoopback bool
	WebhookTimeout        time.Duration
}

// Running is a started Fineline.
type Running struct {
	*server.Server
	// URL is where it serves, also its base URL.
	URL string
}

// Start starts Fineline and stops it when the test ends.
func Start(tb testing.TB, o Options) *Running {
	tb.Helper()
	dir := o.DataDir
	if dir == "" {
		// A short directory: the embedded store's socket path has a length limit.
		d, err := os.MkdirTemp("", "fl")
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { os.RemoveAll(d) })
		dir = d
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	log := o.Log
	if log == nil {
		log = storetest.Logger()
	}
	cfg := server.Config{DataDir: dir, BaseURL: base, AdminToken: o.AdminToken, CacheMemory: 64 << 20, CacheBound: 2 * time.Second,
		PollInterval: 250 * time.Millisecond, MailFrom: "Fineline <no-reply@localhost>", RewardInterval: time.Hour, Jurisdiction: "EU",
		AnnounceRate: 1000, Mailer: o.Mailer, Now: o.Now, LedgerNow: o.LedgerNow, StoreLog: storetest.Logger(),
		WebhooksAllowLoopback: o.WebhooksAllowLoopback, WebhookTimeout: o.WebhookTimeout}
	if o.NoCache {
		cfg.CacheMemory = 0
	}
	ctx, cancel := context.WithCancel(context.Background())
	fail := func(err error) {
		cancel()
		ln.Close()
		tb.Fatal(err)
	}
	s, err := server.Open(ctx, cfg, log)
	if err != nil {
		fail(err)
	}
	if _, err := s.Start(ctx); err != nil {
		fail(err)
	}
	h, err := s.Handler()
	if err != nil {
		fail(err)
	}
	hs := httptest.NewUnstartedServer(h)
	hs.Listener.Close()
	hs.Listener = ln
	hs.Start()
	tb.Cleanup(func() {
		hs.Close()
		cancel()
		stopCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
		defer done()
		_ = s.Stop(stopCtx)
		_ = s.Close(stopCtx)
	})
	return &Running{Server: s, URL: base}
}

// AddShop creates a merchant with the first notice published and the demo
// purposes, and returns it with its first API key (every scope).
func (r *Running) AddShop(tb testing.TB, slug string) (merchants.Merchant, string) {
	tb.Helper()
	return r.AddShopWith(tb, merchants.NewMerchant{Slug: slug, Name: slug})
}

// AddShopWith is AddShop for a merchant as nm describes it.
func (r *Running) AddShopWith(tb testing.TB, nm merchants.NewMerchant) (merchants.Merchant, string) {
	tb.Helper()
	ctx := context.Background()
	m, _, secret, err := r.Merchants.Create(ctx, nm)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := r.Notices.PublishFirst(ctx, m.ID, nil, ""); err != nil {
		tb.Fatal(err)
	}
	for _, p := range demo.Purposes() {
		p.MerchantID = m.ID
		if _, err := r.Purposes.Create(ctx, p); err != nil {
			tb.Fatal(err)
		}
	}
	return m, secret
}
