package announce_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/announce"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/internal/smtptest"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
	"github.com/fineline/fineline/web"
)

type fixture struct {
	st        *store.Store
	merchant  merchants.Merchant
	ledger    *consent.Ledger
	notices   *notices.Service
	newWorker func() *announce.Worker
}

func setup(t *testing.T, smtpURL string) *fixture {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t)
	ms := &merchants.Service{Store: st, Now: time.Now}
	m, _, _, err := ms.Create(ctx, merchants.NewMerchant{Slug: "tell-shop", Name: "Tell Shop"})
	if err != nil {
		t.Fatal(err)
	}
	ns := &notices.Service{Store: st, Now: time.Now}
	if _, err := ns.PublishFirst(ctx, m.ID, nil, ""); err != nil {
		t.Fatal(err)
	}
	ps := &consent.Purposes{Store: st, Now: time.Now}
	for _, p := range demo.Purposes() {
		p.MerchantID = m.ID
		if _, err := ps.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	log := storetest.Logger()
	ledger := consent.NewLedger(st, st, st, ns, time.Now, log, consent.Options{})
	subjects := &consent.Subjects{Store: st, Now: time.Now}
	bundle, err := locales.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	mails, err := web.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := mail.New(mail.Config{SMTPURL: smtpURL, From: "Tell Shop <no-reply@localhost>", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sign := &signin.Service{Store: st, Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "http://center.test", Now: time.Now}
	f := &fixture{st: st, merchant: m, ledger: ledger, notices: ns}
	f.newWorker = func() *announce.Worker {
		return &announce.Worker{Store: st, Scan: st, Ledger: ledger, Subjects: subjects, Merchants: st, Notices: ns, Signin: sign,
			Locales: bundle, Mails: mails, Mailer: mailer, BaseURL: "http://center.test", PerSecond: 1000, Lease: 2 * time.Second,
			MaxAttempts: 3, Poll: 20 * time.Millisecond, Backoff: func(int) time.Duration { return 50 * time.Millisecond }, Now: time.Now, Log: log}
	}
	return f
}

// subject creates a subject (with email when given) who granted purposes.
func (f *fixture) subject(t *testing.T, id, email, locale string, purposes ...string) {
	t.Helper()
	ctx := context.Background()
	sub := &consent.Subjects{Store: f.st, Now: time.Now}
	if _, _, err := sub.Put(ctx, f.merchant.ID, id, consent.SubjectUpdate{Email: &email, Locale: &locale}); err != nil {
		t.Fatal(err)
	}
	for _, p := range purposes {
		if _, err := f.ledger.Apply(ctx, consent.Choices{MerchantID: f.merchant.ID, SubjectID: id, Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: p, State: consent.Granted}}}); err != nil {
			t.Fatal(err)
		}
	}
}

func (f *fixture) publishMaterial(t *testing.T, w *announce.Worker, purposes ...string) int {
	t.Helper()
	ctx := context.Background()
	v, err := f.notices.Create(ctx, f.merchant.ID, notices.Content{Texts: map[string]notices.Summary{
		"en": {Summary: "We now send the newsletter every week."}, "de": {Summary: "Der Newsletter kommt jetzt jede Woche."}}, Material: true, Purposes: purposes},
		func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.notices.Publish(ctx, f.merchant.ID, v.Number, time.Time{}, 7*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := w.Schedule(ctx, f.merchant.ID, v.Number); err != nil {
		t.Fatal(err)
	}
	if err := w.Schedule(ctx, f.merchant.ID, v.Number); err != nil { // twice: still one campaign
		t.Fatal(err)
	}
	return v.Number
}

// last returns the last of msgs, or "" when there is none.
func last(msgs []string) string {
	if len(msgs) == 0 {
		return ""
	}
	return msgs[len(msgs)-1]
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTwoWorkersOneKilledEachSubjectGetsExactlyOneMessage(t *testing.T) {
	box := smtptest.Start(t)
	f := setup(t, box.URL())
	const affected = 40
	for i := range affected {
		f.subject(t, fmt.Sprint("s", i), fmt.Sprintf("s%d@example.com", i), "en", "newsletter")
	}
	f.subject(t, "noemail", "", "en", "newsletter")                     // affected, no email: skipped
	f.subject(t, "other", "other@example.com", "en", "recommendations") // not affected
	f.subject(t, "never", "never@example.com", "en")                    // granted nothing

	first := f.newWorker()
	version := f.publishMaterial(t, first, "newsletter")
	ctxA, killA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA := make(chan struct{})
	go func() { first.Run(ctxA); close(doneA) }()
	go f.newWorker().Run(ctxB)

	waitFor(t, "a third of the messages", func() bool { return box.Total() >= affected/3 })
	killA()
	<-doneA
	// The killed worker comes back as a new one.
	ctxA2, stopA2 := context.WithCancel(context.Background())
	defer stopA2()
	restarted := f.newWorker()
	go restarted.Run(ctxA2)

	waitFor(t, "every message", func() bool {
		p, err := restarted.Progress(context.Background(), f.merchant.ID, version)
		return err == nil && p.Built && p.Queued == 0
	})
	p, err := restarted.Progress(context.Background(), f.merchant.ID, version)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != affected || p.Skipped != 1 || p.Failed != 0 {
		t.Fatalf("progress %+v, want %d sent and 1 skipped", p, affected)
	}
	for i := range affected {
		if n := box.Count(fmt.Sprintf("s%d@example.com", i)); n != 1 {
			t.Errorf("s%d got %d messages, want exactly 1", i, n)
		}
	}
	for _, who := range []string{"other@example.com", "never@example.com"} {
		if box.Count(who) != 0 {
			t.Errorf("%s is not affected but got mail", who)
		}
	}
	msg := last(box.Messages("s0@example.com"))
	if !strings.Contains(msg, "We now send the newsletter every week.") || !strings.Contains(msg, "/c/tell-shop/p?next=3Dreview") {
		t.Errorf("the announcement lacks the summary or the review link:\n%s", msg)
	}
}

func TestFailedSendsAreRetriedThenEndAsFailed(t *testing.T) {
	box := smtptest.Start(t, smtptest.RefuseRecipient("bounce@example.com"))
	f := setup(t, box.URL())
	f.subject(t, "ok", "ok@example.com", "de", "newsletter")
	f.subject(t, "bad", "bounce@example.com", "en", "newsletter")
	w := f.newWorker()
	version := f.publishMaterial(t, w, "newsletter")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go w.Run(ctx)
	waitFor(t, "the campaign to finish", func() bool {
		p, err := w.Progress(context.Background(), f.merchant.ID, version)
		return err == nil && p.Built && p.Queued == 0
	})
	p, err := w.Progress(context.Background(), f.merchant.ID, version)
	if err != nil {
		t.Fatal(err)
	}
	if p.Sent != 1 || p.Failed != 1 {
		t.Fatalf("progress %+v, want 1 sent and 1 failed", p)
	}
	if len(p.Failures) != 1 || p.Failures[0].SubjectID != "bad" || p.Failures[0].Attempts != 3 || p.Failures[0].Reason == "" || strings.Contains(p.Failures[0].Reason, "bounce@example.com") {
		t.Fatalf("failure report %+v: want subject bad, 3 attempts, a reason without the address", p.Failures)
	}
	if n := box.Count("ok@example.com"); n != 1 {
		t.Fatalf("ok@example.com got %d messages", n)
	}
	if !strings.Contains(last(box.Messages("ok@example.com")), "Der Newsletter kommt jetzt jede Woche.") {
		t.Error("the German subject did not get the German summary")
	}
	if _, err := w.Progress(context.Background(), f.merchant.ID, 99); err == nil {
		t.Fatal("progress of a version never announced")
	}

}
