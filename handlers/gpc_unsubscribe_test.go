package handlers_test

import (
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func (e *testEnv) lastEvent(t *testing.T, subject string) (channel, state, purpose string) {
	t.Helper()
	var ev struct {
		Events []struct{ Channel, State, Purpose string } `json:"events"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/"+subject+"/events?limit=200", e.keyA, ""), 200).json(t, &ev)
	if len(ev.Events) == 0 {
		t.Fatal("no events")
	}
	last := ev.Events[len(ev.Events)-1]
	return last.Channel, last.State, last.Purpose
}

func TestGlobalPrivacyControlWithdrawsSaleAndShare(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/gil/consents/partner_sharing", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/gil/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	client, post := e.signInShopper(t, "gil")
	get := func(gpc bool) {
		t.Helper()
		req, _ := http.NewRequest("GET", e.srv.URL+"/c/shop-a/preferences", nil)
		if gpc {
			req.Header.Set("Sec-GPC", "1")
		}
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("preferences: %d", res.StatusCode)
		}
	}
	get(false)
	if got := e.reason(t, "gil", "partner_sharing"); got != "granted" {
		t.Fatalf("without the signal: %s", got)
	}
	get(true)
	if got := e.reason(t, "gil", "partner_sharing"); got != "gpc_opt_out" {
		t.Fatalf("after Sec-GPC: 1: %s", got)
	}
	if got := e.reason(t, "gil", "newsletter"); got != "granted" {
		t.Fatalf("a purpose that is not a sale or share: %s", got)
	}
	if ch, st, p := e.lastEvent(t, "gil"); ch != "gpc" || st != "withdrawn" || p != "partner_sharing" {
		t.Fatalf("last event %s %s %s", ch, st, p)
	}
	// Opting in again after the signal is the shopper's explicit choice.
	if res := post("/c/shop-a/preferences", url.Values{"action": {"save"}, "was.partner_sharing": {"off"}, "was.newsletter": {"off"}, "on": {"partner_sharing", "newsletter"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("opt in again: %d", res.StatusCode)
	}
	get(true)
	if got := e.reason(t, "gil", "partner_sharing"); got != "granted" {
		t.Fatalf("an explicit opt-in after the signal was overridden: %s", got)
	}

	// A subject who never chose gets the opt-out recorded too.
	e.mustStatus(e.do("PUT", "/v1/subjects/new", e.keyA, `{}`), 201)
	client2, _ := e.signInShopper(t, "new")
	req, _ := http.NewRequest("GET", e.srv.URL+"/c/shop-a/preferences", nil)
	req.Header.Set("Sec-GPC", "1")
	res, err := client2.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if got := e.reason(t, "new", "partner_sharing"); got != "gpc_opt_out" {
		t.Fatalf("no prior choice: %s", got)
	}

	r := e.mustStatus(e.do("GET", "/.well-known/gpc.json", "", ""), 200)
	if !strings.Contains(string(r.body), `"gpc":true`) {
		t.Fatalf("gpc.json: %s", r.body)
	}
}

func TestOneClickUnsubscribe(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/uma/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/uma/consents/recommendations", e.keyA, `{"state":"granted"}`), 201)
	var h struct {
		ListUnsubscribe     string `json:"list_unsubscribe"`
		ListUnsubscribePost string `json:"list_unsubscribe_post"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/uma/unsubscribe-headers?purpose=newsletter", e.keyA, ""), 200).json(t, &h)
	if h.ListUnsubscribePost != "List-Unsubscribe=One-Click" || !strings.HasPrefix(h.ListUnsubscribe, "<"+e.srv.URL+"/u/") {
		t.Fatalf("headers: %+v", h)
	}
	e.mustStatus(e.do("GET", "/v1/subjects/uma/unsubscribe-headers?purpose=nope", e.keyA, ""), 400)
	e.mustStatus(e.do("GET", "/v1/subjects/nobody/unsubscribe-headers?purpose=newsletter", e.keyA, ""), 404)
	e.mustStatus(e.do("GET", "/v1/subjects/uma/unsubscribe-headers?purpose=newsletter", e.keyB, ""), 404)
	target := strings.Trim(h.ListUnsubscribe, "<>")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

	// A GET (a link scanner) shows a confirm page and changes nothing.
	res, err := noRedirect.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "List-Unsubscribe") {
		t.Fatalf("GET: %d", res.StatusCode)
	}
	if got := e.reason(t, "uma", "newsletter"); got != "granted" {
		t.Fatalf("a GET changed the choice: %s", got)
	}
	// A tampered token and a POST without the one-click field change nothing.
	tampered := target[:len(target)-2] + "xx"
	for _, bad := range []struct{ url, body string }{{tampered, "List-Unsubscribe=One-Click"}, {target, "List-Unsubscribe=Something"}, {target, ""}} {
		res, err := noRedirect.Post(bad.url, "application/x-www-form-urlencoded", strings.NewReader(bad.body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode < 400 {
			t.Fatalf("bad unsubscribe %q answered %d", bad.body, res.StatusCode)
		}
	}
	if got := e.reason(t, "uma", "newsletter"); got != "granted" {
		t.Fatalf("a bad request changed the choice: %s", got)
	}
	// The one-click POST, as a mail provider sends it: no cookie, no Origin.
	res, err = noRedirect.Post(target, "application/x-www-form-urlencoded", strings.NewReader("List-Unsubscribe=One-Click"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("one-click POST: %d (want 200, no redirect)", res.StatusCode)
	}
	if got := e.reason(t, "uma", "newsletter"); got != "withdrawn" {
		t.Fatalf("after one-click: %s", got)
	}
	if got := e.reason(t, "uma", "recommendations"); got != "granted" {
		t.Fatalf("one-click withdrew another purpose: %s", got)
	}
	if ch, st, p := e.lastEvent(t, "uma"); ch != "unsubscribe" || st != "withdrawn" || p != "newsletter" {
		t.Fatalf("last event %s %s %s", ch, st, p)
	}
	// Multipart works too.
	e.mustStatus(e.do("GET", "/v1/subjects/uma/unsubscribe-headers?purpose=recommendations", e.keyA, ""), 200).json(t, &h)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("List-Unsubscribe", "One-Click"); err != nil {
		t.Fatal(err)
	}
	mw.Close()
	res, err = noRedirect.Post(strings.Trim(h.ListUnsubscribe, "<>"), mw.FormDataContentType(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 || e.reason(t, "uma", "recommendations") != "withdrawn" {
		t.Fatalf("multipart one-click: %d", res.StatusCode)
	}
}
