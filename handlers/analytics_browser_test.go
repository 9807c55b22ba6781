package handlers_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/reach"
)

// TestConsoleAnalyticsInBrowser: decisions made over the API are rolled
// up; the owner sees them on the analytics page as two SVG charts, each
// with its table, picks weeks with the form (no script), downloads the
// CSV, and a bad date gets a message, not an error page. Each chart is
// photographed (kept under $FINELINE_SCREENSHOTS when set).
func TestConsoleAnalyticsInBrowser(t *testing.T) {
	browser := btStartBrowser(t)
	e := ctNewEnv(t, browser)
	axe := btAxeSource(t)
	en := e.loc("en")
	if r := e.apiCall(http.MethodPost, "/v1/purposes", `{"key":"newsletter","texts":{"en":{"name":"Newsletter","statement":"We email you our news and offers, about once a week."}},"data_categories":["contact"]}`); r.status != 201 {
		t.Fatalf("purpose: %d %s", r.status, r.body)
	}
	for _, d := range []struct{ subject, state, locale string }{
		{"a1", "granted", "de"}, {"a2", "granted", "en"}, {"a3", "denied", ""}, {"a4", "granted", "en"}, {"a4", "withdrawn", "en"},
	} {
		if r := e.apiCall(http.MethodPut, "/v1/subjects/"+d.subject+"/consents/newsletter", `{"state":"`+d.state+`","locale":"`+d.locale+`"}`); r.status != 201 {
			t.Fatalf("%s: %d %s", d.subject, r.status, r.body)
		}
	}
	ctx := context.Background()
	m, err := e.api.Merchants.Store.Merchant(ctx, e.id)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.api.Rollups.CatchUp(ctx, m); err != nil {
		t.Fatal(err)
	}
	owner := e.newTab("en", true)
	e.signInWith(owner, e.consoleLink(e.owner, 1))
	// The overview counts today's shoppers and grants.
	if got := tableRows(owner, "main table.data-table"); len(got) != 1 || got[0][3] != "2 / 4" || got[0][4] != "3" {
		t.Errorf("the overview's purposes: %q", got)
	}
	owner.submit(`nav a[href$="/analytics"]`)
	if got := owner.text("h1"); got != en.T("console_nav_analytics") {
		t.Fatalf("h1 %q", got)
	}
	e.pageChecks(owner, axe, "analytics page")
	if n := btEval[int](owner, `document.querySelectorAll("figure[aria-labelledby=flows-title] svg rect").length`); n != 3*30 {
		t.Errorf("%d bars, want 90 (three for each of 30 days)", n)
	}
	if n := btEval[int](owner, `document.querySelectorAll("figure.chart svg polyline").length`); n != 2 {
		t.Errorf("%d lines, want 2", n)
	}
	if got := btEval[string](owner, `document.querySelector("figure.chart svg").getAttribute("aria-labelledby")`); got != "stock-title stock-desc" {
		t.Errorf("the chart is labelled by %q", got)
	}
	rows := tableRows(owner, "#periods-table")
	if len(rows) != 30 {
		t.Fatalf("%d rows in the table", len(rows))
	}
	// period, allowed, asked, opt-in rate, grants, denials, withdrawals, withdrawal rate
	if got := strings.Join(rows[29][1:], "|"); got != "2|4|50.0 %|3|1|1|33.3 %" {
		t.Errorf("today's row: %q", got)
	}
	if got := tableRows(owner, "#locales-table"); len(got) != 3 || strings.Join(got[0], "|") != "de|1|0|0" || strings.Join(got[1], "|") != "en|2|0|1" ||
		strings.Join(got[2], "|") != en.T("console_locale_unknown")+"|0|1|0" {
		t.Errorf("by locale: %q", got)
	}
	if got := tableRows(owner, "#channels-table"); len(got) != 1 || strings.Join(got[0], "|") != en.T("console_channel_api")+"|3|1|1" {
		t.Errorf("by channel: %q", got)
	}
	dir := os.Getenv("FINELINE_SCREENSHOTS")
	for _, id := range []string{"stock", "flows"} {
		screenshotChart(t, owner, id, dir)
	}

	// Weeks, from the form.
	owner.fill("#interval", "week")
	owner.fill("#from", "")
	owner.fill("#to", "")
	resp := owner.submit(`form.period-picker button[type=submit]`)
	if resp.Status != 200 || !strings.Contains(resp.URL, "interval=week") {
		t.Fatalf("the picker landed on %d %s", resp.Status, resp.URL)
	}
	if n := len(owner.texts(`#periods-table tbody tr`)); n != 12 {
		t.Errorf("%d weeks, want 12", n)
	}

	// The CSV link downloads the same numbers, for the signed-in member only.
	href := owner.attr(`a[download]`, "href")
	cookie := e.staffCookie(owner, ctSlug)
	req, _ := http.NewRequest(http.MethodGet, owner.url(href), nil)
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/csv") ||
		!strings.HasPrefix(string(body), "period_start,period_end,purpose,channel,locale,") || !strings.Contains(string(body), ",newsletter,all,all,2,4,3,1,1,0.5,") {
		t.Errorf("csv: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	anon, _ := http.Get(owner.url(href))
	if anon.StatusCode == 200 {
		t.Errorf("the CSV without a session: %d", anon.StatusCode)
	}
	anon.Body.Close()

	// A bad date: the form again, with a message.
	if resp := owner.open("/m/" + ctSlug + "/analytics?from=2026-13-01"); resp.Status != 400 {
		t.Errorf("a bad date: %d", resp.Status)
	}
	if got := owner.text(`[role=alert] p`); got != en.T("console_analytics_bad_query") {
		t.Errorf("a bad date says %q", got)
	}
	if n := btEval[int](owner, `document.querySelectorAll("form.period-picker").length`); n != 1 {
		t.Error("the bad date's page has no form to fix it")
	}

	// The banner and a change of terms: the banner came up three times,
	// Accept once and Choose once (a save with three clicks after it); a
	// material change to the newsletter, re-accepted by a1, declined by a2.
	now := time.Now().In(m.Location())
	for _, sg := range []reach.Signal{{Event: reach.Shown}, {Event: reach.Shown}, {Event: reach.Shown},
		{Event: reach.Choice, Button: reach.Accept, Layer: 1, AfterBanner: true, Clicks: 1, Granted: true},
		{Event: reach.Choose}, {Event: reach.Choice, Button: reach.Save, Layer: 2, AfterBanner: true, Clicks: 3, Granted: true}} {
		e.api.Reach.Add(m.ID, now, sg)
	}
	e.api.Reach.Flush(ctx)
	v, err := e.api.Notices.Create(ctx, m.ID, notices.Content{Material: true, Purposes: []string{"newsletter"},
		Texts: map[string]notices.Summary{"en": {Summary: "The newsletter now comes twice a week.", Text: "Twice a week."}}}, func(string) bool { return true })
	if err == nil {
		_, err = e.api.Notices.Publish(ctx, m.ID, v.Number, time.Time{}, 14*24*time.Hour)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range [][2]string{{"a1", "granted"}, {"a2", "withdrawn"}} {
		if r := e.apiCall(http.MethodPut, "/v1/subjects/"+d[0]+"/consents/newsletter", `{"state":"`+d[1]+`"}`); r.status != 201 {
			t.Fatalf("%s: %d %s", d[0], r.status, r.body)
		}
	}
	if err := e.api.Rollups.CatchUp(ctx, m); err != nil {
		t.Fatal(err)
	}
	owner.open("/m/" + ctSlug + "/analytics")
	e.pageChecks(owner, axe, "analytics page with the banner and a change of terms")
	banner := tableRows(owner, "#banner-table")
	// period, shown, chose, no choice, accept, decline, choose, clicks to grant, to withdraw (widget, then center)
	if len(banner) != 30 || strings.Join(banner[29][1:], "|") != "3|2|33.3 %|50.0 %|0.0 %|50.0 %|1|—|—|—" {
		t.Errorf("the banner's table: %d rows, today %q", len(banner), banner[len(banner)-1])
	}
	// version, effective, purpose, affected, re-accepted, declined, erased, still due, lapsed
	if got := tableRows(owner, "#notices-table"); len(got) != 1 || strings.Join(got[0][2:], "|") != "Newsletter|2|1|1|0|0|0" {
		t.Errorf("the changes of terms: %q", got)
	}
	if got := tableRows(owner, "#renewals-table"); len(got) != 1 || strings.Join(got[0][1:], "|") != "1|1" {
		t.Errorf("the renewals by day: %q", got)
	}
	// An offer and one member.
	for _, p := range demo.Purposes() {
		if p.Key != "newsletter" {
			p.MerchantID = m.ID
			if _, err := e.api.Purposes.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, f := range demo.Fields() {
		f.MerchantID = m.ID
		if _, err := e.api.Fields.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	o := demo.BirthdayOffer()
	o.MerchantID = m.ID
	if _, err := e.api.Offers.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Offers.Accept(ctx, offers.Acceptance{MerchantID: m.ID, SubjectID: "a5", Offer: o.Key, Values: map[string]string{"birthday": "--03-15"},
		Channel: consent.ChannelCenter, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	if err := e.api.Rollups.CatchUp(ctx, m); err != nil {
		t.Fatal(err)
	}
	owner.open("/m/" + ctSlug + "/analytics")
	e.pageChecks(owner, axe, "analytics page with an offer")
	// offer, members, joined, left, issued, redeemed, still in after 30, 90, 365 days
	if got := tableRows(owner, "#offers-table"); len(got) != 1 || strings.Join(got[0], "|") != o.TextFor("en").Title+"|1|1|0|0|0|—|—|—" {
		t.Errorf("the offers: %q", got)
	}
	if got := tableRows(owner, "#offer-0-table"); len(got) != 30 || strings.Join(got[29][1:], "|") != "1|0|0|0|0" {
		t.Errorf("the offer's periods: %d rows, today %q", len(got), got[len(got)-1])
	}
	for _, id := range []string{"banner", "renewals", "offer-0"} {
		screenshotChart(t, owner, id, dir)
	}
}

// screenshotChart takes a Chromium screenshot of the chart id: something
// is drawn in it. With dir set, it is kept there.
func screenshotChart(t *testing.T, tab *btTab, id, dir string) {
	t.Helper()
	sctx, cancel := tab.step()
	shot, err := chromedp.Run(sctx, chromedp.Screenshot(chromedp.CSS(`figure[aria-labelledby="`+id+`-title"]`)))
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("the %s chart's screenshot: %v", id, err)
	}
	if n := colours(img); n < 4 || img.Bounds().Dx() < 300 {
		t.Errorf("the %s chart's screenshot is %v with %d colours: nothing drawn", id, img.Bounds(), n)
	}
	if dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "analytics-"+id+".png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tableRows reads a table's body, cell by cell.
func tableRows(tab *btTab, sel string) [][]string {
	return btEval[[][]string](tab, `[...document.querySelectorAll(`+"`"+sel+` tbody tr`+"`"+`)].map(r => [...r.children].map(c => c.textContent.trim()))`)
}

// colours counts the distinct colours of an image (up to 64).
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y && len(seen) < 64; y += 2 {
		for x := b.Min.X; x < b.Max.X && len(seen) < 64; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r >> 8, g >> 8, bl >> 8, a >> 8}] = true
		}
	}
	return len(seen)
}
