// Package server assembles Fineline: the store, the domain services, the
// preference center, the background jobs and the HTTP handler, from one
// Config. The command and the tests wire Fineline with this same code, so
// a test runs with the caches and the wiring production runs with.
package server

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/announce"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/erasure"
	"github.com/fineline/fineline/exports"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/guard"
	"github.com/fineline/fineline/handlers"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/metrics"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/ratelimit"
	"github.com/fineline/fineline/reach"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/recipients"
	"github.com/fineline/fineline/requests"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/staff"
	"github.com/fineline/fineline/stats"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/ttlcache"
	"github.com/fineline/fineline/vault"
	"github.com/fineline/fineline/web"
	"github.com/fineline/fineline/webhooks"
)

// Config is everything Fineline is set up with.
type Config struct {
	// MongoURI names a MongoDB deployment; empty starts the embedded store
	// in DataDir.
	MongoURI string
	DataDir  string
	// Attach connects to the embedded store of a Fineline process already
	// serving DataDir (admin commands).
	Attach bool
	// BaseURL is the public URL, without a trailing slash.
	BaseURL        string
	AdminToken     string
	TrustedProxies []string
	// CacheMemory is the state cache's budget in bytes (0: no cache).
	CacheMemory int64
	// CacheBound is the longest a change on one instance takes to reach the
	// others' answers; PollInterval how often each polls the ledger.
	CacheBound   time.Duration
	PollInterval time.Duration
	SMTPURL      string
	MailFrom     string
	// SigningKey and MasterKey are base64 secrets; empty with the embedded
	// store keeps generated ones in DataDir.
	SigningKey string
	// PreviousSigningKeys are the public keys (base64url, a JWKS entry's
	// "x") of signing keys rotated out: still published, so that receipts
	// they signed verify.
	PreviousSigningKeys []string
	MasterKey           string
	RewardInterval      time.Duration
	Jurisdiction        string
	AnnounceRate        float64
	// WebhooksAllowLoopback lets webhook receivers be on this machine, over
	// plain http too (development and tests).
	WebhooksAllowLoopback bool
	// WebhookTimeout bounds one delivery attempt (0: 15 s).
	WebhookTimeout time.Duration
	// NoMetrics records no Prometheus metrics and serves no /metrics.
	NoMetrics bool
	// NoRollups keeps the analytics rollups where they are (RunJobs does not
	// move them; they catch up when started again).
	NoRollups bool

	// Mailer, when set, sends every email instead of SMTP or the outbox.
	Mailer mail.Sender
	// Now, when set, is the clock of sign-in links, sessions and webhook
	// retries, and the "today" of analytics reports.
	Now func() time.Time
	// LedgerNow, when set, is the clock events are recorded by (tests of
	// what lands on which day).
	LedgerNow func() time.Time
	// StoreLog receives the embedded server's own warnings; nil: Log at warn.
	StoreLog *slog.Logger
}

// Server is Fineline wired together.
type Server struct {
	Config    Config
	Log       *slog.Logger
	Store     *store.Store
	Merchants *merchants.Service
	Purposes  *consent.Purposes
	Subjects  *consent.Subjects
	Ledger    *consent.Ledger
	Notices   *notices.Service
	Fields    *fields.Service
	Offers    *offers.Service
	Center    *handlers.Center
	Announcer *announce.Worker
	Issuer    *offers.Issuer
	Webhooks  *webhooks.Service
	// Dispatcher delivers webhooks (see RunJobs).
	Dispatcher *webhooks.Dispatcher
	Exports    *exports.Service
	Guard      *guard.Service
	Recipients *recipients.Service
	// Requests keeps shoppers' requests about data held elsewhere.
	Requests *requests.Service
	// Erasure erases subjects; RunJobs finishes those a crash interrupted.
	Erasure *erasure.Service
	// Metrics records what operators watch (served at /metrics).
	Metrics *metrics.Metrics
	// Access counts who asked about each subject (see Start).
	Access *access.Counter
	// Reach counts what the widget's banner met (see Start).
	Reach *reach.Counter
	// Rollups keep the analytics counters (see RunJobs); Reports read them.
	Rollups *stats.Roller
	Reports stats.Reporter
	// Staff runs each merchant's console (members, roles, audit log).
	Staff *staff.Service

	// background counts the workers Start and RunJobs started.
	background sync.WaitGroup
}

// Open connects to the store and wires every service.
func Open(ctx context.Context, cfg Config, log *slog.Logger) (*Server, error) {
	storeLog := cfg.StoreLog
	if storeLog == nil {
		storeLog = log
	}
	st, err := store.Open(ctx, store.Config{URI: cfg.MongoURI, DataDir: cfg.DataDir, Attach: cfg.Attach, Logger: storeLog})
	if err != nil {
		return nil, err
	}
	s, err := wire(cfg, st, log)
	if err != nil {
		_ = st.Close(context.Background())
		return nil, err
	}
	return s, nil
}

func wire(cfg Config, st *store.Store, log *slog.Logger) (*Server, error) {
	now := time.Now
	// What every request reads is cached for at most the bound, so a change
	// made on another instance reaches this one's answers within it.
	ns := &notices.Service{Store: notices.NewCachedStore(st, cfg.CacheBound, now), Now: now}
	ps := consent.NewCachedPurposes(st, cfg.CacheBound, now)
	purposes := &consent.Purposes{Store: ps, Now: now}
	ns.Purposes = purposes
	keys, err := masterKey(cfg)
	if err != nil {
		return nil, err
	}
	ledgerNow := now
	if cfg.LedgerNow != nil {
		ledgerNow = cfg.LedgerNow
	}
	m := metrics.New()
	var appended func(int, time.Duration)
	if !cfg.NoMetrics {
		st.ObserveCommits(m.Committed)
		appended = m.Appended
	}
	s := &Server{
		Config:    cfg,
		Log:       log,
		Store:     st,
		Merchants: &merchants.Service{Store: merchants.NewCachedStore(st, cfg.CacheBound, now), Now: now},
		Purposes:  purposes,
		Subjects: &consent.Subjects{Store: st, Now: now,
			Profiles: consent.NewProfileCache(profileTTL(st.Embedded()), 200_000, now)},
		Ledger: consent.NewLedger(st, ps, st, ns, ledgerNow, log, consent.Options{
			Exclusive: st.Embedded(), Bound: cfg.CacheBound, CacheBytes: cfg.CacheMemory, Appended: appended,
		}),
		Notices: ns,
	}
	s.Fields = &fields.Service{Store: st, Purposes: s.Purposes, Ledger: s.Ledger, Keys: keys, Now: now, Log: log,
		Definitions: ttlcache.New[string, []fields.Field](cfg.CacheBound, 10_000, now)}
	s.Offers = &offers.Service{Store: st, Purposes: s.Purposes, Fields: s.Fields, Ledger: s.Ledger, Codes: offers.NewCodes(keys.Derive("reward codes")), Now: now}
	// Volunteered data goes the moment the last purpose needing it does.
	s.Ledger.KeepVolunteeredData(s.Fields)
	if s.Center, err = newCenter(cfg, st, log); err != nil {
		return nil, err
	}
	s.Announcer = &announce.Worker{
		Store: st, Scan: st, Ledger: s.Ledger, Subjects: s.Subjects, Merchants: s.Merchants.Store, Notices: s.Notices,
		Signin: s.Center.Signin, Locales: s.Center.Locales, Mails: s.Center.Mails, Mailer: s.Center.Mailer, BaseURL: cfg.BaseURL,
		PerSecond: cfg.AnnounceRate, Lease: 2 * time.Minute, MaxAttempts: 6, Poll: 2 * time.Second, Now: now, Log: log,
	}
	s.Notices.Announcer = s.Announcer
	s.Issuer = &offers.Issuer{
		Offers: s.Offers, Fields: s.Fields, Subjects: s.Subjects, Purposes: s.Purposes, Merchants: s.Merchants.Store,
		Signin: s.Center.Signin, Locales: s.Center.Locales, Mails: s.Center.Mails, Mailer: s.Center.Mailer, BaseURL: cfg.BaseURL,
		Poll: cfg.RewardInterval, Lease: 2 * time.Minute, MaxAttempts: 6, Now: now, Log: log,
	}
	clock := cfg.Now
	if clock == nil {
		clock = now
	}
	ssrf := &webhooks.Guard{AllowLoopback: cfg.WebhooksAllowLoopback}
	notes := &webhooks.Notes{Store: st, Now: clock, Log: log}
	s.Notices.Notes, s.Offers.Notes = notes, notes
	s.Webhooks = &webhooks.Service{Store: st, Feed: s.Ledger, Secrets: keys, Guard: ssrf, Now: clock}
	s.Dispatcher = &webhooks.Dispatcher{Store: st, Feed: s.Ledger, Secrets: keys, Guard: ssrf, Owner: instanceName(), Mailer: s.Center.Mailer, Log: log,
		Now: clock, Poll: 200 * time.Millisecond, Timeout: cmp.Or(cfg.WebhookTimeout, 15*time.Second), Concurrency: 64, Page: 500, MaxPending: 500}
	s.Exports = &exports.Service{Store: st, Ledger: s.Ledger, Purposes: s.Purposes, Terms: s.Notices, InStep: st.StatesInStep(), Owner: s.Dispatcher.Owner,
		Now: clock, Log: log}
	// Counts gather in memory for five minutes: a subject asked about all
	// day costs one write per five minutes, not one per request (or per
	// ten seconds: on the embedded store those writes took the check path
	// down by a third). A crash loses at most that much of them.
	s.Access = &access.Counter{Store: st, Interval: accessInterval, Max: 500_000, Log: log}
	bundle := s.Center.Locales
	s.Guard = &guard.Service{Store: st, Fields: s.Fields, Purposes: s.Purposes, Subjects: s.Subjects, Ledger: s.Ledger,
		Because: func(lang, label string) string {
			return bundle.For(lang).Tf("guard_because_told", "Label", locales.LowerFirst(label))
		},
		Counter: s.Access.Of(access.Guard), Definitions: ttlcache.New[string, []guard.Attribute](cfg.CacheBound, 10_000, now), Now: now}
	// A field may not take a declared attribute's key (nor the reverse).
	s.Fields.Taken = s.Guard.Declared
	s.Recipients = &recipients.Service{Store: st, Purposes: s.Purposes, Now: now}
	if !cfg.NoMetrics {
		s.Metrics = m
	}
	m.Cache(s.Ledger.CacheStats)
	queued := func(pick func(store.Queues) float64) func() float64 {
		return func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			q, err := st.Queued(ctx)
			if err != nil {
				return -1 // the store did not answer: alert on it
			}
			return pick(q)
		}
	}
	m.Gauge("fineline_announcements_queued", "Announcements of changed terms waiting to be sent (-1: the store did not answer).",
		queued(func(q store.Queues) float64 { return float64(q.Announcements) }))
	m.Gauge("fineline_announcements_overdue_seconds", "How long the most overdue announcement has been due (0: none is; -1: the store did not answer).",
		queued(func(q store.Queues) float64 {
			if q.OldestDue.IsZero() || time.Now().Before(q.OldestDue) {
				return 0
			}
			return time.Since(q.OldestDue).Seconds()
		}))
	m.Gauge("fineline_erasures_under_way", "Subjects' erasures begun and not finished (-1: the store did not answer).",
		queued(func(q store.Queues) float64 { return float64(q.Erasures) }))
	m.Gauge("fineline_follow_lag_seconds", "How long ago this instance last caught up with the other instances' journals (0: the only one).",
		func() float64 { return s.Ledger.FollowLag().Seconds() })
	m.Gauge("fineline_webhook_retries_waiting", "Webhook messages waiting for a retry at the endpoints this instance delivers to.",
		func() float64 { n, _ := s.Dispatcher.Waiting(time.Now()); return float64(n) })
	m.Gauge("fineline_webhook_failing_seconds", "How long the longest-failing endpoint this instance delivers to has been failing (0: none).",
		func() float64 { _, d := s.Dispatcher.Waiting(time.Now()); return d.Seconds() })
	m.Gauge("fineline_webhook_behind_seconds", "How old the oldest change not yet sent is, at the most lagging endpoint this instance delivers to (0: all caught up).",
		func() float64 { return s.Dispatcher.Behind(time.Now()).Seconds() })
	m.Gauge("fineline_reward_mails_due", "Reward emails due at the issuer's last pass (counted up to 100).",
		func() float64 { n, _ := s.Issuer.Due(); return float64(n) })
	m.Gauge("fineline_reward_mails_overdue_seconds", "How long the most overdue reward email has been due, at the issuer's last pass (0: none).",
		func() float64 {
			_, at := s.Issuer.Due()
			if at.IsZero() {
				return 0
			}
			return max(0, time.Since(at).Seconds())
		})
	m.Gauge("fineline_access_counts_pending", "Who-asked counters held in memory, not yet written.", func() float64 { return float64(s.Access.Pending()) })
	s.Requests = &requests.Service{Store: st, Jurisdiction: cfg.Jurisdiction, Now: now}
	s.Staff = &staff.Service{Store: st, Now: clock}
	// A key's last use is written at most once a minute per key.
	s.Merchants.Usage = &merchants.Usage{Store: st, Resolution: time.Minute, Interval: time.Minute, Log: log}
	s.Erasure = &erasure.Service{Store: st, Ledger: s.Ledger, Subjects: s.Subjects, Fields: s.Fields,
		Notify: &handlers.ErasedMail{Center: s.Center, Merchants: s.Merchants.Store}, Now: now, Log: log, Resume: 2 * time.Minute}
	// The rollups read the terms from the store, not a cache: a version
	// published on another instance is known by the time its first answers
	// are in the feed.
	s.Rollups = &stats.Roller{Store: st, Feed: s.Ledger, Merchants: st, Terms: &notices.Service{Store: st, Now: now}, Notes: st, Offers: s.Offers,
		Owner: s.Dispatcher.Owner, Log: log, Poll: time.Second}
	s.Reach = &reach.Counter{Store: st, Interval: 10 * time.Second, Max: 100_000, Log: log}
	s.Reports = stats.Reporter{Store: st, Reach: st, Now: clock}
	m.Gauge("fineline_banner_counts_pending", "Banner counters held in memory, not yet written.", func() float64 { return float64(s.Reach.Pending()) })
	m.Gauge("fineline_rollups_behind_seconds", "How old the last event rolled up is, at the most lagging merchant this instance rolls up (0: all caught up).",
		func() float64 { return s.Rollups.Behind(time.Now()).Seconds() })
	if !st.Embedded() {
		s.Dispatcher.Leases = st
		s.Exports.Leases = st
		s.Rollups.Leases = st
	}
	return s, nil
}

// accessInterval is how long access counts gather before they are written.
const accessInterval = 5 * time.Minute

// profileTTL is how long a subject's language and relationship are cached
// for the guard. On the embedded store every change goes through this
// instance, which forgets the entry at once, so the TTL only turns memory
// over; with MongoDB it bounds how long a change made through another
// instance takes to be seen here.
func profileTTL(embedded bool) time.Duration {
	if embedded {
		return 10 * time.Minute
	}
	return 30 * time.Second
}

// Handler builds the HTTP handler with every route.
func (s *Server) Handler() (http.Handler, error) {
	return handlers.New(&handlers.API{
		Merchants: s.Merchants, Purposes: s.Purposes, Subjects: s.Subjects, Ledger: s.Ledger, Notices: s.Notices,
		Fields: s.Fields, Offers: s.Offers, Webhooks: s.Webhooks, Exports: s.Exports, Guard: s.Guard, Recipients: s.Recipients,
		Erasure: s.Erasure, Access: s.Access, Requests: s.Requests, Metrics: s.Metrics, Staff: s.Staff, Reports: s.Reports, Reach: s.Reach,
		Store: s.Store, AdminToken: s.Config.AdminToken, TrustedProxies: s.Config.TrustedProxies, Log: s.Log, Center: s.Center, Announcer: s.Announcer,
	})
}

// Start finishes what a crash left unfinished in this process's journal
// (consent.Ledger.Recover: work proportional to what was in flight, none
// after a clean stop; nothing is loaded into memory beforehand) and starts
// what keeps state current until ctx ends: writing projections behind,
// and on MongoDB following the other instances' journals.
func (s *Server) Start(ctx context.Context) (consent.RecoverReport, error) {
	rep, err := s.Ledger.Recover(ctx)
	if err != nil {
		return rep, err
	}
	s.background.Add(3)
	go func() { defer s.background.Done(); s.Ledger.WriteBehind(ctx) }()
	go func() { defer s.background.Done(); s.Access.Run(ctx) }()
	s.background.Add(1)
	go func() { defer s.background.Done(); s.Reach.Run(ctx) }()
	go func() { defer s.background.Done(); s.Merchants.Usage.Run(ctx) }()
	if !s.Store.Embedded() {
		s.background.Add(1)
		go func() {
			defer s.background.Done()
			s.Ledger.Follow(ctx, consent.FollowOptions{Interval: s.Config.PollInterval, SlotsEvery: min(time.Second, s.Config.CacheBound/2)})
		}()
	}
	return rep, nil
}

// RunJobs starts the background jobs until ctx ends: announcing changed
// terms, issuing birthday rewards, sweeping volunteered values no purpose
// needs, delivering webhooks, making exports, finishing erasures.
func (s *Server) RunJobs(ctx context.Context) {
	s.background.Add(6)
	go func() { defer s.background.Done(); s.Erasure.Run(ctx, time.Minute) }()
	go func() { defer s.background.Done(); s.Exports.Run(ctx) }()
	go func() { defer s.background.Done(); s.Dispatcher.Run(ctx) }()
	go func() { defer s.background.Done(); s.Announcer.Run(ctx) }()
	go func() { defer s.background.Done(); s.Issuer.Run(ctx) }()
	go func() { defer s.background.Done(); s.Fields.Run(ctx, time.Hour) }()
	if !s.Config.NoRollups {
		s.background.Add(1)
		go func() { defer s.background.Done(); s.Rollups.Run(ctx) }()
	}
}

// Stop waits for the background workers (which finish what they started:
// a batch of projections, an email) once their ctx has ended, then writes
// every projection still in memory and the checkpoint, so that the next
// start has nothing to replay. It does not close the store.
func (s *Server) Stop(ctx context.Context) error {
	s.background.Wait()
	if err := s.Ledger.Flush(ctx); err != nil {
		return fmt.Errorf("projections not all written; the next start replays the journal: %w", err)
	}
	return nil
}

// Close disconnects from the store (and stops the embedded one).
func (s *Server) Close(ctx context.Context) error { return s.Store.Close(ctx) }

// masterKey is FINELINE_MASTER_KEY, or with the embedded store a key
// generated once in the data directory (mode 0600).
func masterKey(cfg Config) (*vault.Keyring, error) {
	var (
		raw []byte
		err error
	)
	if cfg.MasterKey != "" {
		raw, err = vault.ParseKey(cfg.MasterKey)
	} else if cfg.MongoURI != "" {
		return nil, errors.New("master key: FINELINE_MASTER_KEY is required with MONGODB_URI")
	} else {
		raw, err = vault.LoadOrCreate(filepath.Join(cfg.DataDir, "master.key"))
	}
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	return vault.New(raw)
}

// signingKey is FINELINE_SIGNING_KEY, or with the embedded store a key
// generated once in the data directory.
func signingKey(cfg Config) (ed25519.PrivateKey, error) {
	if cfg.SigningKey != "" {
		return receipts.ParseSeed(cfg.SigningKey)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	return receipts.LoadOrCreateKey(filepath.Join(cfg.DataDir, "signing.key"))
}

// newCenter wires the hosted preference center.
func newCenter(cfg Config, st *store.Store, log *slog.Logger) (*handlers.Center, error) {
	key, err := signingKey(cfg)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// Sessions and preference links are HMAC-signed with a key derived from
	// the same secret, so one secret configures both.
	sessionKey, err := hkdf.Key(sha256.New, key.Seed(), nil, "fineline session v1", 32)
	if err != nil {
		return nil, err
	}
	bundle, err := locales.NewBundle()
	if err != nil {
		return nil, err
	}
	pages, err := web.LoadPages()
	if err != nil {
		return nil, err
	}
	mails, err := web.LoadMails()
	if err != nil {
		return nil, err
	}
	mailer := cfg.Mailer
	if mailer == nil {
		if mailer, err = mail.New(mail.Config{SMTPURL: cfg.SMTPURL, From: cfg.MailFrom, OutboxDir: filepath.Join(cfg.DataDir, "outbox"), Logger: log}); err != nil {
			return nil, fmt.Errorf("mail: %w", err)
		}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	signer := receipts.NewSigner(key, cfg.BaseURL, time.Now)
	if len(cfg.PreviousSigningKeys) > 0 {
		var pubs []ed25519.PublicKey
		for i, x := range cfg.PreviousSigningKeys {
			b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(strings.TrimSpace(x), "="))
			if err != nil || len(b) != ed25519.PublicKeySize {
				return nil, fmt.Errorf("previous signing key %d: want the base64url public key (the \"x\" of its JWKS entry)", i+1)
			}
			pubs = append(pubs, ed25519.PublicKey(b))
		}
		// Receipts signed before a rotation still verify against the JWKS.
		signer = signer.WithPreviousKeys(pubs...)
	}
	return &handlers.Center{
		Locales: bundle, Pages: pages, Mails: mails, Mailer: mailer,
		Signin:      &signin.Service{Store: st, Key: sessionKey, Issuer: cfg.BaseURL, Now: now},
		Signer:      signer,
		Receipts:    &receipts.Issuer{Signer: signer, Store: st, Jurisdiction: cfg.Jurisdiction},
		BaseURL:     cfg.BaseURL,
		EmailLimit:  ratelimit.New(5*time.Minute, 3, 100_000, time.Now),
		ClientLimit: ratelimit.New(time.Minute, 20, 100_000, time.Now),
		ReachLimit:  ratelimit.New(time.Minute, 60, 100_000, time.Now),
	}, nil
}

// instanceName names this process among instances sharing a store (the
// holder of a lease).
func instanceName() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
