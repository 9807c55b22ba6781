package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fineline/fineline/announce"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/handlers"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/ttlcache"
	"github.com/fineline/fineline/vault"
)

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(ctx, args, getenv, stdout, stderr)
	case "ledger":
		if len(args) == 0 || args[0] != "verify" {
			fmt.Fprintln(stderr, "usage: fineline ledger verify [flags]")
			return 2
		}
		return verifyLedger(ctx, args[1:], getenv, stdout, stderr)
	case "bench":
		return bench(ctx, args, stdout, stderr)
	case "bench-ceiling":
		return benchCeiling(ctx, args, stderr)
	case "help":
		_, _ = parseConfig("fineline", []string{"--help"}, getenv, stderr)
		return 0
	default:
		fmt.Fprintf(stderr, "unknown command %q (see fineline --help)\n", cmd)
		return 2
	}
}

// app is Fineline wired together.
type app struct {
	store     *store.Store
	merchants *merchants.Service
	purposes  *consent.Purposes
	subjects  *consent.Subjects
	ledger    *consent.Ledger
	notices   *notices.Service
	fields    *fields.Service
	offers    *offers.Service
	// background counts the workers serve started.
	background sync.WaitGroup
}

func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

func open(ctx context.Context, cfg config, attach bool, log *slog.Logger, stderr io.Writer) (*app, error) {
	st, err := store.Open(ctx, store.Config{URI: cfg.MongoURI, DataDir: cfg.DataDir, Attach: attach, Logger: newLogger(stderr, slog.LevelWarn)})
	if err != nil {
		return nil, err
	}
	now := time.Now
	// What every request reads is cached for at most the bound, so a change
	// made on another instance reaches this one's answers within it.
	ns := &notices.Service{Store: notices.NewCachedStore(st, cfg.CacheBound, now), Now: now}
	ps := consent.NewCachedPurposes(st, cfg.CacheBound, now)
	keys, err := masterKey(cfg)
	if err != nil {
		_ = st.Close(context.Background())
		return nil, err
	}
	a := &app{
		store:     st,
		merchants: &merchants.Service{Store: merchants.NewCachedStore(st, cfg.CacheBound, now), Now: now},
		purposes:  &consent.Purposes{Store: ps, Now: now},
		subjects:  &consent.Subjects{Store: st, Now: now},
		ledger: consent.NewLedger(st, ps, st, ns, now, log, consent.Options{
			Exclusive: st.Embedded(), Bound: cfg.CacheBound, CacheSize: cfg.CacheSubjects,
		}),
		notices: ns,
	}
	a.fields = &fields.Service{Store: st, Purposes: a.purposes, Ledger: a.ledger, Keys: keys, Now: now, Log: log,
		Definitions: ttlcache.New[string, []fields.Field](cfg.CacheBound, 10_000, now)}
	a.offers = &offers.Service{Store: st, Purposes: a.purposes, Fields: a.fields, Ledger: a.ledger, Codes: offers.NewCodes(keys.Derive("reward codes")), Now: now}
	// Volunteered data goes the moment the last purpose needing it does.
	a.ledger.AfterWithdraw(a.fields.AfterWithdraw)
	return a, nil
}

// masterKey is FINELINE_MASTER_KEY, or with the embedded store a key
// generated once in the data directory (mode 0600).
func masterKey(cfg config) (*vault.Keyring, error) {
	var (
		raw []byte
		err error
	)
	if cfg.MasterKey != "" {
		raw, err = vault.ParseKey(cfg.MasterKey)
	} else {
		raw, err = vault.LoadOrCreate(filepath.Join(cfg.DataDir, "master.key"))
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return vault.New(raw)
}

// setup parses the command's configuration and opens the store; a non-zero
// code means the command ends with it.
func setup(ctx context.Context, name string, args []string, getenv func(string) string, stderr io.Writer, attach bool) (config, *slog.Logger, *app, int) {
	cfg, err := parseConfig(name, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, nil, nil, -1
	}
	if err != nil {
		fmt.Fprintln(stderr, "fineline:", err)
		return cfg, nil, nil, 2
	}
	log := newLogger(stderr, cfg.LogLevel)
	a, err := open(ctx, cfg, attach, log, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "fineline: cannot open the store:", err)
		return cfg, nil, nil, 1
	}
	return cfg, log, a, 0
}

// exitCode turns setup's code into the command's exit status.
func exitCode(code int) int { return max(code, 0) }

func serve(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, log, a, code := setup(ctx, "fineline serve", args, getenv, stderr, false)
	if code != 0 {
		return exitCode(code)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := a.store.Close(closeCtx); err != nil {
			log.Warn("store close", "err", err)
		}
	}()
	if a.store.Embedded() {
		log.Info("embedded store started", "data_dir", cfg.DataDir)
	}
	if err := warmUp(ctx, a, cfg, log); err != nil {
		log.Error("cannot load consent state", "err", err)
		return 1
	}

	var seeded demo.Result
	if cfg.Demo {
		seeder := &demo.Seeder{Marks: a.store, Merchants: a.merchants, Purposes: a.purposes, Subjects: a.subjects, Ledger: a.ledger, Notices: a.notices,
			Fields: a.fields, Offers: a.offers, Now: time.Now}
		var err error
		if seeded, err = seeder.Seed(ctx); err != nil {
			log.Error("cannot seed the demo merchant", "err", err)
			return 1
		}
	}

	center, err := newCenter(cfg, a.store, log)
	if err != nil {
		log.Error("cannot set up the preference center", "err", err)
		return 1
	}
	announcer := &announce.Worker{
		Store: a.store, Scan: a.store, Ledger: a.ledger, Subjects: a.subjects, Merchants: a.merchants.Store, Notices: a.notices,
		Signin: center.Signin, Locales: center.Locales, Mails: center.Mails, Mailer: center.Mailer, BaseURL: cfg.BaseURL,
		PerSecond: cfg.AnnounceRate, Lease: 2 * time.Minute, MaxAttempts: 6, Poll: 2 * time.Second, Now: time.Now, Log: log,
	}
	a.background.Add(1)
	go func() { defer a.background.Done(); announcer.Run(ctx) }()
	issuer := &offers.Issuer{
		Offers: a.offers, Fields: a.fields, Subjects: a.subjects, Purposes: a.purposes, Merchants: a.merchants.Store,
		Signin: center.Signin, Locales: center.Locales, Mails: center.Mails, Mailer: center.Mailer, BaseURL: cfg.BaseURL,
		Poll: cfg.RewardInterval, Lease: 2 * time.Minute, MaxAttempts: 6, Now: time.Now, Log: log,
	}
	a.background.Add(2)
	go func() { defer a.background.Done(); issuer.Run(ctx) }()
	go func() { defer a.background.Done(); a.fields.Run(ctx, time.Hour) }()
	h, err := handlers.New(&handlers.API{
		Merchants: a.merchants, Purposes: a.purposes, Subjects: a.subjects, Ledger: a.ledger, Notices: a.notices,
		Fields: a.fields, Offers: a.offers,
		Store: a.store, AdminToken: cfg.AdminToken, TrustedProxies: cfg.TrustedProxies, Log: log, Center: center, Announcer: announcer,
	})
	if err != nil {
		log.Error("cannot build the HTTP handler", "err", err)
		return 1
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		log.Error("cannot listen", "addr", cfg.Addr, "err", err)
		return 1
	}
	log.Info("serving", "addr", ln.Addr().String(), "base_url", cfg.BaseURL)
	shopURL := ""
	if cfg.Demo && cfg.DemoShopAddr != "" {
		shop, url, err := startDemoShop(ctx, cfg, a, center, log)
		if err != nil {
			log.Warn("demo shop not started", "err", err)
		} else {
			shopURL = url
			defer shop.Close()
		}
	}
	printWelcome(stdout, cfg.BaseURL, shopURL, seeded)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		log.Error("server stopped", "err", err)
		return 1
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		log.Warn("shutdown", "err", err)
	}
	// The background workers finish what they started (a batch of
	// projections, an email) before the store closes.
	a.background.Wait()
	if err := a.ledger.Flush(shutCtx); err != nil {
		log.Warn("projections not all written; the next start sweeps the ledger", "err", err)
	}
	if a.store.Embedded() && a.ledger.ProjectionsComplete() {
		if err := a.store.MarkClean(shutCtx, time.Now()); err != nil {
			log.Warn("clean-shutdown mark not written; the next start sweeps the ledger", "err", err)
		}
	}
	return 0
}

// recoveryWindow is how far back an instance on MongoDB first polls the
// ledger, to pick up events whose projection a crashed instance left behind.
const recoveryWindow = 15 * time.Minute

// warmUp loads consent state into the cache. On the embedded store, a start
// that does not follow a clean shutdown also sweeps the ledger and rolls
// forward projections a crash left behind. On MongoDB, this instance then
// follows the ledger for other instances' changes.
func warmUp(ctx context.Context, a *app, cfg config, log *slog.Logger) error {
	if cfg.CacheSubjects == 0 {
		return nil
	}
	start := time.Now()
	// On MongoDB no instance can know that all others stopped cleanly, so
	// every start sweeps: a projection another instance failed to save is
	// rolled forward here rather than trusted.
	sweep := true
	if a.store.Embedded() {
		clean, err := a.store.TakeCleanMark(ctx)
		if err != nil {
			return err
		}
		sweep = !clean
	}
	rep, err := a.ledger.Warm(ctx, a.store, sweep)
	if err != nil {
		return err
	}
	log.Info("consent state loaded", "subjects", rep.Records, "swept", sweep, "rolled_forward", rep.RolledForward,
		"complete", rep.Complete, "ms", time.Since(start).Milliseconds())
	a.background.Add(1)
	go func() { defer a.background.Done(); a.ledger.WriteBehind(ctx) }()
	if !a.store.Embedded() {
		go a.ledger.Follow(ctx, a.store, consent.FollowOptions{Interval: cfg.PollInterval, Overlap: 2 * time.Second, Since: time.Now().Add(-recoveryWindow)})
	}
	return nil
}

// printWelcome tells a newcomer what to open. The demo key is printed once,
// on the start that created it, and never logged.
func printWelcome(w io.Writer, base, shopURL string, seeded demo.Result) {
	fmt.Fprintf(w, "\nFineline is running at %s\n", base)
	fmt.Fprintf(w, "  API reference (OpenAPI):  %s/v1/openapi.json\n", base)
	fmt.Fprintf(w, "  Health:                   %s/healthz  %s/readyz\n", base, base)
	fmt.Fprintf(w, "  Demo preference center:   %s/c/%s/  (sign in as alice@example.com; the email lands in the outbox)\n", base, demo.Slug)
	if shopURL != "" {
		fmt.Fprintf(w, "  Demo shop with the widget: %s  (another origin)\n", shopURL)
	}
	if seeded.Seeded {
		fmt.Fprintf(w, "\nSeeded the demo merchant %q (slug %s).\n", seeded.Merchant.Name, seeded.Merchant.Slug)
		fmt.Fprintf(w, "Its API key is shown this once; keep it:\n\n  %s\n\n", seeded.APIKey)
		fmt.Fprintf(w, "Try:\n  curl -H 'Authorization: Bearer %s' '%s/v1/purposes'\n", seeded.APIKey, base)
		fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' '%s/v1/check?subject=alice&purpose=newsletter'\n\n", seeded.APIKey, base)
	}
}

func verifyLedger(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	_, _, a, code := setup(ctx, "fineline ledger verify", args, getenv, stderr, true)
	if code != 0 {
		return exitCode(code)
	}
	defer a.store.Close(context.WithoutCancel(ctx))
	rep, err := a.ledger.VerifyAll(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "fineline: ledger verify:", err)
		return 2
	}
	if rep.Broken != nil {
		fmt.Fprintf(stdout, "BROKEN: %s\n(checked %d subjects, %d events before it)\n", rep.Broken, rep.Subjects, rep.Events)
		return 1
	}
	fmt.Fprintf(stdout, "OK: %d subjects, %d events, every chain verifies\n", rep.Subjects, rep.Events)
	return 0
}

// startDemoShop serves the demo shop page on its own origin, allows that
// origin for the demo merchant's widget, and mints widget tokens for alice.
func startDemoShop(ctx context.Context, cfg config, a *app, center *handlers.Center, log *slog.Logger) (*http.Server, string, error) {
	m, err := a.merchants.Store.MerchantBySlug(ctx, demo.Slug)
	if err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", cfg.DemoShopAddr)
	if err != nil {
		return nil, "", err
	}
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	host, _, _ := net.SplitHostPort(cfg.DemoShopAddr)
	if host == "" {
		host = "localhost"
	}
	shopURL := "http://" + net.JoinHostPort(host, port)
	origins := append(slices.Clone(m.AllowedOrigins), shopURL, "http://localhost:"+port, "http://127.0.0.1:"+port)
	if _, err := a.merchants.SetAllowedOrigins(ctx, m.ID, origins); err != nil {
		ln.Close()
		return nil, "", err
	}
	mint := func() (string, error) {
		tok, _, err := center.Signin.NewWidgetToken(m.ID, "alice")
		return tok, err
	}
	srv := &http.Server{Handler: demo.ShopHandler(cfg.BaseURL, demo.Slug, mint), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("demo shop stopped", "err", err)
		}
	}()
	return srv, shopURL + "/", nil
}
