package handlers_test

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestOperatorValidatesMerchantNames: a name goes into mail headers and
// page titles, so one line of text only; nothing is created otherwise.
func TestOperatorValidatesMerchantNames(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"Evil\r\nBcc: x@y.com", "Tab\tShop", "Right\u202eLeft", "Line\u2028Two", "   ", strings.Repeat("n", 101)} {
		r := e.do("POST", "/admin/v1/merchants", testAdminToken, `{"slug":"evil","name":`+btJSString(name)+`}`)
		if r.status != 400 || !strings.Contains(string(r.body), `"code":"invalid_text"`) {
			t.Errorf("name %q: %d %s, want 400 invalid_text", name, r.status, r.body)
		}
	}
	if ids := listMerchantSlugs(t, e); slices.Contains(ids, "evil") {
		t.Fatalf("a refused merchant was stored: %v", ids)
	}
	e.mustStatus(e.do("POST", "/admin/v1/merchants", testAdminToken, `{"slug":"evil","name":"  Évil Ünicode Shop  "}`), 201)
}

type merchantPage struct {
	Merchants []struct {
		ID          string  `json:"id"`
		Slug        string  `json:"slug"`
		SuspendedAt *string `json:"suspended_at"`
	} `json:"merchants"`
	Next string `json:"next"`
}

// listMerchantSlugs pages through every merchant, one per page.
func listMerchantSlugs(t *testing.T, e *testEnv) []string {
	t.Helper()
	var slugs []string
	after := ""
	for i := 0; i < 100; i++ {
		var p merchantPage
		e.mustStatus(e.do("GET", "/admin/v1/merchants?limit=1&after="+url.QueryEscape(after), testAdminToken, ""), 200).json(t, &p)
		for _, m := range p.Merchants {
			slugs = append(slugs, m.Slug)
		}
		if p.Next == "" {
			return slugs
		}
		after = p.Next
	}
	t.Fatal("the pages never end")
	return nil
}

// TestOperatorListsMerchants: pages cover every merchant once; bad limits,
// cursors and tokens are refused.
func TestOperatorListsMerchants(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("POST", "/admin/v1/merchants", testAdminToken, `{"slug":"shop-c","name":"Shop C"}`), 201)
	got := listMerchantSlugs(t, e)
	slices.Sort(got)
	if !slices.Equal(got, []string{"shop-a", "shop-b", "shop-c"}) {
		t.Fatalf("merchants over pages of one: %v", got)
	}
	var all merchantPage
	e.mustStatus(e.do("GET", "/admin/v1/merchants", testAdminToken, ""), 200).json(t, &all)
	if len(all.Merchants) != 3 || all.Next != "" {
		t.Fatalf("one default page: %+v", all)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "after=" + url.QueryEscape(`{"$gt":""}`)} {
		if r := e.do("GET", "/admin/v1/merchants?"+q, testAdminToken, ""); r.status != 400 {
			t.Errorf("?%s: %d %s", q, r.status, r.body)
		}
	}
	if r := e.do("GET", "/admin/v1/merchants", e.keyA, ""); r.status != 401 {
		t.Errorf("a merchant key on the operator API: %d", r.status)
	}
}

// TestOperatorSuspendsMerchant: a suspended merchant's keys, widget and
// center answer 403 merchant_suspended, another merchant is untouched, the
// shopper can still unsubscribe, and on resuming everything is as it was.
func TestOperatorSuspendsMerchant(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["https://shop-a.example"]}`), 200)
	e.mustStatus(e.do("PUT", "/v1/subjects/sue/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/sue/consents/recommendations", e.keyA, `{"state":"granted"}`), 201)
	var h struct {
		ListUnsubscribe string `json:"list_unsubscribe"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/sue/unsubscribe-headers?purpose=newsletter", e.keyA, ""), 200).json(t, &h)

	if r := e.do("POST", "/admin/v1/merchants/mer_nosuchmerchant/suspend", testAdminToken, ""); r.status != 404 {
		t.Fatalf("suspend an unknown merchant: %d", r.status)
	}
	var m struct {
		SuspendedAt *string `json:"suspended_at"`
	}
	e.mustStatus(e.do("POST", "/admin/v1/merchants/"+e.merchA.ID+"/suspend", testAdminToken, ""), 200).json(t, &m)
	if m.SuspendedAt == nil {
		t.Fatal("no suspended_at after suspending")
	}

	suspended := func(r response, what string) {
		t.Helper()
		if r.status != 403 || !strings.Contains(string(r.body), "merchant_suspended") {
			t.Errorf("%s while suspended: %d %s", what, r.status, r.body)
		}
	}
	suspended(e.do("GET", "/v1/check?subject=sue&purpose=newsletter", e.keyA, ""), "a check")
	suspended(e.do("PUT", "/v1/subjects/sue/consents/newsletter", e.keyA, `{"state":"withdrawn"}`), "a write")
	suspended(e.do("GET", "/v1/purposes", e.keyA, ""), "the purposes")
	r := e.widget(t, "GET", "/w/v1/shop-a/config", shopOrigin, "")
	suspended(r, "the widget's config")
	if r.header.Get("Access-Control-Allow-Origin") != shopOrigin {
		t.Errorf("the merchant's own site cannot read why the widget is off: %v", r.header)
	}
	suspended(e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", "X-Fineline-Device", "0f0e0d0c-aaaa-bbbb"), "the widget's state")
	for _, path := range []string{"/c/shop-a/", "/c/shop-a/protect", "/c/shop-a/notices"} {
		req, _ := http.NewRequest("GET", e.srv.URL+path, nil)
		req.Header.Set("Accept-Language", "de")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		if res.StatusCode != 403 || !strings.Contains(body, e.api.Center.Locales.For("de").T("err_suspended_title")) {
			t.Errorf("%s while suspended: %d %.300s", path, res.StatusCode, body)
		}
	}
	// Another merchant is untouched.
	e.mustStatus(e.do("GET", "/v1/purposes", e.keyB, ""), 200)
	// Withdrawing by an email's link still works.
	res, err := http.PostForm(strings.Trim(h.ListUnsubscribe, "<>"), url.Values{"List-Unsubscribe": {"One-Click"}})
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("one-click unsubscribe while suspended: %v %v", res, err)
	}
	res.Body.Close()
	// Suspending twice keeps the first time.
	var again struct {
		SuspendedAt *string `json:"suspended_at"`
	}
	e.mustStatus(e.do("POST", "/admin/v1/merchants/"+e.merchA.ID+"/suspend", testAdminToken, ""), 200).json(t, &again)
	if again.SuspendedAt == nil || *again.SuspendedAt != *m.SuspendedAt {
		t.Errorf("suspended again: %v, first %v", again.SuspendedAt, *m.SuspendedAt)
	}

	var resumed struct {
		SuspendedAt *string `json:"suspended_at"`
	}
	e.mustStatus(e.do("POST", "/admin/v1/merchants/"+e.merchA.ID+"/resume", testAdminToken, ""), 200).json(t, &resumed)
	if resumed.SuspendedAt != nil {
		t.Fatalf("suspended_at after resuming: %v", *resumed.SuspendedAt)
	}
	if got := e.reason(t, "sue", "recommendations"); got != "granted" {
		t.Errorf("recommendations after resuming: %s", got)
	}
	if got := e.reason(t, "sue", "newsletter"); got != "withdrawn" {
		t.Errorf("newsletter after the unsubscribe while suspended: %s", got)
	}
	if r := e.widget(t, "GET", "/w/v1/shop-a/config", shopOrigin, ""); r.status != 200 {
		t.Errorf("the widget after resuming: %d", r.status)
	}
}
