package handlers_test

// Browser tests of the shopper's own data: the "Your data" page and the
// erasure behind it, signed in, and the public pages on how the data is
// protected, "do not sell or share" and checking a receipt, in every
// language of the center. The store is the one newDataEnv seeds: shop-a
// with the demo fields and attributes, the recipient "Mailer Ltd", and erin,
// who gave her birthday and shoe size and was asked about by "ESP sync".

import (
	"context"
	"fmt"
	"mime"
	netmail "net/mail"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/locales"
)

// dbSlug is the merchant newDataEnv seeds, and its name.
const dbSlug = "shop-a"

// dbBase is the path of shop-a's center.
const dbBase = "/c/" + dbSlug + "/"

// dbLanguages are the languages the center speaks.
var dbLanguages = []string{"en", "de", "fr", "es"}

// TestShopperDataInBrowser runs the journeys of a shopper's own data in
// headless Chromium: the data page and the public pages, axe-clean in
// every language and on a narrow phone; "do not sell or share" without
// JavaScript; erasure through its confirmation; and the data page
// compared, row by row, with what the store holds.
func TestShopperDataInBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	t.Run("EveryLanguage", func(t *testing.T) { dbTestEveryLanguage(t, browser) })
	t.Run("NarrowGerman", func(t *testing.T) { dbTestNarrowGerman(t, browser) })
	t.Run("DoNotSellWithoutJavaScript", func(t *testing.T) { dbTestDoNotSellWithoutJavaScript(t, browser) })
	t.Run("Erase", func(t *testing.T) { dbTestErase(t, browser) })
	t.Run("ListsWhatTheStoreHolds", func(t *testing.T) { dbTestListsWhatTheStoreHolds(t, browser) })
}

// dbTestEveryLanguage: in each language the signed-in shopper's data page
// shows her values, the recipient and who asked about her, with the
// downloads and the way to erasure; the protect, do-not-sell and verify
// pages speak the language, and verify tells a genuine data download from
// a made-up one. axe finds nothing on any of them.
func dbTestEveryLanguage(t *testing.T, browser context.Context) {
	for _, lang := range dbLanguages {
		t.Run(lang, func(t *testing.T) {
			axe := btAxeSource(t)
			today := time.Now().UTC().Format(time.DateOnly)
			e, _, _ := newDataEnv(t)
			l := e.api.Center.Locales.For(lang)
			name := dbPurposeNamer(t, e, lang)

			me := dbNewTab(t, e, browser, "en", true)
			dbSignIn(me, e, "erin")
			if resp := me.open(dbBase + "data?lang=" + lang); resp.Status != 200 {
				t.Fatalf("data page: %d", resp.Status)
			}
			me.wantLang(lang, l.Tf("data_heading", "Merchant", dbSlug))

			// The values as the store holds them (the birthday without a year
			// is kept as --MM-DD).
			held := dbHeld(t, e, "erin")
			if !strings.HasSuffix(held["birthday"], "04-17") || held["shoe_size"] != "41" {
				t.Fatalf("the store holds for erin: %q", held)
			}
			wantValues := [][]string{
				// A date is shown as people read it: "17 April", in the language.
				{dbFieldLabel(t, e, "birthday", lang), "17 " + l.T("month_4"), name("birthday_reward")},
				{dbFieldLabel(t, e, "shoe_size", lang), held["shoe_size"], name("recommendations")},
			}
			if diff := cmp.Diff(wantValues, dbRows(me, dbSectionTable("values"))); diff != "" {
				t.Errorf("values table (-want +got):\n%s", diff)
			}
			rs, err := e.api.Recipients.Get(context.Background(), e.merchA.ID)
			if err != nil || len(rs.Recipients) != 1 {
				t.Fatalf("recipients held: %+v %v", rs, err)
			}
			var uses []string
			for _, k := range rs.Recipients[0].Purposes {
				uses = append(uses, name(k))
			}
			wantRecipients := [][]string{{"Mailer Ltd", l.T("recipient_processor"), "IE", strings.Join(uses, ", ")}}
			if diff := cmp.Diff(wantRecipients, dbRows(me, dbSectionTable("recipients"))); diff != "" {
				t.Errorf("recipients table (-want +got):\n%s", diff)
			}
			// Only ESP sync asked, today: the guard check of a message for
			// recommendations, and a check of each of two choices.
			var asked [][]string
			for _, r := range dbRows(me, dbSectionTable("asked")) {
				if len(r) != 5 || (r[0] != today && r[0] != time.Now().UTC().Format(time.DateOnly)) {
					t.Errorf("who-asked row %q: want five cells, of today", r)
					continue
				}
				asked = append(asked, r[1:])
			}
			wantAsked := [][]string{
				{"ESP sync", l.T("access_check"), name("newsletter"), "1"},
				{"ESP sync", l.T("access_check"), name("recommendations"), "1"},
				{"ESP sync", l.T("access_guard"), name("recommendations"), "1"},
			}
			byCells := cmpopts.SortSlices(func(a, b []string) bool { return strings.Join(a, "\x00") < strings.Join(b, "\x00") })
			if diff := cmp.Diff(wantAsked, asked, byCells); diff != "" {
				t.Errorf("who-asked table (-want +got):\n%s", diff)
			}
			for _, href := range []string{dbBase + "data/download.json", dbBase + "data/download.csv"} {
				if _, ok := me.attrOK(`main a[href="`+href+`"]`, "download"); !ok {
					t.Errorf("no download link to %s", href)
				}
			}
			if got := me.text(`main a[href="` + dbBase + `erase"]`); got != l.Tf("data_erase_link", "Merchant", dbSlug) {
				t.Errorf("erase link = %q", got)
			}
			me.axe(axe, "data page in "+lang)

			// The public pages, for a visitor who is not signed in.
			anon := dbNewTab(t, e, browser, "en", true)
			for _, p := range []struct{ path, h1 string }{
				{"protect", l.Tf("protect_heading", "Merchant", dbSlug)},
				{"do-not-sell", l.T("dns_title")},
				{"verify", l.T("verify_title")},
			} {
				if resp := anon.open(dbBase + p.path + "?lang=" + lang); resp.Status != 200 {
					t.Fatalf("%s page: %d", p.path, resp.Status)
				}
				anon.wantLang(lang, p.h1)
				anon.axe(axe, p.path+" page in "+lang)
			}
			if got := anon.text(`main form[action="` + dbBase + `verify"] button[type=submit]`); got != l.T("verify_button") {
				t.Errorf("verify button = %q", got)
			}

			// Verify, with the file the shopper downloaded (multipart upload).
			dl := me.e.get(dbBase+"data/download.json", dbCookie(me, "fl_session"))
			if dl.status != 200 {
				t.Fatalf("data download: %d", dl.status)
			}
			file := filepath.Join(t.TempDir(), dbSlug+"-my-data.json")
			if err := os.WriteFile(file, dl.body, 0o600); err != nil {
				t.Fatal(err)
			}
			anon.do(chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{file}))
			if resp := anon.submit(`main form[action="` + dbBase + `verify"] button[type=submit]`); resp.Status != 200 {
				t.Fatalf("verifying the data download: %d", resp.Status)
			}
			anon.wantLang(lang, l.T("verify_title"))
			if got := anon.text(`main .notice h2`); got != l.T("verify_valid_data") {
				t.Errorf("verifying the data download says %q, want %q", got, l.T("verify_valid_data"))
			}
			if got := anon.text(`main .notice p`); !strings.Contains(got, "erin") {
				t.Errorf("verified download names no subject: %q", got)
			}
			anon.axe(axe, "verify page with a genuine data download in "+lang)

			// Pasted text that was never signed here.
			anon.do(chromedp.SendKeys(chromedp.CSS("#receipt"), "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"))
			if resp := anon.submit(`main form[action="` + dbBase + `verify"] button[type=submit]`); resp.Status != 422 {
				t.Fatalf("verifying a made-up receipt: %d, want 422", resp.Status)
			}
			if got := anon.text(`main .alert p`); got != l.T("verify_invalid") {
				t.Errorf("a made-up receipt: %q, want %q", got, l.T("verify_invalid"))
			}
			anon.axe(axe, "verify page with a refused receipt in "+lang)
		})
	}
}

// dbTestNarrowGerman: on a 390 px wide phone the German data page, its
// tables included, fits: nothing scrolls sideways.
func dbTestNarrowGerman(t *testing.T, browser context.Context) {
	e, _, _ := newDataEnv(t)
	tab := dbNewTab(t, e, browser, "de", true)
	func() {
		ctx, cancel := tab.step()
		defer cancel()
		if _, err := chromedp.Call(ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}); err != nil {
			t.Fatalf("narrow viewport: %v", err)
		}
	}()
	dbSignIn(tab, e, "erin")
	tab.open(dbBase + "data?lang=de")
	tab.wantLang("de", e.api.Center.Locales.For("de").Tf("data_heading", "Merchant", dbSlug))
	if w := btEval[int](tab, `innerWidth`); w != 390 {
		t.Fatalf("viewport is %d px wide, want 390", w)
	}
	if n := btEval[int](tab, `document.querySelectorAll("main table").length`); n < 4 {
		t.Fatalf("%d tables on the German data page, want the histories, values, attributes, recipients and who asked", n)
	}
	sw := btEval[int](tab, `document.documentElement.scrollWidth`)
	if sw <= 390 {
		return
	}
	// Name what runs past the right edge, innermost first.
	over := btEval[[]string](tab, `[...document.querySelectorAll("main *")]
		.filter(el => el.getBoundingClientRect().right > 391 && ![...el.children].some(c => c.getBoundingClientRect().right > 391))
		.slice(0, 12)
		.map(el => el.tagName.toLowerCase() + (el.className ? "." + el.className : "") + " right=" + Math.round(el.getBoundingClientRect().right) + " " + JSON.stringify(el.textContent.trim().slice(0, 60)))`)
	t.Errorf("the German data page is %d px wide at a 390 px viewport; past the edge:\n  %s", sw, strings.Join(over, "\n  "))
}

// dbTestDoNotSellWithoutJavaScript: with scripts off, an anonymous visitor
// presses the button, a plain form post; the page says they opted out, the
// browser holds an fl_device cookie, and the ledger answers withdrawn for
// device:<id>.
func dbTestDoNotSellWithoutJavaScript(t *testing.T, browser context.Context) {
	e, _, _ := newDataEnv(t)
	en := e.api.Center.Locales.For("en")
	name := dbPurposeNamer(t, e, "en")
	tab := dbNewTab(t, e, browser, "en", false)
	page := dbBase + "do-not-sell"
	if resp := tab.open(page); resp.Status != 200 {
		t.Fatalf("do-not-sell page: %d", resp.Status)
	}
	tab.wantLang("en", en.T("dns_title"))
	if dbScriptsRun(tab) {
		t.Fatal("the center's script ran: JavaScript is not off")
	}
	// The control: with scripts on, the same probe sees them run.
	on := dbNewTab(t, e, browser, "en", true)
	on.open(page)
	if !dbScriptsRun(on) {
		t.Fatal("with JavaScript on, the probe saw no script run: it proves nothing")
	}
	if c := dbCookie(tab, "fl_device"); c != nil {
		t.Errorf("an fl_device cookie before any choice: %q", c.Value)
	}
	if main := tab.text("main"); strings.Contains(main, en.T("dns_already")) {
		t.Fatalf("a new visitor is shown as opted out:\n%s", main)
	}
	if got := tab.texts(`main ul li`); !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, name("partner_sharing")+":") }) {
		t.Errorf("the sale/share purposes listed: %q, want %s", got, name("partner_sharing"))
	}

	button := `main form[action="` + page + `"] button[type=submit]`
	if got := tab.text(button); got != en.T("dns_button") {
		t.Fatalf("button = %q", got)
	}
	resp := tab.submit(button)
	if resp.Status != 200 || btPath(resp.URL) != page || !strings.HasSuffix(resp.URL, "?done=1") {
		t.Fatalf("opting out landed on %d %s", resp.Status, resp.URL)
	}
	if got := tab.text(`main .notice p`); got != en.Tf("dns_done", "Merchant", dbSlug) {
		t.Errorf("after opting out the notice says %q", got)
	}
	if main := tab.text("main"); !strings.Contains(main, en.T("dns_already")) || !strings.Contains(main, en.T("dns_device")) {
		t.Errorf("after opting out the page does not say so:\n%s", main)
	}
	if n := btEval[int](tab, `document.querySelectorAll(`+btJSString(button)+`).length`); n != 0 {
		t.Error("the button is still offered after opting out")
	}

	c := dbCookie(tab, "fl_device")
	if c == nil {
		t.Fatal("no fl_device cookie after opting out")
	}
	if !c.HTTPOnly || c.Path != dbBase || c.SameSite != network.CookieSameSiteLax {
		t.Errorf("fl_device cookie: httpOnly=%v path=%q sameSite=%q", c.HTTPOnly, c.Path, c.SameSite)
	}
	device := "device:" + c.Value
	var d struct {
		Allowed bool
		Reason  string
	}
	e.mustStatus(e.do("GET", "/v1/check?subject="+url.QueryEscape(device)+"&purpose=partner_sharing", e.keyA, ""), 200).json(t, &d)
	if d.Allowed || d.Reason != "withdrawn" {
		t.Errorf("check %s partner_sharing: %+v, want withdrawn", device, d)
	}
	var evs struct{ Events []eventJSON }
	e.mustStatus(e.do("GET", "/v1/subjects/"+url.PathEscape(device)+"/events", e.keyA, ""), 200).json(t, &evs)
	if len(evs.Events) != 1 || evs.Events[0].Purpose != "partner_sharing" || evs.Events[0].State != "withdrawn" || evs.Events[0].Channel != string(consent.ChannelCenter) {
		t.Errorf("the device's events: %+v", evs.Events)
	}

	// Back later, the same browser is still opted out.
	tab.open(page)
	if main := tab.text("main"); !strings.Contains(main, en.T("dns_already")) {
		t.Errorf("coming back, the page does not say the visitor opted out:\n%s", main)
	}
}

// dbTestErase: the confirmation box is required, so the browser does not
// send the form unticked and nothing changes; ticked, the form erases the
// shopper, ends the session and shows the erased page; the ledger then
// answers subject_erased and the shopper gets one email.
func dbTestErase(t *testing.T, browser context.Context) {
	axe := btAxeSource(t)
	e, box, _ := newDataEnv(t)
	en := e.api.Center.Locales.For("en")
	const addr = "erin.erase@example.com"
	tab := dbNewTab(t, e, browser, "en", true)
	dbSignIn(tab, e, "erin")
	tab.open(dbBase + "data")
	resp := tab.submit(`main a[href="` + dbBase + `erase"]`)
	if resp.Status != 200 || btPath(resp.URL) != dbBase+"erase" {
		t.Fatalf("erase link: %d %s", resp.Status, resp.URL)
	}
	tab.wantLang("en", en.Tf("erase_heading", "Merchant", dbSlug))
	tab.axe(axe, "erase page")

	confirm := `main form[action="` + dbBase + `erase"] input[type=checkbox][name=confirm]`
	button := `main form[action="` + dbBase + `erase"] button[type=submit]`
	if _, ok := tab.attrOK(confirm, "required"); !ok {
		t.Fatal("the confirmation box is not required")
	}
	if got := btEval[string](tab, `document.querySelector(`+btJSString(confirm)+`).closest("label").textContent.trim()`); got != en.T("erase_confirm") {
		t.Errorf("confirmation label = %q", got)
	}

	// Unticked: the browser keeps the form.
	before := dbEvents(t, e, "erin")
	btEval[bool](tab, `(window.dbNotReloaded = true)`)
	tab.click(button)
	time.Sleep(500 * time.Millisecond)
	if !btEval[bool](tab, `window.dbNotReloaded === true`) || btPath(tab.location()) != dbBase+"erase" {
		t.Fatalf("the unticked form was sent: now at %s", tab.location())
	}
	if !btEval[bool](tab, `document.querySelector(`+btJSString(confirm)+`).validity.valueMissing`) {
		t.Error("the unticked box is not reported missing")
	}
	if diff := cmp.Diff(before, dbEvents(t, e, "erin")); diff != "" {
		t.Fatalf("the unticked form changed the ledger (-before +after):\n%s", diff)
	}
	if got := e.reason(t, "erin", "recommendations"); got != "granted" {
		t.Fatalf("after the unticked form: %s, want granted", got)
	}
	if dbCookie(tab, "fl_session") == nil {
		t.Fatal("the unticked form ended the session")
	}
	if n := box.Count(addr); n != 0 {
		t.Fatalf("%d emails to %s before the erasure", n, addr)
	}

	// Ticked.
	tab.click(confirm)
	resp = tab.submit(button)
	if resp.Status != 200 || btPath(resp.URL) != dbBase+"erase" {
		t.Fatalf("erasing: %d %s", resp.Status, resp.URL)
	}
	tab.wantLang("en", en.T("erased_title"))
	var sub struct {
		ErasedAt *time.Time `json:"erased_at"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/erin", e.keyA, ""), 200).json(t, &sub)
	if sub.ErasedAt == nil {
		t.Fatal("the subject has no erased_at")
	}
	if got, want := tab.text(`main .notice p`), en.Tf("erased_done", "Merchant", dbSlug, "When", formatTime(*sub.ErasedAt)); got != want {
		t.Errorf("erased notice = %q, want %q", got, want)
	}
	tab.axe(axe, "erased page")
	if c := dbCookie(tab, "fl_session"); c != nil {
		t.Error("the session cookie survived the erasure")
	}
	if resp := tab.open(dbBase + "data"); resp.Status == 200 {
		t.Errorf("the data page still opens after the erasure")
	}

	for _, p := range []string{"recommendations", "birthday_reward", "newsletter", "partner_sharing"} {
		if got := e.reason(t, "erin", p); got != "subject_erased" {
			t.Errorf("check erin %s after the erasure: %s, want subject_erased", p, got)
		}
	}
	evs := dbEvents(t, e, "erin")
	if len(evs) != len(before)+1 || evs[len(evs)-1].State != string(consent.SubjectErased) || evs[len(evs)-1].Channel != string(consent.ChannelCenter) {
		t.Errorf("events after the erasure: %d, want %d, the last subject_erased through the center: %+v", len(evs), len(before)+1, evs[len(evs)-1])
	}

	msgs := waitMessages(t, box, addr, 1)
	time.Sleep(200 * time.Millisecond)
	if n := box.Count(addr); n != 1 {
		t.Errorf("%d emails to %s, want 1", n, addr)
	}
	msg, err := netmail.ReadMessage(strings.NewReader(msgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	if to := msg.Header.Get("To"); !strings.Contains(to, addr) {
		t.Errorf("email To: %q", to)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil || subject != en.Tf("mail_erased_subject", "Merchant", dbSlug) {
		t.Errorf("email subject = %q (%v), want %q", subject, err, en.Tf("mail_erased_subject", "Merchant", dbSlug))
	}
	text, err := btTextPart(msg.Header, msg.Body)
	if err != nil || !strings.Contains(text, en.Tf("mail_erased_hello", "Merchant", dbSlug)) {
		t.Errorf("email text (%v):\n%s", err, text)
	}
}

// dbCard is a purpose's card on the data page: its name and its history.
type dbCard struct {
	Name string
	Rows [][]string
}

// dbTestListsWhatTheStoreHolds: the values table is exactly the values the
// store holds for erin, as the fields service opens them and as the fields
// API discloses them; each purpose's history has a row per ledger event of
// that purpose, with its time, choice, channel and notice version.
func dbTestListsWhatTheStoreHolds(t *testing.T, browser context.Context) {
	e, _, _ := newDataEnv(t)
	ctx := context.Background()
	en := e.api.Center.Locales.For("en")
	name := dbPurposeNamer(t, e, "en")
	tab := dbNewTab(t, e, browser, "en", true)
	dbSignIn(tab, e, "erin")
	if resp := tab.open(dbBase + "data"); resp.Status != 200 {
		t.Fatalf("data page: %d", resp.Status)
	}
	shownValues := dbRows(tab, dbSectionTable("values"))
	cards := btEval[[]dbCard](tab, `[...document.querySelectorAll("main section.card")].map(s => ({
		Name: s.querySelector("h3").textContent.trim(),
		Rows: [...s.querySelectorAll("table tbody tr")].map(r => [...r.cells].map(c => c.textContent.replace(/\s+/g, " ").trim()))}))`)

	// The values, as the store holds them.
	fs, err := e.api.Fields.List(ctx, e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	own := dbHeld(t, e, "erin")
	if diff := cmp.Diff(map[string]string{"birthday": "--04-17", "shoe_size": "41"}, own); diff != "" {
		t.Fatalf("the store holds for erin (-seeded +held):\n%s", diff)
	}
	var wantValues [][]string
	for _, f := range fs {
		if v, ok := own[f.Key]; ok {
			var uses []string
			for _, p := range f.Purposes {
				uses = append(uses, name(p))
			}
			if f.Type == fields.TypeDate {
				// Shown as people read it: the store's --04-17 is 17 April.
				m, d, _ := fields.MonthDay(v)
				v = fmt.Sprint(d) + " " + en.T(fmt.Sprintf("month_%d", m))
			}
			wantValues = append(wantValues, []string{f.TextFor("en").Label, v, strings.Join(uses, ", ")})
		}
	}
	if diff := cmp.Diff(wantValues, shownValues); diff != "" {
		t.Errorf("values table against the store (-held +shown):\n%s", diff)
	}
	ps, err := e.api.Purposes.List(ctx, e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	disclosed := map[string]string{}
	for _, p := range ps {
		for _, f := range e.subjectFields(t, "erin", p.Key).Fields {
			disclosed[f.Key] = f.Value
		}
	}
	if diff := cmp.Diff(own, disclosed); diff != "" {
		t.Errorf("the fields API against the fields service (-own +disclosed):\n%s", diff)
	}

	// The histories, against the ledger; fields are named by their labels.
	labels := map[string]string{}
	for _, f := range fs {
		labels[f.Key] = f.TextFor("en").Label
	}
	evs := dbEvents(t, e, "erin")
	var wantCards []dbCard
	wantCount, gotCount := map[string]int{}, map[string]int{}
	for _, p := range ps {
		c := dbCard{Name: name(p.Key)}
		for _, ev := range evs {
			if ev.Purpose != p.Key {
				continue
			}
			c.Rows = append(c.Rows, []string{formatTime(ev.RecordedAt), dbChoice(en, ev, labels), en.T("channel_" + ev.Channel), fmt.Sprint(ev.NoticeVersion)})
			wantCount[p.Key]++
		}
		wantCards = append(wantCards, c)
	}
	for _, c := range cards {
		key := c.Name
		for _, p := range ps {
			if name(p.Key) == c.Name {
				key = p.Key
			}
		}
		if len(c.Rows) > 0 {
			gotCount[key] += len(c.Rows)
		}
	}
	if len(evs) < 4 {
		t.Fatalf("erin has %d events, want at least two grants and two values", len(evs))
	}
	if diff := cmp.Diff(wantCount, gotCount); diff != "" {
		t.Errorf("history rows per purpose against ledger events per purpose (-ledger +page):\n%s", diff)
	}
	if diff := cmp.Diff(wantCards, cards, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("purpose cards and their histories against the ledger (-ledger +page):\n%s", diff)
	}
	for _, ev := range evs {
		if ev.Purpose == "" {
			t.Logf("event %d (%s) belongs to no purpose and is in no history", ev.Seq, ev.State)
		}
	}
}

// dbChoice words an event as the shopper's history should: what was
// decided, or which detail was given or erased.
func dbChoice(l *locales.Localizer, ev eventJSON, labels map[string]string) string {
	switch {
	case ev.Field != "" && ev.State == string(consent.Provided):
		return l.Tf("data_event_provided", "Field", labels[ev.Field])
	case ev.Field != "":
		return l.Tf("data_event_erased", "Field", labels[ev.Field])
	case ev.State == string(consent.Granted):
		return l.T("data_event_granted")
	case ev.State == string(consent.Denied):
		return l.T("data_event_denied")
	}
	return l.T("data_event_withdrawn")
}

// --- helpers ---

// dbNewTab opens a browser tab on e's server.
func dbNewTab(t *testing.T, e *testEnv, browser context.Context, acceptLanguage string, script bool) *btTab {
	t.Helper()
	return (&btEnv{t: t, api: e.api, base: e.srv.URL, browser: browser}).newTab(acceptLanguage, script)
}

// dbSignIn signs subject in to shop-a's center in the tab, through a
// preference link the merchant asked for.
func dbSignIn(b *btTab, e *testEnv, subject string) {
	b.t.Helper()
	var link struct {
		URL string `json:"url"`
	}
	e.mustStatus(e.do("POST", "/v1/subjects/"+subject+"/preference-links", e.keyA, ""), 201).json(b.t, &link)
	if !strings.HasPrefix(link.URL, e.srv.URL+dbBase+"p?t=") {
		b.t.Fatalf("preference link %q does not lead to %s's center", link.URL, dbSlug)
	}
	if resp := b.open(link.URL); resp.Status != 200 {
		b.t.Fatalf("link page: %d", resp.Status)
	}
	resp := b.submit(`form.panel button[type=submit]`)
	if resp.Status != 200 || btPath(resp.URL) != dbBase+"preferences" {
		b.t.Fatalf("signing in landed on %d %s", resp.Status, resp.URL)
	}
	if dbCookie(b, "fl_session") == nil {
		b.t.Fatal("signed in without a session cookie")
	}
}

// dbCookie returns the browser's cookie for shop-a's center by name, or nil.
func dbCookie(b *btTab, name string) *network.Cookie {
	b.t.Helper()
	ctx, cancel := b.step()
	defer cancel()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{b.e.base + dbBase}})
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

// dbScriptsRun says whether the page runs scripts: it adds the center's
// own script to the page again, with an element it acts on (the saved
// notice it gives focus to), and waits up to two seconds for it to act.
func dbScriptsRun(b *btTab) bool {
	b.t.Helper()
	btEval[bool](b, `(() => {
		const probe = document.createElement("div");
		probe.id = "saved";
		probe.hidden = true;
		document.body.append(probe);
		const s = document.createElement("script");
		s.src = "/static/center.js?probe=" + Date.now();
		document.body.append(s);
		return true;
	})()`)
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if btEval[bool](b, `document.getElementById("saved").getAttribute("tabindex") === "-1"`) {
			return true
		}
	}
	return false
}

// dbSectionTable is a JavaScript expression for the first table under the
// h2 with id, before the next h2; null if there is none.
func dbSectionTable(id string) string {
	return `(() => {
		for (let el = document.getElementById(` + btJSString(id) + `); el && (el = el.nextElementSibling) && el.tagName !== "H2";) {
			if (el.tagName === "TABLE") return el;
			const t = el.querySelector("table");
			if (t) return t;
		}
		return null;
	})()`
}

// dbRows lists the cells of a table's body rows, header cells included,
// spaces collapsed; none for a missing table.
func dbRows(b *btTab, table string) [][]string {
	b.t.Helper()
	return btEval[[][]string](b, `(t => t ? [...t.tBodies[0].rows].map(r => [...r.cells].map(c => c.textContent.replace(/\s+/g, " ").trim())) : [])(`+table+`)`)
}

// dbPurposeNamer names shop-a's purposes in lang.
func dbPurposeNamer(t *testing.T, e *testEnv, lang string) func(key string) string {
	t.Helper()
	ps, err := e.api.Purposes.List(context.Background(), e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	return func(key string) string {
		for _, p := range ps {
			if p.Key == key {
				return p.TextFor(lang).Name
			}
		}
		t.Fatalf("no purpose %s", key)
		return ""
	}
}

// dbFieldLabel is a field's label in lang.
func dbFieldLabel(t *testing.T, e *testEnv, key, lang string) string {
	t.Helper()
	fs, err := e.api.Fields.List(context.Background(), e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		if f.Key == key {
			return f.TextFor(lang).Label
		}
	}
	t.Fatalf("no field %s", key)
	return ""
}

// dbHeld is every value the store holds for subject, opened by the fields
// service whatever the purposes allow.
func dbHeld(t *testing.T, e *testEnv, subject string) map[string]string {
	t.Helper()
	ctx := context.Background()
	fs, err := e.api.Fields.List(ctx, e.merchA.ID)
	if err != nil {
		t.Fatal(err)
	}
	own, err := e.api.Fields.Own(ctx, e.merchA.ID, subject, fs)
	if err != nil {
		t.Fatal(err)
	}
	return own
}

// dbEvents lists the subject's events through the merchant API.
func dbEvents(t *testing.T, e *testEnv, subject string) []eventJSON {
	t.Helper()
	var out struct {
		Events []eventJSON `json:"events"`
	}
	e.mustStatus(e.do("GET", fmt.Sprintf("/v1/subjects/%s/events?limit=%d", url.PathEscape(subject), consent.MaxPage), e.keyA, ""), 200).json(t, &out)
	return out.Events
}
