package handlers

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
	"time"

	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/ratelimit"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
	"github.com/fineline/fineline/vault"
	"github.com/fineline/fineline/web"
)

// newTestCenter wires the preference center as production does, with mail
// written to an outbox in a temporary directory.
func newTestCenter(t testing.TB, st *store.Store, baseURL string) *Center {
	t.Helper()
	mailer, err := mail.New(mail.Config{From: "Fineline <no-reply@localhost>", OutboxDir: t.TempDir(), Logger: storetest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	return wireTestCenter(t, st, baseURL, mailer, time.Now)
}

// wireTestCenter builds a Center as cmd/fineline does, with fresh keys,
// the given mailer, and now as the sign-in clock.
func wireTestCenter(t testing.TB, st *store.Store, baseURL string, mailer mail.Sender, now func() time.Time) *Center {
	t.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := locales.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	pages, err := web.LoadPages()
	if err != nil {
		t.Fatal(err)
	}
	mails, err := web.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	hmacKey := make([]byte, 32)
	if _, err := rand.Read(hmacKey); err != nil {
		t.Fatal(err)
	}
	return &Center{
		Locales: bundle, Pages: pages, Mails: mails, Mailer: mailer,
		Signin:   &signin.Service{Store: st, Key: hmacKey, Issuer: baseURL, Now: now},
		Signer:   receipts.NewSigner(key, baseURL, time.Now),
		Receipts: st, BaseURL: baseURL, Jurisdiction: "EU",
		EmailLimit: ratelimit.New(5*time.Minute, 3, 100_000, time.Now), ClientLimit: ratelimit.New(time.Minute, 20, 100_000, time.Now),
	}
}

// wireValueExchange adds volunteered fields and offers to a test API as
// cmd/fineline does: a fresh master key, and erasure on withdrawal.
func wireValueExchange(t testing.TB, a *API, st *store.Store, now func() time.Time) {
	t.Helper()
	master := make([]byte, vault.KeySize)
	if _, err := rand.Read(master); err != nil {
		t.Fatal(err)
	}
	keys, err := vault.New(master)
	if err != nil {
		t.Fatal(err)
	}
	a.Fields = &fields.Service{Store: st, Purposes: a.Purposes, Ledger: a.Ledger, Keys: keys, Now: now, Log: storetest.Logger()}
	a.Offers = &offers.Service{Store: st, Purposes: a.Purposes, Fields: a.Fields, Ledger: a.Ledger, Codes: offers.NewCodes(keys.Derive("reward codes")), Now: now}
	a.Ledger.AfterWithdraw(a.Fields.AfterWithdraw)
}
