package handlers_test

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
	client, post := e.signInShopper(t, "pat")
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
	if res := post("/c/shop-a/preferences", url.Values{"action": {"save"}, "was.newsletter": {"off"}, "on": {"newsletter"}}); res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "receipt=") {
		t.Fatalf("switching it on: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if r := e.do("GET", "/v1/check?subject=pat&purpose=newsletter", e.keyA, ""); !strings.Contains(string(r.body), `"reason":"granted"`) || !strings.Contains(string(r.body), `"notice_version":2`) {
		t.Fatalf("check after renewing: %s", r.body)
	}
}

// signInShopper signs subject into shop-a's center with a preference link
// and returns the client and a form poster that sends same-origin POSTs.
func (e *testEnv) signInShopper(t *testing.T, subject string) (*http.Client, func(string, url.Values) *http.Response) {
	t.Helper()
	var link struct{ URL string }
	e.mustStatus(e.do("POST", "/v1/subjects/"+subject+"/preference-links", e.keyA, ""), 201).json(t, &link)
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
	return client, post
}

func (e *testEnv) reason(t *testing.T, subject, purpose string) string {
	t.Helper()
	var d struct{ Reason string }
	e.mustStatus(e.do("GET", "/v1/check?subject="+subject+"&purpose="+purpose, e.keyA, ""), 200).json(t, &d)
	return d.Reason
}

// TestReviewAnswersEveryPurposeWhateverVersionItAwaits: two material
// versions, each for another purpose; declining both withdraws both.
func TestReviewAnswersEveryPurposeWhateverVersionItAwaits(t *testing.T) {
	e := newTestEnv(t)
	for _, p := range []string{"newsletter", "recommendations"} {
		e.mustStatus(e.do("PUT", "/v1/subjects/ray/consents/"+p, e.keyA, `{"state":"granted"}`), 201)
	}
	for i, p := range []string{"newsletter", "recommendations"} {
		e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"A change that affects `+p+`."}},"material":true,"purposes":["`+p+`"]}`), 201)
		e.mustStatus(e.do("POST", "/v1/notices/"+string(rune('2'+i))+"/publish", e.keyA, `{"grace_period_days":30}`), 200)
	}
	_, post := e.signInShopper(t, "ray")
	res := post("/c/shop-a/review", url.Values{"version": {"3"}, "answer-newsletter": {"decline"}, "answer-recommendations": {"decline"}})
	if res.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d", res.StatusCode)
	}
	for _, p := range []string{"newsletter", "recommendations"} {
		if got := e.reason(t, "ray", p); got != "withdrawn" {
			t.Errorf("%s after declining: %s", p, got)
		}
	}
}

// TestReacceptAfterALaterNonMaterialVersion: a typo fix published after a
// material change does not stop the shopper from accepting again.
func TestReacceptAfterALaterNonMaterialVersion(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/sue/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 200)
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"We fixed a typo in the notice."}}}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/3/publish", e.keyA, `{}`), 200)
	_, post := e.signInShopper(t, "sue")
	if res := post("/c/shop-a/review", url.Values{"version": {"2"}, "answer-newsletter": {"accept"}}); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("review: %d", res.StatusCode)
	}
	if got := e.reason(t, "sue", "newsletter"); got != "granted" {
		t.Fatalf("after accepting again: %s", got)
	}
}
