package offers_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/internal/smtptest"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/signin"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
	"github.com/fineline/fineline/vault"
	"github.com/fineline/fineline/web"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(s string) {
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	c.mu.Lock()
	c.now = v
	c.mu.Unlock()
}

type fixture struct {
	dir      string
	st       *store.Store
	clock    *clock
	merchant merchants.Merchant
	ledger   *consent.Ledger
	subjects *consent.Subjects
	fields   *fields.Service
	offers   *offers.Service
	inbox    *smtptest.Server
	issuer   func() *offers.Issuer
}

// setup wires Demo Shop's purposes, fields and birthday offer over a real
// embedded store, with mail to a real SMTP server and a settable clock.
func setup(t testing.TB) *fixture {
	t.Helper()
	ctx := context.Background()
	// A short directory: the embedded store's socket path has a length limit.
	dir, err := os.MkdirTemp("", "fl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	f := &fixture{dir: dir, clock: &clock{}}
	f.clock.Set("2027-01-10T12:00:00Z")
	now := f.clock.Now
	f.st = storetest.OpenDir(t, f.dir)
	ms := &merchants.Service{Store: f.st, Now: now}
	m, _, _, err := ms.Create(ctx, merchants.NewMerchant{Slug: "gift-shop", Name: "Gift Shop", DefaultLocale: "en"})
	if err != nil {
		t.Fatal(err)
	}
	f.merchant = m
	ns := &notices.Service{Store: f.st, Now: now}
	if _, err := ns.PublishFirst(ctx, m.ID, nil, ""); err != nil {
		t.Fatal(err)
	}
	ps := &consent.Purposes{Store: f.st, Now: now}
	for _, p := range demo.Purposes() {
		p.MerchantID = m.ID
		if _, err := ps.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	log := storetest.Logger()
	f.ledger = consent.NewLedger(f.st, f.st, f.st, ns, now, log, consent.Options{})
	f.subjects = &consent.Subjects{Store: f.st, Now: now}
	keys, err := vault.New(bytes.Repeat([]byte{7}, vault.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	f.fields = &fields.Service{Store: f.st, Purposes: ps, Ledger: f.ledger, Keys: keys, Now: now, Log: log}
	f.ledger.KeepVolunteeredData(f.fields)
	f.offers = &offers.Service{Store: f.st, Purposes: ps, Fields: f.fields, Ledger: f.ledger, Codes: offers.NewCodes(keys.Derive("reward codes")), Now: now}
	for _, fd := range demo.Fields() {
		fd.MerchantID = m.ID
		if _, err := f.fields.Create(ctx, fd); err != nil {
			t.Fatal(err)
		}
	}
	o := demo.BirthdayOffer()
	o.MerchantID = m.ID
	if _, err := f.offers.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	f.inbox = smtptest.Start(t)
	bundle, err := locales.NewBundle()
	if err != nil {
		t.Fatal(err)
	}
	mails, err := web.LoadMails()
	if err != nil {
		t.Fatal(err)
	}
	mailer, err := mail.New(mail.Config{SMTPURL: f.inbox.URL(), From: "Gift Shop <no-reply@localhost>", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	sign := &signin.Service{Store: f.st, Key: []byte("0123456789abcdef0123456789abcdef"), Issuer: "http://center.test", Now: time.Now}
	f.issuer = func() *offers.Issuer {
		return &offers.Issuer{Offers: f.offers, Fields: f.fields, Subjects: f.subjects, Purposes: ps, Merchants: f.st, Signin: sign,
			Locales: bundle, Mails: mails, Mailer: mailer, BaseURL: "http://center.test", Poll: time.Hour, Lease: time.Minute,
			MaxAttempts: 3, Now: now, Log: log}
	}
	return f
}

// join makes a subject who accepted the birthday offer with this birthday.
func (f *fixture) join(t testing.TB, id, tz, birthday string) {
	t.Helper()
	ctx := context.Background()
	email := id + "@example.com"
	if _, _, err := f.subjects.Put(ctx, f.merchant.ID, id, consent.SubjectUpdate{Email: &email, TimeZone: &tz}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.offers.Accept(ctx, offers.Acceptance{MerchantID: f.merchant.ID, SubjectID: id, Offer: "birthday_treat",
		Values: map[string]string{"birthday": birthday}, Channel: consent.ChannelCenter, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) rewards(t *testing.T, id string) []offers.Reward {
	t.Helper()
	rs, err := f.offers.Rewards(context.Background(), f.merchant.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func (f *fixture) issue(t *testing.T) int {
	t.Helper()
	n, err := f.issuer().Issue(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// rawFiles returns every byte the embedded store wrote to disk.
func (f *fixture) rawFiles(t *testing.T) []byte {
	t.Helper()
	var all []byte
	entries, err := os.ReadDir(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "fineline.sqlite") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(f.dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func TestBirthdayIsStoredEncryptedAndWithdrawingErasesItSoNoRewardFollows(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	const birthday = "--07-19"
	f.join(t, "alice", "Europe/London", birthday)

	// A raw look at the store: neither the documents nor the files on disk
	// hold the birthday in plain text.
	cur, err := f.st.Database().Collection("field_values").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.Raw
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 1 {
		t.Fatalf("%d stored values, want 1", len(docs))
	}
	if bytes.Contains(docs[0], []byte("07-19")) {
		t.Fatalf("the stored value document holds the birthday in plain text: %s", docs[0])
	}
	if raw := f.rawFiles(t); bytes.Contains(raw, []byte("07-19")) {
		t.Fatal("the store's files hold the birthday in plain text")
	}
	got, ok, err := f.fields.ValueFor(ctx, f.merchant.ID, "alice", "birthday", "birthday_reward")
	if err != nil || !ok || got != birthday {
		t.Fatalf("ValueFor = %q, %v, %v; want the birthday back", got, ok, err)
	}

	// Withdraw: the value goes at once, and the ledger says so without it.
	if _, err := f.ledger.Apply(ctx, consent.Choices{MerchantID: f.merchant.ID, SubjectID: "alice", Channel: consent.ChannelAPI, Actor: "test", Requests: []consent.Request{{Purpose: "birthday_reward", State: consent.Withdrawn}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.Value(ctx, f.merchant.ID, "alice", "birthday"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("after withdrawal the value is still stored (err %v)", err)
	}
	evs, _, err := f.ledger.Events(ctx, f.merchant.ID, "alice", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var provided, erased int
	for _, e := range evs {
		if e.Field == "birthday" && e.State == consent.Provided {
			provided++
		}
		if e.Field == "birthday" && e.State == consent.Erased && e.Purpose == "birthday_reward" {
			erased++
		}
		if strings.Contains(fmt.Sprintf("%+v", e), "07-19") {
			t.Errorf("a ledger event holds the value: %+v", e)
		}
	}
	if provided != 1 || erased != 1 {
		t.Fatalf("ledger has %d provided and %d erased events for the birthday, want 1 and 1: %+v", provided, erased, evs)
	}
	if _, err := f.ledger.VerifySubject(ctx, f.merchant.ID, "alice"); err != nil {
		t.Fatalf("the chain with field events does not verify: %v", err)
	}

	// Next year's birthday: nothing is issued.
	f.clock.Set("2027-07-19T12:00:00Z")
	if n := f.issue(t); n != 0 {
		t.Fatalf("issued %d rewards after withdrawal, want 0", n)
	}
	if rs := f.rewards(t, "alice"); len(rs) != 0 {
		t.Fatalf("alice has rewards after withdrawing: %+v", rs)
	}
}

func TestRewardIsIssuedOncePerSubjectAndYearAcrossRunsAndWorkers(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	const subjects = 12
	for i := range subjects {
		f.join(t, fmt.Sprintf("s%02d", i), "UTC", "--03-05")
	}
	f.join(t, "later", "UTC", "--09-01") // not due

	f.clock.Set("2027-03-05T06:00:00Z")
	if n := f.issue(t); n != subjects {
		t.Fatalf("first run issued %d, want %d", n, subjects)
	}
	if n := f.issue(t); n != 0 {
		t.Fatalf("second run issued %d, want 0", n)
	}

	// Next year, two workers at once.
	f.clock.Set("2028-03-05T06:00:00Z")
	var wg sync.WaitGroup
	counts := make([]int, 2)
	for w := range counts {
		wg.Go(func() {
			n, err := f.issuer().Issue(ctx)
			if err != nil {
				t.Error(err)
			}
			counts[w] = n
		})
	}
	wg.Wait()
	if counts[0]+counts[1] != subjects {
		t.Fatalf("two workers issued %d + %d, want %d in all", counts[0], counts[1], subjects)
	}
	for i := range subjects {
		id := fmt.Sprintf("s%02d", i)
		rs := f.rewards(t, id)
		if len(rs) != 2 || rs[0].Period == rs[1].Period || rs[0].Code == rs[1].Code {
			t.Fatalf("%s has rewards %+v, want one for 2027 and one for 2028 with different codes", id, rs)
		}
	}
	if rs := f.rewards(t, "later"); len(rs) != 0 {
		t.Fatalf("a subject whose birthday is not due got %+v", rs)
	}

	// Two workers deliver: each reward is emailed exactly once, in the
	// subject's language, with its code.
	f.clock.Set("2028-03-05T07:00:00Z")
	wg = sync.WaitGroup{}
	workers := []*offers.Issuer{f.issuer(), f.issuer()}
	for _, w := range workers {
		if n, _ := w.Due(); n != 0 {
			t.Fatalf("%d due before any pass", n)
		}
		wg.Go(func() {
			if _, err := w.Deliver(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// Each pass saw what was due when it began: the emails, due an hour.
	n, at := workers[0].Due()
	if n2, _ := workers[1].Due(); n2 > n {
		n, at = workers[1].Due()
	}
	if n == 0 || f.clock.Now().Sub(at) < time.Hour {
		t.Fatalf("the passes saw %d due since %v", n, at)
	}
	for i := range subjects {
		id := fmt.Sprintf("s%02d", i)
		msgs := f.inbox.Messages(id + "@example.com")
		if len(msgs) != 2 {
			t.Fatalf("%s got %d emails, want 2 (one per reward)", id, len(msgs))
		}
		for _, r := range f.rewards(t, id) {
			if r.Mail != offers.MailSent {
				t.Errorf("%s reward %s mail = %s, want sent", id, r.Period, r.Mail)
			}
			if !strings.Contains(strings.Join(msgs, "\n"), offers.Display(r.Code)) {
				t.Errorf("%s: no email carries code %s", id, offers.Display(r.Code))
			}
		}
	}
	if n, err := workers[0].Deliver(ctx); err != nil || n != 0 {
		t.Fatalf("a second delivery sent %d (err %v), want 0", n, err)
	}
	if n, at := workers[0].Due(); n != 0 || !at.IsZero() {
		t.Fatalf("with everything sent, %d due since %v", n, at)
	}
}

func TestRewardsFollowTimeZonesAndLeapDays(t *testing.T) {
	f := setup(t)
	f.join(t, "tokyo", "Asia/Tokyo", "--03-05")
	f.join(t, "la", "America/Los_Angeles", "--03-05")
	f.join(t, "leap", "UTC", "--02-29")

	f.clock.Set("2027-02-27T23:59:59Z")
	if n := f.issue(t); n != 0 {
		t.Fatalf("issued %d before anyone's day", n)
	}
	f.clock.Set("2027-02-28T00:00:01Z") // 2027 has no February 29
	if n := f.issue(t); n != 1 || len(f.rewards(t, "leap")) != 1 {
		t.Fatalf("issued %d on February 28 of a common year; want the leap-day birthday's reward", n)
	}
	f.clock.Set("2027-03-04T16:00:00Z") // Tokyo: March 5, 01:00; Los Angeles: March 4, 08:00
	if n := f.issue(t); n != 1 || len(f.rewards(t, "tokyo")) != 1 || len(f.rewards(t, "la")) != 0 {
		t.Fatalf("issued %d; want Tokyo only", n)
	}
	f.clock.Set("2027-03-05T08:00:00Z") // Los Angeles midnight
	if n := f.issue(t); n != 1 || len(f.rewards(t, "la")) != 1 {
		t.Fatalf("issued %d at Los Angeles midnight; want Los Angeles", n)
	}
	la := f.rewards(t, "la")[0]
	if want := time.Date(2027, 3, 5, 8, 0, 0, 0, time.UTC); !la.ValidFrom.Equal(want) {
		t.Errorf("Los Angeles reward valid from %s, want %s (local midnight)", la.ValidFrom, want)
	}
	f.clock.Set("2028-02-28T12:00:00Z") // a leap year: not yet
	if n := f.issue(t); n != 0 {
		t.Fatalf("issued %d on February 28 of a leap year", n)
	}
	f.clock.Set("2028-02-29T00:00:01Z")
	if n := f.issue(t); n != 1 || len(f.rewards(t, "leap")) != 2 {
		t.Fatalf("issued %d on February 29 of a leap year; want the leap-day birthday's second reward", n)
	}
}

func TestRedeemOnceAndRefuseForgedCodes(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.join(t, "alice", "UTC", "--03-05")
	f.clock.Set("2027-03-05T06:00:00Z")
	if n := f.issue(t); n != 1 {
		t.Fatalf("issued %d", n)
	}
	code := offers.Display(f.rewards(t, "alice")[0].Code)

	if _, err := f.offers.Redeem(ctx, f.merchant.ID, "ABCD-EFGH-JKMN-PQRS-TVWX"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("a made-up code: %v, want not found", err)
	}
	if _, err := f.offers.Redeem(ctx, "mer_other", code); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("another merchant redeemed the code: %v", err)
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		oks int
	)
	for range 8 {
		wg.Go(func() {
			_, err := f.offers.Redeem(ctx, f.merchant.ID, strings.ToLower(code))
			if err == nil {
				mu.Lock()
				oks++
				mu.Unlock()
			} else if !apperr.Is(err, apperr.Conflict) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if oks != 1 {
		t.Fatalf("%d of 8 concurrent redemptions succeeded, want 1", oks)
	}
	r := f.rewards(t, "alice")[0]
	if r.RedeemedAt.IsZero() {
		t.Fatal("the reward does not show as redeemed")
	}

	// An expired code is refused.
	f.join(t, "bob", "UTC", "--03-05")
	f.clock.Set("2027-03-06T06:00:00Z")
	if n := f.issue(t); n != 1 {
		t.Fatalf("issued %d for bob", n)
	}
	f.clock.Set("2027-04-05T00:00:00Z") // 30 days after March 5
	_, err := f.offers.Redeem(ctx, f.merchant.ID, f.rewards(t, "bob")[0].Code)
	if !apperr.Is(err, apperr.Conflict) || !strings.Contains(err.Error(), "valid") {
		t.Fatalf("an expired code: %v, want a conflict saying when it was valid", err)
	}
}

func TestNoRewardEmailAfterThePurposeIsSwitchedOff(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.join(t, "zoe", "UTC", "--03-05")
	f.clock.Set("2027-03-05T06:00:00Z")
	if n := f.issue(t); n != 1 {
		t.Fatalf("issued %d", n)
	}
	// Switched off before the email went: the email is skipped, not sent.
	if _, err := f.ledger.Apply(ctx, consent.Choices{MerchantID: f.merchant.ID, SubjectID: "zoe", Channel: consent.ChannelCenter, Actor: "test", Requests: []consent.Request{{Purpose: "birthday_reward", State: consent.Withdrawn}}}); err != nil {
		t.Fatal(err)
	}
	if n, err := f.issuer().Deliver(ctx); err != nil || n != 0 {
		t.Fatalf("delivered %d (err %v), want 0", n, err)
	}
	if msgs := f.inbox.Messages("zoe@example.com"); len(msgs) != 0 {
		t.Fatalf("zoe got %d emails after switching off", len(msgs))
	}
	if r := f.rewards(t, "zoe")[0]; r.Mail != offers.MailSkipped || !strings.Contains(r.MailReason, "no longer allowed") {
		t.Fatalf("reward mail %s (%s), want skipped because the purpose is off", r.Mail, r.MailReason)
	}
}

func TestJoiningAgainKeepsTheGrantAndOnlyUpdatesTheField(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	f.join(t, "amy", "UTC", "--03-05")
	if _, err := f.offers.Accept(ctx, offers.Acceptance{MerchantID: f.merchant.ID, SubjectID: "amy", Offer: "birthday_treat",
		Values: map[string]string{"birthday": "--04-06"}, Channel: consent.ChannelCenter, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	evs, _, err := f.ledger.Events(ctx, f.merchant.ID, "amy", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var grants, provided int
	for _, e := range evs {
		if e.Field == "" && e.State == consent.Granted {
			grants++
		}
		if e.Field == "birthday" && e.State == consent.Provided {
			provided++
		}
	}
	if grants != 1 || provided != 2 {
		t.Fatalf("%d grants and %d provided events, want 1 grant (its time kept) and 2 values given", grants, provided)
	}
	if v, ok, err := f.fields.ValueFor(ctx, f.merchant.ID, "amy", "birthday", "birthday_reward"); err != nil || !ok || v != "--04-06" {
		t.Fatalf("birthday = %q %v %v, want the new one", v, ok, err)
	}
	// A value that does not fit is refused before anything is written.
	if _, err := f.offers.Accept(ctx, offers.Acceptance{MerchantID: f.merchant.ID, SubjectID: "ben", Offer: "birthday_treat",
		Values: map[string]string{"birthday": "--02-30"}, Channel: consent.ChannelCenter, Actor: "test"}); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("February 30: %v, want invalid", err)
	}
	if d, err := f.ledger.Check(ctx, f.merchant.ID, "ben", "birthday_reward"); err != nil || d.Allowed {
		t.Fatalf("a refused acceptance granted the purpose: %+v %v", d, err)
	}
}
