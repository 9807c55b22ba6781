package handlers_test

// A browser test of the value exchange in the hosted preference center: a
// real Chromium, living in Tokyo, signs a shopper in with a preference link,
// reads the birthday offer and its notice of financial incentive, joins it
// by giving a birthday, sees the reward the issuer sends, and switches the
// purpose off again, which erases the birthday.

import (
	"context"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/store/storetest"
)

const (
	// obOffer is the birthday offer's card on the preferences page.
	obOffer = `#offer-birthday_treat`
	// obOfferForm is the form on that card, shown until the shopper joins.
	obOfferForm = obOffer + ` form.offer-form`
	// obPurposeField is the birthday's inputs under the Birthday reward
	// purpose card, in the preferences form.
	obPurposeField = `#prefs .field[data-needs~="birthday_reward"]`
	// obZone is the time zone the browser reports.
	obZone = "Asia/Tokyo"
)

// TestOfferFlowInBrowser: the offer card says what the shopper gives, gets
// and how to stop, with the notice of financial incentive behind a
// disclosure; the birthday inputs under the purpose follow its switch; the
// shopper joins with month and day from the card's selects and the
// browser's time zone; the merchant reads the birthday; the issuer's reward
// shows on the rewards page, ready, then used; switching the purpose off
// erases the birthday and brings the offer back. axe-core checks each page.
func TestOfferFlowInBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	var axe []byte // nil: axe-core is not installed here (outside CI)
	t.Run("AxeSource", func(t *testing.T) { axe = btAxeSource(t) })

	e := newTestEnv(t)
	e.addValueExchange(t)
	ctx := context.Background()
	en := e.api.Center.Locales.For("en")
	offer := demo.BirthdayOffer()
	text := offer.Texts["en"]
	tokyo, err := time.LoadLocation(obZone)
	if err != nil {
		t.Fatalf("time zone data: %v", err)
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/olive", e.keyA, `{"email":"olive@example.com"}`), 201)

	tab := (&btEnv{t: t, api: e.api, base: e.srv.URL, browser: browser}).newTab("en", true)
	checkA11y := func(page string) {
		t.Helper()
		if axe != nil {
			tab.axe(axe, page)
		}
	}
	// The browser lives in Tokyo, whatever the machine's own zone.
	func() {
		sctx, cancel := tab.step()
		defer cancel()
		if _, err := chromedp.Call(sctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: obZone}); err != nil {
			t.Fatalf("override the browser's time zone: %v", err)
		}
	}()

	// --- 1. sign in with a preference link ---
	var link struct {
		URL string `json:"url"`
	}
	e.mustStatus(e.do("POST", "/v1/subjects/olive/preference-links", e.keyA, ""), 201).json(t, &link)
	if !strings.HasPrefix(link.URL, e.srv.URL+"/c/shop-a/p?t=") {
		t.Fatalf("preference link %q does not lead to shop-a's center", link.URL)
	}
	if resp := tab.open(link.URL); resp.Status != 200 {
		t.Fatalf("link page: %d", resp.Status)
	}
	if got := tab.text(`form.panel button[type=submit]`); got != en.T("link_button") {
		t.Fatalf("link page button = %q", got)
	}
	resp := tab.submit(`form.panel button[type=submit]`)
	if resp.Status != 200 || btPath(resp.URL) != "/c/shop-a/preferences" {
		t.Fatalf("signing in landed on %d %s", resp.Status, resp.URL)
	}
	if got := btEval[string](tab, `Intl.DateTimeFormat().resolvedOptions().timeZone`); got != obZone {
		t.Fatalf("the browser's time zone is %q, want the override %s", got, obZone)
	}

	// --- 2. the offer card and the fields under the purpose ---
	if got := tab.text(`#offers-title`); got != en.T("offers_title") {
		t.Errorf("offers heading = %q", got)
	}
	if got := tab.text(obOffer + ` h3`); got != text.Title {
		t.Fatalf("offer title = %q, want %q", got, text.Title)
	}
	wantExchange := [][]string{
		{en.T("offer_give"), "Your birthday"},
		{en.T("offer_get"), text.Reward},
		{en.T("offer_how_stop"), en.Tf("offer_stop", "Purpose", "Birthday reward", "Fields", "Your birthday")},
	}
	if diff := cmp.Diff(wantExchange, obExchange(tab)); diff != "" {
		t.Errorf("what the shopper gives, gets and how to stop (-want +got):\n%s", diff)
	}
	details := obOffer + ` details.incentive`
	if got := tab.text(details + ` summary`); got != en.T("offer_notice") {
		t.Errorf("notice summary = %q", got)
	}
	valueShown := `[...document.querySelectorAll(` + btJSString(details+` p`) + `)].some(p => p.textContent === ` + btJSString(text.Notice.ValueEstimate) + ` && p.checkVisibility())`
	if btEval[bool](tab, `document.querySelector(`+btJSString(details)+`).open`) || btEval[bool](tab, valueShown) {
		t.Error("the notice of financial incentive is open before the shopper opens it")
	}
	tab.click(details + ` summary`)
	if !btEval[bool](tab, `document.querySelector(`+btJSString(details)+`).open`) || !btEval[bool](tab, valueShown) {
		t.Fatal("clicking the summary does not show the value estimate")
	}
	wantNotice := []string{en.T("offer_terms"), en.T("offer_opt_in"), en.T("offer_withdraw"), en.T("offer_value")}
	if diff := cmp.Diff(wantNotice, tab.texts(details+` h4`)); diff != "" {
		t.Errorf("notice sections (-want +got):\n%s", diff)
	}
	n := text.Notice
	if diff := cmp.Diff([]string{n.Summary, n.MaterialTerms, n.HowToOptIn, n.RightToWithdraw, n.ValueEstimate, n.ValueMethod}, tab.texts(details+` p`)); diff != "" {
		t.Errorf("notice text (-want +got):\n%s", diff)
	}

	// The birthday under its purpose can be given only while the purpose
	// is on; the card's own selects are always usable.
	if on := tab.checkedKeys(); len(on) != 0 {
		t.Fatalf("switches on before any choice: %v", on)
	}
	if got := obDisabled(tab, obPurposeField+` select`); !cmp.Equal(got, []bool{true, true}) {
		t.Fatalf("birthday selects under the switched-off purpose: disabled=%v, want both disabled", got)
	}
	if got := obDisabled(tab, `#prefs .field[data-needs~="recommendations"] select`); !cmp.Equal(got, []bool{true}) {
		t.Errorf("shoe size select under the switched-off purpose: disabled=%v", got)
	}
	if got := obDisabled(tab, obOfferForm+` select`); !cmp.Equal(got, []bool{false, false}) {
		t.Errorf("the offer card's selects: disabled=%v, want usable", got)
	}
	tab.click(`#p-birthday_reward`)
	if got := obDisabled(tab, obPurposeField+` select`); !cmp.Equal(got, []bool{false, false}) {
		t.Fatalf("birthday selects after switching the purpose on: disabled=%v, want enabled", got)
	}
	if got, want := tab.text(`#unsaved`), tab.attr(`#prefs`, "data-unsaved-one"); got != want {
		t.Errorf("unsaved counter = %q, want %q", got, want)
	}
	// Both birthdays are on the page now, the offer's and the purpose's:
	// each input has its own id and its own label.
	if dup := btEval[[]string](tab, `(() => { const n = {}; document.querySelectorAll("[id]").forEach(e => n[e.id] = (n[e.id] || 0) + 1);
		return Object.keys(n).filter(id => n[id] > 1); })()`); len(dup) != 0 {
		t.Errorf("ids used more than once on the preferences page with the offer card: %v", dup)
	}
	if unlabelled := btEval[[]string](tab, `[...document.querySelectorAll("select, input:not([type=hidden])")].filter(e => e.labels.length === 0 && !e.getAttribute("aria-labelledby")).map(e => ((e.closest("form") || {}).id || "") + " " + e.name)`); len(unlabelled) != 0 {
		t.Errorf("inputs without a label of their own on the preferences page with the offer card: %v", unlabelled)
	}
	tab.click(`#p-birthday_reward`)
	if got := obDisabled(tab, obPurposeField+` select`); !cmp.Equal(got, []bool{true, true}) {
		t.Fatalf("birthday selects after switching the purpose off again: disabled=%v", got)
	}
	if !btEval[bool](tab, `document.querySelector("#unsaved").hidden`) {
		t.Errorf("unsaved counter still shown after undoing the change: %q", tab.text(`#unsaved`))
	}
	checkA11y("preferences page with the offer card and its notice open")

	// --- 3. join the offer with a birthday ---
	if got := btEval[string](tab, `document.querySelector(`+btJSString(obOfferForm+` input.tz`)+`).value`); got != obZone {
		t.Errorf("the offer form's time zone input = %q, want the browser's %s", got, obZone)
	}
	tab.do(
		chromedp.SetValue(chromedp.CSS(obOfferForm+` select[name="field.birthday.month"]`), "07"),
		chromedp.SetValue(chromedp.CSS(obOfferForm+` select[name="field.birthday.day"]`), "19"),
	)
	if diff := cmp.Diff([][]string{{"field.birthday.month", "07", "July"}, {"field.birthday.day", "19", "19"}}, obSelected(tab, obOfferForm+` select`)); diff != "" {
		t.Fatalf("chosen birthday (-want +got):\n%s", diff)
	}
	button := obOfferForm + ` button[type=submit]`
	if got := tab.text(button); got != en.Tf("offer_accept", "Title", text.Title) {
		t.Errorf("offer button = %q", got)
	}
	resp = tab.submit(button)
	u, err := url.Parse(resp.URL)
	if err != nil {
		t.Fatal(err)
	}
	receipt := u.Query().Get("receipt")
	if resp.Status != 200 || u.Path != "/c/shop-a/rewards" || u.Query().Get("joined") != "birthday_treat" || len(receipt) != 22 {
		t.Fatalf("joining landed on %d %s, want the rewards page with the offer joined and a receipt", resp.Status, resp.URL)
	}
	if got := tab.text(`#saved h2`); got != en.Tf("rewards_joined", "Title", text.Title) {
		t.Errorf("joined notice = %q", got)
	}
	if got := tab.attr(`#saved a`, "href"); got != "/c/shop-a/receipts/"+receipt {
		t.Errorf("receipt link after joining = %q", got)
	}
	nextBirthday := offers.Next(time.July, 19, *offer.Birthday, tokyo, time.Now()).Format(time.DateOnly)
	if diff := cmp.Diff([]string{en.Tf("rewards_next", "Title", text.Title, "When", nextBirthday)}, tab.texts(`.active-offers li`)); diff != "" {
		t.Errorf("coming up after joining (-want +got):\n%s", diff)
	}
	if got := tab.text(`main p.lead`); got != en.T("rewards_none") || btEval[int](tab, `document.querySelectorAll(".rewards li").length`) != 0 {
		t.Errorf("rewards before any is issued: %q", got)
	}
	checkA11y("rewards page after joining")

	if a := e.subjectFields(t, "olive", "birthday_reward"); !a.Allowed || len(a.Fields) != 1 || a.Fields[0].Key != "birthday" || a.Fields[0].Value != "--07-19" {
		t.Fatalf("the merchant reads %+v, want the birthday --07-19", a)
	}
	if got := e.reason(t, "olive", "birthday_reward"); got != "granted" {
		t.Fatalf("birthday_reward after joining is %s", got)
	}
	var grants []wbEvent
	for _, ev := range wbEvents(t, e, "olive") {
		if ev.State == "granted" {
			grants = append(grants, ev)
		}
	}
	if len(grants) != 1 || grants[0].Purpose != "birthday_reward" || grants[0].Channel != "center" || !strings.HasPrefix(grants[0].Actor, "session:") {
		t.Errorf("grants after joining: %+v, want birthday_reward granted once in the center by the session", grants)
	}
	var sub struct {
		TimeZone string `json:"time_zone"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/olive", e.keyA, ""), 200).json(t, &sub)
	if sub.TimeZone != obZone {
		t.Fatalf("the shopper's time zone is %q, want the browser's %s", sub.TimeZone, obZone)
	}
	if _, err := time.LoadLocation(sub.TimeZone); err != nil {
		t.Fatalf("the stored time zone does not load: %v", err)
	}

	// --- 4. the preferences page shows the offer joined ---
	tab.open("/c/shop-a/preferences")
	if got := tab.text(obOffer + ` .joined`); !strings.HasPrefix(got, en.T("offer_joined")) {
		t.Errorf("joined offer card says %q", got)
	}
	if got := tab.attr(obOffer+` .joined a`, "href"); got != "/c/shop-a/rewards" {
		t.Errorf("joined offer card links to %q", got)
	}
	if btEval[bool](tab, `!!document.querySelector(`+btJSString(obOfferForm)+`)`) {
		t.Error("the joined offer still shows its form")
	}
	if diff := cmp.Diff([]string{"birthday_reward"}, tab.checkedKeys()); diff != "" {
		t.Fatalf("switches after joining (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"field.birthday.month", "07", "July"}, {"field.birthday.day", "19", "19"}}, obSelected(tab, obPurposeField+` select`)); diff != "" {
		t.Errorf("birthday under the purpose after joining (-want +got):\n%s", diff)
	}
	if got := obDisabled(tab, obPurposeField+` select`); !cmp.Equal(got, []bool{false, false}) {
		t.Errorf("birthday selects under the purpose that is on: disabled=%v", got)
	}
	checkA11y("preferences page with the offer joined")

	// A reward is due only on the birthday and valid for 30 days from it.
	// For a reward usable now whatever today is, the shopper changes the
	// birthday to today (in Tokyo) under the purpose card and saves.
	today := time.Now().In(tokyo)
	month, day := fmt.Sprintf("%02d", int(today.Month())), fmt.Sprintf("%02d", today.Day())
	tab.do(
		chromedp.SetValue(chromedp.CSS(obPurposeField+` select[name="field.birthday.month"]`), month),
		chromedp.SetValue(chromedp.CSS(obPurposeField+` select[name="field.birthday.day"]`), day),
	)
	resp = tab.submit(`button[name=action][value=save]`)
	if resp.Status != 200 || btPath(resp.URL) != "/c/shop-a/preferences" {
		t.Fatalf("saving the new birthday landed on %d %s", resp.Status, resp.URL)
	}
	if got := tab.text(`#saved h2`); got != en.T("saved_title") {
		t.Errorf("saved notice after changing the birthday: %q", got)
	}
	wantBirthday := "--" + month + "-" + day
	if a := e.subjectFields(t, "olive", "birthday_reward"); !a.Allowed || len(a.Fields) != 1 || a.Fields[0].Value != wantBirthday {
		t.Fatalf("after changing the birthday the merchant reads %+v, want %s", a, wantBirthday)
	}
	if diff := cmp.Diff([][]string{{"field.birthday.month", month, en.T(fmt.Sprintf("month_%d", int(today.Month())))}, {"field.birthday.day", day, strconv.Itoa(today.Day())}},
		obSelected(tab, obPurposeField+` select`)); diff != "" {
		t.Errorf("birthday under the purpose after changing it (-want +got):\n%s", diff)
	}

	// --- 5. the issuer sends the birthday reward ---
	from := time.Date(today.Year(), today.Month(), today.Day(), 0, 0, 0, 0, tokyo)
	at := from.Add(30 * time.Minute) // the issuer's clock, fixed on the birthday in Tokyo
	issuer := &offers.Issuer{Offers: e.api.Offers, Fields: e.api.Fields, Subjects: e.api.Subjects, Purposes: e.api.Purposes, Merchants: e.store,
		Signin: e.api.Center.Signin, Locales: e.api.Center.Locales, Mails: e.api.Center.Mails, Mailer: e.api.Center.Mailer, BaseURL: e.srv.URL,
		Poll: time.Hour, Lease: time.Minute, MaxAttempts: 3, Now: func() time.Time { return at }, Log: storetest.Logger()}
	if n, err := issuer.Issue(ctx); err != nil || n != 1 {
		t.Fatalf("Issue = %d, %v; want 1 reward", n, err)
	}
	if n, err := issuer.Issue(ctx); err != nil || n != 0 {
		t.Fatalf("Issue again = %d, %v; want nothing issued twice", n, err)
	}
	if n, err := issuer.Deliver(ctx); err != nil || n != 1 {
		t.Fatalf("Deliver = %d, %v; want 1 email sent", n, err)
	}
	rw := obReward(t, e)
	until := from.AddDate(0, 0, offer.Birthday.ValidDays)
	if rw.Offer != "birthday_treat" || rw.Period != strconv.Itoa(today.Year()) || !rw.ValidFrom.Equal(from) || !rw.ValidUntil.Equal(until) || rw.Redeemed || rw.Email != "sent" {
		t.Fatalf("issued reward %+v, want period %d valid %s to %s, mailed", rw, today.Year(), from, until)
	}
	if !regexp.MustCompile(`^[A-Z0-9]{4}(-[A-Z0-9]{4})+$`).MatchString(rw.Code) || offers.Display(strings.ReplaceAll(rw.Code, "-", "")) != rw.Code {
		t.Fatalf("the API's code %q is not in its display form", rw.Code)
	}
	tab.open("/c/shop-a/rewards")
	validity := en.Tf("reward_valid", "From", from.Format(time.DateOnly), "Until", until.AddDate(0, 0, -1).Format(time.DateOnly))
	wantCard := obRewardCard{Title: text.Title, Reward: text.Reward, Code: rw.Code, Meta: validity + " · " + en.T("reward_ready")}
	if diff := cmp.Diff([]obRewardCard{wantCard}, obRewardCards(tab)); diff != "" {
		t.Fatalf("reward cards (-want +got):\n%s", diff)
	}
	if got := tab.texts(`.active-offers li`); len(got) != 1 || !strings.HasPrefix(got[0], text.Title+": next reward on ") {
		t.Errorf("coming up with the reward issued: %v", got)
	}
	checkA11y("rewards page with a reward ready")

	// --- 6. the shop redeems the code ---
	var redeemed rewardJSON
	e.mustStatus(e.do("POST", "/v1/rewards/"+rw.Code+"/redeem", e.keyA, ""), 200).json(t, &redeemed)
	if !redeemed.Redeemed || redeemed.RedeemedAt == nil {
		t.Fatalf("redeem answered %+v", redeemed)
	}
	if code := e.mustStatus(e.do("POST", "/v1/rewards/"+rw.Code+"/redeem", e.keyA, ""), 409).errorCode(t); code == "" {
		t.Fatal("a second redemption was not refused")
	}
	tab.open("/c/shop-a/rewards")
	wantCard.Meta, wantCard.Used = validity+" · "+en.Tf("reward_redeemed", "When", redeemed.RedeemedAt.In(tokyo).Format(time.DateOnly)), true
	if diff := cmp.Diff([]obRewardCard{wantCard}, obRewardCards(tab)); diff != "" {
		t.Fatalf("reward cards after redeeming (-want +got):\n%s", diff)
	}
	checkA11y("rewards page with a used reward")

	// --- 7. switching the purpose off erases the birthday ---
	tab.open("/c/shop-a/preferences")
	tab.click(`#p-birthday_reward`)
	if got := obDisabled(tab, obPurposeField+` select`); !cmp.Equal(got, []bool{true, true}) {
		t.Fatalf("birthday selects after switching the purpose off: disabled=%v", got)
	}
	resp = tab.submit(`button[name=action][value=save]`)
	if u, err := url.Parse(resp.URL); err != nil || resp.Status != 200 || u.Path != "/c/shop-a/preferences" || len(u.Query().Get("receipt")) != 22 {
		t.Fatalf("switching off landed on %d %s, want the preferences page with a receipt", resp.Status, resp.URL)
	}
	// The notice says the birthday went, not only the switch.
	if diff := cmp.Diff([]string{en.Tf("change_off", "Name", "Birthday reward"), en.Tf("change_erased", "Fields", "Your birthday")}, tab.texts(`#saved li`)); diff != "" {
		t.Errorf("saved notice after switching off (-want +got):\n%s", diff)
	}
	a := e.subjectFields(t, "olive", "birthday_reward")
	withheld := map[string]string{}
	for _, w := range a.Withheld {
		withheld[w.Key] = w.Reason
	}
	if a.Allowed || len(a.Fields) != 0 || withheld["birthday"] != "purpose_not_granted" {
		t.Fatalf("after switching off the merchant reads %+v, want no fields and the birthday withheld: purpose_not_granted", a)
	}
	if got := e.reason(t, "olive", "birthday_reward"); got != "withdrawn" {
		t.Errorf("birthday_reward after switching off is %s", got)
	}
	if _, err := e.store.Value(ctx, e.merchA.ID, "olive", "birthday"); err == nil {
		t.Fatal("the birthday is still stored after the purpose was switched off")
	}
	if on := tab.checkedKeys(); len(on) != 0 {
		t.Errorf("switches on after switching off: %v", on)
	}
	if btEval[bool](tab, `!!document.querySelector(`+btJSString(obOffer+` .joined`)+`)`) {
		t.Error("the offer still shows as joined after switching its purpose off")
	}
	if diff := cmp.Diff([][]string{{"field.birthday.month", "", en.T("field_month")}, {"field.birthday.day", "", en.T("field_day")}}, obSelected(tab, obOfferForm+` select`)); diff != "" {
		t.Errorf("the offer's form after switching off (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([][]string{{"field.birthday.month", "", en.T("field_month")}, {"field.birthday.day", "", en.T("field_day")}}, obSelected(tab, obPurposeField+` select`)); diff != "" {
		t.Errorf("the birthday under the purpose after switching off (-want +got):\n%s", diff)
	}
	checkA11y("preferences page after leaving the offer")
	tab.open("/c/shop-a/rewards")
	if n := btEval[int](tab, `document.querySelectorAll(".active-offers li").length`); n != 0 {
		t.Errorf("the rewards page still lists %d offers coming up after leaving", n)
	}
	if cards := obRewardCards(tab); len(cards) != 1 || cards[0].Code != rw.Code {
		t.Errorf("the used reward after leaving the offer: %+v", cards)
	}
}

// obExchange lists the offer card's terms: each dt with its dd.
func obExchange(b *btTab) [][]string {
	b.t.Helper()
	return btEval[[][]string](b, `[...document.querySelectorAll(`+btJSString(obOffer+` dl.exchange dt`)+`)].map(dt =>
		[dt.textContent.trim(), dt.nextElementSibling ? dt.nextElementSibling.textContent.replace(/\s+/g, " ").trim() : ""])`)
}

// obDisabled tells, for every match of sel, whether it is disabled.
func obDisabled(b *btTab, sel string) []bool {
	b.t.Helper()
	return btEval[[]bool](b, `[...document.querySelectorAll(`+btJSString(sel)+`)].map(e => e.disabled)`)
}

// obSelected lists every select matching sel: name, value and the chosen
// option's label.
func obSelected(b *btTab, sel string) [][]string {
	b.t.Helper()
	return btEval[[][]string](b, `[...document.querySelectorAll(`+btJSString(sel)+`)].map(s =>
		[s.name, s.value, s.selectedOptions.length ? s.selectedOptions[0].textContent.trim() : ""])`)
}

// obRewardCard is one reward on the rewards page.
type obRewardCard struct {
	Title, Reward, Code, Meta string
	Used                      bool
}

func obRewardCards(b *btTab) []obRewardCard {
	b.t.Helper()
	return btEval[[]obRewardCard](b, `[...document.querySelectorAll(".rewards li.reward")].map(li => ({
		Title: li.querySelector("h2").textContent.trim(),
		Reward: (p => p ? p.textContent.trim() : "")(li.querySelector("h2 + p:not(.code-line)")),
		Code: li.querySelector("code.code").textContent.trim(),
		Meta: li.querySelector(".meta").textContent.replace(/\s+/g, " ").trim(),
		Used: li.classList.contains("used"),
	}))`)
}

// obReward returns olive's one reward from the merchant API.
func obReward(t *testing.T, e *testEnv) rewardJSON {
	t.Helper()
	var out struct {
		Rewards []rewardJSON `json:"rewards"`
	}
	e.mustStatus(e.do("GET", "/v1/rewards?subject=olive", e.keyA, ""), 200).json(t, &out)
	if len(out.Rewards) != 1 {
		t.Fatalf("%d rewards for olive, want 1: %+v", len(out.Rewards), out.Rewards)
	}
	return out.Rewards[0]
}
