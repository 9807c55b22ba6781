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
	"net/http/pprof"
	"time"

	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/server"
)

// run is the whole program; it returns the exit status.
func run(ctx context.Context, args []string, getenv environ, stdout, stderr io.Writer) int {
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
	case "backup":
		return backup(ctx, args, getenv, stdout, stderr)
	case "restore":
		return restore(ctx, args, getenv, stdout, stderr)
	case "store-server":
		return storeServer(ctx, args, getenv, stderr)
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

func newLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// logger is a log at level, as text or JSON lines as configured.
func (cfg config) logger(w io.Writer, level slog.Leveler) *slog.Logger {
	if cfg.LogJSON {
		return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
	}
	return newLogger(w, level)
}

// server is what the server package is set up with: attach connects to a
// running embedded store (admin commands).
func (cfg config) server(attach bool, stderr io.Writer) server.Config {
	c := cfg.Config
	c.Attach, c.StoreLog = attach, cfg.logger(stderr, slog.LevelWarn)
	return c
}

// setup parses the command's configuration and wires Fineline; a non-zero
// code means the command ends with it.
func setup(ctx context.Context, name string, args []string, getenv environ, stderr io.Writer, attach bool) (config, *slog.Logger, *server.Server, int) {
	cfg, err := parseConfig(name, args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return cfg, nil, nil, -1
	}
	if err != nil {
		fmt.Fprintln(stderr, "fineline:", err)
		return cfg, nil, nil, 2
	}
	log := cfg.logger(stderr, cfg.LogLevel)
	s, err := server.Open(ctx, cfg.server(attach, stderr), log)
	if err != nil {
		fmt.Fprintln(stderr, "fineline: cannot open the store:", err)
		return cfg, nil, nil, 1
	}
	return cfg, log, s, 0
}

// exitCode turns setup's code into the command's exit status.
func exitCode(code int) int { return max(code, 0) }

func serve(ctx context.Context, args []string, getenv environ, stdout, stderr io.Writer) int {
	cfg, log, a, code := setup(ctx, "fineline serve", args, getenv, stderr, false)
	if code != 0 {
		return exitCode(code)
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := a.Close(closeCtx); err != nil {
			log.Warn("store close", "err", err)
		}
	}()
	if a.Store.Embedded() {
		log.Info("embedded store started", "data_dir", cfg.DataDir)
	}
	start := time.Now()
	rep, err := a.Start(ctx)
	if err != nil {
		log.Error("cannot finish the ledger's journal", "err", err)
		return 1
	}
	log.Info("ledger ready", "slot", a.Store.Slot(), "checkpoint", rep.Checkpoint, "journal_tail", rep.Tail, "rolled_forward", rep.Subjects,
		"ms", time.Since(start).Milliseconds())

	var seeded demo.Result
	if cfg.Demo {
		seeder := &demo.Seeder{Marks: a.Store, Merchants: a.Merchants, Purposes: a.Purposes, Subjects: a.Subjects, Ledger: a.Ledger, Notices: a.Notices,
			Fields: a.Fields, Offers: a.Offers, Guard: a.Guard, Recipients: a.Recipients, Staff: a.Staff, Now: time.Now}
		if seeded, err = seeder.Seed(ctx); err != nil {
			log.Error("cannot seed the demo merchant", "err", err)
			return 1
		}
	}
	if cfg.WebhooksAllowLoopback {
		log.Warn("webhook endpoints on this machine are allowed (--webhooks-allow-loopback), over plain http too: for development and tests only, never in production")
	}
	a.RunJobs(ctx)
	h, err := a.Handler()
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
	if cfg.DebugAddr != "" {
		stop, err := serveProfiler(cfg.DebugAddr, log)
		if err != nil {
			log.Error("cannot serve the profiler", "addr", cfg.DebugAddr, "err", err)
			return 1
		}
		defer stop()
	}
	shopURL := ""
	if cfg.Demo && cfg.DemoShopAddr != "" {
		shop, url, err := startDemoShop(ctx, cfg, a, log)
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
	return stop(ctx, srv, a, log, cfg.Drain, stopTimeout)
}

// stopTimeout is how long a stop waits, after the requests in flight (a
// client still trickling a body past --drain-timeout is cut off), for the
// projections to be flushed and the clean stop to be marked: a deadline
// of its own, so that a slow client never costs the next start a sweep of
// the ledger.
const stopTimeout = 20 * time.Second

// stop drains the HTTP server, closes what is left of it, then stops the
// server's work.
func stop(ctx context.Context, srv *http.Server, a *server.Server, log *slog.Logger, drain, finish time.Duration) int {
	drainCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
	defer cancel()
	if err := srv.Shutdown(drainCtx); err != nil {
		log.Warn("requests still in flight at the stop were cut off", "err", err)
		_ = srv.Close()
	}
	stopCtx, cancelStop := context.WithTimeout(context.WithoutCancel(ctx), finish)
	defer cancelStop()
	if err := a.Stop(stopCtx); err != nil {
		log.Warn("stop", "err", err)
		return 1
	}
	return 0
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
	fmt.Fprintf(w, "  Demo merchant console:    %s/m/%s/  (sign in as %s; the email lands in the outbox)\n", base, demo.Slug, demo.Owner)
	if seeded.Seeded {
		fmt.Fprintf(w, "\nSeeded the demo merchant %q (slug %s).\n", seeded.Merchant.Name, seeded.Merchant.Slug)
		fmt.Fprintf(w, "Its API key is shown this once; keep it:\n\n  %s\n\n", seeded.APIKey)
		fmt.Fprintf(w, "Try:\n  curl -H 'Authorization: Bearer %s' '%s/v1/purposes'\n", seeded.APIKey, base)
		fmt.Fprintf(w, "  curl -H 'Authorization: Bearer %s' '%s/v1/check?subject=alice&purpose=newsletter'\n\n", seeded.APIKey, base)
	}
}

func verifyLedger(ctx context.Context, args []string, getenv environ, stdout, stderr io.Writer) int {
	_, _, a, code := setup(ctx, "fineline ledger verify", args, getenv, stderr, true)
	if code != 0 {
		return exitCode(code)
	}
	defer a.Close(context.WithoutCancel(ctx))
	rep, err := a.Ledger.VerifyAll(ctx)
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
func startDemoShop(ctx context.Context, cfg config, a *server.Server, log *slog.Logger) (*http.Server, string, error) {
	m, err := a.Merchants.Store.MerchantBySlug(ctx, demo.Slug)
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
	if err := a.Merchants.AllowOrigins(ctx, m.ID, shopURL, "http://localhost:"+port, "http://127.0.0.1:"+port); err != nil {
		ln.Close()
		return nil, "", err
	}
	mint := func() (string, error) {
		tok, _, err := a.Center.Signin.NewWidgetToken(m.ID, "alice")
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

// serveProfiler serves net/http/pprof on addr (a loopback address).
func serveProfiler(addr string, log *slog.Logger) (func(), error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	log.Info("profiler", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}
