package handlers_test

// A browser test of the consent widget on a merchant's own site: real
// Chromium loads the demo shop from another origin than Fineline, the
// widget draws itself in a Shadow DOM and talks to Fineline across origins
// (CORS), and the check API sees what the visitor clicked.

import (
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/demo"
)

// wbRoot is the widget's shadow root, as a JavaScript expression.
const wbRoot = `document.querySelector("fineline-consent").shadowRoot`

// wbShopPurposes are the purposes the demo shop's own script gates on.
var wbShopPurposes = []string{"newsletter", "recommendations", "birthday_reward", "partner_sharing", "wellness_tips"}

// TestWidgetInBrowser: the widget on an allowed shop lists the purposes and
// records Decline and Accept through the widget channel (a sensitive purpose
// never granted by Accept), without moving the shop's layout; on a site the
// merchant did not allow it gets nothing and shows its error.
func TestWidgetInBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	e := newTestEnv(t)
	en := e.api.Center.Locales.For("en")
	mint := func(subject string) func() (string, error) {
		return func() (string, error) {
			tok, _, err := e.api.Center.Signin.NewWidgetToken(e.merchA.ID, subject)
			return tok, err
		}
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/wes", e.keyA, `{}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/cara", e.keyA, `{}`), 201)

	shopB := httptest.NewServer(demo.ShopHandler(e.srv.URL, "shop-a", mint("wes")))
	t.Cleanup(shopB.Close)
	shopC := httptest.NewServer(demo.ShopHandler(e.srv.URL, "shop-a", mint("cara")))
	t.Cleanup(shopC.Close)
	if shopB.URL == e.srv.URL || shopC.URL == e.srv.URL || shopB.URL == shopC.URL {
		t.Fatalf("the servers share an origin: %s %s %s", e.srv.URL, shopB.URL, shopC.URL)
	}
	var settings struct {
		AllowedOrigins []string `json:"allowed_origins"`
	}
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":[`+btJSString(shopB.URL)+`]}`), 200).json(t, &settings)
	if !slices.Equal(settings.AllowedOrigins, []string{shopB.URL}) {
		t.Fatalf("allowed origins: %v, want [%s]", settings.AllowedOrigins, shopB.URL)
	}

	ps, err := e.api.Purposes.List(t.Context(), e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	var wantNames []string
	for _, p := range ps {
		wantNames = append(wantNames, p.TextFor("en").Name)
	}

	// --- shop B, an allowed origin ---
	tab := (&btEnv{t: t, base: shopB.URL, browser: browser}).newTab("en", true)
	if resp := tab.open(shopB.URL + "/"); resp.Status != 200 {
		t.Fatalf("shop B: %d", resp.Status)
	}
	wbWait(tab, `(() => { const h = document.querySelector("fineline-consent");
		return !!h && !h.hidden && h.shadowRoot.querySelectorAll("ul li").length > 0 &&
			h.shadowRoot.querySelector(".panel").getAttribute("aria-busy") === "false"; })()`)
	if got := btEval[string](tab, wbRoot+`.querySelector("h2").textContent`); got != en.T("widget_title") {
		t.Fatalf("widget title = %q, want %q", got, en.T("widget_title"))
	}
	if diff := cmp.Diff(wantNames, btEval[[]string](tab, `[...`+wbRoot+`.querySelectorAll("ul li .name")].map(e => e.textContent)`)); diff != "" {
		t.Fatalf("purposes in the widget (-want +got):\n%s", diff)
	}
	if on := btEval[int](tab, wbRoot+`.querySelectorAll("input[role=switch]:checked").length`); on != 0 {
		t.Fatalf("%d switches on before any choice", on)
	}
	if st := btEval[string](tab, wbRoot+`.querySelector(".status").textContent`); st != "" {
		t.Fatalf("status line before any choice: %q", st)
	}
	wbWantAllowed(tab, nil)

	// The host page's layout: the widget is fixed, takes no room in the
	// flow, and the page measures the same with and without it.
	layout := btEval[[]float64](tab, `(() => {
		const h = document.querySelector("fineline-consent");
		const m = () => { const r = document.querySelector("main").getBoundingClientRect();
			return [document.body.scrollHeight, document.documentElement.scrollHeight, r.top, r.left, r.width, r.height]; };
		const shown = m();
		h.hidden = true;
		const hidden = m();
		h.hidden = false;
		const r = h.getBoundingClientRect();
		return [...shown, ...hidden, getComputedStyle(h).position === "fixed" ? 1 : 0, r.width, r.height,
			r.right <= innerWidth && r.bottom <= innerHeight && r.left >= 0 && r.top >= 0 ? 1 : 0];
	})()`)
	if !slices.Equal(layout[0:6], layout[6:12]) {
		t.Errorf("the widget moved the shop's layout: with it %v, without it %v", layout[0:6], layout[6:12])
	}
	if layout[12] != 1 || layout[13] == 0 || layout[14] == 0 || layout[15] != 1 {
		t.Errorf("the widget is not a fixed panel within the viewport: fixed=%v size=%vx%v inside=%v", layout[12], layout[13], layout[14], layout[15])
	}

	// Decline: every purpose refused, through the widget channel.
	wbClick(tab, en.T("widget_decline"))
	wbWait(tab, wbRoot+`.querySelector(".panel").getAttribute("aria-busy") === "false" && `+
		wbRoot+`.querySelector(".status").textContent === `+btJSString(en.T("widget_saved")))
	if btEval[bool](tab, wbRoot+`.querySelector(".status").classList.contains("err")`) {
		t.Fatal("saving Decline shows as an error")
	}
	for _, p := range wbShopPurposes {
		if d := wbCheck(t, e, "wes", p); d.Allowed || (d.Reason != "not_granted" && d.Reason != "withdrawn") {
			t.Errorf("check %s after Decline: %+v", p, d)
		}
	}
	evs := wbEvents(t, e, "wes")
	if len(evs) != len(ps) {
		t.Fatalf("%d events after Decline, want %d: %+v", len(evs), len(ps), evs)
	}
	for _, ev := range evs {
		if ev.Channel != "widget" || ev.State != "denied" {
			t.Errorf("event after Decline: %+v", ev)
		}
	}
	wbWantAllowed(tab, nil)

	// Accept: everything but the sensitive purpose.
	wbClick(tab, en.T("widget_accept"))
	wbWait(tab, wbRoot+`.querySelector(".panel").getAttribute("aria-busy") === "false" && Fineline.allowed("newsletter") && `+
		`document.querySelector("#allowed-newsletter").textContent === "newsletter: allowed"`)
	granted := []string{"newsletter", "recommendations", "birthday_reward", "partner_sharing"}
	for _, p := range wbShopPurposes {
		d := wbCheck(t, e, "wes", p)
		if want := slices.Contains(granted, p); d.Allowed != want {
			t.Errorf("check %s after Accept: %+v, want allowed=%v", p, d, want)
		}
	}
	if d := wbCheck(t, e, "wes", "wellness_tips"); d.Allowed || d.Reason != "not_granted" {
		t.Errorf("the sensitive purpose after Accept: %+v, want refused as Decline left it", d)
	}
	evs = wbEvents(t, e, "wes")
	if len(evs) != len(ps)+len(granted) {
		t.Fatalf("%d events after Accept, want %d: %+v", len(evs), len(ps)+len(granted), evs)
	}
	var gotGranted []string
	for _, ev := range evs[len(ps):] {
		if ev.Channel != "widget" || ev.State != "granted" {
			t.Errorf("event after Accept: %+v", ev)
		}
		gotGranted = append(gotGranted, ev.Purpose)
	}
	slices.Sort(gotGranted)
	if diff := cmp.Diff(slices.Sorted(slices.Values(granted)), gotGranted); diff != "" {
		t.Errorf("purposes granted by Accept (-want +got):\n%s", diff)
	}
	wbWantAllowed(tab, granted)
	if got := btEval[[]string](tab, `[...`+wbRoot+`.querySelectorAll("input[role=switch]")].filter(b => b.checked).map(b => b.closest("label").querySelector(".name").textContent)`); len(got) != len(granted) {
		t.Errorf("switches on after Accept: %v", got)
	}
	if href := btEval[string](tab, wbRoot+`.querySelector(".receipt a").href`); !strings.HasPrefix(href, e.srv.URL+"/c/shop-a/receipts/") ||
		btEval[bool](tab, wbRoot+`.querySelector(".receipt").hidden`) {
		t.Errorf("receipt link after Accept: %q", href)
	}

	// --- shop C, an origin the merchant did not allow ---
	tabC := (&btEnv{t: t, base: shopC.URL, browser: browser}).newTab("en", true)
	if resp := tabC.open(shopC.URL + "/"); resp.Status != 200 {
		t.Fatalf("shop C: %d", resp.Status)
	}
	errText := "The consent service is unavailable. Nothing was changed; please try again later."
	wbWaitError := func() {
		t.Helper()
		wbWait(tabC, `(() => { const h = document.querySelector("fineline-consent"); if (!h) return false;
			const r = h.shadowRoot; return r.querySelector(".panel").getAttribute("aria-busy") === "false" &&
				r.querySelector(".status.err") !== null && r.querySelector(".status").textContent === `+btJSString(errText)+`; })()`)
	}
	wbWaitError()
	// The failed load does not pop the panel up; opening it shows the
	// error, no purposes and no buttons to press.
	btEval[bool](tabC, `(Fineline.open(), true)`)
	wbWaitError()
	if !btEval[bool](tabC, `!document.querySelector("fineline-consent").hidden`) {
		t.Error("Fineline.open() did not show the widget on shop C")
	}
	if n := btEval[int](tabC, wbRoot+`.querySelectorAll("ul li").length`); n != 0 {
		t.Errorf("the widget on a site not allowed lists %d purposes", n)
	}
	if !btEval[bool](tabC, wbRoot+`.querySelector(".actions").hidden`) {
		t.Error("the widget on a site not allowed offers its buttons")
	}
	wbWantAllowed(tabC, nil)
	if evs := wbEvents(t, e, "cara"); len(evs) != 0 {
		t.Errorf("events for the subject of shop C: %+v", evs)
	}
	for _, p := range wbShopPurposes {
		if d := wbCheck(t, e, "cara", p); d.Allowed || d.Reason != "no_record" {
			t.Errorf("check %s for the subject of shop C: %+v", p, d)
		}
	}
	// Shop B is unaffected by what happened on C.
	if n := len(wbEvents(t, e, "wes")); n != len(ps)+len(granted) {
		t.Errorf("%d events for wes after shop C, want %d", n, len(ps)+len(granted))
	}
}

// wbWait waits until the JavaScript expression is true in the tab.
func wbWait(b *btTab, js string) {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](js, chromedp.WithPollingInterval(25*time.Millisecond))); err != nil {
		b.t.Fatalf("waiting for %s: %v\nstatus line: %q", js, err,
			btEval[string](b, `(h => h ? h.shadowRoot.querySelector(".status").textContent : "no widget")(document.querySelector("fineline-consent"))`))
	}
}

// wbClick clicks, with the mouse, the widget's button that says text.
func wbClick(b *btTab, text string) {
	b.t.Helper()
	sel := chromedp.JSPath(`[...` + wbRoot + `.querySelectorAll(".actions button")].filter(b => b.textContent === ` + btJSString(text) + `)`)
	b.do(chromedp.Click(sel, chromedp.NodeVisible))
}

// wbWantAllowed checks the shop's own list: allowed for exactly these
// purposes, from Fineline.allowed and on the page.
func wbWantAllowed(b *btTab, allowed []string) {
	b.t.Helper()
	var want, exprs []string
	for _, p := range wbShopPurposes {
		s := p + ": not allowed"
		if slices.Contains(allowed, p) {
			s = p + ": allowed"
		}
		want = append(want, s)
		exprs = append(exprs, btJSString(p)+` + (Fineline.allowed(`+btJSString(p)+`) ? ": allowed" : ": not allowed")`)
	}
	if diff := cmp.Diff(want, b.texts(`#allowed li`)); diff != "" {
		b.t.Errorf("the shop's list (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, btEval[[]string](b, `[`+strings.Join(exprs, ", ")+`]`)); diff != "" {
		b.t.Errorf("Fineline.allowed (-want +got):\n%s", diff)
	}
}

type wbDecision struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason"`
}

// wbCheck asks the check API, with shop A's key.
func wbCheck(t *testing.T, e *testEnv, subject, purpose string) wbDecision {
	t.Helper()
	var d wbDecision
	e.mustStatus(e.do("GET", "/v1/check?subject="+subject+"&purpose="+purpose, e.keyA, ""), 200).json(t, &d)
	return d
}

type wbEvent struct {
	Purpose       string `json:"purpose"`
	State         string `json:"state"`
	Channel       string `json:"channel"`
	Actor         string `json:"actor"`
	NoticeVersion int    `json:"notice_version"`
}

// wbEvents lists a subject's events through the API.
func wbEvents(t *testing.T, e *testEnv, subject string) []wbEvent {
	t.Helper()
	var out struct {
		Events []wbEvent `json:"events"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/"+subject+"/events?limit=200", e.keyA, ""), 200).json(t, &out)
	return out.Events
}

// TestWidgetRenewsPausedConsent: a purpose the shopper
// granted, then paused by a material change of the notice (no grace): the
// widget shows it off and says the terms changed; Accept renews it under
// the new version, the check allows it again, and a receipt link comes back.
func TestWidgetRenewsPausedConsent(t *testing.T) {
	browser := btStartBrowser(t)
	e := newTestEnv(t)
	en := e.api.Center.Locales.For("en")
	e.mustStatus(e.do("PUT", "/v1/subjects/rene/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 200)
	if d := wbCheck(t, e, "rene", "newsletter"); d.Allowed || d.Reason != "reconsent_required" {
		t.Fatalf("before renewal: %+v", d)
	}
	shop := httptest.NewServer(demo.ShopHandler(e.srv.URL, "shop-a", func() (string, error) {
		tok, _, err := e.api.Center.Signin.NewWidgetToken(e.merchA.ID, "rene")
		return tok, err
	}))
	t.Cleanup(shop.Close)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":[`+btJSString(shop.URL)+`]}`), 200)

	tab := (&btEnv{t: t, base: shop.URL, browser: browser}).newTab("en", true)
	if resp := tab.open(shop.URL + "/"); resp.Status != 200 {
		t.Fatalf("shop: %d", resp.Status)
	}
	btEval[bool](tab, `(Fineline.open(), true)`)
	wbWait(tab, `(() => { const h = document.querySelector("fineline-consent");
		return !!h && h.shadowRoot.querySelectorAll("ul li").length > 0 &&
			h.shadowRoot.querySelector(".panel").getAttribute("aria-busy") === "false"; })()`)
	row := `[...` + wbRoot + `.querySelectorAll("ul li")].find(li => li.querySelector(".name").textContent === "Newsletter")`
	if btEval[bool](tab, row+`.querySelector("input").checked`) {
		t.Fatal("the paused purpose is shown on")
	}
	if got := btEval[string](tab, `(r => r.hidden ? "" : r.textContent)(`+row+`.querySelector(".renew"))`); got != en.T("widget_renew") {
		t.Fatalf("the paused purpose says %q, want %q", got, en.T("widget_renew"))
	}
	wbClick(tab, en.T("widget_accept"))
	wbWait(tab, wbRoot+`.querySelector(".panel").getAttribute("aria-busy") === "false" && Fineline.allowed("newsletter")`)
	if d := wbCheck(t, e, "rene", "newsletter"); !d.Allowed || d.Reason != "granted" {
		t.Fatalf("after Accept: %+v", d)
	}
	evs := wbEvents(t, e, "rene")
	var renewal *wbEvent
	for i := range evs {
		if evs[i].Purpose == "newsletter" && evs[i].Channel == "widget" {
			renewal = &evs[i]
		}
	}
	if renewal == nil || renewal.State != "granted" || renewal.NoticeVersion != 2 {
		t.Fatalf("no renewal under version 2: %+v", evs)
	}
	if href := btEval[string](tab, wbRoot+`.querySelector(".receipt a").href`); !strings.HasPrefix(href, e.srv.URL+"/c/shop-a/receipts/") {
		t.Errorf("receipt link after renewing: %q", href)
	}
	if btEval[bool](tab, `!`+row+`.querySelector(".renew").hidden`) {
		t.Error("the renewed purpose still says the terms changed")
	}
}
