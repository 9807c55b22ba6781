package main

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/fineline/fineline/handlers"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/ratelimit"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/web"
)

// signingKey is FINELINE_SIGNING_KEY, or with the embedded store a key
// generated once in the data directory.
func signingKey(cfg config) (ed25519.PrivateKey, error) {
	if cfg.SigningKey != "" {
		return receipts.ParseSeed(cfg.SigningKey)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	return receipts.LoadOrCreateKey(filepath.Join(cfg.DataDir, "signing.key"))
}

// newCenter wires the hosted preference center.
func newCenter(cfg config, st *store.Store, log *slog.Logger) (*handlers.Center, error) {
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
	mailer, err := mail.New(mail.Config{SMTPURL: cfg.SMTPURL, From: cfg.MailFrom, OutboxDir: filepath.Join(cfg.DataDir, "outbox"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	return &handlers.Center{
		Locales: bundle, Pages: pages, Mails: mails, Mailer: mailer,
		Signin:       &signin.Service{Store: st, Key: sessionKey, Issuer: cfg.BaseURL, Now: time.Now},
		Signer:       receipts.NewSigner(key, cfg.BaseURL, time.Now),
		Receipts:     st,
		BaseURL:      cfg.BaseURL,
		Jurisdiction: cfg.Jurisdiction,
		EmailLimit:   ratelimit.New(5*time.Minute, 3, 100_000, time.Now),
		ClientLimit:  ratelimit.New(time.Minute, 20, 100_000, time.Now),
	}, nil
}
