package handlers_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	netmail "net/mail"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/internal/smtptest"
	"github.com/fineline/fineline/mail"
)

// snapshot is everything a refused request must leave as it was: the
// subject's events, its state, its volunteered values.
func (e *testEnv) snapshot(t *testing.T, subject string) string {
	t.Helper()
	evs := e.eventsAfter(t, subject, 0)
	st, err := e.api.Ledger.StateOf(context.Background(), e.merchA.ID, subject)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := e.api.Fields.List(context.Background(), e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.api.Fields.Own(context.Background(), e.merchA.ID, subject, fs)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("%+v\n%+v\n%v", evs, st.Purposes, own)
}

// TestRefusedAndAmbiguousRequestsWriteNothing: every body a channel
// refuses, including ambiguous JSON, answers 400 in the error shape and
// leaves events, state and values exactly as they were.
func TestRefusedAndAmbiguousRequestsWriteNothing(t *testing.T) {
	e := newTestEnv(t)
	e.addValueExchange(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/rita", e.keyA, `{"email":"rita@example.com"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/rita/consents/recommendations", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/rita/consents/partner_sharing", e.keyA, `{"state":"withdrawn"}`), 201)
	auth := e.widgetToken(t, "rita")
	widget := append(auth, "Content-Type", "application/json")

	cases := []struct {
		name, method, path, body string
		widget                   bool
		code                     string
	}{
		{"widget: an unknown purpose beside a known one", "PUT", "/w/v1/shop-a/consents", `{"choices":{"newsletter":"granted","no_such_purpose":"granted"}}`, true, "unknown_purpose"},
		{"widget: an invalid state beside a valid one", "PUT", "/w/v1/shop-a/consents", `{"choices":{"newsletter":"granted","recommendations":"maybe"}}`, true, "invalid_state"},
		{"widget: a sensitive grant not switched on", "PUT", "/w/v1/shop-a/consents", `{"choices":{"newsletter":"granted","wellness_tips":"granted"}}`, true, "explicit_opt_in_required"},
		{"widget: a shown state that is not one", "PUT", "/w/v1/shop-a/consents", `{"choices":{"newsletter":"granted"},"shown":{"newsletter":"maybe"}}`, true, "invalid_choices"},
		{"widget: a duplicate choice", "PUT", "/w/v1/shop-a/consents", `{"choices":{"newsletter":"withdrawn","newsletter":"granted"}}`, true, "duplicate_field"},
		{"widget: a duplicate member", "PUT", "/w/v1/shop-a/consents", `{"choices":{"partner_sharing":"denied"},"choices":{"partner_sharing":"granted"}}`, true, "duplicate_field"},
		{"api: last duplicate would grant", "PUT", "/v1/subjects/rita/consents/partner_sharing", `{"state":"withdrawn","state":"granted"}`, false, "duplicate_field"},
		{"api: duplicate opt-in on a sensitive purpose", "PUT", "/v1/subjects/rita/consents/wellness_tips", `{"state":"granted","explicit_opt_in":false,"explicit_opt_in":true}`, false, "duplicate_field"},
		{"api: capitalized name", "PUT", "/v1/subjects/rita/consents/newsletter", `{"State":"granted"}`, false, "unknown_field"},
		{"api: upper-case name", "PUT", "/v1/subjects/rita/consents/newsletter", `{"STATE":"granted"}`, false, "unknown_field"},
		{"api: a name that folds to state", "PUT", "/v1/subjects/rita/consents/newsletter", `{"ſtate":"granted"}`, false, "unknown_field"},
		{"api: invalid UTF-8", "PUT", "/v1/subjects/rita/consents/newsletter", "{\"state\":\"gr\xffanted\"}", false, "invalid_utf8"},
		{"api: an invalid state", "PUT", "/v1/subjects/rita/consents/newsletter", `{"state":"maybe"}`, false, "invalid_state"},
		{"api: a sensitive grant without opt-in", "PUT", "/v1/subjects/rita/consents/wellness_tips", `{"state":"granted"}`, false, "explicit_opt_in_required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := e.snapshot(t, "rita")
			var r response
			if tc.widget {
				r = e.widget(t, tc.method, tc.path, shopOrigin, tc.body, widget...)
			} else {
				r = e.do(tc.method, tc.path, e.keyA, tc.body)
			}
			if r.status != 400 || r.errorCode(t) != tc.code {
				t.Fatalf("%d %s, want 400 %s", r.status, r.body, tc.code)
			}
			if diff := cmp.Diff(before, e.snapshot(t, "rita")); diff != "" {
				t.Fatalf("a refused request changed something (-before +after):\n%s", diff)
			}
		})
	}

	// The center: a form naming a purpose the page did not show, a value
	// without its purpose, a date that does not exist.
	_, post := e.signInShopper(t, "rita")
	forms := map[string]url.Values{
		"an unknown switch":         {"action": {"save"}, "was.newsletter": {"off"}, "on": {"newsletter", "no_such_purpose"}},
		"a value without a purpose": {"action": {"save"}, "was.newsletter": {"off"}, "was.birthday_reward": {"off"}, "on": {"newsletter"}, "field.birthday.month": {"07"}, "field.birthday.day": {"19"}},
		"a date that does not exist": {"action": {"save"}, "was.newsletter": {"off"}, "was.birthday_reward": {"off"}, "on": {"newsletter", "birthday_reward"},
			"field.birthday.month": {"02"}, "field.birthday.day": {"31"}},
		"an unknown action": {"action": {"grant_everything"}, "was.newsletter": {"off"}, "on": {"newsletter"}},
	}
	for name, form := range forms {
		t.Run("center: "+name, func(t *testing.T) {
			before := e.snapshot(t, "rita")
			if res := post("/c/shop-a/preferences", form); res.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d, want 400", res.StatusCode)
			}
			if diff := cmp.Diff(before, e.snapshot(t, "rita")); diff != "" {
				t.Fatalf("a refused form changed something (-before +after):\n%s", diff)
			}
		})
	}
}

// TestAStaleTabNeverUndoesAChoiceMadeElsewhere: a preferences page left
// open applies only the switches the shopper changed on it; what changed
// elsewhere meanwhile stands, and the page says so. Both directions: an
// unsubscribe while the page is open, a widget grant while it is open.
func TestAStaleTabNeverUndoesAChoiceMadeElsewhere(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/tess/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	client, post := e.signInShopper(t, "tess")
	_, page := getPage(t, client, e.srv.URL+"/c/shop-a/preferences")
	shown := url.Values{"action": {"save"}}
	for _, m := range wasPattern.FindAllStringSubmatch(page, -1) {
		shown.Set("was."+m[1], m[2])
		if m[2] == "on" {
			shown.Add("on", m[1])
		}
	}
	if shown.Get("was.newsletter") != "on" {
		t.Fatalf("the page shows the newsletter %q", shown.Get("was.newsletter"))
	}

	// Elsewhere, while the tab is open: unsubscribed from the newsletter
	// by email, and partner offers granted in the widget.
	var h struct {
		ListUnsubscribe string `json:"list_unsubscribe"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/tess/unsubscribe-headers?purpose=newsletter", e.keyA, ""), 200).json(t, &h)
	res, err := http.PostForm(strings.Trim(h.ListUnsubscribe, "<>"), url.Values{"List-Unsubscribe": {"One-Click"}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("one-click: %v %v", res, err)
	}
	res.Body.Close()
	if r := e.widgetSave(t, "tess", map[string]consent.State{"partner_sharing": consent.Granted}); r.status != 200 {
		t.Fatalf("widget: %d %s", r.status, r.body)
	}
	before := e.head(t, "tess")

	// Back on the old tab the shopper switches on recommendations only.
	form := url.Values{}
	for k, v := range shown {
		form[k] = v
	}
	form.Add("on", "recommendations")
	res = post("/c/shop-a/preferences", form)
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("save: %d", res.StatusCode)
	}
	var got []string
	for _, ev := range e.eventsAfter(t, "tess", before) {
		got = append(got, ev.Purpose+" "+ev.State)
	}
	if diff := cmp.Diff([]string{"recommendations granted"}, got); diff != "" {
		t.Fatalf("the stale tab wrote more than the shopper's own change (-want +got):\n%s", diff)
	}
	for p, want := range map[string]string{"newsletter": "withdrawn", "partner_sharing": "granted", "recommendations": "granted"} {
		if got := e.reason(t, "tess", p); got != want {
			t.Errorf("%s is %s, want %s", p, got, want)
		}
	}
	// The page says what changed elsewhere, and the receipt lists only the
	// shopper's own change.
	_, page = getPage(t, client, e.srv.URL+res.Header.Get("Location"))
	for _, want := range []string{"Newsletter was switched off elsewhere", "Offers from partners was switched on elsewhere", "Personal recommendations: switched on"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page after saving does not say %q", want)
		}
	}
	if strings.Contains(page, "Newsletter: switched on") {
		t.Error("the receipt lists the newsletter as the shopper's change")
	}
}

// TestDeviceLinkRacingADecisionNeverOverwritesIt: carrying an anonymous
// device's choices over to a subject, at the very moment the subject
// decides through the API, never undoes that decision.
func TestDeviceLinkRacingADecisionNeverOverwritesIt(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["`+shopOrigin+`"]}`), 200)
	const n = 40
	var wg sync.WaitGroup
	for i := range n {
		s, dev := fmt.Sprintf("link-%02d", i), fmt.Sprintf("device-%08d", i)
		e.mustStatus(e.do("PUT", "/v1/subjects/"+s, e.keyA, `{}`), 201)
		if r := e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"newsletter":"granted","recommendations":"granted","partner_sharing":"granted"}}`,
			"X-Fineline-Device", dev, "Content-Type", "application/json"); r.status != 200 {
			t.Fatalf("device accepts all: %d %s", r.status, r.body)
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			e.do("POST", "/v1/widget-sessions", e.keyA, `{"subject":"`+s+`","device_id":"`+dev+`"}`)
		}()
		go func() {
			defer wg.Done()
			e.do("PUT", "/v1/subjects/"+s+"/consents/partner_sharing", e.keyA, `{"state":"denied"}`)
		}()
	}
	wg.Wait()
	for i := range n {
		s := fmt.Sprintf("link-%02d", i)
		if got := e.reason(t, s, "partner_sharing"); got != "not_granted" {
			t.Errorf("%s: partner_sharing is %s after the subject denied it", s, got)
		}
		if got := e.reason(t, s, "newsletter"); got != "granted" {
			t.Errorf("%s: the device's newsletter grant was not carried over: %s", s, got)
		}
		// A carried-over grant may come first; it must never follow the
		// subject's own decision.
		decided := false
		for _, ev := range e.eventsAfter(t, s, 0) {
			if ev.Purpose != "partner_sharing" {
				continue
			}
			if ev.Channel == "api" {
				decided = true
			} else if decided {
				t.Errorf("%s: the device's choice came after the subject's own: %+v", s, ev)
			}
		}
	}
}

// TestGPCRacingAnOptInLetsTheOptInStand: two page loads with Sec-GPC: 1
// racing a widget opt-in to the sale/share purpose: the signal is recorded
// once, and an opt-in after it stands.
func TestGPCRacingAnOptInLetsTheOptInStand(t *testing.T) {
	e := newTestEnv(t)
	const n = 40
	type shopper struct {
		subject string
		client  *http.Client
		auth    []string
	}
	var shoppers []shopper
	for i := range n {
		s := fmt.Sprintf("gpc-%02d", i)
		e.mustStatus(e.do("PUT", "/v1/subjects/"+s, e.keyA, `{}`), 201)
		client, _ := e.signInShopper(t, s)
		shoppers = append(shoppers, shopper{s, client, e.widgetToken(t, s)})
	}
	load := func(sh shopper) {
		req, _ := http.NewRequest("GET", e.srv.URL+"/c/shop-a/preferences", nil)
		req.Header.Set("Sec-GPC", "1")
		if res, err := sh.client.Do(req); err == nil {
			res.Body.Close()
		}
	}
	var wg sync.WaitGroup
	for _, sh := range shoppers {
		load(sh) // the first signal: withdrawn (gpc)
		wg.Add(3)
		go func() { defer wg.Done(); load(sh) }()
		go func() { defer wg.Done(); load(sh) }()
		go func() {
			defer wg.Done()
			e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"partner_sharing":"granted"},"explicit":["partner_sharing"],"shown":{"partner_sharing":"off"}}`,
				append(sh.auth, "Content-Type", "application/json")...)
		}()
	}
	wg.Wait()
	for _, sh := range shoppers {
		var seq []string
		for _, ev := range e.eventsAfter(t, sh.subject, 0) {
			if ev.Purpose == "partner_sharing" {
				seq = append(seq, ev.State+"("+ev.Channel+")")
			}
		}
		if diff := cmp.Diff([]string{"withdrawn(gpc)", "granted(widget)"}, seq); diff != "" {
			t.Errorf("%s: partner_sharing events (-want +got):\n%s", sh.subject, diff)
		}
		if got := e.reason(t, sh.subject, "partner_sharing"); got != "granted" {
			t.Errorf("%s: the opt-in after the signal did not stand: %s", sh.subject, got)
		}
	}
}

// TestReviewAndAnnouncementSpeakPerVersion: two material versions with
// different grace periods, each for another purpose. The review page shows
// each version's own summary and deadline, and never says the earlier
// choice still counts once its deadline passed; the grace-0 version's
// announcement says so too.
func TestReviewAndAnnouncementSpeakPerVersion(t *testing.T) {
	box := smtptest.Start(t)
	mailer, err := mail.New(mail.Config{SMTPURL: box.URL(), From: "Shop <no-reply@shop.example>", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, testOptions{Mailer: mailer, AdminToken: testAdminToken})
	e := envOn(t, ts)
	e.mustStatus(e.do("PUT", "/v1/subjects/vera", e.keyA, `{"email":"vera@example.com"}`), 201)
	for _, p := range []string{"newsletter", "recommendations"} {
		e.mustStatus(e.do("PUT", "/v1/subjects/vera/consents/"+p, e.keyA, `{"state":"granted"}`), 201)
	}
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 200)
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"Recommendations now use what you browse."}},"material":true,"purposes":["recommendations"]}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/3/publish", e.keyA, `{"grace_period_days":30}`), 200)
	if got := e.reason(t, "vera", "newsletter"); got != "reconsent_required" {
		t.Fatalf("newsletter: %s", got)
	}
	v3, err := ts.Notices.Get(context.Background(), e.merchA.ID, 3)
	if err != nil {
		t.Fatal(err)
	}
	client, post := e.signInShopper(t, "vera")
	_, page := getPage(t, client, e.srv.URL+"/c/shop-a/review")
	i2, i3 := strings.Index(page, `id="version-2"`), strings.Index(page, `id="version-3"`)
	if i2 < 0 || i3 < i2 {
		t.Fatalf("the review page does not show version 2, then version 3:\n%s", page)
	}
	v2part, v3part := page[i2:i3], page[i3:]
	for part, wants := range map[string][]string{
		v2part: {"The newsletter now comes every week.", "no longer counts", `name="answer-newsletter"`, `name="version.newsletter" value="2"`},
		v3part: {"Recommendations now use what you browse.", "Please answer by " + formatTime(v3.Deadline) + ". Until then, your earlier choice still counts.", `name="answer-recommendations"`},
	} {
		for _, w := range wants {
			if !strings.Contains(part, w) {
				t.Errorf("a version's section lacks %q:\n%s", w, part)
			}
		}
	}
	if strings.Contains(v2part, "still counts") || strings.Contains(v2part, `name="answer-recommendations"`) {
		t.Errorf("version 2's section promises the earlier choice still counts, or asks about another purpose:\n%s", v2part)
	}
	// The announcement of version 2, whose deadline is already behind us.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ts.RunJobs(ctx)
	var v2mail string
	for _, text := range waitMails(t, box, "vera@example.com", 2, 30*time.Second) {
		if strings.Contains(text, "every week") {
			v2mail = text
		}
	}
	if v2mail == "" || strings.Contains(v2mail, "still counts") || !strings.Contains(v2mail, "no longer counts") {
		t.Errorf("the grace-0 announcement:\n%s", v2mail)
	}
	// Accepting both records each under its own version.
	before := e.head(t, "vera")
	if res := post("/c/shop-a/review", url.Values{"answer-newsletter": {"accept"}, "version.newsletter": {"2"}, "answer-recommendations": {"accept"}, "version.recommendations": {"3"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d", res.StatusCode)
	}
	var got []string
	for _, ev := range e.eventsAfter(t, "vera", before) {
		got = append(got, fmt.Sprintf("%s %s v%d", ev.Purpose, ev.State, ev.NoticeVersion))
	}
	if diff := cmp.Diff([]string{"newsletter granted v3", "recommendations granted v3"}, got); diff != "" {
		t.Errorf("answers (-want +got):\n%s", diff)
	}

}

// envOn is a testEnv over an already started server, with shop-a's key.
func envOn(t *testing.T, ts *testServer) *testEnv {
	t.Helper()
	e := &testEnv{t: t, srv: ts, api: ts, store: ts.Store}
	addShops(t, e)
	return e
}

// TestAnAddressSharedBySubjectsSignsInToEach: a customer and a guest
// checkout share an address; correcting the guest's address later does not
// lock the customer out, and while they share it the link lets the
// shopper pick either.
func TestAnAddressSharedBySubjectsSignsInToEach(t *testing.T) {
	box := smtptest.Start(t)
	mailer, err := mail.New(mail.Config{SMTPURL: box.URL(), From: "Shop <no-reply@shop.example>", Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := envOn(t, newTestServer(t, testOptions{Mailer: mailer}))
	e.mustStatus(e.do("PUT", "/v1/subjects/customer-1", e.keyA, `{"email":"pat@example.com"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/guest-77", e.keyA, `{"email":"PAT@example.com"}`), 201)

	linkPage := func() (string, string) {
		t.Helper()
		n := box.Count("pat@example.com")
		res, err := noRedirects().PostForm(e.srv.URL+"/c/shop-a/signin", url.Values{"email": {"pat@example.com"}})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		link := btWaitLink(t, box, "pat@example.com", n+1)
		_, page := getPage(t, http.DefaultClient, link)
		u, _ := url.Parse(link)
		return page, u.Query().Get("t")
	}
	page, token := linkPage()
	for _, want := range []string{"Customer record customer-1", "Customer record guest-77", `name="profile" value="customer-1"`, `name="profile" value="guest-77"`} {
		if !strings.Contains(page, want) {
			t.Errorf("the link page for a shared address lacks %q", want)
		}
	}
	// Pressing the guest's button signs in as the guest.
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: noRedirects().CheckRedirect}
	req, _ := http.NewRequest("POST", e.srv.URL+"/c/shop-a/link", strings.NewReader(url.Values{"token": {token}, "profile": {"guest-77"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.srv.URL)
	res, err := client.Do(req)
	if err != nil || res.StatusCode != http.StatusSeeOther {
		t.Fatalf("picking guest-77: %v %v", res, err)
	}
	res.Body.Close()
	if r := e.mustStatus(e.do("PUT", "/v1/subjects/guest-77/consents/newsletter", e.keyA, `{"state":"granted"}`), 201); r.status != 201 {
		t.Fatal(r.status)
	}
	if _, prefs := getPage(t, client, e.srv.URL+"/c/shop-a/preferences"); !strings.Contains(prefs, `name="was.newsletter" value="on"`) {
		t.Error("the session is not guest-77's")
	}

	// The guest's address is corrected: the customer still signs in.
	e.mustStatus(e.do("PUT", "/v1/subjects/guest-77", e.keyA, `{"email":"pat.guest@example.com"}`), 200)
	page, _ = linkPage()
	if strings.Contains(page, `name="profile"`) || !strings.Contains(page, "Sign in and continue") {
		t.Fatalf("after the guest's correction the link page is:\n%s", page)
	}
}

// waitMails waits for n mails to addr and returns their text parts.
func waitMails(t *testing.T, box *smtptest.Server, addr string, n int, within time.Duration) []string {
	t.Helper()
	deadline := time.Now().Add(within)
	for box.Count(addr) < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d mails to %s within %v, want %d", box.Count(addr), addr, within, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	var out []string
	for _, raw := range box.Messages(addr) {
		msg, err := netmail.ReadMessage(strings.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		text, err := btTextPart(msg.Header, msg.Body)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, text)
	}
	return out
}

// noRedirects is a client that shows redirects instead of following them.
func noRedirects() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
