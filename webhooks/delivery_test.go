package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/internal/smtptest"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/server/servertest"
	"github.com/fineline/fineline/webhooks"
)

// clock is a settable clock for retries.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = c.at.Add(d)
}

// delivery is one request a receiver got.
type delivery struct {
	id, timestamp, signature string
	body                     []byte
	status                   int
	header                   http.Header
	payload                  webhooks.Payload
}

// receiver is a webhook receiver in the test; answer decides each reply.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(d delivery) int
}

func newReceiver(t *testing.T, answer func(d delivery) int) *receiver {
	r := &receiver{t: t, answer: answer}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		d := delivery{id: req.Header.Get("webhook-id"), timestamp: req.Header.Get("webhook-timestamp"), signature: req.Header.Get("webhook-signature"),
			body: body, header: req.Header.Clone()}
		if err := json.Unmarshal(body, &d.payload); err != nil {
			t.Errorf("a body that is not a payload: %s", body)
		}
		r.mu.Lock()
		answer := r.answer
		r.mu.Unlock()
		d.status = answer(d)
		r.mu.Lock()
		r.got = append(r.got, d)
		r.mu.Unlock()
		if d.status == http.StatusFound {
			w.Header().Set("Location", r.srv.URL+"/elsewhere")
		}
		w.WriteHeader(d.status)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) setAnswer(a func(d delivery) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = a
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// delivered returns, per webhook-id, how many attempts were answered 2xx.
func (r *receiver) delivered() map[string]int {
	out := map[string]int{}
	for _, d := range r.deliveries() {
		if d.status < 300 {
			out[d.id]++
		}
	}
	return out
}

type env struct {
	t      *testing.T
	srv    *servertest.Running
	key    string
	merch  merchants.Merchant
	clock  *clock
	box    *smtptest.Server
	cancel context.CancelFunc
}

// newEnv starts Fineline with one merchant and runs webhook delivery.
func newEnv(t *testing.T, timeout time.Duration) *env {
	t.Helper()
	box := smtptest.Start(t)
	mailer, err := mail.New(mail.Config{SMTPURL: box.URL(), From: "Fineline <no-reply@fineline.example>", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{at: time.Now().UTC()}
	s := servertest.Start(t, servertest.Options{WebhooksAllowLoopback: true, WebhookTimeout: timeout, Now: c.Now, Mailer: mailer})
	m, key := s.AddShop(t, "shop")
	e := &env{t: t, srv: s, key: key, merch: m, clock: c, box: box}
	return e
}

// run starts delivery until the test ends.
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.srv.Dispatcher.Run(ctx) }()
	e.t.Cleanup(func() { cancel(); <-done })
	e.cancel = cancel
}

func (e *env) call(method, path, body string, want int, out any) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, res.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
}

type created struct {
	Endpoint struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"endpoint"`
	Secret string `json:"secret"`
}

func (e *env) register(url string, extra string) created {
	e.t.Helper()
	var c created
	e.call("POST", "/v1/webhook-endpoints", fmt.Sprintf(`{"url":%q%s}`, url, extra), 201, &c)
	if !strings.HasPrefix(c.Secret, "whsec_") || c.Endpoint.ID == "" {
		e.t.Fatalf("registration answered %+v", c)
	}
	return c
}

// decide records a decision through the one place that applies choices.
func (e *env) decide(subject, purpose string, s consent.State) consent.Event {
	e.t.Helper()
	a, err := e.srv.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merch.ID, SubjectID: subject, Channel: consent.ChannelAPI, Actor: "test",
		Requests: []consent.Request{{Purpose: purpose, State: s}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return a.Events[0]
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReceiverDownForAnHourGetsEveryEventOnce: a receiver that fails for
// an hour (on the retry clock) gets every event once it is back, each
// under one webhook-id on every attempt, and delivered once.
func TestReceiverDownForAnHourGetsEveryEventOnce(t *testing.T) {
	e := newEnv(t, 0)
	r := newReceiver(t, func(delivery) int { return http.StatusServiceUnavailable })
	ep := e.register(r.srv.URL+"/hooks", `,"label":"crm"`)
	e.run()
	var events []consent.Event
	for i := range 30 {
		events = append(events, e.decide(fmt.Sprintf("c%02d", i), "newsletter", consent.Granted))
	}
	events = append(events, e.decide("c03", "newsletter", consent.Withdrawn))
	ids := map[string]bool{}
	for _, ev := range events {
		ids[webhooks.MessageID(ev)] = true
	}
	attemptsOf := func(n int) func() bool {
		return func() bool {
			seen := map[string]int{}
			for _, d := range r.deliveries() {
				seen[d.id]++
			}
			for id := range ids {
				if seen[id] < n {
					return false
				}
			}
			return true
		}
	}
	// The first attempt and the immediate retry, then one each after 5 s
	// and 5 min: all failing.
	waitFor(t, 20*time.Second, "two attempts at each event", attemptsOf(2))
	e.clock.Add(6 * time.Second)
	waitFor(t, 20*time.Second, "a third attempt", attemptsOf(3))
	e.clock.Add(6 * time.Minute)
	waitFor(t, 20*time.Second, "a fourth attempt", attemptsOf(4))
	var attempts struct {
		Attempts []struct {
			ID        string     `json:"webhook_id"`
			Status    int        `json:"status"`
			Attempt   int        `json:"attempt"`
			NextRetry *time.Time `json:"next_retry"`
		} `json:"attempts"`
	}
	// The receiver has them; the attempts are recorded right after.
	listed := func() bool {
		e.call("GET", "/v1/webhook-endpoints/"+ep.Endpoint.ID+"/attempts?limit=1000", "", 200, &attempts)
		fourths := 0
		for _, a := range attempts.Attempts {
			if a.Status != 503 || a.NextRetry == nil {
				return false
			}
			if a.Attempt == 4 && a.NextRetry.Sub(e.clock.Now()) > 20*time.Minute {
				fourths++ // the next wait after a fourth failure is 30 min
			}
		}
		return fourths == len(ids)
	}
	waitFor(t, 20*time.Second, "every fourth attempt listed, failed, with its next retry", listed)
	// What the metrics report: every event waits for a retry, and the
	// endpoint has been failing since the first attempt.
	if n, failing := e.srv.Dispatcher.Waiting(e.clock.Now()); n != len(ids) || failing < 6*time.Minute {
		t.Errorf("waiting %d for %s, want %d for at least 6 min", n, failing, len(ids))
	}
	// An hour passes; the receiver comes back; the next retry (30 min
	// after the fourth attempt) has passed too.
	e.clock.Add(time.Hour)
	r.setAnswer(func(delivery) int { return http.StatusNoContent })
	waitFor(t, 30*time.Second, "every event delivered", func() bool { return len(r.delivered()) == len(ids) })
	waitFor(t, 10*time.Second, "nothing waiting any more", func() bool {
		n, failing := e.srv.Dispatcher.Waiting(e.clock.Now())
		return n == 0 && failing == 0
	})
	time.Sleep(time.Second) // nothing more arrives
	byID := map[string][]delivery{}
	for _, d := range r.deliveries() {
		byID[d.id] = append(byID[d.id], d)
	}
	for id, n := range r.delivered() {
		if !ids[id] || n != 1 {
			t.Fatalf("webhook-id %s delivered %d times (an event of ours: %v)", id, n, ids[id])
		}
	}
	// Every attempt at an event carried the same id and the same body.
	for id, ds := range byID {
		if len(ds) < 5 {
			t.Fatalf("%s: %d attempts, want 4 failures and a success", id, len(ds))
		}
		for _, d := range ds[1:] {
			if string(d.body) != string(ds[0].body) {
				t.Fatalf("%s: bodies differ between attempts", id)
			}
		}
	}
	// The withdrawal says what a receiver needs, and nothing personal.
	w := byID[webhooks.MessageID(events[len(events)-1])][0].payload
	if w.Type != "consent.withdrawn" || w.Data.Subject != "c03" || w.Data.Seq != 2 || w.Data.Purpose != "newsletter" || w.Data.Hash == "" {
		t.Fatalf("withdrawal payload: %+v", w)
	}
	var view struct {
		Status    string `json:"status"`
		Delivered int64  `json:"delivered"`
		Pending   int    `json:"pending"`
	}
	e.call("GET", "/v1/webhook-endpoints/"+ep.Endpoint.ID, "", 200, &view)
	if view.Status != "enabled" || view.Delivered != int64(len(ids)) || view.Pending != 0 {
		t.Fatalf("endpoint after recovery: %+v", view)
	}
}

// TestSignaturesVerifyWithTheReferenceLibrary: every delivery verifies
// with the Standard Webhooks library and the secret shown at
// registration; after a rotation, with the new and (for 24 h) the old one.
func TestSignaturesVerifyWithTheReferenceLibrary(t *testing.T) {
	e := newEnv(t, 0)
	r := newReceiver(t, func(delivery) int { return 200 })
	ep := e.register(r.srv.URL, `,"types":["consent.granted","consent.withdrawn"]`)
	e.run()
	e.decide("ann", "newsletter", consent.Granted)
	e.decide("ann", "newsletter", consent.Denied) // not subscribed
	e.decide("ann", "recommendations", consent.Granted)
	waitFor(t, 20*time.Second, "two deliveries", func() bool { return len(r.deliveries()) >= 2 })
	old, err := standardwebhooks.NewWebhook(ep.Secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range r.deliveries() {
		if err := old.VerifyIgnoringTimestamp(d.body, d.header); err != nil {
			t.Fatalf("delivery %s does not verify: %v", d.id, err)
		}
		if d.payload.Type != "consent.granted" {
			t.Fatalf("an unsubscribed type was sent: %s", d.payload.Type)
		}
		if len(d.body) > webhooks.MaxPayload {
			t.Fatalf("a payload of %d bytes", len(d.body))
		}
	}
	// A wrong secret does not verify.
	other, _ := standardwebhooks.NewWebhook("whsec_" + strings.Repeat("A", 43) + "=")
	if err := other.VerifyIgnoringTimestamp(r.deliveries()[0].body, r.deliveries()[0].header); err == nil {
		t.Fatal("a delivery verifies with another secret")
	}
	var rot created
	e.call("POST", "/v1/webhook-endpoints/"+ep.Endpoint.ID+"/rotate-secret", "", 200, &rot)
	if rot.Secret == ep.Secret || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotation gave %q", rot.Secret)
	}
	time.Sleep(2500 * time.Millisecond) // the dispatcher rereads the endpoint
	before := len(r.deliveries())
	e.decide("bob", "newsletter", consent.Granted)
	waitFor(t, 20*time.Second, "a delivery after the rotation", func() bool { return len(r.deliveries()) > before })
	d := r.deliveries()[before]
	next, _ := standardwebhooks.NewWebhook(rot.Secret)
	if err := next.Verify(d.body, d.header); err != nil {
		t.Fatalf("new secret: %v", err)
	}
	if err := old.VerifyIgnoringTimestamp(d.body, d.header); err != nil {
		t.Fatalf("old secret during the overlap: %v", err)
	}
	if n := len(strings.Fields(d.signature)); n != 2 {
		t.Fatalf("%d signatures during the overlap, want 2", n)
	}
	// A day later only the new secret signs.
	e.clock.Add(webhooks.SecretOverlap + time.Minute)
	time.Sleep(2500 * time.Millisecond)
	before = len(r.deliveries())
	e.decide("cy", "newsletter", consent.Granted)
	waitFor(t, 20*time.Second, "a delivery after the overlap", func() bool { return len(r.deliveries()) > before })
	d = r.deliveries()[before]
	if err := old.VerifyIgnoringTimestamp(d.body, d.header); err == nil {
		t.Fatal("the old secret still verifies after the overlap")
	}
	if err := next.VerifyIgnoringTimestamp(d.body, d.header); err != nil {
		t.Fatal(err)
	}
}

// TestRedirectsGoneAndSlowReceivers: a 3xx is a failed attempt (never
// followed), a slow receiver times out and is retried, and a 410 disables
// the endpoint and tells its contact.
func TestRedirectsGoneAndSlowReceivers(t *testing.T) {
	e := newEnv(t, 300*time.Millisecond)
	var elsewhere int
	var mu sync.Mutex
	redirect := newReceiver(t, func(d delivery) int { return http.StatusFound })
	redirect.srv.Config.Handler = func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/elsewhere" {
				mu.Lock()
				elsewhere++
				mu.Unlock()
			}
			h.ServeHTTP(w, r)
		})
	}(redirect.srv.Config.Handler)
	slow := newReceiver(t, func(d delivery) int { time.Sleep(time.Second); return 200 })
	gone := newReceiver(t, func(d delivery) int { return http.StatusGone })
	epR := e.register(redirect.srv.URL+"/in", "")
	epS := e.register(slow.srv.URL, "")
	epG := e.register(gone.srv.URL, `,"contact_email":"ops@shop.example","label":"old crm"`)
	e.run()
	e.decide("dan", "newsletter", consent.Granted)

	type attempts struct {
		Attempts []struct {
			Status    int        `json:"status"`
			Error     string     `json:"error"`
			NextRetry *time.Time `json:"next_retry"`
		} `json:"attempts"`
	}
	var a attempts
	waitFor(t, 20*time.Second, "a redirect attempt recorded", func() bool {
		e.call("GET", "/v1/webhook-endpoints/"+epR.Endpoint.ID+"/attempts", "", 200, &a)
		return len(a.Attempts) >= 1
	})
	if a.Attempts[0].Status != 302 || !strings.Contains(a.Attempts[0].Error, "redirect") || a.Attempts[0].NextRetry == nil {
		t.Fatalf("redirect attempt: %+v", a.Attempts[0])
	}
	waitFor(t, 20*time.Second, "a timed-out attempt recorded", func() bool {
		e.call("GET", "/v1/webhook-endpoints/"+epS.Endpoint.ID+"/attempts", "", 200, &a)
		return len(a.Attempts) >= 1
	})
	if a.Attempts[len(a.Attempts)-1].Error != "timed out" || a.Attempts[len(a.Attempts)-1].NextRetry == nil {
		t.Fatalf("slow receiver's attempt: %+v", a.Attempts)
	}
	var view struct {
		Status         string `json:"status"`
		DisabledReason string `json:"disabled_reason"`
	}
	waitFor(t, 20*time.Second, "the 410 endpoint disabled", func() bool {
		e.call("GET", "/v1/webhook-endpoints/"+epG.Endpoint.ID, "", 200, &view)
		return view.Status == "disabled"
	})
	if !strings.Contains(view.DisabledReason, "410") {
		t.Fatalf("disabled because %q", view.DisabledReason)
	}
	waitFor(t, 20*time.Second, "the contact told", func() bool { return e.box.Count("ops@shop.example") == 1 })
	if msg := e.box.Messages("ops@shop.example")[0]; !strings.Contains(msg, "410") || !strings.Contains(msg, "old crm") {
		t.Fatalf("the notice does not say which endpoint and why: %s", msg)
	}
	// Nothing more goes to the disabled endpoint.
	n := len(gone.deliveries())
	e.decide("eve", "newsletter", consent.Granted)
	time.Sleep(time.Second)
	if len(gone.deliveries()) != n {
		t.Fatal("a disabled endpoint was sent to")
	}
	mu.Lock()
	defer mu.Unlock()
	if elsewhere != 0 {
		t.Fatal("a redirect was followed")
	}
}

// TestAFailingEndpointIsDisabledAfterFiveDays: without one success for
// five days (on the retry clock), the endpoint is disabled and its
// contact told.
func TestAFailingEndpointIsDisabledAfterFiveDays(t *testing.T) {
	e := newEnv(t, 0)
	r := newReceiver(t, func(delivery) int { return 500 })
	ep := e.register(r.srv.URL, `,"contact_email":"ops@shop.example"`)
	e.run()
	e.decide("fay", "newsletter", consent.Granted)
	var view struct {
		Status string `json:"status"`
	}
	for day := 0; day < 6 && view.Status != "disabled"; day++ {
		waitFor(t, 20*time.Second, "an attempt", func() bool { return len(r.deliveries()) > day })
		e.clock.Add(25 * time.Hour)
		e.decide(fmt.Sprintf("d%d", day), "newsletter", consent.Granted)
		time.Sleep(500 * time.Millisecond)
		e.call("GET", "/v1/webhook-endpoints/"+ep.Endpoint.ID, "", 200, &view)
	}
	waitFor(t, 20*time.Second, "disabled", func() bool {
		e.call("GET", "/v1/webhook-endpoints/"+ep.Endpoint.ID, "", 200, &view)
		return view.Status == "disabled"
	})
	waitFor(t, 20*time.Second, "the contact told", func() bool { return e.box.Count("ops@shop.example") == 1 })
}

// TestRegistrationRefusesInternalAddresses: loopback, private,
// link-local (metadata) addresses and a name resolving to loopback are
// refused without the development flag, plain http too; with it, only
// loopback is let through.
func TestRegistrationRefusesInternalAddresses(t *testing.T) {
	ctx := context.Background()
	strict := &webhooks.Guard{}
	for _, u := range []string{"https://127.0.0.1/h", "https://10.0.0.1/h", "https://169.254.169.254/latest/meta-data", "https://localhost/h",
		"https://[::1]/h", "https://[fd00:ec2::254]/", "https://100.64.0.1/", "https://0.0.0.0/", "https://[::ffff:127.0.0.1]/", "http://example.com/h",
		"ftp://example.com/", "https://user:pw@example.com/", "/relative"} {
		if _, err := strict.CheckURL(ctx, u); err == nil {
			t.Errorf("%s allowed", u)
		}
	}
	dev := &webhooks.Guard{AllowLoopback: true}
	for _, u := range []string{"http://127.0.0.1:9000/h", "https://localhost/h"} {
		if _, err := dev.CheckURL(ctx, u); err != nil {
			t.Errorf("%s refused with the development flag: %v", u, err)
		}
	}
	for _, u := range []string{"https://10.0.0.1/h", "https://169.254.169.254/", "http://192.168.1.1/"} {
		if _, err := dev.CheckURL(ctx, u); err == nil {
			t.Errorf("%s allowed with the development flag", u)
		}
	}
	// Through the API, with the error shape.
	e := newEnvStrict(t)
	for _, u := range []string{"https://127.0.0.1/h", "https://10.0.0.1/h", "https://169.254.169.254/", "https://localhost/h"} {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		e.call("POST", "/v1/webhook-endpoints", fmt.Sprintf(`{"url":%q}`, u), 400, &body)
		if body.Error.Code != "url_not_allowed" {
			t.Errorf("%s: %+v", u, body)
		}
	}
	var list struct {
		Endpoints []any `json:"endpoints"`
	}
	e.call("GET", "/v1/webhook-endpoints", "", 200, &list)
	if len(list.Endpoints) != 0 {
		t.Fatalf("refused registrations were stored: %+v", list)
	}
	// Unknown members are refused.
	e.call("POST", "/v1/webhook-endpoints", `{"url":"https://example.com/h","URL":"x"}`, 400, nil)
	e.call("POST", "/v1/webhook-endpoints", `{"url":"https://example.com/h","types":["consent.nope"]}`, 400, nil)
}

// newEnvStrict starts Fineline without the development flag.
func newEnvStrict(t *testing.T) *env {
	s := servertest.Start(t, servertest.Options{})
	m, _, key, err := s.Merchants.Create(context.Background(), merchants.NewMerchant{Slug: "shop", Name: "Shop"})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: s, key: key, merch: m}
}

// TestReplayAYearBack: a window a year back is sent again from the
// ledger, with the ids its events always had, and nothing outside it.
func TestReplayAYearBack(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	yearAgo := time.Now().UTC().AddDate(-1, 0, 0).Truncate(time.Millisecond)
	var old []consent.Event
	var subs []consent.Subject
	var recs []consent.SubjectState
	for i := range 5 {
		id := fmt.Sprintf("old%d", i)
		subs = append(subs, consent.Subject{MerchantID: e.merch.ID, ID: id, CreatedAt: yearAgo, UpdatedAt: yearAgo})
		rec := consent.SubjectState{MerchantID: e.merch.ID, SubjectID: id}
		ev := consent.Event{MerchantID: e.merch.ID, SubjectID: id, Seq: 1, Purpose: "newsletter", State: consent.Granted, NoticeVersion: 1,
			Channel: consent.ChannelImport, Actor: "import", RecordedAt: yearAgo.Add(time.Duration(i) * time.Hour)}
		ev.Hash = ev.ComputeHash()
		old = append(old, ev)
		recs = append(recs, rec.Next(ev))
	}
	// Also one event two years back, outside the window.
	far := consent.Event{MerchantID: e.merch.ID, SubjectID: "older", Seq: 1, Purpose: "newsletter", State: consent.Granted, NoticeVersion: 1,
		Channel: consent.ChannelImport, Actor: "import", RecordedAt: yearAgo.AddDate(-1, 0, 0)}
	far.Hash = far.ComputeHash()
	subs = append(subs, consent.Subject{MerchantID: e.merch.ID, ID: "older", CreatedAt: far.RecordedAt, UpdatedAt: far.RecordedAt})
	recs = append(recs, consent.SubjectState{MerchantID: e.merch.ID, SubjectID: "older"}.Next(far))
	if err := e.srv.Store.Import(ctx, subs, append([]consent.Event{far}, old...), recs); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, func(delivery) int { return 200 })
	ep := e.register(r.srv.URL, "")
	e.run()
	now := e.decide("new", "newsletter", consent.Granted)
	waitFor(t, 20*time.Second, "the new event", func() bool { return len(r.deliveries()) == 1 })
	var q struct {
		Replay int `json:"replay"`
	}
	e.call("POST", "/v1/webhook-endpoints/"+ep.Endpoint.ID+"/replay",
		fmt.Sprintf(`{"since":%q,"until":%q}`, yearAgo.Add(-time.Minute).Format(time.RFC3339Nano), yearAgo.Add(10*time.Hour).Format(time.RFC3339Nano)), 202, &q)
	if q.Replay != 1 {
		t.Fatalf("replay number %d", q.Replay)
	}
	waitFor(t, 20*time.Second, "the replayed window", func() bool { return len(r.deliveries()) == 1+len(old) })
	time.Sleep(time.Second)
	got := r.deliveries()
	if len(got) != 1+len(old) || got[0].id != webhooks.MessageID(now) {
		t.Fatalf("%d deliveries, want the new one then %d replayed", len(got), len(old))
	}
	want := map[string]consent.Event{}
	for _, ev := range old {
		want[webhooks.MessageID(ev)] = ev
	}
	for _, d := range got[1:] {
		ev, ok := want[d.id]
		if !ok || !d.payload.Data.RecordedAt.Equal(ev.RecordedAt) || d.payload.Data.Subject != ev.SubjectID {
			t.Fatalf("replayed %s %+v: not one of the window's events", d.id, d.payload.Data)
		}
		delete(want, d.id)
	}
	// Another merchant's key cannot replay it.
	_, otherKey := e.srv.AddShop(t, "other")
	other := &env{t: t, srv: e.srv, key: otherKey}
	other.call("POST", "/v1/webhook-endpoints/"+ep.Endpoint.ID+"/replay", `{"since":"2025-01-01T00:00:00Z","until":"2025-02-01T00:00:00Z"}`, 404, nil)
}

// TestNotesOfNoticesOffersAndRewardsReachEndpoints: a notice published,
// an offer joined, a reward issued and redeemed are sent as their types,
// thin, and a replay sends them again.
func TestNotesOfNoticesOffersAndRewardsReachEndpoints(t *testing.T) {
	e := newEnv(t, 0)
	ctx := context.Background()
	for _, f := range demo.Fields() {
		f.MerchantID = e.merch.ID
		if _, err := e.srv.Fields.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	o := demo.BirthdayOffer()
	o.MerchantID = e.merch.ID
	if _, err := e.srv.Offers.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	r := newReceiver(t, func(delivery) int { return 204 })
	ep := e.register(r.srv.URL, `,"types":["notice.published","offer.joined","reward.issued","reward.redeemed"]`)
	e.run()
	// Notes take their time from the retry clock, which stands still here.
	began := e.clock.Now().Add(-time.Minute)
	e.call("POST", "/v1/notices", `{"texts":{"en":{"summary":"We now share purchases with a delivery partner."}},"material":true,"purposes":["newsletter"]}`, 201, nil)
	e.call("POST", "/v1/notices/2/publish", `{"grace_period_days":14}`, 200, nil)
	today := time.Now().UTC()
	if _, err := e.srv.Offers.Accept(ctx, offers.Acceptance{MerchantID: e.merch.ID, SubjectID: "gia", Offer: o.Key, Channel: consent.ChannelCenter, Actor: "test",
		Values: map[string]string{"birthday": today.Format("--01-02")}}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.srv.Issuer.Issue(ctx); err != nil || n != 1 {
		t.Fatalf("Issue = %d, %v", n, err)
	}
	rewards, err := e.srv.Offers.Rewards(ctx, e.merch.ID, "gia")
	if err != nil || len(rewards) != 1 {
		t.Fatalf("rewards: %v %v", rewards, err)
	}
	if _, err := e.srv.Offers.Redeem(ctx, e.merch.ID, rewards[0].Code); err != nil {
		t.Fatal(err)
	}
	want := []string{"notice.published", "offer.joined", "reward.issued", "reward.redeemed"}
	byType := func() map[string]delivery {
		out := map[string]delivery{}
		for _, d := range r.deliveries() {
			out[d.payload.Type] = d
		}
		return out
	}
	waitFor(t, 20*time.Second, "the four notes", func() bool { return len(byType()) == len(want) })
	got := byType()
	for _, typ := range want {
		d := got[typ]
		if strings.Contains(string(d.body), rewards[0].Code) || strings.Contains(string(d.body), "--") {
			t.Fatalf("%s carries a code or a value: %s", typ, d.body)
		}
	}
	var joined struct {
		Data struct {
			Subject, Offer, Purpose string
			Seq                     int64
		} `json:"data"`
	}
	if err := json.Unmarshal(got["offer.joined"].body, &joined); err != nil || joined.Data.Subject != "gia" || joined.Data.Offer != o.Key || joined.Data.Seq < 1 {
		t.Fatalf("offer.joined: %s", got["offer.joined"].body)
	}
	if !strings.Contains(string(got["notice.published"].body), `"version":2`) {
		t.Fatalf("notice.published: %s", got["notice.published"].body)
	}
	// A replay of the window sends the same four again, with their ids
	// (and the shop's first notice, published in the same window).
	n := len(r.deliveries())
	e.call("POST", "/v1/webhook-endpoints/"+ep.Endpoint.ID+"/replay", fmt.Sprintf(`{"since":%q,"until":%q}`, began.Format(time.RFC3339Nano), time.Now().Add(time.Second).Format(time.RFC3339Nano)), 202, nil)
	replayed := func() map[string]bool {
		out := map[string]bool{}
		for _, d := range r.deliveries()[n:] {
			out[d.id] = true
		}
		return out
	}
	waitFor(t, 20*time.Second, "the replayed notes", func() bool {
		again := replayed()
		for _, typ := range want {
			if !again[got[typ].id] {
				return false
			}
		}
		return true
	})
}

// TestBehindShowsAnEndpointLaggingTheFeed: while an endpoint has more
// changes waiting than a page, Behind is the age of the oldest unsent
// one; once caught up, it is 0.
func TestBehindShowsAnEndpointLaggingTheFeed(t *testing.T) {
	e := newEnv(t, 0)
	r := newReceiver(t, func(delivery) int { time.Sleep(100 * time.Millisecond); return http.StatusOK })
	e.register(r.srv.URL+"/hooks", "")
	for i := range 30 {
		e.decide(fmt.Sprintf("b%02d", i), "newsletter", consent.Granted)
	}
	if d := e.srv.Dispatcher.Behind(time.Now()); d != 0 {
		t.Fatalf("behind %v before any read of the feed", d)
	}
	e.srv.Dispatcher.Page = 5
	e.run()
	waitFor(t, 20*time.Second, "the endpoint to be seen behind", func() bool { return e.srv.Dispatcher.Behind(time.Now()) > 0 })
	waitFor(t, 30*time.Second, "every change delivered", func() bool { return len(r.delivered()) == 30 })
	waitFor(t, 10*time.Second, "the endpoint to be caught up", func() bool { return e.srv.Dispatcher.Behind(time.Now()) == 0 })
}
