package handlers_test

import (
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
)

// TestRetirePurpose: a retired purpose is no longer offered (widget,
// preference center) or granted (API, widget, import), every check answers
// purpose_retired whatever was decided, a withdrawal still lands, its
// history stays, and another merchant's purpose of the same key is
// untouched.
func TestRetirePurpose(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["https://shop-a.example"]}`), 200)
	e.mustStatus(e.do("PUT", "/v1/subjects/rita/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/rita/consents/recommendations", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/rita/consents/newsletter", e.keyB, `{"state":"granted"}`), 201)
	// An anonymous device grants both before the retirement.
	e.mustStatus(e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"newsletter":"granted","recommendations":"granted"}}`,
		"X-Fineline-Device", "dev-retired-01", "Content-Type", "application/json"), 200)
	// A material change for the newsletter awaits rita's review.
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
	e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 200)
	awaiting := func() int {
		t.Helper()
		st, err := e.api.Ledger.StateOf(t.Context(), e.merchA.ID, "rita")
		if err != nil {
			t.Fatal(err)
		}
		aw, err := e.api.Ledger.AwaitingReview(t.Context(), e.merchA.ID, st)
		if err != nil {
			t.Fatal(err)
		}
		return len(aw)
	}
	if n := awaiting(); n != 1 {
		t.Fatalf("rita awaits %d reviews before the retirement, want 1", n)
	}

	if r := e.do("POST", "/v1/purposes/no_such/retire", e.keyA, ""); r.status != 404 {
		t.Fatalf("retire an unknown purpose: %d", r.status)
	}
	var p struct {
		Key       string  `json:"key"`
		RetiredAt *string `json:"retired_at"`
	}
	e.mustStatus(e.do("POST", "/v1/purposes/newsletter/retire", e.keyA, ""), 200).json(t, &p)
	if p.RetiredAt == nil {
		t.Fatal("no retired_at")
	}
	var again struct {
		RetiredAt *string `json:"retired_at"`
	}
	time.Sleep(5 * time.Millisecond)
	e.mustStatus(e.do("POST", "/v1/purposes/newsletter/retire", e.keyA, ""), 200).json(t, &again)
	if again.RetiredAt == nil || *again.RetiredAt != *p.RetiredAt {
		t.Errorf("retired again: %v, first %s", again.RetiredAt, *p.RetiredAt)
	}

	if got := e.reason(t, "rita", "newsletter"); got != "purpose_retired" {
		t.Errorf("check after retiring: %s", got)
	}
	if n := awaiting(); n != 0 {
		t.Errorf("rita still awaits %d reviews of a retired purpose", n)
	}
	if got := e.reason(t, "nobody", "newsletter"); got != "no_record" {
		t.Errorf("check of a subject who never decided: %s", got)
	}
	var batch struct {
		Decisions []struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		} `json:"decisions"`
	}
	e.mustStatus(e.do("POST", "/v1/check", e.keyA, `{"purpose":"newsletter","subjects":["rita"]}`), 200).json(t, &batch)
	if len(batch.Decisions) != 1 || batch.Decisions[0].Allowed || batch.Decisions[0].Reason != "purpose_retired" {
		t.Errorf("batch check after retiring: %+v", batch)
	}
	if got := e.reason(t, "rita", "recommendations"); got != "granted" {
		t.Errorf("another purpose after retiring: %s", got)
	}
	var d struct{ Reason string }
	e.mustStatus(e.do("GET", "/v1/check?subject=rita&purpose=newsletter", e.keyB, ""), 200).json(t, &d)
	if d.Reason != "granted" {
		t.Errorf("shop B's newsletter: %s", d.Reason)
	}

	// No new grant by any channel; a withdrawal still lands.
	if code := e.mustStatus(e.do("PUT", "/v1/subjects/rex/consents/newsletter", e.keyA, `{"state":"granted"}`), 409).errorCode(t); code != "purpose_retired" {
		t.Errorf("API grant: %s", code)
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/rex", e.keyA, `{}`), 201)
	var tok struct{ Token string }
	e.mustStatus(e.do("POST", "/v1/widget-sessions", e.keyA, `{"subject":"rex"}`), 201).json(t, &tok)
	r := e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"newsletter":"granted","recommendations":"granted"}}`,
		"Authorization", "Bearer "+tok.Token, "Content-Type", "application/json")
	if r.status != 409 || !strings.Contains(string(r.body), "purpose_retired") {
		t.Errorf("widget grant: %d %s", r.status, r.body)
	}
	if got := e.reason(t, "rex", "recommendations"); got != "no_record" {
		t.Errorf("a refused widget save wrote part of itself: recommendations %s", got)
	}
	ans := e.mustImport(e.keyA, importLine("ivy", "newsletter", "granted", time.Now().Add(-time.Hour), "shop"))
	if ans.Totals.Refused != 1 || ans.Lines[0].Reason != "purpose_retired" {
		t.Errorf("import of a grant: %+v", ans)
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/rita/consents/newsletter", e.keyA, `{"state":"withdrawn"}`), 201)
	if got := e.reason(t, "rita", "newsletter"); got != "purpose_retired" {
		t.Errorf("check after the withdrawal: %s", got)
	}
	evs := wbEvents(t, e, "rita")
	if len(evs) != 3 || evs[0].Purpose != "newsletter" || evs[0].State != "granted" || evs[2].State != "withdrawn" {
		t.Errorf("history after retiring: %+v", evs)
	}

	// Not offered: the widget's config and the preference center leave it out;
	// the API still lists it, retired.
	cfg := string(e.widget(t, "GET", "/w/v1/shop-a/config?lang=en", shopOrigin, "").body)
	if strings.Contains(cfg, `"key":"newsletter"`) || !strings.Contains(cfg, `"key":"recommendations"`) {
		t.Errorf("widget config after retiring: %s", cfg)
	}
	client, _ := e.signInShopper(t, "rita")
	res, err := client.Get(e.srv.URL + "/c/shop-a/preferences?lang=en")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || strings.Contains(string(page), `value="newsletter"`) || !strings.Contains(string(page), `value="recommendations"`) {
		t.Errorf("preferences after retiring: %d, newsletter offered: %v", res.StatusCode, strings.Contains(string(page), `value="newsletter"`))
	}
	listed := string(e.mustStatus(e.do("GET", "/v1/purposes/newsletter", e.keyA, ""), 200).body)
	if !strings.Contains(listed, `"retired_at":"`) {
		t.Errorf("GET purpose after retiring: %s", listed)
	}
	// A device that granted the retired purpose can still be linked to a
	// shopper: the retired purpose is not carried over, the rest is.
	e.mustStatus(e.do("PUT", "/v1/subjects/dora", e.keyA, `{}`), 201)
	e.mustStatus(e.do("POST", "/v1/widget-sessions", e.keyA, `{"subject":"dora","device_id":"dev-retired-01"}`), 201)
	if got := e.reason(t, "dora", "recommendations"); got != "granted" {
		t.Errorf("the device's other grant was not carried over: %s", got)
	}
	if r := e.do("POST", "/v1/purposes/recommendations/retire", e.keyB, ""); r.status != 200 {
		t.Errorf("shop B retires its own: %d", r.status)
	}
	if got := e.reason(t, "rita", "recommendations"); got != "granted" {
		t.Errorf("shop A's recommendations after shop B retired its own: %s", got)
	}
}

// TestRewordPurpose: editing a purpose's words is a change of terms. The
// PATCH only makes a notice draft carrying them (nothing is written if the
// words are invalid); shoppers and the API see the old words until it is
// published, then the new ones; published as material for the purpose,
// consent given before must be renewed.
func TestRewordPurpose(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["https://shop-a.example"]}`), 200)
	e.mustStatus(e.do("PUT", "/v1/subjects/wynn/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	drafts := func() int {
		t.Helper()
		var l struct {
			Notices []struct{ Status string } `json:"notices"`
		}
		e.mustStatus(e.do("GET", "/v1/notices", e.keyA, ""), 200).json(t, &l)
		n := 0
		for _, v := range l.Notices {
			if v.Status == "draft" {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		path, body, code string
		status           int
	}{
		{"/v1/purposes/newsletter", `{}`, "nothing_to_change", 400},
		{"/v1/purposes/newsletter", `{"data_categories":["health"]}`, "invalid_request", 400},
		{"/v1/purposes/newsletter", `{"texts":{"en":{"name":"N","statement":"short"}}}`, "invalid_request", 400},
		{"/v1/purposes/newsletter", `{"texts":{"xx":{"name":"Newsletter","statement":"We email you every week."}}}`, "", 400},
		{"/v1/purposes/newsletter", `{"Texts":{}}`, "unknown_field", 400},
		{"/v1/purposes/no_such", `{"data_categories":["contact"]}`, "", 404},
	} {
		r := e.do("PATCH", tc.path, e.keyA, tc.body)
		if r.status != tc.status || (tc.code != "" && !strings.Contains(string(r.body), `"code":"`+tc.code+`"`)) {
			t.Errorf("PATCH %s %s: %d %s, want %d %s", tc.path, tc.body, r.status, r.body, tc.status, tc.code)
		}
	}
	if n := drafts(); n != 0 {
		t.Fatalf("%d drafts after refused edits", n)
	}

	var made struct {
		Notice struct {
			Version  int                                 `json:"version"`
			Status   string                              `json:"status"`
			Texts    map[string]struct{ Summary string } `json:"texts"`
			Wordings []struct{ Purpose string }          `json:"wordings"`
		} `json:"notice"`
		Purpose struct {
			Texts map[string]struct{ Name string } `json:"texts"`
		} `json:"purpose"`
	}
	r := e.mustStatus(e.do("PATCH", "/v1/purposes/newsletter", e.keyA,
		`{"texts":{"en":{"name":"Weekly newsletter","statement":"We email you new arrivals every Friday."}},"data_categories":["contact","purchase_history"]}`), 201)
	r.json(t, &made)
	if made.Notice.Status != "draft" || len(made.Notice.Wordings) != 1 || made.Notice.Wordings[0].Purpose != "newsletter" ||
		r.header.Get("Location") != "/v1/notices/"+strconv.Itoa(made.Notice.Version) {
		t.Fatalf("the draft: %+v %v", made, r.header)
	}
	if n := drafts(); n != 1 {
		t.Errorf("%d drafts after the edit, want 1", n)
	}
	if s := made.Notice.Texts["en"].Summary; !strings.Contains(s, "Weekly newsletter") || made.Notice.Texts["de"].Summary == "" {
		t.Errorf("summaries of the change: %+v", made.Notice.Texts)
	}
	if made.Purpose.Texts["en"].Name != "Newsletter" {
		t.Errorf("the PATCH answers with the purpose as shoppers see it now: %+v", made.Purpose)
	}
	// Until published, the old words everywhere.
	old := func() bool {
		t.Helper()
		return strings.Contains(string(e.widget(t, "GET", "/w/v1/shop-a/config?lang=en", shopOrigin, "").body), `"name":"Newsletter"`) &&
			strings.Contains(string(e.mustStatus(e.do("GET", "/v1/purposes/newsletter", e.keyA, ""), 200).body), `"name":"Newsletter"`)
	}
	if !old() {
		t.Fatal("the new words show before the notice is published")
	}
	n := strconv.Itoa(made.Notice.Version)
	// The merchant makes it material for the purpose; the words stay with the draft.
	up := e.mustStatus(e.do("PUT", "/v1/notices/"+n, e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every Friday."}},"material":true,"purposes":["newsletter"]}`), 200)
	if !strings.Contains(string(up.body), `"wordings":[{"purpose":"newsletter"`) {
		t.Fatalf("the update dropped the words: %s", up.body)
	}
	if !old() {
		t.Fatal("the new words show after updating the draft")
	}
	e.mustStatus(e.do("POST", "/v1/notices/"+n+"/publish", e.keyA, `{"grace_period_days":7}`), 200)
	cfg := string(e.widget(t, "GET", "/w/v1/shop-a/config?lang=en", shopOrigin, "").body)
	if !strings.Contains(cfg, `"name":"Weekly newsletter","statement":"We email you new arrivals every Friday."`) {
		t.Errorf("the widget after publishing: %s", cfg)
	}
	got := string(e.mustStatus(e.do("GET", "/v1/purposes/newsletter", e.keyA, ""), 200).body)
	if !strings.Contains(got, `"name":"Weekly newsletter"`) || !strings.Contains(got, `"data_categories":["contact","purchase_history"]`) {
		t.Errorf("the purpose after publishing: %s", got)
	}
	if !strings.Contains(got, `"es":{"name":`) {
		t.Errorf("the locales the edit did not name were dropped: %s", got)
	}
	if got := e.reason(t, "wynn", "newsletter"); got != "reconsent_due" {
		t.Errorf("consent given before a material rewording: %s", got)
	}
	// Shop B's newsletter keeps its words.
	if b := string(e.mustStatus(e.do("GET", "/v1/purposes/newsletter", e.keyB, ""), 200).body); !strings.Contains(b, `"name":"Newsletter"`) {
		t.Errorf("shop B's purpose: %s", b)
	}
	// A retired purpose takes no new words.
	e.mustStatus(e.do("POST", "/v1/purposes/recommendations/retire", e.keyA, ""), 200)
	if r := e.do("PATCH", "/v1/purposes/recommendations", e.keyA, `{"data_categories":["browsing"]}`); r.status != 409 {
		t.Errorf("rewording a retired purpose: %d %s", r.status, r.body)
	}
}

// TestPublishingAgainQueuesAMissingAnnouncement: a material version
// published without its announcement queued (a failure between the two
// writes) is announced once publishing it is tried again, which still
// answers 409.
func TestPublishingAgainQueuesAMissingAnnouncement(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
	// Published with the announcer away: the announcement was never queued.
	announcer := e.api.Notices.Announcer
	e.api.Notices.Announcer = nil
	_, err := e.api.Notices.Publish(t.Context(), e.merchA.ID, 2, time.Time{}, 0)
	e.api.Notices.Announcer = announcer
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.api.Announcer.Progress(t.Context(), e.merchA.ID, 2); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("an announcement exists before the retry: %v", err)
	}
	e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 409)
	if _, err := e.api.Announcer.Progress(t.Context(), e.merchA.ID, 2); err != nil {
		t.Fatalf("the retry did not queue the announcement: %v", err)
	}
}
