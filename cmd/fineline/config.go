package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fineline/fineline/server"
)

// config is everything Fineline reads from flags and the environment.
// Flags win over the environment.
type config struct {
	// Config is what Fineline itself is set up with.
	server.Config
	Addr     string
	LogLevel slog.Level
	// LogJSON writes logs as JSON lines instead of text.
	LogJSON      bool
	Demo         bool
	DemoShopAddr string
	// DebugAddr serves Go's profiler (net/http/pprof); empty turns it off.
	DebugAddr string
	// Drain is how long a stop waits for requests in flight.
	Drain time.Duration
}

const usage = `Fineline: a hosted preference and consent center.

Usage:
  fineline [serve] [flags]   run the server (default)
  fineline ledger verify     check every subject's consent chain; exit 1 at the first broken link
  fineline bench [--subjects N] [--duration D] [--profile DIR]
                             seed a fresh store, start Fineline and measure it under load
  fineline backup --to FILE [--data-dir DIR]
                             copy the embedded store while the server runs (the keys stay out of it)
  fineline restore --from FILE --data-dir DIR
                             restore a backup into a new data directory
  fineline store-server --postgresql URL [--addr HOST:PORT]
                             serve a shared MongoDB-wire store on PostgreSQL (FerretDB) for several instances
  fineline help              show this help

With no configuration Fineline starts an embedded MongoDB-compatible store in
./data, seeds the "Demo Shop" merchant on first start, prints its API key once,
and serves http://localhost:8080.

Flags (each also read from the environment variable named in brackets):
`

const envHelp = `
Environment only (kept out of flags so they never show in a process list):
  MONGODB_URI            use this MongoDB deployment instead of the embedded store
                         (production: a replica set; write concern majority is the default)
  FINELINE_ADMIN_TOKEN   bearer token for the operator API (/admin/v1/...); unset disables it
  SMTP_URL               send email over SMTP, e.g. smtp://user:pass@host:587 (smtps:// for implicit TLS);
                         unset writes each email as an .eml file under <data dir>/outbox/
  FINELINE_SIGNING_KEY   base64 Ed25519 seed that signs receipts and sessions; required with MONGODB_URI
                         (every instance needs the same key); unset with the embedded store generates
                         <data dir>/signing.key
  FINELINE_PREVIOUS_SIGNING_KEYS
                         comma-separated public keys (the "x" of their JWKS entries) of signing keys rotated
                         out: still published in /.well-known/jwks.json, so receipts they signed verify
  FINELINE_MASTER_KEY    32 random bytes in base64 (openssl rand -base64 32) that wrap the per-shopper keys
                         encrypting volunteered data (birthdays...); required with MONGODB_URI; unset with
                         the embedded store generates <data dir>/master.key (mode 0600). Keep it apart from
                         database backups: without it the data cannot be read.
`

// environ reads the environment: a variable's value, and whether it is set
// at all (set and empty can mean "off").
type environ func(string) (string, bool)

// get is a variable's value, "" when unset.
func (e environ) get(key string) string {
	v, _ := e(key)
	return v
}

func parseConfig(name string, args []string, getenv environ, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	env := func(key, def string) string {
		if v := getenv.get(key); v != "" {
			return v
		}
		return def
	}
	var cfg config
	var proxies, level, demo string
	fs.StringVar(&cfg.Addr, "addr", env("FINELINE_ADDR", "localhost:8080"), "address to serve HTTP on [FINELINE_ADDR]")
	fs.StringVar(&cfg.DataDir, "data-dir", env("FINELINE_DATA_DIR", "./data"), "directory of the embedded store and other local files [FINELINE_DATA_DIR]")
	fs.StringVar(&cfg.BaseURL, "base-url", env("FINELINE_BASE_URL", ""), "public URL of this server, used in links (default http://<addr>) [FINELINE_BASE_URL]")
	fs.StringVar(&proxies, "trusted-proxies", env("FINELINE_TRUSTED_PROXIES", ""), "comma-separated proxy addresses or CIDRs whose X-Forwarded-For is believed; none by default [FINELINE_TRUSTED_PROXIES]")
	fs.StringVar(&level, "log-level", env("FINELINE_LOG_LEVEL", "info"), "debug, info, warn or error [FINELINE_LOG_LEVEL]")
	var logFormat, metricsOn, rollupsOn string
	fs.StringVar(&metricsOn, "metrics", env("FINELINE_METRICS", "true"), "record Prometheus metrics and serve them at /metrics behind the admin token: true or false [FINELINE_METRICS]")
	fs.StringVar(&rollupsOn, "rollups", env("FINELINE_ROLLUPS", "true"), "keep the analytics rollups up to date from the change feed: true or false (they catch up when turned on again) [FINELINE_ROLLUPS]")
	fs.StringVar(&logFormat, "log-format", env("FINELINE_LOG_FORMAT", "text"), "text (key=value) or json (one object a line) [FINELINE_LOG_FORMAT]")
	fs.StringVar(&cfg.MailFrom, "mail-from", env("FINELINE_MAIL_FROM", "Fineline <no-reply@localhost>"), "sender of the emails Fineline sends [FINELINE_MAIL_FROM]")
	fs.StringVar(&cfg.Jurisdiction, "jurisdiction", env("FINELINE_JURISDICTION", "EU"), "jurisdiction named in consent receipts [FINELINE_JURISDICTION]")
	fs.Float64Var(&cfg.AnnounceRate, "announce-rate", envFloat(getenv, "FINELINE_ANNOUNCE_RATE", 5), "emails a second each instance sends when announcing changed terms [FINELINE_ANNOUNCE_RATE]")
	demoShop := "localhost:8081"
	if v, set := getenv("FINELINE_DEMO_SHOP_ADDR"); set {
		demoShop = v // set and empty turns the demo shop off
	}
	fs.StringVar(&cfg.DemoShopAddr, "demo-shop-addr", demoShop, "with --demo: where to serve a demo shop page (another origin) that embeds the widget; empty turns it off [FINELINE_DEMO_SHOP_ADDR]")
	fs.StringVar(&demo, "demo", env("FINELINE_DEMO", "true"), "seed the Demo Shop merchant on first start: true or false [FINELINE_DEMO]")
	var cacheMemory, cacheBound, pollInterval, rewardInterval, drain string
	fs.StringVar(&drain, "drain-timeout", env("FINELINE_DRAIN_TIMEOUT", "10s"), "at a stop, how long requests in flight may take to finish before they are cut off (the ledger is flushed after, on its own deadline) [FINELINE_DRAIN_TIMEOUT]")
	fs.StringVar(&rewardInterval, "reward-interval", env("FINELINE_REWARD_INTERVAL", "15m"), "how often to look for birthday rewards due (a pass over every member's birthday; emails go out every minute) [FINELINE_REWARD_INTERVAL]")
	fs.StringVar(&cacheMemory, "cache-memory", env("FINELINE_CACHE_MEMORY", "512MiB"), "memory for consent state held in memory (about 450 bytes a subject of three purposes): a size such as 512MiB or 2GiB; 0 turns the cache off [FINELINE_CACHE_MEMORY]")
	fs.StringVar(&cacheBound, "cache-bound", env("FINELINE_CACHE_BOUND", "2s"), "with MongoDB and several instances: the longest a change made on one instance takes to reach the others' answers [FINELINE_CACHE_BOUND]")
	fs.StringVar(&cfg.DebugAddr, "debug-addr", env("FINELINE_DEBUG_ADDR", ""), "loopback address to serve Go's profiler on (/debug/pprof/); off by default [FINELINE_DEBUG_ADDR]")
	fs.BoolVar(&cfg.WebhooksAllowLoopback, "webhooks-allow-loopback", getenv.get("FINELINE_WEBHOOKS_ALLOW_LOOPBACK") == "true",
		"for local development and tests only: let webhook endpoints be on this machine (127.0.0.1, ::1, localhost), over plain http too [FINELINE_WEBHOOKS_ALLOW_LOOPBACK=true]")
	fs.StringVar(&pollInterval, "poll-interval", env("FINELINE_POLL_INTERVAL", "250ms"), "with MongoDB: how often each instance polls the ledger for other instances' changes [FINELINE_POLL_INTERVAL]")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
		fmt.Fprint(stderr, envHelp)
	}
	err := fs.Parse(args)
	if err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	if cfg.DebugAddr != "" {
		host, _, err := net.SplitHostPort(cfg.DebugAddr)
		if ip := net.ParseIP(host); err != nil || host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return config{}, errors.New("--debug-addr must be a loopback address such as 127.0.0.1:6060: the profiler shows the process's memory")
		}
	}
	cfg.MongoURI = getenv.get("MONGODB_URI")
	cfg.AdminToken = getenv.get("FINELINE_ADMIN_TOKEN")
	cfg.SMTPURL = getenv.get("SMTP_URL")
	cfg.SigningKey = getenv.get("FINELINE_SIGNING_KEY")
	if prev := getenv.get("FINELINE_PREVIOUS_SIGNING_KEYS"); prev != "" {
		cfg.PreviousSigningKeys = strings.Split(prev, ",")
	}
	cfg.MasterKey = getenv.get("FINELINE_MASTER_KEY")
	if cfg.MongoURI != "" && cfg.MasterKey == "" {
		return config{}, errors.New("FINELINE_MASTER_KEY is required with MONGODB_URI: every instance must open volunteered data with the same key")
	}
	if cfg.Drain, err = time.ParseDuration(drain); err != nil || cfg.Drain <= 0 {
		return config{}, errors.New("--drain-timeout must be a positive duration, such as 10s")
	}
	if cfg.RewardInterval, err = time.ParseDuration(rewardInterval); err != nil || cfg.RewardInterval < time.Second {
		return config{}, errors.New("--reward-interval must be a duration of at least 1s, such as 15m")
	}
	if cfg.MongoURI != "" && cfg.SigningKey == "" {
		return config{}, errors.New("FINELINE_SIGNING_KEY is required with MONGODB_URI: every instance must sign with the same key")
	}
	if err = cfg.LogLevel.UnmarshalText([]byte(level)); err != nil {
		return config{}, fmt.Errorf("--log-level: %w", err)
	}
	switch metricsOn {
	case "true":
	case "false":
		cfg.NoMetrics = true
	default:
		return config{}, errors.New("--metrics must be true or false")
	}
	switch rollupsOn {
	case "true":
	case "false":
		cfg.NoRollups = true
	default:
		return config{}, errors.New("--rollups must be true or false")
	}
	switch logFormat {
	case "text":
	case "json":
		cfg.LogJSON = true
	default:
		return config{}, errors.New("--log-format must be text or json")
	}
	switch demo {
	case "true", "1", "yes":
		cfg.Demo = true
	case "false", "0", "no":
	default:
		return config{}, errors.New("--demo must be true or false")
	}
	if cfg.AnnounceRate <= 0 || cfg.AnnounceRate > 1000 {
		return config{}, errors.New("--announce-rate must be between 0 and 1000 emails a second")
	}
	if cfg.CacheMemory, err = parseSize(cacheMemory); err != nil {
		return config{}, fmt.Errorf("--cache-memory: %w", err)
	}
	if cfg.CacheBound, err = time.ParseDuration(cacheBound); err != nil || cfg.CacheBound <= 0 {
		return config{}, errors.New("--cache-bound must be a positive duration such as 2s")
	}
	if cfg.PollInterval, err = time.ParseDuration(pollInterval); err != nil || cfg.PollInterval <= 0 || cfg.PollInterval*2 > cfg.CacheBound {
		return config{}, errors.New("--poll-interval must be a positive duration at most half of --cache-bound")
	}
	for _, p := range strings.Split(proxies, ",") {
		if p = strings.TrimSpace(p); p != "" {
			cfg.TrustedProxies = append(cfg.TrustedProxies, p)
		}
	}
	if _, _, err := net.SplitHostPort(cfg.Addr); err != nil {
		return config{}, fmt.Errorf("--addr %q: %w", cfg.Addr, err)
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = "http://" + cfg.Addr
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return config{}, fmt.Errorf("--base-url %q must be an http(s) URL", cfg.BaseURL)
	}
	cfg.BaseURL = strings.TrimRight(cfg.BaseURL, "/")
	if cfg.AdminToken != "" && len(cfg.AdminToken) < 16 {
		return config{}, errors.New("FINELINE_ADMIN_TOKEN must be at least 16 characters")
	}
	return cfg, nil
}

// envFloat reads a number from the environment, or def; a malformed value
// becomes 0, which validation then refuses.
func envFloat(getenv environ, key string, def float64) float64 {
	v := getenv.get(key)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return 0
	}
	return f
}

// parseSize reads a size in bytes: a whole number with an optional unit
// (B, KiB, MiB, GiB; KB, MB, GB are read as powers of 1024 too).
func parseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	units := []struct {
		suffix string
		mult   int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}, {"B", 1}}
	mult := int64(1)
	for _, u := range units {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSpace(strings.TrimSuffix(v, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 || n > (1<<50)/mult {
		return 0, errors.New("must be a size such as 512MiB, 2GiB or 0")
	}
	return n * mult, nil
}
