package handlers_test

// Browser tests of the merchant console: the operator onboards a merchant
// over the admin API, its staff sign in from their mail in headless
// Chromium and run it, and everything they may not do is refused.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/locales"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/staff"
)

const ctSlug = "console-shop"

// TestConsoleInBrowser runs staff journeys through the console.
func TestConsoleInBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	t.Run("OnboardToMaterialChange", func(t *testing.T) { ctTestWalk(t, browser) })
	t.Run("ViewerChangesNothing", func(t *testing.T) { ctTestViewer(t, browser) })
	t.Run("Suspended", func(t *testing.T) { ctTestSuspended(t, browser) })
	t.Run("Sessions", func(t *testing.T) { ctTestSessions(t, browser) })
	t.Run("Languages", func(t *testing.T) { ctTestLanguages(t, browser) })
	t.Run("FieldsOffersAndPreview", func(t *testing.T) { ctTestFieldsOffersAndPreview(t, browser) })
}

// ctEnv is a browser test environment with a merchant onboarded by the
// operator, its owner invited.
type ctEnv struct {
	*btEnv
	id, key, owner string
}

func ctNewEnv(t *testing.T, browser context.Context) *ctEnv {
	e := &ctEnv{btEnv: btNewEnv(t, browser), owner: "owner@console-shop.example"}
	res := e.admin(http.MethodPost, "/admin/v1/merchants", `{"slug":"`+ctSlug+`","name":"Console Shop","owner_email":"`+e.owner+`"}`)
	if res.status != http.StatusCreated {
		t.Fatalf("onboarding: %d %s", res.status, res.body)
	}
	var out struct {
		Merchant struct{ ID string }
		APIKey   struct{ Secret string } `json:"api_key"`
		Owner    struct {
			Email, Role, Console string
			Sent                 bool `json:"invitation_sent"`
		}
	}
	if err := json.Unmarshal(res.body, &out); err != nil {
		t.Fatal(err)
	}
	if out.Owner.Email != e.owner || out.Owner.Role != "owner" || !out.Owner.Sent || out.Owner.Console != e.base+"/m/"+ctSlug+"/" {
		t.Fatalf("onboarding answered owner %+v", out.Owner)
	}
	e.id, e.key = out.Merchant.ID, out.APIKey.Secret
	return e
}

func (e *ctEnv) admin(method, path, body string) btResponse {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return e.send(req, nil, []string{"Authorization", "Bearer " + btAdminToken})
}

func (e *ctEnv) apiCall(method, path, body string) btResponse {
	e.t.Helper()
	req, err := http.NewRequest(method, e.base+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	return e.send(req, nil, []string{"Authorization", "Bearer " + e.key})
}

var ctLinkRE = regexp.MustCompile(`https?://[^\s"<>]+/m/[a-z0-9-]+/link\?t=[A-Za-z0-9_%.\-]+`)

// consoleLink waits for the n-th mail to addr and returns its console link.
func (e *ctEnv) consoleLink(addr string, n int) string {
	e.t.Helper()
	text := btWaitText(e.t, e.mail, addr, n)
	link := ctLinkRE.FindString(text)
	if link == "" || !strings.HasPrefix(link, e.base+"/m/"+ctSlug+"/link?t=") {
		e.t.Fatalf("no console link to this merchant in the mail:\n%s", text)
	}
	return link
}

// signInWith opens a console link in the tab, presses its button and
// wants the overview.
func (e *ctEnv) signInWith(tab *btTab, link string) {
	e.t.Helper()
	if resp := tab.open(link); resp.Status != 200 {
		e.t.Fatalf("console link page: %d", resp.Status)
	}
	resp := tab.submit(`form.panel button[type=submit]`)
	if resp.Status != 200 || btPath(resp.URL) != "/m/"+ctSlug+"/" {
		e.t.Fatalf("signing in landed on %d %s", resp.Status, resp.URL)
	}
	if got, want := tab.text("h1"), e.loc(tab.attr("html", "lang")).T("console_nav_overview"); got != want {
		e.t.Fatalf("after sign-in h1 = %q, want %q", got, want)
	}
}

// staffCookie returns the tab's console cookie, or nil.
func (e *ctEnv) staffCookie(tab *btTab, slug string) *network.Cookie {
	e.t.Helper()
	ctx, cancel := tab.step()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{e.base + "/m/" + slug + "/"}})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, c := range res.Cookies {
		if c.Name == "fl_staff" {
			return c
		}
	}
	return nil
}

// fill sets a form control's value.
func (tab *btTab) fill(sel, value string) {
	tab.t.Helper()
	tab.do(chromedp.SetValue(chromedp.CSS(sel), value))
}

// wantDone submits sel and wants the page it lands on to confirm with done.
func (e *ctEnv) wantDone(tab *btTab, sel, path, done string) {
	e.t.Helper()
	resp := tab.submit(sel)
	if resp.Status != 200 || !strings.HasPrefix(btPath(resp.URL), "/m/"+ctSlug+"/"+path) {
		e.t.Fatalf("%s landed on %d %s: %s", sel, resp.Status, resp.URL, tab.text("main"))
	}
	if got, want := tab.text(`main .notice[role=status] p`), e.loc("en").T("console_done_"+done); got != want {
		e.t.Fatalf("after %s the page says %q, want %q", sel, got, want)
	}
}

// pageChecks runs axe on the page open in tab, and checks it fits 390 px.
func (e *ctEnv) pageChecks(tab *btTab, axe []byte, page string) {
	e.t.Helper()
	tab.axe(axe, page)
	ctx, cancel := tab.step()
	defer cancel()
	if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		e.t.Fatal(err)
	}
	if w := btEval[int](tab, `document.documentElement.scrollWidth`); w > 390 {
		e.t.Errorf("the %s is %d px wide at 390 px", page, w)
	}
	if _, err := chromedp.Call(ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		e.t.Fatal(err)
	}
}

// ctTestWalk: the operator onboards a merchant; the owner signs in from the
// invitation, creates a purpose and invites an editor; the editor changes
// the purpose's statement and publishes it as a material change with 7
// days' grace; a shopper who had granted it is then reconsent_due; the
// audit log names each step's author. Every page passes axe and fits 390 px.
func ctTestWalk(t *testing.T, browser context.Context) {
	e := ctNewEnv(t, browser)
	axe := btAxeSource(t)
	en := e.loc("en")
	owner := e.newTab("en", true)
	e.signInWith(owner, e.consoleLink(e.owner, 1))
	e.pageChecks(owner, axe, "overview")

	// A purpose, from the form.
	owner.open("/m/" + ctSlug + "/purposes")
	e.pageChecks(owner, axe, "purposes page")
	owner.fill("#key", "loyalty")
	owner.fill("#name", "Loyalty points")
	owner.fill("#statement", "We count your points from what you buy and tell you when a reward is ready.")
	owner.click("#cat-purchase_history")
	e.wantDone(owner, `form[action$="/purposes"] button[type=submit]`, "purposes", "purpose_created")
	p, err := e.api.Purposes.Get(context.Background(), e.id, "loyalty")
	if err != nil || p.TextFor("en").Name != "Loyalty points" || !slices.Equal(p.DataCategories, []string{"purchase_history"}) {
		t.Fatalf("the purpose stored: %+v, %v", p, err)
	}

	// A shopper grants it through the API, under version 1.
	if r := e.apiCall(http.MethodPut, "/v1/subjects/shopper-1/consents/loyalty", `{"state":"granted"}`); r.status != 200 && r.status != 201 {
		t.Fatalf("grant: %d %s", r.status, r.body)
	}

	// An editor, invited by the owner (a fresh sign-in).
	owner.open("/m/" + ctSlug + "/staff")
	e.pageChecks(owner, axe, "staff page")
	owner.fill("#email", "editor@console-shop.example")
	owner.fill("#role", "editor")
	e.wantDone(owner, `form[action$="/staff"] button[type=submit]`, "staff", "invited")
	invite := btWaitText(t, e.mail, "editor@console-shop.example", 1)
	if !strings.Contains(invite, e.owner) || !strings.Contains(invite, en.T("role_editor")) {
		t.Fatalf("the invitation does not say who invited and as what:\n%s", invite)
	}
	editor := e.newTab("en", true)
	e.signInWith(editor, e.consoleLink("editor@console-shop.example", 1))
	// An editor has no API keys or staff forms.
	editor.open("/m/" + ctSlug + "/keys")
	if btEval[bool](editor, `!!document.querySelector('form[action$="/keys"]')`) {
		t.Fatal("an editor is shown the form that creates keys")
	}

	// The editor changes the statement: a draft carries it.
	editor.open("/m/" + ctSlug + "/purposes/loyalty")
	e.pageChecks(editor, axe, "purpose page")
	newWords := "We count your points from what you buy, and from your reviews, and tell you when a reward is ready."
	editor.fill("#statement-en", newWords)
	resp := editor.submit(`form[action$="/purposes/loyalty"] button[type=submit]`)
	u, err := url.Parse(resp.URL)
	if err != nil || resp.Status != 200 || u.Path != "/m/"+ctSlug+"/notices/2" || u.Query().Get("done") != "draft_created" {
		t.Fatalf("rewording landed on %d %s", resp.Status, resp.URL)
	}
	version := "2"
	if p, _ := e.api.Purposes.Get(context.Background(), e.id, "loyalty"); p.TextFor("en").Statement == newWords {
		t.Fatal("the new words are live before the draft is published")
	}
	// It is material for the purpose; the preview shows the review page's
	// section with the new words.
	editor.click("#material")
	editor.click("#purpose-loyalty")
	e.wantDone(editor, `form[action$="/notices/`+version+`"] button[type=submit]`, "notices/"+version, "draft_saved")
	if got := editor.text(".preview fieldset legend"); got != "Loyalty points" {
		t.Fatalf("the preview asks about %q", got)
	}
	if got := editor.text(".preview fieldset p"); got != newWords {
		t.Fatalf("the preview shows the words %q, want the new ones", got)
	}
	if n := btEval[int](editor, `document.querySelectorAll(".preview input[type=radio]").length`); n != 2 {
		t.Fatalf("the preview shows %d answers, want accept and decline", n)
	}
	e.pageChecks(editor, axe, "notice draft page")
	editor.fill("#grace_days", "7")
	editor.fill("#effective_on", time.Now().UTC().Format(time.DateOnly)) // today: now
	e.wantDone(editor, `form[action$="/publish"] button[type=submit]`, "notices/"+version, "published")
	e.pageChecks(editor, axe, "published notice page")
	if p, _ := e.api.Purposes.Get(context.Background(), e.id, "loyalty"); p.TextFor("en").Statement != newWords {
		t.Fatalf("after publishing the statement is %q", p.TextFor("en").Statement)
	}
	r := e.apiCall(http.MethodGet, "/v1/check?subject=shopper-1&purpose=loyalty", "")
	var d struct {
		Allowed bool
		Reason  string
	}
	if err := json.Unmarshal(r.body, &d); err != nil || r.status != 200 || !d.Allowed || d.Reason != string(consent.ReasonReconsentDue) {
		t.Fatalf("the shopper's check: %d %s", r.status, r.body)
	}
	v, err := e.api.Notices.Get(context.Background(), e.id, 2)
	if err != nil || v.Status != notices.Published || !v.Material || v.Deadline.Sub(v.EffectiveAt) != 7*24*time.Hour {
		t.Fatalf("version 2: %+v %v", v, err)
	}

	// The audit log, newest first, names each step's author.
	owner.open("/m/" + ctSlug + "/audit")
	e.pageChecks(owner, axe, "audit log")
	rows := btEval[[][]string](owner, `[...document.querySelectorAll("main table tbody tr")].map(r => [...r.children].map(c => c.textContent.trim()))`)
	var got []string
	for i := len(rows) - 1; i >= 0; i-- {
		got = append(got, rows[i][1]+" "+rows[i][2])
	}
	want := []string{
		"operator " + en.T("audit_merchant_created"),
		"operator " + en.T("audit_staff_invited"),
		e.owner + " " + en.T("audit_staff_signed_in"),
		e.owner + " " + en.T("audit_purpose_created"),
		e.owner + " " + en.T("audit_staff_invited"),
		"editor@console-shop.example " + en.T("audit_staff_signed_in"),
		"editor@console-shop.example " + en.T("audit_purpose_reworded"),
		"editor@console-shop.example " + en.T("audit_notice_edited"),
		"editor@console-shop.example " + en.T("audit_notice_published"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log, oldest first:\n got %q\nwant %q", got, want)
	}

	// The other pages pass too.
	for _, page := range []string{"notices", "fields", "offers", "widget", "keys"} {
		owner.open("/m/" + ctSlug + "/" + page)
		e.pageChecks(owner, axe, page+" page")
	}
	// The widget's sites and Consent Mode map, from the form.
	owner.open("/m/" + ctSlug + "/widget")
	owner.fill("#origins", "https://shop.console.example\nhttps://www.console.example")
	owner.click("#mode-analytics_storage-loyalty")
	e.wantDone(owner, `form[action$="/widget"] button[type=submit]`, "widget", "widget_saved")
	if mm, err := e.api.Merchants.Store.Merchant(context.Background(), e.id); err != nil ||
		!slices.Equal(mm.AllowedOrigins, []string{"https://shop.console.example", "https://www.console.example"}) ||
		len(mm.ConsentMode) != 1 || !slices.Equal(mm.ConsentMode["analytics_storage"], []string{"loyalty"}) {
		t.Fatalf("widget settings stored: %+v %+v %v", mm.AllowedOrigins, mm.ConsentMode, err)
	}
	if !btEval[bool](owner, `document.querySelector("#mode-analytics_storage-loyalty").checked`) {
		t.Fatal("the saved Consent Mode type is not ticked on the page")
	}
	owner.open("/m/" + ctSlug + "/keys")
	// A key, shown once.
	owner.fill("#name", "till")
	owner.click("#scope-rewards\\:redeem")
	resp = owner.submit(`form[action$="/keys"] button[type=submit]`)
	if resp.Status != 201 {
		t.Fatalf("creating a key: %d", resp.Status)
	}
	secret := owner.attr("#secret", "value")
	if !strings.HasPrefix(secret, "fl_") {
		t.Fatalf("the key page shows %q", secret)
	}
	e.pageChecks(owner, axe, "new key page")
	ks, err := e.api.Merchants.Keys(context.Background(), e.id)
	if err != nil || len(ks) != 2 || ks[1].Name != "till" || len(ks[1].Scopes) != 1 || ks[1].Scopes[0] != "rewards:redeem" {
		t.Fatalf("keys: %+v %v", ks, err)
	}
	owner.open("/m/" + ctSlug + "/keys")
	if strings.Contains(owner.html(), secret) {
		t.Fatal("the key's secret is shown again")
	}
	// The sign-in pages pass too.
	anon := e.newTab("en", true)
	anon.open("/m/" + ctSlug + "/")
	e.pageChecks(anon, axe, "sign-in page")
}

// ctTestFieldsOffersAndPreview: an editor declares a field and makes a
// birthday offer with the console's forms, which store what the API would
// (a refused form stores nothing); the widget page frames a preview of the
// real banner, and choosing in it records nothing.
func ctTestFieldsOffersAndPreview(t *testing.T, browser context.Context) {
	e := ctNewEnv(t, browser)
	ctx := context.Background()
	axe := btAxeSource(t)
	if r := e.apiCall(http.MethodPost, "/v1/purposes", `{"key":"birthday_treat","texts":{"en":{"name":"Birthday treat","statement":"We send you a coupon in your birthday month."}},"data_categories":["demographic"]}`); r.status != 201 {
		t.Fatalf("purpose: %d %s", r.status, r.body)
	}
	if _, err := e.api.Staff.Invite(ctx, e.id, "editor@console-shop.example", staff.Editor, e.owner); err != nil {
		t.Fatal(err)
	}
	editor := e.newTab("en", true)
	e.signInWith(editor, e.requestConsoleLink(editor, "editor@console-shop.example", 1))

	// A refused field stores nothing and says why.
	editor.open("/m/" + ctSlug + "/fields")
	e.pageChecks(editor, axe, "fields page")
	editor.fill("#key", "birthday")
	editor.fill("#label", "Your birthday")
	editor.fill("#explanation", "So we can send you a treat in your birthday month.")
	editor.fill("#type", "date")
	editor.click("#omit_year")
	resp := editor.submit(`form[action$="/fields"] button[type=submit]`)
	if resp.Status != 400 || !strings.Contains(editor.text("main"), e.loc("en").T("console_err_invalid")) {
		t.Fatalf("a field no purpose needs: %d %s", resp.Status, editor.text("main"))
	}
	if fs, _ := e.api.Fields.List(ctx, e.id); len(fs) != 0 {
		t.Fatalf("a refused field was stored: %+v", fs)
	}
	editor.open("/m/" + ctSlug + "/fields")
	editor.fill("#key", "birthday")
	editor.fill("#label", "Your birthday")
	editor.fill("#explanation", "So we can send you a treat in your birthday month.")
	editor.fill("#type", "date")
	editor.click("#omit_year")
	editor.click("#purpose-birthday_treat")
	editor.fill("#category", "demographic")
	e.wantDone(editor, `form[action$="/fields"] button[type=submit]`, "fields", "field_created")
	f, err := e.api.Fields.Get(ctx, e.id, "birthday")
	if err != nil || f.Type != "date" || !f.OmitYear || !slices.Equal(f.Purposes, []string{"birthday_treat"}) || f.Category != "demographic" ||
		f.TextFor("en").Label != "Your birthday" {
		t.Fatalf("the field stored: %+v %v", f, err)
	}

	// A birthday offer for it.
	editor.open("/m/" + ctSlug + "/offers")
	e.pageChecks(editor, axe, "offers page")
	for id, v := range map[string]string{"#key": "birthday_club", "#title": "Birthday club", "#reward": "15% off in your birthday month",
		"#summary": "Tell us your birthday and get a coupon each year.", "#material_terms": "One coupon a year, valid 30 days.",
		"#how_to_opt_in": "Join on this page.", "#right_to_withdraw": "Leave at any time on this page; we erase your birthday.",
		"#value_estimate": "About 2 euros a year.", "#value_method": "The average extra spend of members.", "#purpose": "birthday_treat",
		"#birthday_field": "birthday", "#birthday_on": "month_start", "#valid_days": "20"} {
		editor.fill(id, v)
	}
	editor.click("#field-birthday")
	e.wantDone(editor, `form[action$="/offers"] button[type=submit]`, "offers", "offer_created")
	o, err := e.api.Offers.Get(ctx, e.id, "birthday_club")
	if err != nil || o.Purpose != "birthday_treat" || !slices.Equal(o.Fields, []string{"birthday"}) || o.Birthday == nil ||
		o.Birthday.Field != "birthday" || o.Birthday.On != "month_start" || o.Birthday.ValidDays != 20 ||
		o.TextFor("en").Notice.ValueMethod != "The average extra spend of members." {
		t.Fatalf("the offer stored: %+v %v", o, err)
	}
	if got := editor.texts("main table tbody th"); len(got) != 1 || !strings.HasPrefix(got[0], "Birthday club") {
		t.Fatalf("the offers listed: %q", got)
	}
	entries, _, err := e.api.Staff.Audit(ctx, e.id, "", 10)
	if err != nil || len(entries) < 2 || entries[0].Action != "offer.created" || entries[1].Action != "field.created" ||
		entries[0].Actor != "editor@console-shop.example" {
		t.Fatalf("audit: %+v %v", entries, err)
	}

	// The widget page frames the preview, and the preview is the real
	// banner with the merchant's purposes.
	before := e.apiCall(http.MethodGet, "/v1/changes?limit=1000", "")
	editor.open("/m/" + ctSlug + "/widget")
	e.pageChecks(editor, axe, "widget page")
	wbWait(editor, `(() => { const f = document.querySelector("iframe.widget-preview"); const h = f && f.contentDocument && f.contentDocument.querySelector("fineline-consent");
		return !!h && !!h.shadowRoot.querySelector(".bar button"); })()`)
	editor.open("/m/" + ctSlug + "/widget/preview")
	e.pageChecks(editor, axe, "widget preview")
	en := e.loc("en")
	wbWait(editor, wbRoot+`.querySelector(".bar button").textContent === `+btJSString(en.T("widget_accept")))
	if got := btEval[string](editor, wbRoot+`.textContent`); !strings.Contains(got, "Birthday treat") {
		t.Fatalf("the preview's widget does not offer the merchant's purpose: %q", got)
	}
	editor.do(chromedp.Click(chromedp.JSPath(wbRoot+`.querySelector(".bar button")`), chromedp.NodeVisible))
	wbWait(editor, `Fineline.allowed("birthday_treat") === true`)
	if after := e.apiCall(http.MethodGet, "/v1/changes?limit=1000", ""); !bytes.Equal(ctItems(t, before.body), ctItems(t, after.body)) {
		t.Fatalf("choosing in the preview recorded something:\nbefore %s\n after %s", before.body, after.body)
	}
	if _, err := e.api.Ledger.StateOf(ctx, e.id, "device:preview"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("the preview's subject has a record: %v", err)
	}
	// The preview answers only its own origin.
	r := e.postForm("/w/v1/"+ctSlug+"~preview/reach", url.Values{}, nil, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site")
	if r.status != http.StatusForbidden || !bytes.Contains(r.body, []byte("preview_same_origin_only")) {
		t.Fatalf("a cross-site preview call: %d %s", r.status, r.body)
	}
}

// ctItems is the items of a change feed page.
func ctItems(t *testing.T, body []byte) []byte {
	t.Helper()
	var page struct{ Changes json.RawMessage }
	if err := json.Unmarshal(body, &page); err != nil || len(page.Changes) == 0 {
		t.Fatalf("a change feed page: %s %v", body, err)
	}
	return page.Changes
}

// ctTestViewer: a viewer sees every page without a single form that
// changes anything, and every form posted anyway is refused with 403 and
// changes nothing.
func ctTestViewer(t *testing.T, browser context.Context) {
	e := ctNewEnv(t, browser)
	if _, err := e.api.Staff.Invite(context.Background(), e.id, "viewer@console-shop.example", staff.Viewer, e.owner); err != nil {
		t.Fatal(err)
	}
	viewer := e.newTab("en", true)
	e.signInWith(viewer, e.requestConsoleLink(viewer, "viewer@console-shop.example", 1))
	cookie := e.staffCookie(viewer, ctSlug)
	for _, page := range []string{"", "purposes", "purposes/newsletter", "notices", "notices/1", "fields", "offers", "widget", "keys", "staff", "audit"} {
		viewer.open("/m/" + ctSlug + "/" + page)
		if n := btEval[int](viewer, `[...document.querySelectorAll("main form")].length`); n != 0 {
			t.Errorf("a viewer is shown %d forms on /%s", n, page)
		}
	}
	draft := e.apiCall(http.MethodPost, "/v1/notices", `{"texts":{"en":{"summary":"A draft the viewer must not touch"}}}`)
	if draft.status != 201 {
		t.Fatalf("draft: %d %s", draft.status, draft.body)
	}
	before := e.snapshot()
	forms := map[string]url.Values{
		"purposes":                   {"key": {"forged"}, "locale": {"en"}, "name": {"Forged"}, "statement": {"Nothing good comes of this at all."}},
		"purposes/newsletter":        {"statement.en": {"Changed by a viewer, which must not work."}},
		"purposes/newsletter/retire": {"confirm": {"yes"}},
		"notices":                    {"summary.en": {"A forged version of the notice"}},
		"notices/2":                  {"summary.en": {"A forged change of the draft"}},
		"notices/2/publish":          {"grace_days": {"0"}},
		"notices/2/discard":          {},
		"widget":                     {"origins": {"https://evil.example"}},
		"fields":                     {"key": {"forged"}, "locale": {"en"}, "label": {"Forged"}, "explanation": {"Forged."}, "type": {"text"}, "purpose": {"newsletter"}},
		"offers":                     {"key": {"forged"}, "locale": {"en"}, "title": {"Forged"}, "purpose": {"newsletter"}},
		"keys":                       {"name": {"forged"}, "scope": {"admin"}},
		"keys/x/revoke":              {},
		"staff":                      {"email": {"mallory@evil.example"}, "role": {"owner"}},
		"staff/" + staff.IDFor(e.id, e.owner) + "/remove": {},
	}
	for path, form := range forms {
		r := e.postForm("/m/"+ctSlug+"/"+path, form, cookie, "Origin", e.base, "Sec-Fetch-Site", "same-origin")
		if r.status != http.StatusForbidden || !bytes.Contains(r.body, []byte(e.loc("en").T("console_err_role"))) {
			t.Errorf("a viewer's POST /%s answered %d", path, r.status)
		}
	}
	if after := e.snapshot(); after != before {
		t.Fatalf("a viewer's forms changed something:\nbefore %s\n after %s", before, after)
	}
}

// snapshot describes what a console form could change, to compare.
func (e *ctEnv) snapshot() string {
	e.t.Helper()
	ctx := context.Background()
	var sb strings.Builder
	ps, _ := e.api.Purposes.List(ctx, e.id)
	for _, p := range ps {
		sb.WriteString(p.Key + ":" + p.TextFor("en").Statement + ":" + p.RetiredAt.String() + ";")
	}
	vs, _ := e.api.Notices.List(ctx, e.id)
	for _, v := range vs {
		sb.WriteString(string(v.Status) + ":" + textFor(v, "en").Summary + ";")
	}
	ks, _ := e.api.Merchants.Keys(ctx, e.id)
	for _, k := range ks {
		sb.WriteString(k.Name + ":" + k.RevokedAt.String() + ";")
	}
	ms, _ := e.api.Staff.Members(ctx, e.id)
	for _, m := range ms {
		sb.WriteString(m.Email + ":" + string(m.Role) + ":" + m.RemovedAt.String() + ";")
	}
	fs, _ := e.api.Fields.List(ctx, e.id)
	for _, f := range fs {
		sb.WriteString("field " + f.Key + ";")
	}
	os, _ := e.api.Offers.List(ctx, e.id)
	for _, o := range os {
		sb.WriteString("offer " + o.Key + ";")
	}
	mm, _ := e.api.Merchants.Store.Merchant(ctx, e.id)
	sb.WriteString(strings.Join(mm.AllowedOrigins, ","))
	return sb.String()
}

// requestConsoleLink asks for a sign-in link at the console's form in tab
// (signed out there) and returns the n-th link mailed to addr.
func (e *ctEnv) requestConsoleLink(tab *btTab, addr string, n int) string {
	e.t.Helper()
	anon := e.newTab("en", true)
	anon.open("/m/" + ctSlug + "/")
	anon.fill("#email", addr)
	resp := anon.submit(`form.panel button[type=submit]`)
	if resp.Status != 200 || btPath(resp.URL) != "/m/"+ctSlug+"/signin/sent" {
		e.t.Fatalf("asking for a console link: %d %s", resp.Status, resp.URL)
	}
	return e.consoleLink(addr, n)
}

// ctTestSuspended: a suspended merchant's console is refused, signed in or
// not, with merchant_suspended; resumed, it works again.
func ctTestSuspended(t *testing.T, browser context.Context) {
	e := ctNewEnv(t, browser)
	owner := e.newTab("en", true)
	e.signInWith(owner, e.consoleLink(e.owner, 1))
	if r := e.admin(http.MethodPost, "/admin/v1/merchants/"+e.id+"/suspend", ""); r.status != 200 {
		t.Fatalf("suspend: %d", r.status)
	}
	for _, page := range []string{"", "purposes", "staff"} {
		resp := owner.open("/m/" + ctSlug + "/" + page)
		if resp.Status != http.StatusForbidden || owner.text("h1") != e.loc("en").T("console_err_suspended_title") {
			t.Fatalf("a suspended merchant's /%s answered %d %q", page, resp.Status, owner.text("h1"))
		}
	}
	cookie := e.staffCookie(owner, ctSlug)
	if r := e.postForm("/m/"+ctSlug+"/purposes", url.Values{"key": {"x"}}, cookie); r.status != http.StatusForbidden {
		t.Fatalf("a suspended merchant's form answered %d", r.status)
	}
	if r := e.postForm("/m/"+ctSlug+"/signin", url.Values{"email": {e.owner}}); r.status != http.StatusForbidden {
		t.Fatalf("a suspended merchant's sign-in answered %d", r.status)
	}
	if r := e.admin(http.MethodPost, "/admin/v1/merchants/"+e.id+"/resume", ""); r.status != 200 {
		t.Fatalf("resume: %d", r.status)
	}
	if resp := owner.open("/m/" + ctSlug + "/purposes"); resp.Status != 200 {
		t.Fatalf("resumed, the console answers %d", resp.Status)
	}
}

// ctTestSessions: a fresh session at each sign-in, a used link refused, a
// shopper's session and another merchant's staff session refused, sign-out
// ending the session on the server, a stale session asked to sign in
// again for keys and staff, a removed member shut out at once, and the
// operator's owner invitation giving access back.
func ctTestSessions(t *testing.T, browser context.Context) {
	e := ctNewEnv(t, browser)
	en := e.loc("en")
	tab := e.newTab("en", true)
	// Fixation: a cookie planted before sign-in is not the session after.
	ctx, cancel := tab.step()
	planted := "planted.value.here"
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "fl_staff", Value: planted, URL: e.base + "/m/" + ctSlug + "/", Path: "/m/" + ctSlug + "/"}); err != nil {
		t.Fatal(err)
	}
	cancel()
	link := e.consoleLink(e.owner, 1)
	e.signInWith(tab, link)
	first := e.staffCookie(tab, ctSlug)
	if first == nil || first.Value == planted || !first.HTTPOnly || first.Path != "/m/"+ctSlug+"/" || first.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("console cookie after sign-in: %+v", first)
	}
	// The link is used.
	other := e.newTab("en", true)
	other.open(link)
	if resp := other.submit(`form.panel button[type=submit]`); resp.Status != http.StatusGone || other.text(".alert p") != en.T("console_err_link_used") {
		t.Fatalf("a used console link answered %d %q", resp.Status, other.text(".alert p"))
	}
	// A shopper's session is no console session, and a console link is no
	// shopper's link.
	e.subject(e.merchant, "cust-ann", "ann@example.com")
	shopper := e.newTab("en", true)
	shopper.signIn("ann@example.com")
	ss := shopper.cookie("fl_session")
	forged := &network.Cookie{Name: "fl_staff", Value: ss.Value}
	if r := e.get("/m/"+btSlug+"/purposes", forged); r.status != http.StatusUnauthorized {
		t.Fatalf("a shopper's session on the console answered %d", r.status)
	}
	staffLink := strings.Replace(e.consoleLink(e.owner, 1), "/m/"+ctSlug+"/", "/c/"+ctSlug+"/", 1)
	if r := e.get(strings.TrimPrefix(staffLink, e.base), nil); r.status != http.StatusNotFound {
		t.Fatalf("a console link on the center answered %d", r.status)
	}
	// Another merchant's console does not take this session.
	if _, err := e.api.Staff.Invite(context.Background(), e.merchant.ID, e.owner, staff.Owner, staff.Operator); err != nil {
		t.Fatal(err)
	}
	cross := &network.Cookie{Name: "fl_staff", Value: first.Value}
	if r := e.get("/m/"+btSlug+"/purposes", cross); r.status != http.StatusUnauthorized {
		t.Fatalf("a session of %s on %s answered %d", ctSlug, btSlug, r.status)
	}
	if r := e.get("/m/"+ctSlug+"/purposes", first); r.status != 200 {
		t.Fatalf("the session on its own console answered %d", r.status)
	}
	// Stale: keys and staff ask for a fresh sign-in; reading still works.
	e.clock.Advance(16 * time.Minute)
	tab.open("/m/" + ctSlug + "/keys")
	tab.fill("#name", "late")
	tab.click("#scope-consent\\:read")
	if resp := tab.submit(`form[action$="/keys"] button[type=submit]`); resp.Status != http.StatusForbidden || tab.text("h1") != en.T("console_again_title") {
		t.Fatalf("a key from a stale session: %d %q", resp.Status, tab.text("h1"))
	}
	stale := e.staffCookie(tab, ctSlug)
	if r := e.postForm("/m/"+ctSlug+"/staff/"+staff.IDFor(e.id, e.owner)+"/remove", url.Values{}, stale); r.status != http.StatusForbidden {
		t.Fatalf("removing staff from a stale session answered %d", r.status)
	}
	if r := e.postForm("/m/"+ctSlug+"/notices", url.Values{"summary.en": {strings.Repeat("x", 3<<20)}}, stale); r.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("a form over the limit answered %d", r.status)
	}
	n := e.mail.Count(e.owner)
	if resp := tab.submit(`main form.panel button[type=submit]`); resp.Status != 200 || btPath(resp.URL) != "/m/"+ctSlug+"/signin/sent" {
		t.Fatalf("asking again: %d %s", resp.Status, resp.URL)
	}
	e.signInWith(tab, e.consoleLink(e.owner, n+1))
	tab.open("/m/" + ctSlug + "/keys")
	tab.fill("#name", "fresh")
	tab.click("#scope-consent\\:read")
	if resp := tab.submit(`form[action$="/keys"] button[type=submit]`); resp.Status != http.StatusCreated {
		t.Fatalf("a key after signing in again: %d", resp.Status)
	}
	// Sign-out ends the session on the server.
	second := e.staffCookie(tab, ctSlug)
	tab.open("/m/" + ctSlug + "/")
	if resp := tab.submit(`form.signout button`); resp.Status != 200 || e.staffCookie(tab, ctSlug) != nil {
		t.Fatalf("sign-out: %d %s, cookie %+v", resp.Status, resp.URL, e.staffCookie(tab, ctSlug))
	}
	if r := e.get("/m/"+ctSlug+"/purposes", second); r.status != http.StatusUnauthorized {
		t.Fatalf("a signed-out session answered %d", r.status)
	}
	// A removed member is out at once, and the operator gives access back.
	editor := "ed@console-shop.example"
	if _, err := e.api.Staff.Invite(context.Background(), e.id, editor, staff.Editor, e.owner); err != nil {
		t.Fatal(err)
	}
	etab := e.newTab("en", true)
	e.signInWith(etab, e.requestConsoleLink(etab, editor, 1))
	ec := e.staffCookie(etab, ctSlug)
	if _, err := e.api.Staff.Remove(context.Background(), e.id, staff.IDFor(e.id, editor)); err != nil {
		t.Fatal(err)
	}
	if r := e.get("/m/"+ctSlug+"/purposes", ec); r.status != http.StatusUnauthorized {
		t.Fatalf("a removed member's session answered %d", r.status)
	}
	if _, err := e.api.Staff.Remove(context.Background(), e.id, staff.IDFor(e.id, e.owner)); err == nil {
		t.Fatal("the last owner was removed")
	}
	n = e.mail.Count(editor)
	if r := e.admin(http.MethodPost, "/admin/v1/merchants/"+e.id+"/owner-invites", `{"email":"`+editor+`"}`); r.status != http.StatusCreated {
		t.Fatalf("owner invite: %d %s", r.status, r.body)
	}
	e.signInWith(etab, e.consoleLink(editor, n+1))
	if got := etab.text(".me"); !strings.Contains(got, en.T("role_owner")) {
		t.Fatalf("after the operator's invitation the member is %q", got)
	}
}

// ctTestLanguages: every console page exists in the center's languages,
// with no message id left untranslated, passes axe and fits 390 px.
func ctTestLanguages(t *testing.T, browser context.Context) {
	e := ctNewEnv(t, browser)
	ids := regexp.MustCompile(`\b(console|role|audit|mail)_[a-z_]+\b`)
	axe := btAxeSource(t)
	for _, lang := range locales.Supported() {
		tab := e.newTab(lang, true)
		tab.open("/m/" + ctSlug + "/")
		if got := tab.attr("html", "lang"); got != lang {
			t.Fatalf("sign-in page in %s has lang %q", lang, got)
		}
		// One member per language: sign-in requests per address are rate-limited.
		member := "staff-" + lang + "@console-shop.example"
		if _, err := e.api.Staff.Invite(context.Background(), e.id, member, staff.Editor, e.owner); err != nil {
			t.Fatal(err)
		}
		e.signInWith(tab, e.requestConsoleLink(tab, member, 1))
		for _, page := range []string{"", "purposes", "purposes/newsletter", "notices", "notices/1", "fields", "offers", "widget", "keys", "staff", "audit", "analytics"} {
			tab.open("/m/" + ctSlug + "/" + page)
			if got := tab.attr("html", "lang"); got != lang {
				t.Errorf("/%s in %s has lang %q", page, lang, got)
			}
			if id := ids.FindString(tab.text("body")); id != "" {
				t.Errorf("/%s in %s shows the message id %q", page, lang, id)
			}
			e.pageChecks(tab, axe, lang+" /"+page)
		}
	}
}
