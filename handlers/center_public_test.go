package handlers_test

import (
	"bytes"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
)

// formPost posts a form from origin and returns the status and the body.
func formPost(t *testing.T, client *http.Client, u, origin string, form url.Values) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	return res.StatusCode, b.String()
}

// anonymousClient keeps cookies and does not follow redirects.
func anonymousClient() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func TestProtectPageSaysWhatIsSetUp(t *testing.T) {
	e, _, _ := newDataEnv(t)
	code, page := getPage(t, anonymousClient(), e.srv.URL+"/c/shop-a/protect")
	if code != 200 {
		t.Fatalf("protect page: %d", code)
	}
	for _, want := range []string{"How shop-a protects your data here", "AES-256-GCM", "Your birthday", "Birthday reward", "Your shoe size (EU)",
		"Mailer Ltd", "IE", "is not served over HTTPS"} {
		if !strings.Contains(page, want) {
			t.Errorf("the protect page lacks %q", want)
		}
	}
	// Two keys may read choices (the shop's own and ESP sync); one, values.
	if !strings.Contains(page, "2 of shop-a&#39;s systems may ask about your choices") || !strings.Contains(page, "1 of shop-a&#39;s systems may read the details") {
		t.Errorf("the protect page miscounts who can see it:\n%s", page)
	}
	// The center links to all three public pages.
	_, home := getPage(t, anonymousClient(), e.srv.URL+"/c/shop-a/")
	for _, link := range []string{`href="/c/shop-a/protect"`, `href="/c/shop-a/do-not-sell"`, `href="/c/shop-a/verify"`} {
		if !strings.Contains(home, link) {
			t.Errorf("the center lacks %s", link)
		}
	}
}

func TestDoNotSellWithoutScriptAndWithGPC(t *testing.T) {
	e, _, erin := newDataEnv(t)
	// An anonymous visitor, no script: a plain form post.
	visitor := anonymousClient()
	code, page := getPage(t, visitor, e.srv.URL+"/c/shop-a/do-not-sell")
	if code != 200 || !strings.Contains(page, `action="/c/shop-a/do-not-sell"`) || !strings.Contains(page, "Offers from partners") {
		t.Fatalf("do-not-sell page: %d\n%s", code, page)
	}
	if strings.Contains(page, "You have opted out") {
		t.Error("a new visitor is shown as opted out")
	}
	if code, _ := formPost(t, visitor, e.srv.URL+"/c/shop-a/do-not-sell", e.srv.URL, nil); code != http.StatusSeeOther {
		t.Fatalf("opting out: %d", code)
	}
	_, page = getPage(t, visitor, e.srv.URL+"/c/shop-a/do-not-sell?done=1")
	if !strings.Contains(page, "You have opted out") || !strings.Contains(page, "will not sell or share") {
		t.Errorf("after opting out:\n%s", page)
	}
	var device string
	u, _ := url.Parse(e.srv.URL + "/c/shop-a/")
	for _, c := range visitor.Jar.Cookies(u) {
		if c.Name == "fl_device" {
			device = "device:" + c.Value
		}
	}
	if device == "" {
		t.Fatal("no device cookie")
	}
	if got := e.reason(t, device, "partner_sharing"); got != "withdrawn" {
		t.Errorf("the device's partner_sharing: %s", got)
	}
	// A cross-origin post changes nothing.
	if code, _ := formPost(t, anonymousClient(), e.srv.URL+"/c/shop-a/do-not-sell", "https://evil.example", nil); code != http.StatusForbidden {
		t.Errorf("a cross-origin opt-out: %d", code)
	}

	// With Sec-GPC: 1, the signal is honoured on sight, for a device...
	gpc := anonymousClient()
	req, _ := http.NewRequest("GET", e.srv.URL+"/c/shop-a/do-not-sell", nil)
	req.Header.Set("Sec-GPC", "1")
	res, err := gpc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	b.ReadFrom(res.Body)
	res.Body.Close()
	if !strings.Contains(b.String(), "Global Privacy Control") || !strings.Contains(b.String(), "You have opted out") {
		t.Errorf("with GPC:\n%s", b.String())
	}
	// ...and for the signed-in shopper, against her.
	e.mustStatus(e.do("PUT", "/v1/subjects/erin/consents/partner_sharing", e.keyA, `{"state":"granted"}`), 201)
	if code, _ := formPost(t, erin, e.srv.URL+"/c/shop-a/do-not-sell", e.srv.URL, nil); code != http.StatusSeeOther {
		t.Fatalf("erin opting out: %d", code)
	}
	if got := e.reason(t, "erin", "partner_sharing"); got != "withdrawn" {
		t.Errorf("erin's partner_sharing after opting out: %s", got)
	}
}

// postVerify posts the verify form with a pasted text or a file.
func postVerify(t *testing.T, e *testEnv, field, text string) (int, string) {
	t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	if field == "file" {
		fw, _ := w.CreateFormFile("file", "receipt.jwt")
		fw.Write([]byte(text))
	} else {
		w.WriteField("receipt", text)
	}
	w.Close()
	req, _ := http.NewRequest("POST", e.srv.URL+"/c/shop-a/verify", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", e.srv.URL)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out bytes.Buffer
	out.ReadFrom(res.Body)
	return res.StatusCode, out.String()
}

func TestVerifyPageChecksReceiptsAndDownloads(t *testing.T) {
	e, _, erin := newDataEnv(t)
	// erin's receipt of her save, and her signed data download.
	_, prefs := getPage(t, erin, e.srv.URL+"/c/shop-a/preferences")
	_ = prefs
	r, _ := e.api.Ledger.StateOf(t.Context(), e.merchA.ID, "erin")
	if r.Seq == 0 {
		t.Fatal("erin has no chain")
	}
	form := url.Values{"action": {"save"}, "was.newsletter": {"off"}, "on": {"newsletter"}}
	req, _ := http.NewRequest("POST", e.srv.URL+"/c/shop-a/preferences", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", e.srv.URL)
	res, err := erin.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close() // the receipt is in the redirect's address
	loc, _ := url.Parse(res.Header.Get("Location"))
	id := loc.Query().Get("receipt")
	if id == "" {
		t.Fatalf("no receipt after a save: %s", res.Header.Get("Location"))
	}
	_, token := getPage(t, erin, e.srv.URL+"/c/shop-a/receipts/"+id+"/download")
	_, download := getPage(t, erin, e.srv.URL+"/c/shop-a/data/download.json")

	code, page := postVerify(t, e, "receipt", token)
	if code != 200 || !strings.Contains(page, "A genuine receipt") || !strings.Contains(page, "about erin") || !strings.Contains(page, "Newsletter") {
		t.Errorf("a pasted receipt: %d\n%s", code, page)
	}
	if code, page := postVerify(t, e, "file", token); code != 200 || !strings.Contains(page, "A genuine receipt") {
		t.Errorf("an uploaded receipt: %d", code)
	}
	if code, page := postVerify(t, e, "file", download); code != 200 || !strings.Contains(page, "A genuine data download") {
		t.Errorf("an uploaded data download: %d\n%s", code, page)
	}
	// One character changed in the payload: refused.
	parts := strings.Split(token, ".")
	tampered := parts[0] + "." + strings.Replace(parts[1], parts[1][10:11], string(rune('A'+(parts[1][10]+1)%26)), 1) + "." + parts[2]
	if code, page := postVerify(t, e, "receipt", tampered); code != 422 || !strings.Contains(page, "was not signed here") {
		t.Errorf("a tampered receipt: %d", code)
	}
	if code, page := postVerify(t, e, "receipt", ""); code != 422 || !strings.Contains(page, "Paste a receipt or choose a file first") {
		t.Errorf("nothing: %d", code)
	}
	// Signed here, but for another merchant.
	if code, page := formPost(t, http.DefaultClient, e.srv.URL+"/c/shop-b/verify", e.srv.URL, url.Values{"receipt": {token}}); code != 422 || !strings.Contains(page, "but not for shop-b") {
		t.Errorf("another merchant's receipt: %d\n%s", code, page)
	}
}
