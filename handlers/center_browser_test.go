package handlers_test

// Browser tests of the hosted preference center: a real Chromium drives the
// real handler over HTTP, with a real embedded store and a real SMTP server
// that catches the sign-in mails. One browser serves every subtest of
// TestBrowser; each subtest gets its own server, store and browser contexts
// (so no cookie leaks from one to the next).

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/http"
	"net/http/httptest"
	netmail "net/mail"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/internal/smtptest"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/mail"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/receipts"
	"github.com/fineline/fineline/signin"
)

// btAdminToken is the operator's token of the browser tests' server.
const btAdminToken = "operator-token-for-browser-tests"

// btSlug is the merchant every browser test signs in to.
const btSlug = "corner-shop"

// btStepTimeout bounds one action of a browser tab.
const btStepTimeout = 15 * time.Second

// TestBrowser runs the shopper's journeys through the preference center in
// headless Chromium. Without a browser it skips, except under CI, where a
// missing browser is a failure.
func TestBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	t.Run("SignInSaveAndReceipt", func(t *testing.T) { btTestSignInSaveAndReceipt(t, browser) })
	t.Run("TurnEverythingOff", func(t *testing.T) { btTestTurnEverythingOff(t, browser) })
	t.Run("Language", func(t *testing.T) { btTestLanguage(t, browser) })
	t.Run("WithoutJavaScript", func(t *testing.T) { btTestWithoutJavaScript(t, browser) })
	t.Run("LinksRefused", func(t *testing.T) { btTestLinksRefused(t, browser) })
	t.Run("OtherSubject", func(t *testing.T) { btTestOtherSubject(t, browser) })
	t.Run("CrossOriginPost", func(t *testing.T) { btTestCrossOriginPost(t, browser) })
	t.Run("Accessibility", func(t *testing.T) { btTestAccessibility(t, browser) })
	t.Run("ReviewChangedTerms", func(t *testing.T) { btTestReviewChangedTerms(t, browser) })
	t.Run("ReviewNoAnswer", func(t *testing.T) { btTestReviewNoAnswer(t, browser) })
	t.Run("PastVersions", func(t *testing.T) { btTestPastVersions(t, browser) })
	t.Run("ReviewAccessibility", func(t *testing.T) { btTestReviewAccessibility(t, browser) })
}

// btTestSignInSaveAndReceipt: email link sign-in, switches, save, the saved
// notice, the receipt page, the signed download verified against the JWKS,
// and the ledger events behind it.
func btTestSignInSaveAndReceipt(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-ann", "Ann@Example.com")
	en := e.loc("en")
	tab := e.newTab("en", true)
	tab.signIn("ann@example.com")

	if got := tab.text("h1"); got != en.T("prefs_title") {
		t.Fatalf("preferences h1 = %q, want %q", got, en.T("prefs_title"))
	}
	ps, err := e.api.Purposes.List(context.Background(), e.merchant.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wantKeys []string
	for _, p := range ps {
		wantKeys = append(wantKeys, p.Key)
	}
	if len(wantKeys) != len(demo.Purposes()) {
		t.Fatalf("%d purposes stored, want %d", len(wantKeys), len(demo.Purposes()))
	}
	if diff := cmp.Diff(wantKeys, btEval[[]string](tab, `[...document.querySelectorAll("section.card input[type=checkbox][name=on]")].map(b => b.value)`)); diff != "" {
		t.Fatalf("one switch per purpose, in order (-want +got):\n%s", diff)
	}
	if on := tab.checkedKeys(); len(on) != 0 {
		t.Fatalf("switches on before any choice: %v", on)
	}
	// The sensitive purpose is marked, visibly, and only it.
	if diff := cmp.Diff([]string{"wellness_tips"}, btEval[[]string](tab, `[...document.querySelectorAll("section.card.sensitive input[name=on]")].map(b => b.value)`)); diff != "" {
		t.Fatalf("cards marked sensitive (-want +got):\n%s", diff)
	}
	if !btEval[bool](tab, `(() => { const b = document.querySelector("section.card.sensitive .badge"); return !!b && b.getClientRects().length > 0 && getComputedStyle(b).visibility === "visible"; })()`) {
		t.Fatal("the sensitive card shows no visible badge")
	}
	if got := tab.text(`section.card.sensitive .badge`); got != en.T("sensitive_badge") {
		t.Fatalf("sensitive badge = %q, want %q", got, en.T("sensitive_badge"))
	}
	if got := tab.text(`section.card.sensitive .explain`); got != en.T("sensitive_explain") {
		t.Fatalf("sensitive explanation = %q", got)
	}
	if n := btEval[int](tab, `document.querySelectorAll("section.card .badge").length`); n != 1 {
		t.Fatalf("%d sensitive badges, want 1", n)
	}

	// Switch three purposes on: two by their input, one by its label text.
	tab.click(`#p-newsletter`)
	tab.click(`label[for="p-recommendations"] .switch-text`)
	tab.click(`#p-wellness_tips`)
	if got := tab.text(`#unsaved`); got != "You have 3 unsaved changes." {
		t.Fatalf("unsaved counter = %q", got)
	}
	if diff := cmp.Diff([]string{"newsletter", "recommendations", "wellness_tips"}, tab.checkedKeys()); diff != "" {
		t.Fatalf("switches after clicks (-want +got):\n%s", diff)
	}
	resp := tab.submit(`button[name=action][value=save]`)
	id := btReceiptIDFrom(t, resp, e.base)

	if got := tab.text(`#saved h2`); got != en.T("saved_title") {
		t.Fatalf("saved notice title = %q", got)
	}
	wantChanges := []string{"Newsletter: switched on", "Personal recommendations: switched on", "Wellness tips: switched on"}
	if diff := cmp.Diff(wantChanges, tab.texts(`#saved li`)); diff != "" {
		t.Fatalf("saved notice lists the changes (-want +got):\n%s", diff)
	}
	if got := btEval[string](tab, `document.activeElement && document.activeElement.id`); got != "saved" {
		t.Fatalf("focus after saving is on %q, want the saved notice", got)
	}
	if diff := cmp.Diff([]string{"newsletter", "recommendations", "wellness_tips"}, tab.checkedKeys()); diff != "" {
		t.Fatalf("switches after saving (-want +got):\n%s", diff)
	}
	if got := btEval[string](tab, `document.querySelector("#p-newsletter").closest("section").querySelector(".meta").textContent`); !strings.HasPrefix(got, "On since ") {
		t.Fatalf("newsletter status after saving: %q", got)
	}

	// The receipt page.
	resp = tab.submit(`#saved a`)
	if resp.Status != 200 || !strings.HasSuffix(resp.URL, "/c/"+btSlug+"/receipts/"+id) {
		t.Fatalf("receipt link: %d %s", resp.Status, resp.URL)
	}
	if got := tab.text("h1"); got != en.T("receipt_title") {
		t.Fatalf("receipt h1 = %q", got)
	}
	wantRows := [][]string{ // in the order of the purposes' keys, then the privacy level
		{"Birthday reward", "Not chosen (off)"},
		{"Newsletter", "Allowed"},
		{"Offers from partners", "Not chosen (off)"},
		{"Personal recommendations", "Allowed"},
		{"Wellness tips", "Allowed"},
		{"How personal we may be", "Use what I told you"}, // the default, never chosen
	}
	rows := btEval[[][]string](tab, `[...document.querySelectorAll("table.receipt tbody tr")].map(r => [r.querySelector("th").textContent.trim(), r.querySelector("td").textContent.trim()])`)
	if diff := cmp.Diff(wantRows, rows); diff != "" {
		t.Fatalf("receipt rows (-want +got):\n%s", diff)
	}
	if body := tab.text("main"); !strings.Contains(body, id) {
		t.Fatalf("receipt page does not show its number %s:\n%s", id, body)
	}

	// The signed download, fetched with the browser's session cookie.
	href := tab.attr(`a[download]`, "href")
	if href != "/c/"+btSlug+"/receipts/"+id+"/download" {
		t.Fatalf("download link = %q", href)
	}
	sess := tab.cookie("fl_session")
	if sess == nil {
		t.Fatal("no fl_session cookie after signing in")
	}
	if !sess.HTTPOnly || sess.SameSite != network.CookieSameSiteLax || sess.Path != "/c/"+btSlug+"/" {
		t.Fatalf("session cookie: httpOnly=%v sameSite=%q path=%q", sess.HTTPOnly, sess.SameSite, sess.Path)
	}
	dl := e.get(href, sess)
	if dl.status != 200 || dl.header.Get("Content-Type") != "application/jwt" ||
		dl.header.Get("Content-Disposition") != `attachment; filename="consent-receipt-`+id+`.jwt"` {
		t.Fatalf("download: %d %v", dl.status, dl.header)
	}
	if anon := e.get(href, nil); anon.status == 200 || bytes.Contains(anon.body, dl.body) {
		t.Fatalf("download without a session answered %d", anon.status)
	}
	jwks := e.get("/.well-known/jwks.json", nil)
	if jwks.status != 200 {
		t.Fatalf("jwks: %d", jwks.status)
	}
	rec, err := receipts.Verify(string(dl.body), jwks.body, e.base)
	if err != nil {
		t.Fatalf("the downloaded receipt does not verify against the published JWKS: %v", err)
	}
	if rec.ConsentReceiptID != id || rec.PIIPrincipalID != "cust-ann" || rec.Fineline.Merchant != e.merchant.ID || rec.Language != "en" || rec.Jurisdiction != "EU" {
		t.Fatalf("receipt header: id=%q subject=%q merchant=%q lang=%q jurisdiction=%q", rec.ConsentReceiptID, rec.PIIPrincipalID, rec.Fineline.Merchant, rec.Language, rec.Jurisdiction)
	}
	gotStates := map[string]string{}
	for _, s := range rec.Fineline.States {
		gotStates[s.Purpose] = s.State + "/" + s.Channel
	}
	if diff := cmp.Diff(map[string]string{"newsletter": "granted/center", "recommendations": "granted/center", "wellness_tips": "granted/center"}, gotStates); diff != "" {
		t.Fatalf("receipt states (-want +got):\n%s", diff)
	}
	if !rec.Sensitive || !slices.Contains(rec.SPICat, "health") {
		t.Fatalf("receipt of a sensitive grant: sensitive=%v spiCat=%v", rec.Sensitive, rec.SPICat)
	}
	if len(rec.Services) != 1 || len(rec.Services[0].Purposes) != 3 {
		t.Fatalf("receipt services: %+v", rec.Services)
	}

	// The ledger holds exactly these three decisions, from the center.
	events := e.events(e.merchant, "cust-ann")
	got := map[string]string{}
	for _, ev := range events {
		if ev.Channel != consent.ChannelCenter || !strings.HasPrefix(ev.Actor, "session:") {
			t.Fatalf("event %d: channel %q actor %q", ev.Seq, ev.Channel, ev.Actor)
		}
		got[ev.Purpose] = string(ev.State)
	}
	if len(events) != 3 {
		t.Fatalf("%d events, want 3: %+v", len(events), events)
	}
	if diff := cmp.Diff(map[string]string{"newsletter": "granted", "recommendations": "granted", "wellness_tips": "granted"}, got); diff != "" {
		t.Fatalf("ledger (-want +got):\n%s", diff)
	}
	if d := e.check(e.merchant, "cust-ann", "wellness_tips"); !d.Allowed {
		t.Fatalf("check after granting wellness_tips: %+v", d)
	}

	// Signing out ends the session on the server, not just in the browser.
	resp = tab.submit(`form.signout button`)
	if resp.Status != 200 || btPath(resp.URL) != "/c/"+btSlug+"/" || tab.text(`main .notice p`) != en.T("signed_out") {
		t.Fatalf("sign out: %d %s", resp.Status, resp.URL)
	}
	if c := tab.cookie("fl_session"); c != nil {
		t.Fatal("the session cookie survived signing out")
	}
	if r := e.get("/c/"+btSlug+"/preferences", sess); r.status == 200 {
		t.Fatal("the session still opens the preferences page after signing out")
	}
}

// btTestTurnEverythingOff: the all-off button withdraws every grant, even
// with a switch turned on in the page, and the check API then refuses.
func btTestTurnEverythingOff(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-cat", "cat@example.com")
	for _, p := range []string{"newsletter", "partner_sharing"} {
		if _, err := e.api.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merchant.ID, SubjectID: "cust-cat", Channel: consent.ChannelAPI, Actor: "test", Requests: []consent.Request{{Purpose: p, State: consent.Granted}}}); err != nil {
			t.Fatal(err)
		}
	}
	tab := e.newTab("en", true)
	tab.signIn("cat@example.com")
	if diff := cmp.Diff([]string{"newsletter", "partner_sharing"}, tab.checkedKeys()); diff != "" {
		t.Fatalf("switches show the recorded grants (-want +got):\n%s", diff)
	}
	// A switch turned on in the page must not be granted by "everything off".
	tab.click(`#p-birthday_reward`)
	tab.submit(`button[name=action][value=all_off]`)
	if diff := cmp.Diff([]string{"Newsletter: switched off", "Offers from partners: switched off"}, tab.texts(`#saved li`)); diff != "" {
		t.Fatalf("saved notice after turning everything off (-want +got):\n%s", diff)
	}
	if on := tab.checkedKeys(); len(on) != 0 {
		t.Fatalf("switches still on after turning everything off: %v", on)
	}
	for _, c := range []struct {
		purpose string
		reason  consent.Reason
	}{{"newsletter", consent.ReasonWithdrawn}, {"partner_sharing", consent.ReasonWithdrawn}, {"birthday_reward", consent.ReasonNoRecord}, {"wellness_tips", consent.ReasonNoRecord}} {
		if d := e.check(e.merchant, "cust-cat", c.purpose); d.Allowed || d.Reason != c.reason {
			t.Errorf("check %s after turning everything off: allowed=%v reason=%q, want reason %q", c.purpose, d.Allowed, d.Reason, c.reason)
		}
	}
	events := e.events(e.merchant, "cust-cat")
	if len(events) != 4 {
		t.Fatalf("%d events, want 2 grants and 2 withdrawals: %+v", len(events), events)
	}
	for _, ev := range events[2:] {
		if ev.State != consent.Withdrawn || ev.Channel != consent.ChannelCenter {
			t.Fatalf("event %d: %s %s via %s", ev.Seq, ev.Purpose, ev.State, ev.Channel)
		}
	}
}

// btTestLanguage: the switcher changes <html lang> and the text, the choice
// sticks through a cookie, and Accept-Language alone picks the language.
func btTestLanguage(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	en, de, fr, es := e.loc("en"), e.loc("de"), e.loc("fr"), e.loc("es")
	for _, l := range []*locales.Localizer{de, fr, es} {
		if l.T("signin_title") == en.T("signin_title") {
			t.Fatalf("%s sign-in title is the English one: the test would prove nothing", l.Lang)
		}
	}
	home := "/c/" + btSlug + "/"
	tab := e.newTab("en", true)
	tab.open(home)
	tab.wantLang("en", en.T("signin_title"))
	if c := tab.cookie("fl_lang"); c != nil {
		t.Fatalf("fl_lang set without a choice: %q", c.Value)
	}

	resp := tab.submit(`nav.langs a[hreflang="de"]`)
	if resp.Status != 200 {
		t.Fatalf("switch to German: %d", resp.Status)
	}
	tab.wantLang("de", de.T("signin_title"))
	if got := tab.text(`label[for=email]`); got != de.T("email_label") {
		t.Fatalf("German email label = %q", got)
	}
	if got := tab.attr(`nav.langs`, "aria-label"); got != de.T("language_switcher") {
		t.Fatalf("switcher label = %q", got)
	}
	if got := btEval[[]string](tab, `[...document.querySelectorAll('nav.langs a[aria-current="true"]')].map(a => a.hreflang)`); !slices.Equal(got, []string{"de"}) {
		t.Fatalf("current language links: %v", got)
	}
	c := tab.cookie("fl_lang")
	if c == nil || c.Value != "de" || !c.HTTPOnly {
		t.Fatalf("fl_lang cookie after choosing German: %+v", c)
	}

	// The cookie wins over the browser's English on the next pages, a
	// form post included.
	tab.open(home)
	tab.wantLang("de", de.T("signin_title"))
	tab.do(chromedp.SendKeys(chromedp.ID("email"), "not-an-address"))
	if resp := tab.submit(`form.panel button[type=submit]`); resp.Status != 400 {
		t.Fatalf("invalid address: %d", resp.Status)
	}
	tab.wantLang("de", de.T("signin_title"))
	if got := tab.text(`#form-error`); got != de.T("email_invalid") {
		t.Fatalf("German form error = %q", got)
	}

	// The switcher on a page that answered a POST must lead to a page too.
	href := tab.attr(`nav.langs a[hreflang="fr"]`, "href")
	if resp := tab.submit(`nav.langs a[hreflang="fr"]`); resp.Status != 200 {
		t.Errorf("the language switcher on the sign-in page shown after POST /signin links to GET %s, which answers %d %s", href, resp.Status, resp.MimeType)
	}
	tab.open(home)
	tab.submit(`nav.langs a[hreflang="fr"]`)
	tab.wantLang("fr", fr.T("signin_title"))
	tab.open(home)
	tab.wantLang("fr", fr.T("signin_title"))

	// Accept-Language alone, in fresh browser contexts without the cookie.
	for _, c := range []struct{ header, want string }{
		{"es-ES,es;q=0.9,en;q=0.5", "es"},
		{"de-CH", "de"},
		{"ja, fr;q=0.8", "fr"},
		{"ja", "en"},
	} {
		tab := e.newTab(c.header, true)
		tab.open(home)
		tab.wantLang(c.want, e.loc(c.want).T("signin_title"))
		if ck := tab.cookie("fl_lang"); ck != nil {
			t.Fatalf("Accept-Language %q set fl_lang=%q", c.header, ck.Value)
		}
	}

	// Signed in, the choices speak the language too, purpose texts included.
	e.subject(e.merchant, "cust-hal", "hal@example.com")
	tab = e.newTab("de-DE,de;q=0.9", true)
	tab.signIn("hal@example.com")
	tab.wantLang("de", de.T("prefs_title"))
	var wantNames []string
	for _, p := range btSortedPurposes() {
		wantNames = append(wantNames, p.TextFor("de").Name)
	}
	if diff := cmp.Diff(wantNames, tab.texts(`section.card h2`)); diff != "" {
		t.Fatalf("German purpose names (-want +got):\n%s", diff)
	}
	if got := tab.text(`section.card.sensitive .badge`); got != de.T("sensitive_badge") {
		t.Fatalf("German sensitive badge = %q", got)
	}
}

// btSortedPurposes are the demo purposes in the order the center lists
// them: by key.
func btSortedPurposes() []consent.Purpose {
	ps := demo.Purposes()
	slices.SortFunc(ps, func(a, b consent.Purpose) int { return strings.Compare(a.Key, b.Key) })
	return ps
}

// btTestWithoutJavaScript: with scripts off, the shopper signs in, saves and
// sees the result; only forms and links are used.
func btTestWithoutJavaScript(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-dan", "dan@example.com")
	tab := e.newTab("en", false)
	tab.signIn("dan@example.com")
	tab.click(`#p-birthday_reward`)
	if _, hidden := tab.attrOK(`#unsaved`, "hidden"); !hidden {
		t.Fatal("the unsaved-changes counter appeared: center.js ran, JavaScript is not off")
	}
	tab.submit(`button[name=action][value=save]`)
	if _, ok := tab.attrOK(`#saved`, "tabindex"); ok {
		t.Fatal("center.js moved focus to the notice: JavaScript is not off")
	}
	if diff := cmp.Diff([]string{"Birthday reward: switched on"}, tab.texts(`#saved li`)); diff != "" {
		t.Fatalf("saved notice without JavaScript (-want +got):\n%s", diff)
	}
	if _, ok := tab.attrOK(`#p-birthday_reward`, "checked"); !ok {
		t.Fatal("birthday_reward is not rendered on after saving")
	}
	if _, ok := tab.attrOK(`#p-newsletter`, "checked"); ok {
		t.Fatal("newsletter is rendered on, but was never switched on")
	}
	resp := tab.submit(`#saved a`)
	if resp.Status != 200 || tab.text("h1") != e.loc("en").T("receipt_title") {
		t.Fatalf("receipt without JavaScript: %d %q", resp.Status, tab.text("h1"))
	}
	events := e.events(e.merchant, "cust-dan")
	if len(events) != 1 || events[0].Purpose != "birthday_reward" || events[0].State != consent.Granted || events[0].Channel != consent.ChannelCenter {
		t.Fatalf("ledger without JavaScript: %+v", events)
	}
}

// btTestLinksRefused: a link works once, expires after 15 minutes, only for
// its merchant, and a made-up token is refused. No refusal signs anyone in.
func btTestLinksRefused(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	en := e.loc("en")
	e.subject(e.merchant, "cust-eve", "eve@example.com")

	// First use works, even after the page was shown twice (mail scanners
	// fetch links; only the button press uses it).
	tab := e.newTab("en", true)
	link := tab.requestLink("eve@example.com")
	tab.open(link)
	tab.open(link)
	if resp := tab.submit(`form.panel button[type=submit]`); resp.Status != 200 || !strings.HasSuffix(btPath(resp.URL), "/preferences") {
		t.Fatalf("first use of a link: %d %s", resp.Status, resp.URL)
	}

	// Second use, from another browser: 410 and "already used".
	other := e.newTab("en", true)
	other.wantRefused(link, 410, en.T("err_link_used"))

	// Expired: 15 minutes pass between the mail and the press.
	late := e.newTab("en", true)
	link = late.requestLink("eve@example.com")
	late.open(link)
	e.clock.Advance(signin.LinkTTL + time.Minute)
	late.wantPressRefused(link, 410, en.T("err_link_expired"))
	// Opened once it expired, the page says so at once.
	late.wantRefused(link, 410, en.T("err_link_expired"))

	// A made-up token of the right shape, and one of the wrong shape.
	forged := e.newTab("en", true)
	fake := make([]byte, 32)
	if _, err := rand.Read(fake); err != nil {
		t.Fatal(err)
	}
	forged.wantRefused(e.base+"/c/"+btSlug+"/link?t="+base64.RawURLEncoding.EncodeToString(fake), 404, en.T("err_link_invalid"))
	forged.wantRefused(e.base+"/c/"+btSlug+"/link?t=abc", 404, en.T("err_link_invalid"))

	// A real link of another merchant, used on this merchant's center.
	shopB := e.addMerchant("other-shop", "Other Shop")
	e.subject(shopB, "cust-eve", "eve@example.com")
	n := e.mail.Count("eve@example.com")
	if resp := e.postForm("/c/other-shop/signin", url.Values{"email": {"eve@example.com"}}); resp.status != http.StatusSeeOther {
		t.Fatalf("sign-in request at the other shop: %d", resp.status)
	}
	otherLink := btWaitLink(t, e.mail, "eve@example.com", n+1)
	if !strings.Contains(otherLink, "/c/other-shop/link?") {
		t.Fatalf("other shop's link: %s", otherLink)
	}
	forged.wantRefused(strings.Replace(otherLink, "/c/other-shop/", "/c/"+btSlug+"/", 1), 404, en.T("err_link_invalid"))
}

// btTestOtherSubject: a signed-in subject sees and changes only its own
// choices and receipts.
func btTestOtherSubject(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-ann", "ann@example.com")
	e.subject(e.merchant, "cust-bob", "bob@example.com")

	ann := e.newTab("en", true)
	ann.signIn("ann@example.com")
	ann.click(`#p-newsletter`)
	annID := btReceiptIDFrom(t, ann.submit(`button[name=action][value=save]`), e.base)
	annReceipt, err := e.api.Center.Receipts.Store.Receipt(context.Background(), annID)
	if err != nil {
		t.Fatal(err)
	}
	annEvents := e.events(e.merchant, "cust-ann")

	bob := e.newTab("en", true)
	bob.signIn("bob@example.com")
	if on := bob.checkedKeys(); len(on) != 0 {
		t.Fatalf("Bob's page shows switches on: %v", on)
	}
	notFound := e.loc("en").T("err_not_found_title")
	for _, p := range []string{"receipts/" + annID, "receipts/" + annID + "/download", "preferences?receipt=" + annID} {
		resp := bob.open("/c/" + btSlug + "/" + p)
		html := bob.html()
		if resp.Status != 404 || bob.text("h1") != notFound {
			t.Errorf("Bob GET %s: %d %q, want 404 %q", p, resp.Status, bob.text("h1"), notFound)
		}
		if strings.Contains(html, annReceipt.Token) || strings.Contains(html, "cust-ann") || strings.Contains(html, "ann@example.com") {
			t.Errorf("Bob GET %s shows Ann's data", p)
		}
	}
	// Bob's session cookie on a plain client does no better.
	if r := e.get("/c/"+btSlug+"/receipts/"+annID+"/download", bob.cookie("fl_session")); r.status != 404 || bytes.Contains(r.body, []byte(annReceipt.Token)) {
		t.Fatalf("Bob downloading Ann's receipt: %d", r.status)
	}

	bob.open("/c/" + btSlug + "/preferences")
	bob.click(`#p-partner_sharing`)
	bob.submit(`button[name=action][value=save]`)
	bob.submit(`button[name=action][value=all_off]`)
	bobEvents := e.events(e.merchant, "cust-bob")
	if len(bobEvents) != 2 || bobEvents[0].State != consent.Granted || bobEvents[1].State != consent.Withdrawn {
		t.Fatalf("Bob's ledger: %+v", bobEvents)
	}
	if diff := cmp.Diff(annEvents, e.events(e.merchant, "cust-ann")); diff != "" {
		t.Fatalf("Bob's posts changed Ann's ledger (-before +after):\n%s", diff)
	}
	if d := e.check(e.merchant, "cust-ann", "newsletter"); !d.Allowed {
		t.Fatalf("Ann's newsletter after Bob turned everything off: %+v", d)
	}
}

// btTestCrossOriginPost: a form on another origin that posts "turn
// everything off" with the shopper's cookie is refused with 403.
func btTestCrossOriginPost(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-fay", "fay@example.com")
	tab := e.newTab("en", true)
	tab.signIn("fay@example.com")
	tab.click(`#p-newsletter`)
	tab.submit(`button[name=action][value=save]`)
	before := e.events(e.merchant, "cust-fay")

	target := e.base + "/c/" + btSlug + "/preferences"
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><title>Win a prize</title>
<form method="post" action="%s"><input type="hidden" name="action" value="all_off">
<button id="go" type="submit">Claim</button></form></html>`, target)
	}))
	t.Cleanup(evil.Close)
	if evil.URL == e.base || !strings.HasPrefix(evil.URL, "http://127.0.0.1:") {
		t.Fatalf("the other origin %s must differ from %s", evil.URL, e.base)
	}
	tab.open(evil.URL)
	resp := tab.submit(`#go`)
	// 403, not 401: the SameSite=Lax cookie went along (same site, other
	// port), so it is the cross-origin guard that refused.
	if resp.Status != 403 {
		t.Fatalf("cross-origin form post answered %d at %s, want 403", resp.Status, resp.URL)
	}
	if got := tab.text(".alert p"); got != e.loc("en").T("err_cross_origin") {
		t.Fatalf("cross-origin refusal says %q", got)
	}
	if diff := cmp.Diff(before, e.events(e.merchant, "cust-fay")); diff != "" {
		t.Fatalf("the cross-origin post changed the ledger (-before +after):\n%s", diff)
	}

	// A plain client with the shopper's cookie and a foreign Origin.
	sess := tab.cookie("fl_session")
	if sess == nil {
		t.Fatal("no session cookie")
	}
	form := url.Values{"action": {"all_off"}}
	if r := e.postForm("/c/"+btSlug+"/preferences", form, sess, "Origin", "http://evil.example"); r.status != 403 {
		t.Fatalf("POST with Origin http://evil.example: %d, want 403", r.status)
	}
	if r := e.postForm("/c/"+btSlug+"/preferences", form, sess, "Sec-Fetch-Site", "cross-site"); r.status != 403 {
		t.Fatalf("POST with Sec-Fetch-Site cross-site: %d, want 403", r.status)
	}
	if diff := cmp.Diff(before, e.events(e.merchant, "cust-fay")); diff != "" {
		t.Fatalf("the refused posts changed the ledger (-before +after):\n%s", diff)
	}
	if d := e.check(e.merchant, "cust-fay", "newsletter"); !d.Allowed {
		t.Fatalf("newsletter after refused posts: %+v", d)
	}
	// Control: the same client and cookie from the same origin are let in
	// (a save that changes nothing), so the refusals above were the guard's.
	if r := e.postForm("/c/"+btSlug+"/preferences", url.Values{"action": {"save"}, "was.newsletter": {"on"}, "on": {"newsletter"}}, sess, "Origin", e.base); r.status != http.StatusSeeOther {
		t.Fatalf("same-origin POST: %d, want 303", r.status)
	}
}

// btTestAccessibility runs axe-core on the sign-in, link, preferences and
// receipt pages and fails on any violation.
func btTestAccessibility(t *testing.T, browser context.Context) {
	axe := btAxeSource(t)
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-gus", "gus@example.com")
	tab := e.newTab("en", true)
	home := "/c/" + btSlug + "/"

	tab.open(home)
	tab.axe(axe, "sign-in page")
	link := tab.requestLink("gus@example.com")
	tab.open(link)
	tab.axe(axe, "link page")
	tab.submit(`form.panel button[type=submit]`)
	tab.axe(axe, "preferences page")
	tab.click(`#p-newsletter`)
	tab.click(`#p-wellness_tips`)
	tab.axe(axe, "preferences page with unsaved changes")
	tab.submit(`button[name=action][value=save]`)
	tab.axe(axe, "preferences page after saving")
	tab.submit(`#saved a`)
	tab.axe(axe, "receipt page")
}

// btTestReviewChangedTerms: a material change with no grace period stops a
// grant under the older notice from counting; the signed-in shopper sees
// the banner, reads the summary and the paragraph diff, accepts one
// purpose again and declines the other, and the ledger, the decisions and
// a signed receipt follow.
func btTestReviewChangedTerms(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	en := e.loc("en")
	e.subject(e.merchant, "cust-ivy", "ivy@example.com")
	terms := e.changedTerms("cust-ivy", "newsletter", "partner_sharing")
	ctx := context.Background()

	// Both grants stopped counting, for a single check and a batch alike.
	for _, p := range []string{"newsletter", "partner_sharing"} {
		d := e.check(e.merchant, "cust-ivy", p)
		if d.Allowed || d.Reason != consent.ReasonReconsentRequired || d.NoticeVersion != terms.accepted.Number || !d.ReconsentBy.Equal(terms.changed.Deadline) {
			t.Errorf("check %s after the material version %d: allowed=%v reason=%q version=%d by=%v, want reconsent_required under version %d by %v",
				p, terms.changed.Number, d.Allowed, d.Reason, d.NoticeVersion, d.ReconsentBy, terms.accepted.Number, terms.changed.Deadline)
		}
		ds, err := e.api.Ledger.CheckMany(ctx, e.merchant.ID, p, []string{"cust-ivy"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].Allowed || ds[0].Reason != consent.ReasonReconsentRequired {
			t.Errorf("batch check %s after the material version: %+v, want reconsent_required", p, ds)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	if r := e.get("/c/"+btSlug+"/review", nil); r.status == 200 {
		t.Fatal("the review page opens without a session")
	}

	tab := e.newTab("en", true)
	tab.signIn("ivy@example.com")
	review := "/c/" + btSlug + "/review"
	tab.wantBanner(en, review)
	// The banner is on every page while something awaits, public ones too.
	tab.open("/c/" + btSlug + "/notices")
	tab.wantBanner(en, review)
	tab.open("/c/" + btSlug + "/preferences")
	resp := tab.submit(`div.banner a`)
	if resp.Status != 200 || btPath(resp.URL) != review {
		t.Fatalf("banner link: %d %s, want 200 %s", resp.Status, resp.URL, review)
	}
	if got := tab.text("h1"); got != en.T("review_title") {
		t.Fatalf("review h1 = %q, want %q", got, en.T("review_title"))
	}

	// The summary comes first, then the diff, then the answers.
	n := strconv.Itoa(terms.changed.Number)
	if got := btEval[[]string](tab, `[...document.querySelectorAll("main h2, main h3")].map(h => h.id).filter(id => id)`); !slices.Equal(got, []string{"version-" + n, "summary-h-" + n, "diff-h-" + n}) {
		t.Fatalf("review sections in order: %v, want the summary, then the diff", got)
	}
	if !btEval[bool](tab, `(() => {
		const s = document.querySelector("[id^=summary-h]"), d = document.querySelector(".diff"), f = document.querySelector("main form[action$='/review'] fieldset");
		return !!(s && d && f) && !!(s.compareDocumentPosition(d) & Node.DOCUMENT_POSITION_FOLLOWING) && !!(d.compareDocumentPosition(f) & Node.DOCUMENT_POSITION_FOLLOWING);
	})()`) {
		t.Fatal("the summary does not come before the diff, or the diff before the form")
	}
	if got := tab.text(`#summary-h-` + n + ` + p`); got != terms.changed.Texts["en"].Summary {
		t.Fatalf("summary = %q, want %q", got, terms.changed.Texts["en"].Summary)
	}
	if got, want := tab.text(`#summary-h-`+n+` ~ p.meta`), en.Tf("review_passed", "When", formatTime(terms.changed.Deadline)); got != want {
		t.Errorf("deadline note = %q, want %q", got, want)
	}
	if got, want := tab.text(`#diff-h-`+n), en.Tf("review_diff", "Old", terms.accepted.Number, "New", terms.changed.Number); got != want {
		t.Errorf("diff heading = %q, want %q", got, want)
	}
	if diff := cmp.Diff(terms.wantDiff(en), tab.diffRows()); diff != "" {
		t.Fatalf("paragraph diff (-want +got):\n%s", diff)
	}
	// Marked for the eye too, not only by a class.
	type paraStyle struct {
		Background string `json:"bg"`
		Border     string `json:"border"`
		Decoration string `json:"decoration"`
	}
	// The strike-through sits on the removed text, not on its "Removed" tag.
	styles := btEval[map[string]paraStyle](tab, `Object.fromEntries(["same", "added", "removed"].map(c => {
		const p = document.querySelector(".diff .para." + c);
		const s = getComputedStyle(p);
		const text = p.querySelector(":scope > :not(.tag)");
		return [c, {bg: s.backgroundColor, border: s.borderLeftColor, decoration: getComputedStyle(text).textDecorationLine}];
	}))`)
	// A line-through on the block would strike its tag too (decorations
	// propagate to children whatever the children's own style says).
	if block := btEval[string](tab, `getComputedStyle(document.querySelector(".diff .para.removed")).textDecorationLine`); strings.Contains(block, "line-through") {
		t.Errorf("the whole removed block is struck through, its \"Removed\" tag with it")
	}
	if s := styles["added"]; s.Background == styles["same"].Background || s.Border == styles["same"].Border {
		t.Errorf("the added paragraph looks like an unchanged one: %+v vs %+v", s, styles["same"])
	}
	if s := styles["removed"]; s.Background == styles["same"].Background || s.Background == styles["added"].Background || !strings.Contains(s.Decoration, "line-through") {
		t.Errorf("the removed paragraph is not marked apart: %+v (same %+v, added %+v)", s, styles["same"], styles["added"])
	}
	full := fmt.Sprintf("/c/%s/notices/%d", btSlug, terms.changed.Number)
	if got := btEval[[]string](tab, `[...document.querySelectorAll("main a")].filter(a => a.textContent.trim() === `+btJSString(en.T("review_full_text"))+`).map(a => a.getAttribute("href"))`); !slices.Equal(got, []string{full}) {
		t.Errorf("full-text links: %v, want [%s]", got, full)
	}
	if r := e.get(full, nil); r.status != 200 {
		t.Errorf("GET %s: %d", full, r.status)
	}

	// Both affected purposes, and only they, each with two equal choices.
	if diff := cmp.Diff([]string{"Newsletter", "Offers from partners"}, tab.texts(`main form fieldset legend`)); diff != "" {
		t.Fatalf("purposes to review (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"answer-newsletter", "answer-partner_sharing"}, btEval[[]string](tab, `[...new Set([...document.querySelectorAll("main form input[type=radio]")].map(r => r.name))]`)); diff != "" {
		t.Fatalf("radio groups (-want +got):\n%s", diff)
	}
	for _, k := range []string{"newsletter", "partner_sharing"} {
		if got := tab.attr(`main form input[type=hidden][name="version.`+k+`"]`, "value"); got != fmt.Sprint(terms.changed.Number) {
			t.Fatalf("form version of %s = %q, want %d", k, got, terms.changed.Number)
		}
	}
	for _, k := range []string{"newsletter", "partner_sharing"} {
		tab.wantEqualChoices(en, k)
	}

	before := len(e.events(e.merchant, "cust-ivy"))
	tab.click(`#accept-newsletter`)
	tab.click(`label[for="decline-partner_sharing"]`)
	resp = tab.submit(`main form[action$="/review"] button[type=submit]`)
	id := btReceiptIDFrom(t, resp, e.base)
	want := []string{en.Tf("change_on", "Name", "Newsletter"), en.Tf("change_off", "Name", "Offers from partners")}
	if diff := cmp.Diff(want, tab.texts(`#saved li`)); diff != "" {
		t.Errorf("saved notice after the review (-want +got):\n%s", diff)
	}
	if btEval[bool](tab, `document.querySelector(".banner") !== null`) {
		t.Error("the banner is still shown after answering every change")
	}
	if diff := cmp.Diff([]string{"newsletter"}, tab.checkedKeys()); diff != "" {
		t.Errorf("switches after the review (-want +got):\n%s", diff)
	}
	tab.open(review)
	if got := tab.text(`main .notice p`); got != en.T("review_nothing") {
		t.Errorf("review page after answering: %q, want %q", got, en.T("review_nothing"))
	}

	// The decisions and the ledger.
	if d := e.check(e.merchant, "cust-ivy", "newsletter"); !d.Allowed || d.Reason != consent.ReasonGranted || d.NoticeVersion != terms.changed.Number || !d.ReconsentBy.IsZero() {
		t.Errorf("newsletter after accepting again: %+v, want allowed, granted under version %d", d, terms.changed.Number)
	}
	if d := e.check(e.merchant, "cust-ivy", "partner_sharing"); d.Allowed || d.Reason != consent.ReasonWithdrawn {
		t.Errorf("partner_sharing after declining: %+v, want withdrawn", d)
	}
	for p, allowed := range map[string]bool{"newsletter": true, "partner_sharing": false} {
		ds, err := e.api.Ledger.CheckMany(ctx, e.merchant.ID, p, []string{"cust-ivy"})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 1 || ds[0].Allowed != allowed {
			t.Errorf("batch check %s after the review: %+v, want allowed=%v", p, ds, allowed)
		}
	}
	events := e.events(e.merchant, "cust-ivy")
	if len(events) != before+2 {
		t.Fatalf("%d events after the review, want %d: %+v", len(events), before+2, events)
	}
	type row struct {
		Purpose string
		State   consent.State
		Version int
		Channel consent.Channel
	}
	var got []row
	for _, ev := range events[before:] {
		if !strings.HasPrefix(ev.Actor, "session:") {
			t.Errorf("event %d actor %q, want the session", ev.Seq, ev.Actor)
		}
		got = append(got, row{ev.Purpose, ev.State, ev.NoticeVersion, ev.Channel})
	}
	wantRows := []row{
		{"newsletter", consent.Granted, terms.changed.Number, consent.ChannelCenter},
		{"partner_sharing", consent.Withdrawn, terms.changed.Number, consent.ChannelCenter},
	}
	if diff := cmp.Diff(wantRows, got); diff != "" {
		t.Errorf("events of the review (-want +got):\n%s", diff)
	}

	// The receipt: kept, signed, and verifiable against the JWKS.
	issued, err := e.api.Center.Receipts.Store.Receipt(ctx, id)
	if err != nil {
		t.Fatalf("receipt %s: %v", id, err)
	}
	if issued.SubjectID != "cust-ivy" || issued.MerchantID != e.merchant.ID {
		t.Fatalf("receipt %s belongs to %s/%s", id, issued.MerchantID, issued.SubjectID)
	}
	dl := e.get("/c/"+btSlug+"/receipts/"+id+"/download", tab.cookie("fl_session"))
	if dl.status != 200 {
		t.Fatalf("receipt download: %d", dl.status)
	}
	jwks := e.get("/.well-known/jwks.json", nil)
	rec, err := receipts.Verify(string(dl.body), jwks.body, e.base)
	if err != nil {
		t.Fatalf("the review's receipt does not verify against the JWKS: %v", err)
	}
	states := map[string]string{}
	for _, s := range rec.Fineline.States {
		states[s.Purpose] = fmt.Sprintf("%s/%s/v%d", s.State, s.Channel, s.NoticeVersion)
	}
	v := terms.changed.Number
	if diff := cmp.Diff(map[string]string{"newsletter": fmt.Sprintf("granted/center/v%d", v), "partner_sharing": fmt.Sprintf("withdrawn/center/v%d", v)}, states); diff != "" {
		t.Errorf("receipt states (-want +got):\n%s", diff)
	}
	if rec.ConsentReceiptID != id || rec.PIIPrincipalID != "cust-ivy" || len(rec.Services) != 1 || len(rec.Services[0].Purposes) != 1 {
		t.Errorf("receipt: id=%q subject=%q services=%+v, want one service with the one purpose accepted", rec.ConsentReceiptID, rec.PIIPrincipalID, rec.Services)
	}
}

// btTestReviewNoAnswer: answers missing from the review form (the browser's
// own check bypassed) bring back the page with a localized error and
// record nothing, whether none or only some purposes were answered.
func btTestReviewNoAnswer(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	en, de := e.loc("en"), e.loc("de")
	if de.T("review_incomplete") == en.T("review_incomplete") {
		t.Fatal("the German review error is the English one: the test would prove nothing")
	}
	e.subject(e.merchant, "cust-kim", "kim@example.com")
	terms := e.changedTerms("cust-kim", "newsletter", "partner_sharing")
	before := e.events(e.merchant, "cust-kim")

	tab := e.newTab("de-DE,de;q=0.9", true)
	tab.signIn("kim@example.com")
	review := "/c/" + btSlug + "/review"
	tab.wantBanner(de, review)
	tab.submit(`div.banner a`)
	tab.wantLang("de", de.T("review_title"))
	if got := tab.text(`#summary-h-` + strconv.Itoa(terms.changed.Number) + ` + p`); got != terms.changed.Texts["de"].Summary {
		t.Fatalf("German summary = %q, want %q", got, terms.changed.Texts["de"].Summary)
	}
	// The browser refuses an empty form by itself...
	if btEval[bool](tab, `document.querySelector("main form[action$='/review']").checkValidity()`) {
		t.Fatal("the review form is valid with no answer: the radios are not required")
	}
	// ... so take that check away, as an older browser or a script would.
	const unrequire = `document.querySelectorAll("main form [required]").forEach(i => i.removeAttribute("required")); document.querySelector("main form[action$='/review']").checkValidity()`

	for _, c := range []struct {
		name  string
		click []string
	}{
		{"no answer", nil},
		{"one of two answered", []string{`#accept-newsletter`}},
	} {
		tab.open(review)
		for _, sel := range c.click {
			tab.click(sel)
		}
		if !btEval[bool](tab, unrequire) {
			t.Fatalf("%s: the form is still invalid after removing required", c.name)
		}
		resp := tab.submit(`main form[action$="/review"] button[type=submit]`)
		if resp.Status != 400 || btPath(resp.URL) != review {
			t.Errorf("%s: %d %s, want 400 at %s", c.name, resp.Status, resp.URL, review)
		}
		tab.wantLang("de", de.T("review_title"))
		if got := tab.text(`main .alert[role=alert] p`); got != de.T("review_incomplete") {
			t.Errorf("%s: error = %q, want %q", c.name, got, de.T("review_incomplete"))
		}
		if n := btEval[int](tab, `document.querySelectorAll("main form fieldset").length`); n != 2 {
			t.Errorf("%s: the page with the error asks about %d purposes, want 2", c.name, n)
		}
		if diff := cmp.Diff(before, e.events(e.merchant, "cust-kim")); diff != "" {
			t.Fatalf("%s: the incomplete form changed the ledger (-before +after):\n%s", c.name, diff)
		}
		for _, p := range []string{"newsletter", "partner_sharing"} {
			if d := e.check(e.merchant, "cust-kim", p); d.Reason != consent.ReasonReconsentRequired {
				t.Errorf("%s: check %s = %q, want reconsent_required", c.name, p, d.Reason)
			}
		}
	}
	tab.wantBanner(de, review)
}

// btTestPastVersions: anyone can read the published versions, newest first,
// each with its full Markdown text as HTML, in their language; drafts stay
// hidden, and raw HTML in a merchant's text never becomes markup.
func btTestPastVersions(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	en, de := e.loc("en"), e.loc("de")
	if de.T("notices_title") != "Versionen der Datenschutzerklärung" {
		t.Fatalf("German notices title = %q", de.T("notices_title"))
	}
	v2 := e.publish(notices.Content{Texts: map[string]notices.Summary{
		"en": {Summary: "We wrote out our full privacy notice; nothing changes in what needs your consent.", Text: "## What we collect\n\n" +
			"Your name, your address and what you buy, to deliver your orders.\n\n" +
			"<script>window.btPwned = true; document.title = \"pwned\";</script>\n\n" +
			"We keep it for *six years*, as tax law asks. <img src=x onerror=\"window.btPwned = true\"> [Details](javascript:window.btPwned=true)\n\n" +
			"## Your choices\n\nYou can switch any use off at any time."},
		"de": {Summary: "Wir haben unsere vollständige Datenschutzerklärung ausgeschrieben; wofür du einwilligen musst, ändert sich nicht.", Text: "## Was wir erheben\n\n" +
			"Deinen Namen, deine Adresse und was du kaufst, um deine Bestellungen zu liefern.\n\n" +
			"## Deine Wahl\n\nDu kannst jede Nutzung jederzeit ausschalten."},
	}}, 0)
	v3 := e.publish(notices.Content{Material: true, Purposes: []string{"newsletter"}, Texts: map[string]notices.Summary{
		"en": {Summary: "The newsletter now also tells you about events in our shops.", Text: "## Newsletter\n\nNews, sales and events in our shops."},
		"de": {Summary: "Der Newsletter informiert dich jetzt auch über Veranstaltungen in unseren Läden.", Text: "## Newsletter\n\nNeuheiten, Angebote und Veranstaltungen in unseren Läden."},
	}}, 30*24*time.Hour)
	draft := e.draft(notices.Content{Texts: map[string]notices.Summary{
		"en": {Summary: "Unpublished draft: we might start selling your data.", Text: "## Draft\n\nNot for anyone's eyes yet."},
	}})
	if v2.Number != 2 || v3.Number != 3 || draft.Number != 4 || draft.Status != notices.Draft {
		t.Fatalf("versions %d, %d and draft %d (%s), want 2, 3 and draft 4", v2.Number, v3.Number, draft.Number, draft.Status)
	}
	first, err := e.api.Notices.Get(context.Background(), e.merchant.ID, 1)
	if err != nil {
		t.Fatal(err)
	}
	list := "/c/" + btSlug + "/notices"

	// The list, signed out, in English.
	tab := e.newTab("en", true)
	if resp := tab.open(list); resp.Status != 200 {
		t.Fatalf("GET %s: %d", list, resp.Status)
	}
	tab.wantLang("en", en.T("notices_title"))
	if btEval[bool](tab, `document.querySelector(".banner") !== null`) {
		t.Error("a banner is shown to a shopper who is not signed in")
	}
	type item struct{ Title, Href, Meta, Summary string }
	items := func() []item {
		return btEval[[]item](tab, `[...document.querySelectorAll("ul.versions > li")].map(li => ({
			Title: li.querySelector("h2").textContent.trim(), Href: li.querySelector("h2 a").getAttribute("href"),
			Meta: li.querySelector(".meta").textContent.trim(), Summary: li.querySelector(".meta + p").textContent.trim()}))`)
	}
	wantItems := func(l *locales.Localizer) []item {
		var out []item
		for _, v := range []notices.Version{v3, v2, first} {
			meta := l.Tf("notice_effective", "When", formatTime(v.EffectiveAt))
			if v.Material {
				meta += " · " + l.T("notice_material")
			}
			out = append(out, item{l.Tf("notice_title", "N", v.Number), fmt.Sprintf("%s/%d", list, v.Number), meta, textFor(v, l.Lang).Summary})
		}
		return out
	}
	if diff := cmp.Diff(wantItems(en), items()); diff != "" {
		t.Fatalf("published versions, newest first (-want +got):\n%s", diff)
	}
	if strings.Contains(tab.html(), draft.Texts["en"].Summary) {
		t.Fatal("the notices list shows the draft's summary")
	}

	// One version: the full text as HTML, the raw HTML in it dropped.
	resp := tab.submit(`ul.versions a[href$="/notices/2"]`)
	if resp.Status != 200 || btPath(resp.URL) != list+"/2" {
		t.Fatalf("version 2: %d %s", resp.Status, resp.URL)
	}
	tab.wantLang("en", en.Tf("notice_title", "N", 2))
	if got := tab.text(`#sum-h + p`); got != v2.Texts["en"].Summary {
		t.Errorf("version 2 summary = %q", got)
	}
	if diff := cmp.Diff([]string{"What we collect", "Your choices"}, tab.texts(`section.fulltext h2`)); diff != "" {
		t.Errorf("full-text headings (-want +got):\n%s", diff)
	}
	wantParas := []string{"Your name, your address and what you buy, to deliver your orders.", "We keep it for six years, as tax law asks. Details", "You can switch any use off at any time."}
	if diff := cmp.Diff(wantParas, tab.texts(`section.fulltext p`)); diff != "" {
		t.Errorf("full-text paragraphs (-want +got):\n%s", diff)
	}
	if got := tab.text(`section.fulltext p em`); got != "six years" {
		t.Errorf("emphasis rendered as %q", got)
	}
	if got := tab.attr(`section.fulltext`, "aria-label"); got != en.T("review_full_text") {
		t.Errorf("full text region label = %q", got)
	}
	type injected struct {
		Scripts []string `json:"scripts"`
		Inside  int      `json:"inside"`
		Pwned   bool     `json:"pwned"`
		Title   string   `json:"title"`
	}
	got := btEval[injected](tab, `({scripts: [...document.scripts].map(s => s.getAttribute("src") || "inline"),
		inside: document.querySelectorAll("section.fulltext script, section.fulltext img, section.fulltext [onerror], section.fulltext a[href^='javascript:' i]").length,
		pwned: window.btPwned === true, title: document.title})`)
	if !slices.Equal(got.Scripts, []string{"/static/center.js"}) || got.Inside != 0 || got.Pwned || got.Title == "pwned" {
		t.Errorf("raw HTML in the notice text became markup: %+v", got)
	}
	if r := e.get(list+"/2", nil); r.status != 200 || bytes.Contains(r.body, []byte("<script>window")) || bytes.Contains(r.body, []byte("onerror")) || bytes.Contains(r.body, []byte("javascript:")) {
		t.Errorf("GET %s: %d, raw HTML in the page:\n%s", list+"/2", r.status, r.body)
	}

	// A draft, and versions that do not exist, are not found.
	for _, n := range []string{"4", "5", "0", "x"} {
		r := e.get(list+"/"+n, nil)
		if r.status != 404 || bytes.Contains(r.body, []byte(draft.Texts["en"].Summary)) || bytes.Contains(r.body, []byte("Not for anyone")) {
			t.Errorf("GET %s/%s: %d, want 404 without the draft", list, n, r.status)
		}
	}
	if resp := tab.open(list + "/4"); resp.Status != 404 || tab.text("h1") != en.T("err_not_found_title") {
		t.Errorf("draft version page in the browser: %d %q", resp.Status, tab.text("h1"))
	}

	// In German, chosen by ?lang=de.
	tab.open(list + "?lang=de")
	tab.wantLang("de", "Versionen der Datenschutzerklärung")
	if got, want := tab.text(`main p.lead`), de.Tf("notices_lead", "Merchant", "Corner Shop"); got != want {
		t.Errorf("German lead = %q, want %q", got, want)
	}
	if diff := cmp.Diff(wantItems(de), items()); diff != "" {
		t.Errorf("German list (-want +got):\n%s", diff)
	}
	tab.submit(`ul.versions a[href$="/notices/2"]`)
	tab.wantLang("de", de.Tf("notice_title", "N", 2))
	if diff := cmp.Diff([]string{"Was wir erheben", "Deine Wahl"}, tab.texts(`section.fulltext h2`)); diff != "" {
		t.Errorf("German full-text headings (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"Deinen Namen, deine Adresse und was du kaufst, um deine Bestellungen zu liefern.", "Du kannst jede Nutzung jederzeit ausschalten."}, tab.texts(`section.fulltext p`)); diff != "" {
		t.Errorf("German full-text paragraphs (-want +got):\n%s", diff)
	}
	if got := tab.attr(`section.fulltext`, "aria-label"); got != de.T("review_full_text") {
		t.Errorf("German full text region label = %q", got)
	}
}

// btTestReviewAccessibility runs axe-core on the pages of a change of
// terms: preferences with the banner, the review page (also with its
// error), the notices list and one notice; any violation fails.
func btTestReviewAccessibility(t *testing.T, browser context.Context) {
	axe := btAxeSource(t)
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-lou", "lou@example.com")
	terms := e.changedTerms("cust-lou", "newsletter", "partner_sharing")
	tab := e.newTab("en", true)
	tab.signIn("lou@example.com")
	tab.wantBanner(e.loc("en"), "/c/"+btSlug+"/review")
	tab.axe(axe, "preferences page with the changed-terms banner")
	tab.submit(`div.banner a`)
	tab.wantBanner(e.loc("en"), "/c/"+btSlug+"/review")
	tab.axe(axe, "review page")
	if !btEval[bool](tab, `document.querySelectorAll("main form [required]").forEach(i => i.removeAttribute("required")); document.querySelector("main form[action$='/review']").checkValidity()`) {
		t.Fatal("the review form is still invalid after removing required")
	}
	if resp := tab.submit(`main form[action$="/review"] button[type=submit]`); resp.Status != 400 {
		t.Fatalf("incomplete review: %d, want 400", resp.Status)
	}
	tab.axe(axe, "review page with its error")
	tab.open("/c/" + btSlug + "/notices")
	tab.axe(axe, "notices list")
	tab.open(fmt.Sprintf("/c/%s/notices/%d", btSlug, terms.changed.Number))
	tab.axe(axe, "notice page")
	tab.open(fmt.Sprintf("/c/%s/notices/%d", btSlug, terms.accepted.Number))
	tab.axe(axe, "notice page with a longer text")
}

// btTerms is a change of terms awaiting a subject's review.
type btTerms struct {
	// accepted is the version the subject granted under; changed is the
	// material version that replaced it.
	accepted, changed notices.Version
	// kept, removed, added and last are the paragraphs of the English
	// texts: accepted is kept+removed+last, changed is kept+added+last.
	kept           []string
	removed, added string
	last           string
}

// changedTerms publishes a non-material version with a full text, has the
// subject grant purposes under it (through the API), then publishes a
// material version affecting them with one paragraph replaced, in effect
// now with no grace period.
func (e *btEnv) changedTerms(subject string, purposes ...string) btTerms {
	e.t.Helper()
	ctx := context.Background()
	tm := btTerms{
		kept: []string{"## Who we are", "Corner Shop sells groceries online and delivers them to your door.",
			"## What we do with your data", "We email you the newsletter about twice a month, and only if you allow it."},
		removed: "We never share your email address with anyone.",
		added:   "We share your email address with our delivery partners, so they can send you their own offers.",
		last:    "You can switch any use off at any time, in this preference center.",
	}
	deKept := []string{"## Wer wir sind", "Corner Shop verkauft Lebensmittel online und liefert sie bis an deine Tür.",
		"## Was wir mit deinen Daten tun", "Wir schicken dir den Newsletter etwa zweimal im Monat, und nur, wenn du es erlaubst."}
	deLast := "Du kannst jede Nutzung jederzeit in diesem Präferenzcenter ausschalten."
	join := func(kept []string, more ...string) string {
		return strings.Join(append(slices.Clone(kept), more...), "\n\n")
	}
	tm.accepted = e.publish(notices.Content{Texts: map[string]notices.Summary{
		"en": {Summary: "We wrote out our full privacy notice; nothing changes in what needs your consent.", Text: join(tm.kept, tm.removed, tm.last)},
		"de": {Summary: "Wir haben unsere vollständige Datenschutzerklärung ausgeschrieben; nichts ändert sich.", Text: join(deKept, "Wir geben deine E-Mail-Adresse an niemanden weiter.", deLast)},
	}}, 0)
	for _, p := range purposes {
		res, err := e.api.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merchant.ID, SubjectID: subject, Channel: consent.ChannelAPI, Actor: "test", Requests: []consent.Request{{Purpose: p, State: consent.Granted}}})
		if err != nil {
			e.t.Fatal(err)
		}
		if d := res.Decisions[0]; !d.Allowed || d.Reason != consent.ReasonGranted || d.NoticeVersion != tm.accepted.Number {
			e.t.Fatalf("grant of %s under version %d: %+v", p, tm.accepted.Number, d)
		}
	}
	tm.changed = e.publish(notices.Content{Material: true, Purposes: purposes, Texts: map[string]notices.Summary{
		"en": {Summary: "We now share your email address with delivery partners for their own offers, if you allow it.", Text: join(tm.kept, tm.added, tm.last)},
		"de": {Summary: "Wir geben deine E-Mail-Adresse jetzt an Lieferpartner für eigene Angebote weiter, wenn du es erlaubst.",
			Text: join(deKept, "Wir geben deine E-Mail-Adresse an unsere Lieferpartner weiter, damit sie dir eigene Angebote schicken.", deLast)},
	}}, 0)
	return tm
}

// wantDiff is the English review diff of the change: class, tag, text.
func (tm btTerms) wantDiff(l *locales.Localizer) [][]string {
	var out [][]string
	plain := func(p string) string { return strings.TrimPrefix(p, "## ") }
	for _, p := range tm.kept {
		out = append(out, []string{"para same", "", plain(p)})
	}
	return append(out,
		[]string{"para removed", l.T("diff_removed"), tm.removed},
		[]string{"para added", l.T("diff_added"), tm.added},
		[]string{"para same", "", tm.last})
}

// draft creates a notice version and leaves it a draft.
func (e *btEnv) draft(c notices.Content) notices.Version {
	e.t.Helper()
	known := func(k string) bool {
		return slices.ContainsFunc(demo.Purposes(), func(p consent.Purpose) bool { return p.Key == k })
	}
	v, err := e.api.Notices.Create(context.Background(), e.merchant.ID, c, known)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// publish creates a notice version and publishes it, in effect now, with
// grace for consent under older versions.
func (e *btEnv) publish(c notices.Content, grace time.Duration) notices.Version {
	e.t.Helper()
	v, err := e.api.Notices.Publish(context.Background(), e.merchant.ID, e.draft(c).Number, time.Time{}, grace)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// wantBanner checks the changed-terms banner: its text and its link.
func (b *btTab) wantBanner(l *locales.Localizer, review string) {
	b.t.Helper()
	if n := btEval[int](b, `document.querySelectorAll("div.banner").length`); n != 1 {
		b.t.Fatalf("%d changed-terms banners on %s, want 1", n, b.location())
	}
	if got := b.text(`div.banner p`); got != l.T("banner_text") {
		b.t.Errorf("banner text = %q, want %q", got, l.T("banner_text"))
	}
	if got, text := b.attr(`div.banner a`, "href"), b.text(`div.banner a`); got != review || text != l.T("banner_link") {
		b.t.Fatalf("banner link %q %q, want %q %q", got, text, review, l.T("banner_link"))
	}
}

// diffRows lists the review diff's paragraphs: class, tag and text.
func (b *btTab) diffRows() [][]string {
	b.t.Helper()
	return btEval[[][]string](b, `[...document.querySelectorAll(".diff .para")].map(p => {
		const c = p.cloneNode(true), tag = c.querySelector(".tag");
		if (tag) tag.remove();
		return [p.className, tag ? tag.textContent.trim() : "", c.textContent.replace(/\s+/g, " ").trim()];
	})`)
}

// wantEqualChoices checks a purpose's two answers: radios of one group,
// labelled, neither chosen, and neither given more weight than the other.
func (b *btTab) wantEqualChoices(l *locales.Localizer, key string) {
	b.t.Helper()
	type side struct {
		Type, Name, Value, Label, Input, LabelStyle string
		Checked                                     bool
	}
	got := btEval[[]*side](b, `["accept", "decline"].map(a => {
		const i = document.getElementById(a + "-" + `+btJSString(key)+`);
		if (!i) return null;
		const lab = document.querySelector("label[for='" + i.id + "']");
		const st = (e, box) => { const s = getComputedStyle(e), r = e.getBoundingClientRect();
			return [s.fontSize, s.fontWeight, s.color, s.backgroundColor, s.borderWidth, s.opacity].concat(box ? [Math.round(r.width), Math.round(r.height)] : []).join(" "); };
		return {Type: i.type, Name: i.name, Value: i.value, Checked: i.checked, Label: lab ? lab.textContent.trim() : "",
			Input: st(i, true), LabelStyle: lab ? st(lab, false) : ""};
	})`)
	if len(got) != 2 || got[0] == nil || got[1] == nil {
		b.t.Fatalf("purpose %s: no #accept-%[1]s and #decline-%[1]s", key)
	}
	a, d := got[0], got[1]
	want := [2]side{
		{Type: "radio", Name: "answer-" + key, Value: "accept", Label: l.T("review_accept")},
		{Type: "radio", Name: "answer-" + key, Value: "decline", Label: l.T("review_decline")},
	}
	for i, s := range []*side{a, d} {
		if s.Type != want[i].Type || s.Name != want[i].Name || s.Value != want[i].Value || s.Label != want[i].Label || s.Checked {
			b.t.Errorf("purpose %s choice %d: %+v, want %+v, not chosen", key, i, *s, want[i])
		}
	}
	if a.Input != d.Input || a.LabelStyle != d.LabelStyle {
		b.t.Errorf("purpose %s: the answers differ in weight: accept %q/%q, decline %q/%q", key, a.Input, a.LabelStyle, d.Input, d.LabelStyle)
	}
}

// --- the browser ---

// btStartBrowser starts one headless Chromium for all subtests and stops it
// when the test ends.
func btStartBrowser(t *testing.T) context.Context {
	t.Helper()
	path := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			path = p
			break
		}
	}
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium found on PATH; CI must install it (apt-get install -y chromium)")
		}
		t.Skip("no Chromium found on PATH")
	}
	dir := t.TempDir()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Env("TMPDIR="+dir),
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-quic", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return ctx
}

// btTab is one browser tab in its own browser context (its own cookies).
type btTab struct {
	t   *testing.T
	e   *btEnv
	ctx context.Context
}

// newTab opens a tab in a fresh browser context that sends acceptLanguage,
// with page scripts on or off.
func (e *btEnv) newTab(acceptLanguage string, script bool) *btTab {
	t := e.t
	t.Helper()
	ctx, cancel := chromedp.NewContext(e.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	b := &btTab{t: t, e: e, ctx: ctx}
	sctx, scancel := b.step()
	defer scancel()
	if _, err := chromedp.Call(sctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": acceptLanguage}}); err != nil {
		t.Fatalf("set Accept-Language: %v", err)
	}
	if !script {
		if _, err := chromedp.Call(sctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
			t.Fatalf("turn JavaScript off: %v", err)
		}
	}
	return b
}

// step bounds one action in the tab, so that a missing element fails the
// test in seconds.
func (b *btTab) step() (context.Context, context.CancelFunc) {
	return context.WithTimeout(b.ctx, btStepTimeout)
}

func (b *btTab) url(pathOrURL string) string {
	if strings.HasPrefix(pathOrURL, "http") {
		return pathOrURL
	}
	return b.e.base + pathOrURL
}

func (b *btTab) do(steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v (at %s)", err, b.location())
	}
}

// open loads a page and returns its response.
func (b *btTab) open(pathOrURL string) *network.Response {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(b.url(pathOrURL)))
	if err != nil {
		b.t.Fatalf("open %s: %v", pathOrURL, err)
	}
	return resp
}

// submit clicks what sel matches (a button or a link) and returns the
// response of the page that loads.
func (b *btTab) submit(sel string) *network.Response {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("click %s: %v (at %s)", sel, err, b.location())
	}
	if resp == nil {
		b.t.Fatalf("click %s loaded no page (at %s)", sel, b.location())
	}
	return resp
}

func (b *btTab) click(sel string) {
	b.t.Helper()
	b.do(chromedp.Click(chromedp.CSS(sel)))
}

// text returns the visible text of the first match of sel.
func (b *btTab) text(sel string) string {
	b.t.Helper()
	v := btEval[*string](b, `(e => e && e.innerText)(document.querySelector(`+btJSString(sel)+`))`)
	if v == nil {
		b.t.Fatalf("no %s on %s", sel, b.location())
	}
	return strings.TrimSpace(*v)
}

// texts returns the text content of every match of sel, spaces collapsed.
func (b *btTab) texts(sel string) []string {
	b.t.Helper()
	return btEval[[]string](b, `[...document.querySelectorAll(`+btJSString(sel)+`)].map(e => e.textContent.replace(/\s+/g, " ").trim())`)
}

// attrOK returns an attribute of the first match of sel and whether it is
// there.
func (b *btTab) attrOK(sel, name string) (string, bool) {
	b.t.Helper()
	v := btEval[*[2]any](b, `(e => e && [e.getAttribute(`+btJSString(name)+`), e.hasAttribute(`+btJSString(name)+`)])(document.querySelector(`+btJSString(sel)+`))`)
	if v == nil {
		b.t.Fatalf("no %s on %s", sel, b.location())
	}
	val, _ := v[0].(string)
	ok, _ := v[1].(bool)
	return val, ok
}

func (b *btTab) attr(sel, name string) string {
	b.t.Helper()
	v, _ := b.attrOK(sel, name)
	return v
}

func (b *btTab) html() string {
	b.t.Helper()
	return btEval[string](b, `document.documentElement.outerHTML`)
}

func (b *btTab) location() string {
	ctx, cancel := b.step()
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "?"
	}
	return s
}

// checkedKeys lists the purposes whose switch is on in the page now.
func (b *btTab) checkedKeys() []string {
	b.t.Helper()
	return btEval[[]string](b, `[...document.querySelectorAll("input[type=checkbox][name=on]:checked")].map(b => b.value)`)
}

// cookie returns the browser's cookie for the center by name, or nil.
func (b *btTab) cookie(name string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.e.base + "/c/" + btSlug + "/"}})
	if err != nil {
		b.t.Fatalf("cookies: %v", err)
	}
	for _, c := range res.Cookies {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// wantLang checks <html lang> and the h1.
func (b *btTab) wantLang(lang, h1 string) {
	b.t.Helper()
	if got := b.attr("html", "lang"); got != lang {
		b.t.Fatalf("<html lang=%q>, want %q (at %s)", got, lang, b.location())
	}
	if got := b.text("h1"); got != h1 {
		b.t.Fatalf("h1 = %q, want %q", got, h1)
	}
}

// requestLink asks for a sign-in link on the page and returns the link
// from the mail that arrives.
func (b *btTab) requestLink(email string) string {
	b.t.Helper()
	n := b.e.mail.Count(email)
	b.open("/c/" + btSlug + "/")
	b.do(chromedp.SendKeys(chromedp.ID("email"), email))
	resp := b.submit(`form.panel button[type=submit]`)
	if resp.Status != 200 || !strings.HasSuffix(btPath(resp.URL), "/c/"+btSlug+"/signin/sent") {
		b.t.Fatalf("asking for a link: %d %s", resp.Status, resp.URL)
	}
	if got, want := b.text("h1"), b.e.loc(b.attr("html", "lang")).T("sent_title"); got != want {
		b.t.Fatalf("after asking for a link h1 = %q, want %q", got, want)
	}
	return btWaitLink(b.t, b.e.mail, email, n+1)
}

// signIn goes from the sign-in form through the mailed link to the
// preferences page.
func (b *btTab) signIn(email string) {
	b.t.Helper()
	link := b.requestLink(email)
	if !strings.HasPrefix(link, b.e.base+"/c/"+btSlug+"/link?t=") {
		b.t.Fatalf("mailed link %q does not lead to this center", link)
	}
	if resp := b.open(link); resp.Status != 200 {
		b.t.Fatalf("link page: %d", resp.Status)
	}
	if got, want := b.text(`form.panel button[type=submit]`), b.e.loc(b.attr("html", "lang")).T("link_button"); got != want {
		b.t.Fatalf("link page button = %q, want %q", got, want)
	}
	resp := b.submit(`form.panel button[type=submit]`)
	if resp.Status != 200 || !strings.HasSuffix(btPath(resp.URL), "/c/"+btSlug+"/preferences") {
		b.t.Fatalf("signing in landed on %d %s", resp.Status, resp.URL)
	}
	if b.cookie("fl_session") == nil {
		b.t.Fatal("signed in without a session cookie")
	}
}

// wantRefused opens a link page, presses the button and expects a refusal
// with status and message, and no session.
func (b *btTab) wantRefused(link string, status int64, message string) {
	b.t.Helper()
	resp := b.open(link)
	// A link known to be invalid or expired is refused on sight; one that
	// looks usable is refused when its button is pressed.
	if btEval[bool](b, `!!document.querySelector("form.panel button[type=submit]")`) {
		resp = b.submit(`form.panel button[type=submit]`)
	}
	b.refusal(link, resp, status, message)
}

// wantPressRefused presses the button of the link page already open and
// wants it refused.
func (b *btTab) wantPressRefused(link string, status int64, message string) {
	b.t.Helper()
	b.refusal(link, b.submit(`form.panel button[type=submit]`), status, message)
}

func (b *btTab) refusal(link string, resp *network.Response, status int64, message string) {
	b.t.Helper()
	if resp.Status != status {
		b.t.Fatalf("link %s answered %d, want %d", link, resp.Status, status)
	}
	if got := b.text(".alert p"); got != message {
		b.t.Fatalf("refusal says %q, want %q", got, message)
	}
	if c := b.cookie("fl_session"); c != nil {
		b.t.Fatal("a refused link set a session cookie")
	}
	if r := b.open("/c/" + btSlug + "/preferences"); r.Status == 200 {
		b.t.Fatal("the preferences page opens after a refused link")
	}
}

// axe runs axe-core on the page and fails the test with every violation.
func (b *btTab) axe(source []byte, page string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](string(source))); err != nil {
		b.t.Fatalf("inject axe-core into the %s: %v", page, err)
	}
	type node struct {
		Target  []any  `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"failureSummary"`
	}
	type violation struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
		Help   string `json:"help"`
		Nodes  []node `json:"nodes"`
	}
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](`axe.run(document, {resultTypes: ["violations"]}).then(r => ({violations: r.violations, passes: r.passes.length}))`, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("axe.run on the %s: %v", page, err)
	}
	var res struct {
		Violations []violation `json:"violations"`
		Passes     int         `json:"passes"`
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		b.t.Fatalf("axe results: %v: %s", err, raw)
	}
	if res.Passes < 10 {
		b.t.Fatalf("axe passed only %d rules on the %s: it did not really run", res.Passes, page)
	}
	for _, v := range res.Violations {
		var sb strings.Builder
		fmt.Fprintf(&sb, "axe on the %s: %s (%s): %s", page, v.ID, v.Impact, v.Help)
		for _, n := range v.Nodes {
			fmt.Fprintf(&sb, "\n    target %v: %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
		}
		b.t.Error(sb.String())
	}
}

// btEval evaluates a JavaScript expression in the tab.
func btEval[T any](b *btTab, js string) T {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// btAxeSource reads axe.min.js from FINELINE_AXE_JS or .ci/node_modules
// (.ci/run installs it). Missing, it skips, except under CI.
func btAxeSource(t *testing.T) []byte {
	t.Helper()
	path := os.Getenv("FINELINE_AXE_JS")
	if path == "" {
		path = filepath.Join("..", ".ci", "node_modules", "axe-core", "axe.min.js")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("axe-core not found (%v): .ci/run installs it into .ci/node_modules", err)
		}
		t.Skipf("axe-core not found (%v): npm install --no-save --prefix .ci axe-core@4.14.1, or set FINELINE_AXE_JS", err)
	}
	return b
}

// --- the server and its store ---

// btEnv is the whole center on a real store behind an httptest server, with
// an SMTP server catching its mail and a clock tests can move.
type btEnv struct {
	t        *testing.T
	api      *testServer
	base     string
	merchant merchants.Merchant
	mail     *smtptest.Server
	clock    *btClock
	browser  context.Context
}

func btNewEnv(t *testing.T, browser context.Context) *btEnv {
	t.Helper()
	logs := &btLog{}
	t.Cleanup(func() {
		if s := logs.String(); t.Failed() && s != "" {
			t.Logf("server log:\n%s", s)
		}
	})
	logger := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	box := smtptest.Start(t)
	clock := &btClock{}
	mailer, err := mail.New(mail.Config{SMTPURL: box.URL(), From: "Corner Shop <no-reply@corner-shop.example>", Logger: logger, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ts := newTestServer(t, testOptions{Mailer: mailer, Now: clock.Now, Log: logger, AdminToken: btAdminToken})
	e := &btEnv{t: t, api: ts, base: ts.URL, mail: box, clock: clock, browser: browser}
	e.merchant = e.addMerchant(btSlug, "Corner Shop")
	return e
}

// addMerchant creates a merchant with a published notice and the demo
// purposes.
func (e *btEnv) addMerchant(slug, name string) merchants.Merchant {
	e.t.Helper()
	ctx := context.Background()
	m, _, _, err := e.api.Merchants.Create(ctx, merchants.NewMerchant{Slug: slug, Name: name, DefaultLocale: "en"})
	if err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.api.Notices.PublishFirst(ctx, m.ID, nil, ""); err != nil {
		e.t.Fatal(err)
	}
	for _, p := range demo.Purposes() {
		p.MerchantID = m.ID
		if _, err := e.api.Purposes.Create(ctx, p); err != nil {
			e.t.Fatal(err)
		}
	}
	return m
}

func (e *btEnv) subject(m merchants.Merchant, id, email string) {
	e.t.Helper()
	if _, _, err := e.api.Subjects.Put(context.Background(), m.ID, id, consent.SubjectUpdate{Email: &email}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *btEnv) loc(lang string) *locales.Localizer { return e.api.Center.Locales.For(lang) }

func (e *btEnv) events(m merchants.Merchant, subject string) []consent.Event {
	e.t.Helper()
	evs, _, err := e.api.Ledger.Events(context.Background(), m.ID, subject, 0, consent.MaxPage)
	if err != nil {
		e.t.Fatal(err)
	}
	return evs
}

func (e *btEnv) check(m merchants.Merchant, subject, purpose string) consent.Decision {
	e.t.Helper()
	d, err := e.api.Ledger.Check(context.Background(), m.ID, subject, purpose)
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// btResponse is what a plain HTTP client got.
type btResponse struct {
	status int
	header http.Header
	body   []byte
}

var btClient = &http.Client{
	Timeout:       10 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

func (e *btEnv) send(req *http.Request, cookie *network.Cookie, headers []string) btResponse {
	e.t.Helper()
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := btClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return btResponse{status: res.StatusCode, header: res.Header, body: b}
}

// get fetches a path of the center, with a browser's cookie if given.
func (e *btEnv) get(path string, cookie *network.Cookie) btResponse {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.base+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.send(req, cookie, nil)
}

// postForm posts a form like a browser of the same origin would, unless
// headers (name, value, ...) say otherwise; a nil cookie sends none.
func (e *btEnv) postForm(path string, form url.Values, cookieAndHeaders ...any) btResponse {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.base+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	var cookie *network.Cookie
	var headers []string
	for _, v := range cookieAndHeaders {
		switch v := v.(type) {
		case *network.Cookie:
			cookie = v
		case string:
			headers = append(headers, v)
		}
	}
	return e.send(req, cookie, headers)
}

// btClock is the sign-in service's clock: the real time plus an offset.
type btClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *btClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *btClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.off += d
}

// btLog collects the server's log lines, shown when a test fails.
type btLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *btLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *btLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// --- the mail ---

var btLinkRE = regexp.MustCompile(`https?://[^\s"<>]+/c/[a-z0-9-]+/link\?t=[A-Za-z0-9_%.\-]+`)

// btWaitLink waits for the n-th (from 1) message to addr in box and returns
// the sign-in link of its plain-text part.
func btWaitLink(t *testing.T, box *smtptest.Server, addr string, n int) string {
	t.Helper()
	text := btWaitText(t, box, addr, n)
	link := btLinkRE.FindString(text)
	if link == "" {
		t.Fatalf("no sign-in link in the text part:\n%s", text)
	}
	return link
}

// btWaitText waits for the n-th (from 1) message to addr in box and returns
// its plain-text part.
func btWaitText(t *testing.T, box *smtptest.Server, addr string, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if msgs := box.Messages(addr); len(msgs) >= n {
			msg, err := netmail.ReadMessage(strings.NewReader(msgs[n-1]))
			if err != nil {
				t.Fatalf("mail to %s: %v", addr, err)
			}
			if to := msg.Header.Get("To"); !strings.Contains(to, addr) {
				t.Fatalf("mail To: %q, want %s", to, addr)
			}
			text, err := btTextPart(msg.Header, msg.Body)
			if err != nil {
				t.Fatalf("mail to %s: %v", addr, err)
			}
			return text
		}
		if time.Now().After(deadline) {
			t.Fatalf("no mail #%d to %s within 10s", n, addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// btTextPart returns the decoded text/plain part of a message, looking
// inside multipart bodies.
func btTextPart(h interface{ Get(string) string }, body io.Reader) (string, error) {
	ct := h.Get("Content-Type")
	if ct == "" {
		ct = "text/plain"
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil {
		return "", err
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return "", nil
			}
			if err != nil {
				return "", err
			}
			// NextPart decodes quoted-printable itself and drops the header;
			// btTextPart below handles what is left.
			if s, err := btTextPart(p.Header, p); err != nil || s != "" {
				return s, err
			}
		}
	}
	if mt != "text/plain" {
		return "", nil
	}
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, btNoNewlines{body})
	}
	b, err := io.ReadAll(body)
	return string(b), err
}

// btNoNewlines drops line breaks from base64 text.
type btNoNewlines struct{ r io.Reader }

func (n btNoNewlines) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	j := 0
	for _, c := range p[:k] {
		if c != '\r' && c != '\n' {
			p[j] = c
			j++
		}
	}
	return j, err
}

// --- small helpers ---

// btReceiptIDFrom checks that a save landed on the preferences page with a
// receipt and returns the receipt's id.
func btReceiptIDFrom(t *testing.T, resp *network.Response, base string) string {
	t.Helper()
	u, err := url.Parse(resp.URL)
	if err != nil {
		t.Fatal(err)
	}
	id := u.Query().Get("receipt")
	if resp.Status != 200 || !strings.HasPrefix(resp.URL, base+"/c/"+btSlug+"/preferences?") || len(id) != 22 {
		t.Fatalf("saving landed on %d %s, want the preferences page with a receipt", resp.Status, resp.URL)
	}
	return id
}

// btPath is the path of a URL.
func btPath(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Path
}

// btJSString quotes s as a JavaScript string literal.
func btJSString(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err) // a string always marshals
	}
	return string(b)
}
