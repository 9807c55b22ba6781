package handlers

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// TestPausedConsentShowsOffAndSwitchingOnRenewsIt: after a material change
// past its deadline, the preferences page shows the purpose off (as the
// check API says), and switching it on grants it under the new terms.
func TestPausedConsentShowsOffAndSwitchingOnRenewsIt(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/pat/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 200)
	if r := e.do("GET", "/v1/check?subject=pat&purpose=newsletter", e.keyA, ""); !strings.Contains(string(r.body), `"reason":"reconsent_required"`) {
		t.Fatalf("check after the change: %s", r.body)
	}
	var link struct{ URL string }
	e.mustStatus(e.do("POST", "/v1/subjects/pat/preference-links", e.keyA, ""), 201).json(t, &link)
	u, err := url.Parse(link.URL)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	post := func(path string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.srv.URL)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := post("/c/shop-a/p", url.Values{"token": {u.Query().Get("t")}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign in with the preference link: %d", res.StatusCode)
	}
	res, err := client.Get(e.srv.URL + "/c/shop-a/preferences")
	if err != nil {
		t.Fatal(err)
	}
	var page strings.Builder
	buf := make([]byte, 1<<16)
	for {
		n, err := res.Body.Read(buf)
		page.Write(buf[:n])
		if err != nil {
			break
		}
	}
	res.Body.Close()
	html := page.String()
	i := strings.Index(html, `id="p-newsletter"`)
	if i < 0 {
		t.Fatal("no newsletter switch")
	}
	sw := html[i : i+strings.Index(html[i:], ">")]
	if strings.Contains(sw, "checked") {
		t.Fatalf("paused consent shown as on: %s", sw)
	}
	if !strings.Contains(html, "Paused: the terms for this changed") || !strings.Contains(html, `class="banner"`) {
		t.Fatal("no paused status or banner")
	}
	if res := post("/c/shop-a/preferences", url.Values{"action": {"save"}, "shown": {"newsletter"}, "on": {"newsletter"}}); res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "receipt=") {
		t.Fatalf("switching it on: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if r := e.do("GET", "/v1/check?subject=pat&purpose=newsletter", e.keyA, ""); !strings.Contains(string(r.body), `"reason":"granted"`) || !strings.Contains(string(r.body), `"notice_version":2`) {
		t.Fatalf("check after renewing: %s", r.body)
	}
}
