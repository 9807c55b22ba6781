package handlers_test

// Browser tests of the privacy level ("how personal may we be?"): in the
// preference center, with and without JavaScript, and in the widget on a
// merchant's own site.

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
)

// TestPrivacyLevelInBrowser runs the level's journeys in headless Chromium.
func TestPrivacyLevelInBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	t.Run("Center", func(t *testing.T) { lbTestCenter(t, browser) })
	t.Run("CenterWithoutJavaScript", func(t *testing.T) { lbTestCenterWithoutJavaScript(t, browser) })
	t.Run("CenterNarrowGerman", func(t *testing.T) { lbTestCenterNarrow(t, browser) })
	t.Run("Widget", func(t *testing.T) { lbTestWidget(t, browser) })
}

// lbGrant records a decision before the shopper arrives, so the page and
// its receipts have a purpose to state beside the level.
func lbGrant(e *btEnv, subject, purpose string) {
	e.t.Helper()
	if _, err := e.api.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merchant.ID, SubjectID: subject, Channel: consent.ChannelAPI, Actor: "test",
		Requests: []consent.Request{{Purpose: purpose, State: consent.Granted}}}); err != nil {
		e.t.Fatal(err)
	}
}

// lbChecked is the privacy level checked in the center now.
func lbChecked(b *btTab) []string {
	b.t.Helper()
	return btEval[[]string](b, `[...document.querySelectorAll("input[type=radio][name=level]:checked")].map(r => r.value)`)
}

// lbWantLevelEvent wants the subject's n-th and last event to choose level
// through channel.
func lbWantLevelEvent(e *btEnv, subject string, level consent.Level, channel consent.Channel, n int) {
	e.t.Helper()
	evs := e.events(e.merchant, subject)
	if len(evs) != n {
		e.t.Fatalf("%d events, want %d: %+v", len(evs), n, evs)
	}
	last := evs[len(evs)-1]
	if last.State != consent.LevelChosen || last.Level != level || last.Purpose != "" || last.Channel != channel {
		e.t.Fatalf("last event: %+v, want %s chosen through %s", last, level, channel)
	}
}

// lbTestCenter: the control shows the default level checked, with a legend
// and a hint per level; choosing "Keep it general" and saving records it,
// lists it in the saved notice and on the receipt, and it stays checked
// after a reload. axe finds nothing on the way.
func lbTestCenter(t *testing.T, browser context.Context) {
	axe := btAxeSource(t)
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-lea", "lea@example.com")
	lbGrant(e, "cust-lea", "newsletter")
	en := e.loc("en")
	tab := e.newTab("en", true)
	tab.signIn("lea@example.com")

	if got := tab.text(`fieldset.level legend`); got != en.Tf("level_legend", "Merchant", "Corner Shop") {
		t.Fatalf("legend = %q", got)
	}
	var wantLabels, wantHints []string
	for _, lv := range consent.Levels() {
		wantLabels = append(wantLabels, en.T("level_"+string(lv)))
		wantHints = append(wantHints, en.T("level_"+string(lv)+"_hint"))
	}
	if diff := cmp.Diff(wantLabels, tab.texts(`fieldset.level label`)); diff != "" {
		t.Fatalf("levels (-want +got):\n%s", diff)
	}
	// Each radio is named by its label and described by its hint.
	hints := btEval[[]string](tab, `[...document.querySelectorAll("fieldset.level input[type=radio]")].map(r => document.getElementById(r.getAttribute("aria-describedby")).textContent)`)
	if diff := cmp.Diff(wantHints, hints); diff != "" {
		t.Fatalf("hints (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"volunteered"}, lbChecked(tab)); diff != "" {
		t.Fatalf("checked before any choice (-want +got):\n%s", diff)
	}
	tab.axe(axe, "preferences page with the level")

	tab.click(`label[for="level-general"]`)
	resp := tab.submit(`button[name=action][value=save]`)
	id := btReceiptIDFrom(t, resp, e.base)
	if diff := cmp.Diff([]string{"How personal we may be: Keep it general"}, tab.texts(`#saved li`)); diff != "" {
		t.Fatalf("saved notice (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"general"}, lbChecked(tab)); diff != "" {
		t.Fatalf("checked after saving (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"newsletter"}, tab.checkedKeys()); diff != "" {
		t.Fatalf("switches after saving the level (-want +got):\n%s", diff)
	}
	lbWantLevelEvent(e, "cust-lea", consent.LevelGeneral, consent.ChannelCenter, 2)
	tab.axe(axe, "preferences page after saving the level")

	tab.open("/c/" + btSlug + "/preferences")
	if diff := cmp.Diff([]string{"general"}, lbChecked(tab)); diff != "" {
		t.Fatalf("checked after a reload (-want +got):\n%s", diff)
	}
	if got := tab.attr(`input[name=level_shown]`, "value"); got != "general" {
		t.Fatalf("level shown after a reload = %q", got)
	}

	tab.open("/c/" + btSlug + "/receipts/" + id)
	rows := btEval[[][]string](tab, `[...document.querySelectorAll("table.receipt tbody tr")].map(r => [r.querySelector("th").textContent.trim(), r.querySelector("td").textContent.trim()])`)
	if len(rows) == 0 || !cmp.Equal(rows[len(rows)-1], []string{"How personal we may be", "Keep it general"}) {
		t.Fatalf("receipt rows: %v, want the level last", rows)
	}
	tab.axe(axe, "receipt page with the level")
}

// lbTestCenterWithoutJavaScript: with scripts off the radios and the Save
// button alone record the level.
func lbTestCenterWithoutJavaScript(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-nat", "nat@example.com")
	lbGrant(e, "cust-nat", "recommendations")
	tab := e.newTab("en", false)
	tab.signIn("nat@example.com")
	tab.click(`#level-full`)
	tab.submit(`button[name=action][value=save]`)
	if _, ok := tab.attrOK(`#saved`, "tabindex"); ok {
		t.Fatal("center.js moved focus to the notice: JavaScript is not off")
	}
	if diff := cmp.Diff([]string{"How personal we may be: Personalize fully"}, tab.texts(`#saved li`)); diff != "" {
		t.Fatalf("saved notice without JavaScript (-want +got):\n%s", diff)
	}
	if _, ok := tab.attrOK(`#level-full`, "checked"); !ok {
		t.Fatal("full is not rendered checked after saving")
	}
	lbWantLevelEvent(e, "cust-nat", consent.LevelFull, consent.ChannelCenter, 2)
}

// lbTestCenterNarrow: in German on a 390 px wide phone, the control fits:
// no label, hint or legend runs past the page.
func lbTestCenterNarrow(t *testing.T, browser context.Context) {
	e := btNewEnv(t, browser)
	e.subject(e.merchant, "cust-udo", "udo@example.com")
	tab := e.newTab("de", true)
	ctx, cancel := tab.step()
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		t.Fatalf("narrow viewport: %v", err)
	}
	tab.signIn("udo@example.com")
	if got := tab.text(`fieldset.level legend`); got != e.loc("de").Tf("level_legend", "Merchant", "Corner Shop") {
		t.Fatalf("not in German: %q", got)
	}
	over := btEval[[]string](tab, `(() => {
		const out = [];
		if (document.documentElement.scrollWidth > innerWidth) out.push("page " + document.documentElement.scrollWidth);
		const box = document.querySelector("fieldset.level").getBoundingClientRect();
		for (const el of document.querySelectorAll("fieldset.level legend, fieldset.level label, fieldset.level .level-hint")) {
			const r = el.getBoundingClientRect();
			if (el.scrollWidth > el.clientWidth + 1 || r.right > box.right + 1 || r.left < box.left - 1) out.push(el.textContent);
		}
		return out;
	})()`)
	if len(over) != 0 {
		t.Fatalf("overflowing at 390 px: %q", over)
	}
}

// lbTestWidget: the widget of a known shopper shows the same control with
// the level checked; choosing one and pressing Save records it through the
// widget channel with a receipt. An anonymous visitor is not asked.
func lbTestWidget(t *testing.T, browser context.Context) {
	axe := btAxeSource(t)
	e := newTestEnv(t)
	en := e.api.Center.Locales.For("en")
	e.mustStatus(e.do("PUT", "/v1/subjects/lev", e.keyA, `{}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/lev/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	known := httptest.NewServer(demo.ShopHandler(e.srv.URL, "shop-a", func() (string, error) {
		tok, _, err := e.api.Center.Signin.NewWidgetToken(e.merchA.ID, "lev")
		return tok, err
	}))
	t.Cleanup(known.Close)
	anon := httptest.NewServer(demo.ShopHandler(e.srv.URL, "shop-a", func() (string, error) { return "", nil }))
	t.Cleanup(anon.Close)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":[`+btJSString(known.URL)+`,`+btJSString(anon.URL)+`]}`), 200)

	loaded := `(() => { const h = document.querySelector("fineline-consent");
		return !!h && h.shadowRoot.querySelectorAll("ul li").length > 0 &&
			h.shadowRoot.querySelector(".panel").getAttribute("aria-busy") === "false"; })()`
	tab := (&btEnv{t: t, base: known.URL, browser: browser}).newTab("en", true)
	if resp := tab.open(known.URL + "/"); resp.Status != 200 {
		t.Fatalf("shop: %d", resp.Status)
	}
	btEval[bool](tab, `(Fineline.open(), true)`)
	wbWait(tab, loaded)
	box := wbRoot + `.querySelector("fieldset.level")`
	if btEval[bool](tab, box+`.hidden`) {
		t.Fatal("the level control is hidden for a known shopper")
	}
	if got := btEval[string](tab, box+`.querySelector("legend").textContent`); got != en.T("widget_level") {
		t.Fatalf("legend = %q", got)
	}
	radios := `[...` + box + `.querySelectorAll("input[type=radio]")]`
	type radio struct{ Value, Label, Hint string }
	got := btEval[[]radio](tab, radios+`.map(r => ({Value: r.value, Label: r.labels[0].textContent,
		Hint: r.getRootNode().getElementById(r.getAttribute("aria-describedby")).textContent}))`)
	var want []radio
	for _, lv := range consent.Levels() {
		want = append(want, radio{string(lv), en.T("level_" + string(lv)), en.T("level_" + string(lv) + "_hint")})
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("radios (-want +got):\n%s", diff)
	}
	checked := radios + `.filter(r => r.checked).map(r => r.value)`
	if diff := cmp.Diff([]string{"volunteered"}, btEval[[]string](tab, checked)); diff != "" {
		t.Fatalf("checked before any choice (-want +got):\n%s", diff)
	}
	tab.axe(axe, "shop page with the widget's level control")

	tab.do(chromedp.Click(chromedp.JSPath(radios+`.find(r => r.value === "general").labels[0]`), chromedp.NodeVisible))
	wbClick(tab, en.T("widget_save"))
	wbWait(tab, wbRoot+`.querySelector(".panel").getAttribute("aria-busy") === "false" && `+
		wbRoot+`.querySelector(".note p").textContent === `+btJSString(en.T("widget_saved")))
	evs := wbEvents(t, e, "lev")
	if len(evs) != 2 || evs[1].State != string(consent.LevelChosen) || evs[1].Channel != "widget" || evs[1].Purpose != "" {
		t.Fatalf("events after saving the level: %+v", evs)
	}
	if lv := e.eventsAfter(t, "lev", 1); len(lv) != 1 || lv[0].Level != "general" {
		t.Fatalf("level event: %+v", lv)
	}
	if diff := cmp.Diff([]string{"general"}, btEval[[]string](tab, checked)); diff != "" {
		t.Fatalf("checked after saving (-want +got):\n%s", diff)
	}
	if btEval[bool](tab, wbRoot+`.querySelector(".note a").hidden`) {
		t.Error("no receipt link after saving the level")
	}
	wbWantAllowed(tab, []string{"newsletter"})
	tab.axe(axe, "shop page after saving the level in the widget")

	// An anonymous visitor: no level to choose.
	tabA := (&btEnv{t: t, base: anon.URL, browser: browser}).newTab("en", true)
	if resp := tabA.open(anon.URL + "/"); resp.Status != 200 {
		t.Fatalf("anonymous shop: %d", resp.Status)
	}
	wbWait(tabA, loaded)
	if !btEval[bool](tabA, box+`.hidden`) {
		t.Error("the level control is shown to an anonymous visitor")
	}
}
