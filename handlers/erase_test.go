package handlers_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/erasure"
	"github.com/fineline/fineline/internal/smtptest"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/receipts"
)

// newDataEnv is a server with a real SMTP server behind it, the demo's
// fields and attributes for shop-a, and erin: an English-speaking customer
// who allowed recommendations and the birthday reward, gave her birthday
// and shoe size in the center, and was asked about by a key labelled
// "ESP sync".
func newDataEnv(t *testing.T) (*testEnv, *smtptest.Server, *http.Client) {
	t.Helper()
	box := smtptest.Start(t)
	mailer, err := mail.New(mail.Config{SMTPURL: box.URL(), From: "Shop <no-reply@shop.example>", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := envOn(t, newTestServer(t, testOptions{Mailer: mailer, AdminToken: testAdminToken}))
	for _, f := range demo.Fields() {
		e.mustStatus(e.do("POST", "/v1/fields", e.keyA, mustJSON(t, fieldBody{Key: f.Key, Texts: f.Texts, Type: string(f.Type), OmitYear: f.OmitYear,
			Choices: f.Choices, Purposes: f.Purposes, Category: f.Category})), 201)
	}
	for _, a := range demo.Attributes() {
		e.mustStatus(e.do("POST", "/v1/attributes", e.keyA, mustJSON(t, attributeBody{Key: a.Key, Texts: a.Texts, Category: a.Category,
			Provenance: string(a.Provenance), Identifier: a.Identifier})), 201)
	}
	e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[{"name":"Mailer Ltd","role":"processor","purposes":["newsletter","birthday_reward"],"country":"IE"}]}`), 200)
	e.mustStatus(e.do("PUT", "/v1/subjects/erin", e.keyA, `{"email":"erin.erase@example.com","locale":"en","relationship":"customer"}`), 201)
	client, post := e.signInShopper(t, "erin")
	form := url.Values{"action": {"save"}, "was.recommendations": {"off"}, "was.birthday_reward": {"off"}, "on": {"recommendations", "birthday_reward"},
		"field.birthday.month": {"04"}, "field.birthday.day": {"17"}, "field.shoe_size": {"41"}}
	if res := post("/c/shop-a/preferences", form); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save choices and details: %d", res.StatusCode)
	}
	ctx := context.Background()
	_, esp, err := e.api.Merchants.CreateKey(ctx, e.merchA.ID, "ESP sync", []merchants.Scope{merchants.ScopeConsentRead})
	if err != nil {
		t.Fatal(err)
	}
	e.guardCheck(t, esp, `{"subject":"erin","purpose":"recommendations","channel":"email","attributes":["shoe_size"]}`)
	e.mustStatus(e.do("GET", "/v1/check?subject=erin&purpose=newsletter", esp, ""), 200)
	e.mustStatus(e.do("POST", "/v1/check", esp, `{"purpose":"recommendations","subjects":["erin","nobody"]}`), 200)
	e.mustStatus(e.do("GET", "/v1/check?subject=nobody&purpose=newsletter", esp, ""), 200)
	e.api.Access.Flush(ctx)
	return e, box, client
}

func TestErasureByTheMerchantAPI(t *testing.T) {
	e, box, _ := newDataEnv(t)
	ctx := context.Background()
	e.mustStatus(e.do("PUT", "/v1/subjects/erin", e.keyB, `{"email":"erin.erase@example.com"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/erin/consents/newsletter", e.keyB, `{"state":"granted"}`), 201)

	if r := e.do("DELETE", "/v1/subjects/nobody", e.keyA, ""); r.status != 404 {
		t.Errorf("erasing a subject never seen: %d %s", r.status, r.body)
	}
	var done struct {
		Subject  string
		ErasedAt time.Time `json:"erased_at"`
		Seq      int64
		Already  bool `json:"already_erased"`
	}
	e.mustStatus(e.do("DELETE", "/v1/subjects/erin", e.keyA, ""), 200).json(t, &done)
	if done.Subject != "erin" || done.Seq == 0 || done.Already || done.ErasedAt.IsZero() {
		t.Fatalf("erasure: %+v", done)
	}

	// Every check and guard answer is subject_erased; nothing more is recorded.
	for _, p := range []string{"recommendations", "birthday_reward", "newsletter"} {
		if got := e.reason(t, "erin", p); got != "subject_erased" {
			t.Errorf("check %s after the erasure: %s", p, got)
		}
	}
	a := e.guardCheck(t, e.keyA, `{"subject":"erin","purpose":"recommendations","channel":"email","attributes":["shoe_size","first_name"]}`)
	if a.Allowed || a.Decision.Reason != "subject_erased" {
		t.Errorf("guard after the erasure: %+v", a)
	}
	for _, w := range []struct{ method, path, body string }{
		{"PUT", "/v1/subjects/erin/consents/newsletter", `{"state":"granted"}`},
		{"PUT", "/v1/subjects/erin", `{"email":"erin.back@example.com"}`},
		{"POST", "/v1/subjects/erin/preference-links", ""},
		{"GET", "/v1/subjects/erin/unsubscribe-headers?purpose=newsletter", ""},
		{"POST", "/v1/widget-sessions", `{"subject":"erin"}`},
	} {
		if r := e.do(w.method, w.path, e.keyA, w.body); r.status != 409 || r.errorCode(t) != consent.CodeSubjectErased {
			t.Errorf("%s %s after the erasure: %d %s", w.method, w.path, r.status, r.body)
		}
	}
	var sub struct {
		Email    string
		Locale   string
		ErasedAt *time.Time `json:"erased_at"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/erin", e.keyA, ""), 200).json(t, &sub)
	if sub.Email != "" || sub.Locale != "" || sub.ErasedAt == nil {
		t.Errorf("the subject's record after the erasure: %+v", sub)
	}
	var fs struct{ Fields []json.RawMessage }
	e.mustStatus(e.do("GET", "/v1/subjects/erin/fields?purpose=recommendations", e.keyA, ""), 200).json(t, &fs)
	if len(fs.Fields) != 0 {
		t.Errorf("values disclosed after the erasure: %s", fs.Fields)
	}
	// The data key is gone: the values cannot be opened anywhere.
	if _, err := e.store.DataKey(ctx, e.merchA.ID, "erin"); err == nil {
		t.Error("the subject's data key survived the erasure")
	}

	// Again: already done, the same event.
	var again struct {
		Seq     int64
		Already bool `json:"already_erased"`
	}
	e.mustStatus(e.do("DELETE", "/v1/subjects/erin", e.keyA, ""), 200).json(t, &again)
	if !again.Already || again.Seq != done.Seq {
		t.Errorf("erasing again: %+v", again)
	}

	// The chain verifies, and ends with the erasure, which names nothing.
	if rep, err := e.api.Ledger.VerifyAll(ctx); err != nil || rep.Broken != nil {
		t.Fatalf("verify after the erasure: %+v %v", rep, err)
	}
	last, err := e.api.Ledger.Event(ctx, e.merchA.ID, "erin", done.Seq)
	if err != nil || last.State != consent.SubjectErased || last.Purpose != "" || last.Field != "" {
		t.Errorf("the erasure event: %+v %v", last, err)
	}
	var feed struct {
		Changes []struct{ Type, Subject string }
	}
	e.mustStatus(e.do("GET", "/v1/changes?types=subject.erased", e.keyA, ""), 200).json(t, &feed)
	if len(feed.Changes) != 1 || feed.Changes[0].Subject != "erin" {
		t.Errorf("the change feed's erasures: %+v", feed.Changes)
	}

	// shop-b's erin is another subject: untouched.
	var other struct{ Reason string }
	e.mustStatus(e.do("GET", "/v1/check?subject=erin&purpose=newsletter", e.keyB, ""), 200).json(t, &other)
	if got := other.Reason; got != "granted" {
		t.Errorf("shop-b's erin after shop-a erased its own: %s", got)
	}

	// The shopper is told, once.
	if msgs := waitMessages(t, box, "erin.erase@example.com", 1); !strings.Contains(msgs[0], "deleted") {
		t.Errorf("the erasure email:\n%s", msgs[0])
	}

	// Nothing of shop-a's erin stays readable in the store's files: no
	// email, no birthday. (shop-b's erin keeps the same address.)
	e.mustStatus(e.do("DELETE", "/v1/subjects/erin", e.keyB, ""), 200)
	scanDataDir(t, e.api.Config.DataDir, "erin.erase@example.com", "04-17")
}

// waitMessages waits until to has n messages and returns them.
func waitMessages(t *testing.T, box *smtptest.Server, to string, n int) []string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if msgs := box.Messages(to); len(msgs) >= n {
			return msgs
		}
	}
	t.Fatalf("%d emails to %s, want %d", box.Count(to), to, n)
	return nil
}

// scanDataDir reads every file of the data directory, byte by byte, for
// each of needles.
func scanDataDir(t *testing.T, dir string, needles ...string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range needles {
			if i := bytes.Index(b, []byte(n)); i >= 0 {
				t.Errorf("%q is still in %s at %d: %q", n, path, i, b[max(0, i-300):min(len(b), i+100)])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestErasureByTheShopper(t *testing.T) {
	e, box, client := newDataEnv(t)
	ctx := context.Background()
	// erin is signed in on another device too.
	phone, _ := e.signInShopper(t, "erin")

	// A subject the merchant never had is not counted: the counts would
	// hold nothing but the id someone asked about.
	if counts, err := e.store.AccessCounts(ctx, e.merchA.ID, "nobody", []string{time.Now().UTC().Format(time.DateOnly)}); err != nil || len(counts) != 0 {
		t.Errorf("counts for a subject never seen: %v %v", counts, err)
	}
	counts, err := e.store.AccessCounts(ctx, e.merchA.ID, "erin", []string{time.Now().UTC().Format(time.DateOnly)})
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string]int64{}
	for _, n := range counts {
		byKind[string(n.Kind)+" "+n.Purpose] += n.N
	}
	if byKind["check newsletter"] != 1 || byKind["check recommendations"] != 1 || byKind["guard recommendations"] != 1 {
		t.Errorf("erin's counts: %v", byKind)
	}

	// The data page lists what the store holds.
	code, page := getPage(t, client, e.srv.URL+"/c/shop-a/data")
	if code != 200 {
		t.Fatalf("data page: %d\n%s", code, page)
	}
	for _, want := range []string{"What shop-a holds about you", "Personal recommendations", "Birthday reward", "Allowed", "This center",
		"Your birthday", "17 April", "Your shoe size (EU)", "41", "Mailer Ltd", "Works on the merchant", "IE",
		"ESP sync", "Checked a message", "Checked your choice", "Delete everything"} {
		if !strings.Contains(page, want) {
			t.Errorf("the data page lacks %q", want)
		}
	}

	// The download is signed with the published keys and its events
	// re-hash to the chain.
	res, err := client.Get(e.srv.URL + "/c/shop-a/data/download.json")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	if _, err := body.ReadFrom(res.Body); err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	jwksRes, err := http.Get(e.srv.URL + "/.well-known/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	var jwks bytes.Buffer
	if _, err := jwks.ReadFrom(jwksRes.Body); err != nil {
		t.Fatal(err)
	}
	jwksRes.Body.Close()
	payload, err := receipts.VerifyDetached(body.Bytes(), jwks.Bytes())
	if err != nil {
		t.Fatalf("the download does not verify: %v\n%s", err, body.String())
	}
	tampered := bytes.Replace(body.Bytes(), []byte(`"signature": "`), []byte(`"signature": "A`), 1)
	if _, err := receipts.VerifyDetached(tampered, jwks.Bytes()); err == nil {
		t.Error("a tampered download verifies")
	}
	var data struct {
		MerchantID string `json:"merchant_id"`
		Subject    string
		Events     []struct {
			Seq                                          int64
			Purpose, State, Field, Level, Channel, Actor string
			NoticeVersion                                int    `json:"notice_version"`
			RecordedAt                                   string `json:"recorded_at"`
			IdempotencyKey                               string `json:"idempotency_key"`
			GivenAt, Source, Proof, Prev, Locale         string
			PrevHash                                     string `json:"prev_hash"`
			Hash                                         string
		}
		Values   []struct{ Field, Value string }
		Receipts []struct{ ID, Token string }
		Access   []struct {
			System, Kind string
			Count        int64
		}
	}
	if err := json.Unmarshal(payload, &data); err != nil {
		t.Fatal(err)
	}
	if data.Subject != "erin" || len(data.Events) < 4 || len(data.Values) != 2 || len(data.Access) != 3 || data.Access[0].System != "ESP sync" ||
		len(data.Receipts) != 1 {
		t.Fatalf("the download holds %+v", data)
	}
	if _, err := receipts.Verify(data.Receipts[0].Token, jwks.Bytes(), e.api.Center.Signer.Issuer()); err != nil {
		t.Errorf("the download's receipt does not verify: %v", err)
	}
	if !strings.Contains(page, `href="/c/shop-a/receipts/`+data.Receipts[0].ID+`"`) {
		t.Error("the data page does not link the receipt")
	}
	prev := ""
	for _, ev := range data.Events {
		at, err := time.Parse(time.RFC3339Nano, ev.RecordedAt)
		if err != nil {
			t.Fatal(err)
		}
		rehashed := consent.Event{MerchantID: data.MerchantID, SubjectID: data.Subject, Seq: ev.Seq, Purpose: ev.Purpose, State: consent.State(ev.State),
			NoticeVersion: ev.NoticeVersion, Channel: consent.Channel(ev.Channel), Actor: ev.Actor, RecordedAt: at, IdempotencyKey: ev.IdempotencyKey,
			PrevHash: ev.PrevHash, Field: ev.Field, Source: ev.Source, Proof: ev.Proof, Level: consent.Level(ev.Level),
			Prev: consent.State(ev.Prev), Locale: ev.Locale}.ComputeHash()
		if rehashed != ev.Hash || ev.PrevHash != prev {
			t.Fatalf("event %d does not re-hash to the chain", ev.Seq)
		}
		prev = ev.Hash
	}
	_, csvBody := getPage(t, client, e.srv.URL+"/c/shop-a/data/download.csv")
	if !strings.HasPrefix(csvBody, "kind,when,purpose,what,channel_or_system,notice_version,count\n") || !strings.Contains(csvBody, "shoe_size: 41") ||
		!strings.Contains(csvBody, "ESP sync") {
		t.Errorf("the CSV:\n%s", csvBody)
	}

	// Erasing asks first, and refuses a form without the box ticked.
	if code, page := getPage(t, client, e.srv.URL+"/c/shop-a/erase"); code != 200 || !strings.Contains(page, `name="confirm"`) {
		t.Fatalf("the confirmation page: %d", code)
	}
	if page := postPage(t, client, e.srv.URL+"/c/shop-a/erase", e.srv.URL, url.Values{}); !strings.Contains(page, "Please tick the box") {
		t.Errorf("an unconfirmed erasure:\n%s", page)
	}
	if got := e.reason(t, "erin", "recommendations"); got != "granted" {
		t.Fatalf("an unconfirmed erasure changed the choices: %s", got)
	}
	page = postPage(t, client, e.srv.URL+"/c/shop-a/erase", e.srv.URL, url.Values{"confirm": {"yes"}})
	if !strings.Contains(page, "Your data was deleted") {
		t.Fatalf("after the erasure:\n%s", page)
	}
	if got := e.reason(t, "erin", "recommendations"); got != "subject_erased" {
		t.Errorf("check after the shopper's erasure: %s", got)
	}
	// The session ended with it.
	if code, _ := getPage(t, client, e.srv.URL+"/c/shop-a/data"); code == 200 {
		t.Error("the data page still opens after the erasure")
	}
	// The other device's session ends on its next page.
	if code, page := getPage(t, phone, e.srv.URL+"/c/shop-a/preferences"); code != http.StatusConflict || !strings.Contains(page, "was deleted") {
		t.Errorf("the other device after the erasure: %d\n%s", code, page)
	}
	if code, _ := getPage(t, phone, e.srv.URL+"/c/shop-a/preferences"); code == http.StatusOK {
		t.Error("the other device's session survived the erasure")
	}
	waitMessages(t, box, "erin.erase@example.com", 1)
	last, err := e.api.Ledger.StateOf(ctx, e.merchA.ID, "erin")
	if err != nil || !last.Erased() {
		t.Fatalf("state after the erasure: %+v %v", last, err)
	}
	ev, err := e.api.Ledger.Event(ctx, e.merchA.ID, "erin", last.ErasedSeq)
	if err != nil || ev.Channel != consent.ChannelCenter {
		t.Errorf("the erasure event: %+v %v", ev, err)
	}
	if _, err := e.api.Center.Receipts.Store.Receipt(ctx, data.Receipts[0].ID); err == nil {
		t.Error("erin's receipt survived the erasure")
	}
	scanDataDir(t, e.api.Config.DataDir, "erin.erase@example.com", "04-17")
}

// TestErasureInterruptedFinishes: an erasure recorded and cut short, once
// right after its record was written and once after the ledger closed the
// chain, is finished by the job that resumes erasures, email included.
func TestErasureInterruptedFinishes(t *testing.T) {
	e, box, _ := newDataEnv(t)
	ctx := context.Background()
	e.mustStatus(e.do("PUT", "/v1/subjects/finn", e.keyA, `{"email":"finn.erase@example.com","locale":"de"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/finn/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	long := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	// erin: the record, then the crash.
	if err := e.store.PutErasure(ctx, erasure.Pending{MerchantID: e.merchA.ID, SubjectID: "erin", Email: "erin.erase@example.com", Locale: "en",
		Channel: consent.ChannelCenter, Actor: "session:test", RequestedAt: long}); err != nil {
		t.Fatal(err)
	}
	// finn: the record and the ledger's event, then the crash.
	if err := e.store.PutErasure(ctx, erasure.Pending{MerchantID: e.merchA.ID, SubjectID: "finn", Email: "finn.erase@example.com", Locale: "de",
		Channel: consent.ChannelAPI, Actor: "api_key:test", RequestedAt: long}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.api.Ledger.Locked(ctx, e.merchA.ID, "finn", func(tx *consent.Tx) error {
		return tx.Append(ctx, consent.Event{State: consent.SubjectErased, Channel: consent.ChannelAPI, Actor: "api_key:test"})
	}); err != nil {
		t.Fatal(err)
	}
	if got := e.reason(t, "finn", "newsletter"); got != "subject_erased" {
		t.Fatalf("finn after the ledger's event: %s", got)
	}
	if err := e.api.Erasure.ResumeAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"erin", "finn"} {
		if got := e.reason(t, s, "newsletter"); got != "subject_erased" {
			t.Errorf("%s after the resumed erasure: %s", s, got)
		}
		if _, err := e.store.Erasure(ctx, e.merchA.ID, s); err == nil {
			t.Errorf("%s's erasure is still under way", s)
		}
		if _, err := e.store.DataKey(ctx, e.merchA.ID, s); err == nil {
			t.Errorf("%s's data key survived", s)
		}
	}
	if msgs := waitMessages(t, box, "finn.erase@example.com", 1); !strings.Contains(msgs[0], "Hallo von shop-a") {
		t.Errorf("finn's email is not in German:\n%s", msgs[0])
	}
	waitMessages(t, box, "erin.erase@example.com", 1)
	n, err := e.api.Ledger.VerifySubject(ctx, e.merchA.ID, "finn")
	if err != nil || n != 2 {
		t.Fatalf("finn's chain: %d events, %v", n, err)
	}
	scanDataDir(t, e.api.Config.DataDir, "erin.erase@example.com", "finn.erase@example.com")
}

// TestExportsShowInWhoAsked: an audience export that listed the shopper
// shows on her data page under its key's name; one that did not list her
// does not.
func TestExportsShowInWhoAsked(t *testing.T) {
	e, _, erin := newDataEnv(t)
	ctx := context.Background()
	_, crm, err := e.api.Merchants.CreateKey(ctx, e.merchA.ID, "CRM nightly", []merchants.Scope{merchants.ScopeConsentRead})
	if err != nil {
		t.Fatal(err)
	}
	e.mustStatus(e.do("POST", "/v1/exports", crm, `{"purpose":"recommendations"}`), 202)
	e.mustStatus(e.do("POST", "/v1/exports", crm, `{"purpose":"recommendations","include":"all"}`), 202)
	e.mustStatus(e.do("POST", "/v1/exports", crm, `{"purpose":"newsletter","include":"all"}`), 202) // erin never decided it
	e.mustStatus(e.do("PUT", "/v1/subjects/erin/consents/birthday_reward", e.keyA, `{"state":"withdrawn"}`), 201)
	e.mustStatus(e.do("POST", "/v1/exports", crm, `{"purpose":"birthday_reward"}`), 202) // withdrawn before it was asked for
	_, page := getPage(t, erin, e.srv.URL+"/c/shop-a/data")
	i := strings.Index(page, `id="asked"`)
	if i < 0 {
		t.Fatal("no who-asked section")
	}
	asked := page[i:]
	asked = asked[:strings.Index(asked, `id="kept"`)]
	if !strings.Contains(asked, "<td>CRM nightly</td><td>Exported you</td><td>Personal recommendations</td><td>2</td>") {
		t.Errorf("the exports that listed erin are not shown:\n%s", asked)
	}
	if strings.Count(asked, "CRM nightly") != 1 {
		t.Errorf("exports that did not list erin are shown:\n%s", asked)
	}
}
