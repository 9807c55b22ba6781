package handlers_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/receipts"
)

// levelFormPattern finds the privacy-level radio checked on a page.
var levelFormPattern = regexp.MustCompile(`name="level" value="([a-z]+)"[^>]*checked`)

// levelShownPattern finds the level the page says it showed.
var levelShownPattern = regexp.MustCompile(`name="level_shown" value="([a-z]*)"`)

// prefsForm opens the preferences page and returns it with the form it
// would post untouched: every switch as shown, the level as shown.
func prefsForm(t *testing.T, client *http.Client, base string) (string, url.Values) {
	t.Helper()
	status, page := getPage(t, client, base+"/c/shop-a/preferences")
	if status != http.StatusOK {
		t.Fatalf("preferences: %d", status)
	}
	form := url.Values{"action": {"save"}}
	for _, m := range wasPattern.FindAllStringSubmatch(page, -1) {
		form.Set("was."+m[1], m[2])
		if m[2] == "on" {
			form.Add("on", m[1])
		}
	}
	checked := levelFormPattern.FindAllStringSubmatch(page, -1)
	shown := levelShownPattern.FindStringSubmatch(page)
	if len(checked) != 1 || shown == nil || shown[1] != checked[0][1] {
		t.Fatalf("the page shows %v checked and %v as shown, want one level checked, the one shown", checked, shown)
	}
	form.Set("level", checked[0][1])
	form.Set("level_shown", shown[1])
	return page, form
}

// levelEvents are the subject's privacy-level events.
func (e *testEnv) levelEvents(t *testing.T, subject string) []eventJSON {
	t.Helper()
	var out []eventJSON
	for _, ev := range e.eventsAfter(t, subject, 0) {
		if ev.State == string(consent.LevelChosen) {
			out = append(out, ev)
		}
	}
	return out
}

// receiptOf reads a receipt kept for its subject and its signed claims.
func (e *testEnv) receiptOf(t *testing.T, id string) (receipts.Issued, receipts.Receipt) {
	t.Helper()
	r, err := e.api.Center.Receipts.Store.Receipt(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := receipts.Verify(r.Token, e.api.Center.Signer.JWKS(), e.api.Center.Signer.Issuer())
	if err != nil {
		t.Fatal(err)
	}
	return r, claims
}

// TestCenterSavesPrivacyLevel: the preferences page shows the effective
// level (the default for a shopper who never chose), and saving another one,
// alone, appends one level event, issues a receipt that lists it, says so
// on the page and on the receipt page; saving it again as shown changes
// nothing.
func TestCenterSavesPrivacyLevel(t *testing.T) {
	for _, tc := range []struct {
		name string
		// before are decisions the shopper made earlier (a receipt states
		// them beside the level).
		before map[string]string
	}{
		{"after allowing a purpose", map[string]string{"newsletter": "granted"}},
		{"after refusing one", map[string]string{"newsletter": "denied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustStatus(e.do("PUT", "/v1/subjects/lena", e.keyA, `{}`), 201)
			for p, st := range tc.before {
				e.mustStatus(e.do("PUT", "/v1/subjects/lena/consents/"+p, e.keyA, `{"state":"`+st+`"}`), 201)
			}
			client, post := e.signInShopper(t, "lena")
			page, form := prefsForm(t, client, e.srv.URL)
			if form.Get("level") != string(consent.DefaultLevel) {
				t.Fatalf("a shopper who never chose is shown %q, want the default %q", form.Get("level"), consent.DefaultLevel)
			}
			for _, want := range []string{"How personal may shop-a be?", "Keep it general", "Nothing about you beyond your name.", "Use what I told you", "Personalize fully"} {
				if !strings.Contains(page, want) {
					t.Errorf("the page does not say %q", want)
				}
			}
			head := e.head(t, "lena")

			form.Set("level", "general")
			res := post("/c/shop-a/preferences", form)
			loc := res.Header.Get("Location")
			m := regexp.MustCompile(`receipt=([A-Za-z0-9_-]{22})`).FindStringSubmatch(loc)
			if res.StatusCode != http.StatusSeeOther || m == nil {
				t.Fatalf("saving the level: %d %s, want a redirect with a receipt", res.StatusCode, loc)
			}
			evs := e.eventsAfter(t, "lena", head)
			if len(evs) != 1 || evs[0].State != string(consent.LevelChosen) || evs[0].Level != "general" || evs[0].Purpose != "" || evs[0].Channel != "center" {
				t.Fatalf("events after saving the level: %+v", evs)
			}
			issued, claims := e.receiptOf(t, m[1])
			if diff := cmp.Diff([]receipts.Change{{State: string(consent.LevelChosen), Level: "general"}}, issued.Changes); diff != "" {
				t.Errorf("receipt changes (-want +got):\n%s", diff)
			}
			if claims.Fineline.PrivacyLevel != "general" {
				t.Errorf("signed receipt privacy_level = %q", claims.Fineline.PrivacyLevel)
			}

			_, page = getPage(t, client, e.srv.URL+loc)
			if !strings.Contains(page, "<li>How personal we may be: Keep it general</li>") {
				t.Errorf("the saved notice does not list the level:\n%s", page)
			}
			if got := levelFormPattern.FindAllStringSubmatch(page, -1); len(got) != 1 || got[0][1] != "general" {
				t.Errorf("checked after saving: %v, want general", got)
			}
			_, receipt := getPage(t, client, e.srv.URL+"/c/shop-a/receipts/"+m[1])
			if !strings.Contains(receipt, "<th scope=\"row\">How personal we may be</th><td>Keep it general</td>") {
				t.Errorf("the receipt page has no row for the level:\n%s", receipt)
			}

			// Saved again as now shown: nothing to record.
			_, form = prefsForm(t, client, e.srv.URL)
			if res := post("/c/shop-a/preferences", form); res.StatusCode != http.StatusSeeOther || strings.Contains(res.Header.Get("Location"), "receipt=") {
				t.Fatalf("saving unchanged: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
			if n := len(e.levelEvents(t, "lena")); n != 1 {
				t.Errorf("%d level events after saving it unchanged, want 1", n)
			}
		})
	}
}

// TestCenterLevelLeftAsShownKeepsNewerOne: while the page was open the
// level changed elsewhere (the merchant's server, the widget); saving the
// page with the level as it showed it keeps the newer one and says so.
func TestCenterLevelLeftAsShownKeepsNewerOne(t *testing.T) {
	for _, tc := range []struct {
		name      string
		elsewhere func(e *testEnv, t *testing.T)
		newer     string
		// switchOn is a purpose switched on in the same save, if any.
		switchOn string
	}{
		{"through Apply, with a switch changed", func(e *testEnv, t *testing.T) {
			if _, err := e.api.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merchA.ID, SubjectID: "otto", Channel: consent.ChannelAPI, Actor: "test", Level: consent.LevelFull}); err != nil {
				t.Fatal(err)
			}
		}, "full", "newsletter"},
		{"through the widget, nothing else changed", func(e *testEnv, t *testing.T) {
			e.mustStatus(e.do("PUT", "/v1/subjects/otto/consents/partner_sharing", e.keyA, `{"state":"denied"}`), 201)
			e.mustStatus(e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{},"privacy_level":"general","privacy_level_shown":"volunteered"}`,
				append(e.widgetToken(t, "otto"), "Content-Type", "application/json")...), 200)
		}, "general", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.mustStatus(e.do("PUT", "/v1/subjects/otto", e.keyA, `{}`), 201)
			client, post := e.signInShopper(t, "otto")
			_, form := prefsForm(t, client, e.srv.URL)
			if form.Get("level") != "volunteered" {
				t.Fatalf("shown %q", form.Get("level"))
			}
			tc.elsewhere(e, t)
			head := e.head(t, "otto")
			if tc.switchOn != "" {
				form.Add("on", tc.switchOn)
			}
			res := post("/c/shop-a/preferences", form)
			loc := res.Header.Get("Location")
			if res.StatusCode != http.StatusSeeOther || !strings.Contains(loc, "elsewhere_level=1") {
				t.Fatalf("saving: %d %s, want the level reported as changed elsewhere", res.StatusCode, loc)
			}
			evs := e.eventsAfter(t, "otto", head)
			want := 0
			if tc.switchOn != "" {
				want = 1
			}
			if len(evs) != want || (want == 1 && (evs[0].Purpose != tc.switchOn || evs[0].State != "granted")) {
				t.Fatalf("events of the save: %+v, want only the switch", evs)
			}
			if lv := e.levelEvents(t, "otto"); len(lv) != 1 || lv[0].Level != tc.newer {
				t.Fatalf("level events: %+v, want only the newer %s", lv, tc.newer)
			}
			_, page := getPage(t, client, e.srv.URL+loc)
			names := map[string]string{"full": "Personalize fully", "general": "Keep it general"}
			if !strings.Contains(page, "How personal we may be was changed elsewhere to “"+names[tc.newer]+"”; we kept that.") {
				t.Errorf("the page does not say the level changed elsewhere:\n%s", page)
			}
			if got := levelFormPattern.FindAllStringSubmatch(page, -1); len(got) != 1 || got[0][1] != tc.newer {
				t.Errorf("checked after saving: %v, want %s", got, tc.newer)
			}
		})
	}
}

// TestCenterRefusesAnInvalidLevel: a level that is not one of the three,
// or one without the level shown, is refused and nothing is written.
func TestCenterRefusesAnInvalidLevel(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/ivy", e.keyA, `{}`), 201)
	client, post := e.signInShopper(t, "ivy")
	for _, tc := range []struct{ level, shown string }{
		{"creepy", "volunteered"},
		{"general", "creepy"},
		{"general", ""},
	} {
		_, form := prefsForm(t, client, e.srv.URL)
		form.Add("on", "newsletter")
		form.Set("level", tc.level)
		form.Set("level_shown", tc.shown)
		if res := post("/c/shop-a/preferences", form); res.StatusCode != http.StatusBadRequest {
			t.Errorf("level %q shown %q: %d, want 400", tc.level, tc.shown, res.StatusCode)
		}
	}
	if n := e.head(t, "ivy"); n != 0 {
		t.Fatalf("%d events after refused saves", n)
	}
}

// widgetStateLevel is the widget's state answer, as far as the level goes.
type widgetStateLevel struct {
	Consents     map[string]json.RawMessage `json:"consents"`
	PrivacyLevel *string                    `json:"privacy_level"`
	ReceiptURL   *string                    `json:"receipt_url"`
}

// TestWidgetPrivacyLevel: the widget reads the level with the consents and
// saves it through the same operation (a receipt that lists it); a level
// left as shown keeps one changed elsewhere; unknown levels are refused
// with invalid_privacy_level and nothing written; an anonymous device is
// not asked for one.
func TestWidgetPrivacyLevel(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/wade", e.keyA, `{}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/wade/consents/partner_sharing", e.keyA, `{"state":"denied"}`), 201)
	auth := e.widgetToken(t, "wade")
	put := func(body string, headers ...string) response {
		t.Helper()
		h := append(append([]string{}, headers...), "Content-Type", "application/json")
		return e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, body, h...)
	}
	state := func(r response) widgetStateLevel {
		t.Helper()
		var s widgetStateLevel
		r.json(t, &s)
		return s
	}

	var cfg struct {
		Levels []struct{ Key, Name, Hint string } `json:"levels"`
		Texts  map[string]string                  `json:"texts"`
	}
	e.mustStatus(e.widget(t, "GET", "/w/v1/shop-a/config?lang=de", shopOrigin, ""), 200).json(t, &cfg)
	var keys []string
	for _, l := range cfg.Levels {
		keys = append(keys, l.Key)
		if l.Name == "" || l.Hint == "" || l.Name == "level_"+l.Key {
			t.Errorf("level %+v is not worded", l)
		}
	}
	if diff := cmp.Diff([]string{"general", "volunteered", "full"}, keys); diff != "" {
		t.Errorf("config levels (-want +got):\n%s", diff)
	}
	if cfg.Texts["level"] != "Wie persönlich dürfen wir sein?" {
		t.Errorf("config level legend = %q", cfg.Texts["level"])
	}

	if s := state(e.mustStatus(e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", auth...), 200)); s.PrivacyLevel == nil || *s.PrivacyLevel != "volunteered" {
		t.Fatalf("state before any choice: %+v, want the default level", s)
	}

	// Invalid levels: refused, nothing written, not even the valid choice
	// beside them.
	for _, body := range []string{
		`{"choices":{"newsletter":"granted"},"privacy_level":"creepy","privacy_level_shown":"volunteered"}`,
		`{"choices":{"newsletter":"granted"},"privacy_level":"full","privacy_level_shown":"creepy"}`,
		`{"choices":{},"privacy_level":"FULL"}`,
		`{"choices":{},"privacy_level_shown":"full"}`,
	} {
		if r := put(body, auth...); r.status != 400 || r.errorCode(t) != consent.CodeInvalidLevel {
			t.Errorf("%s: %d %s, want 400 %s", body, r.status, r.body, consent.CodeInvalidLevel)
		}
	}
	if r := put(`{"choices":{},"privacy_level":7}`, auth...); r.status != 400 {
		t.Errorf("a number as level: %d %s", r.status, r.body)
	}
	if r := put(`{"choices":{}}`, auth...); r.status != 400 || r.errorCode(t) != consent.CodeInvalidChoices {
		t.Errorf("nothing chosen: %d %s", r.status, r.body)
	}
	if n := e.head(t, "wade"); n != 1 {
		t.Fatalf("%d events after refused saves, want the one before", n)
	}

	// A level alone: one event, a receipt that lists it.
	s := state(e.mustStatus(put(`{"choices":{},"privacy_level":"full","privacy_level_shown":"volunteered"}`, auth...), 200))
	if s.PrivacyLevel == nil || *s.PrivacyLevel != "full" || s.ReceiptURL == nil {
		t.Fatalf("after choosing full: %+v", s)
	}
	evs := e.eventsAfter(t, "wade", 1)
	if len(evs) != 1 || evs[0].State != string(consent.LevelChosen) || evs[0].Level != "full" || evs[0].Channel != "widget" {
		t.Fatalf("events: %+v", evs)
	}
	m := receiptIDPattern.FindStringSubmatch(*s.ReceiptURL)
	if m == nil {
		t.Fatalf("receipt url %q", *s.ReceiptURL)
	}
	issued, claims := e.receiptOf(t, m[1])
	if diff := cmp.Diff([]receipts.Change{{State: string(consent.LevelChosen), Level: "full"}}, issued.Changes); diff != "" {
		t.Errorf("receipt changes (-want +got):\n%s", diff)
	}
	if claims.Fineline.PrivacyLevel != "full" {
		t.Errorf("signed privacy_level %q", claims.Fineline.PrivacyLevel)
	}

	// Changed elsewhere to general; the widget still showed full and the
	// shopper only switched the newsletter on: general stands.
	if _, err := e.api.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merchA.ID, SubjectID: "wade", Channel: consent.ChannelAPI, Actor: "test", Level: consent.LevelGeneral}); err != nil {
		t.Fatal(err)
	}
	s = state(e.mustStatus(put(`{"choices":{"newsletter":"granted"},"shown":{"newsletter":"undecided"},"privacy_level":"full","privacy_level_shown":"full"}`, auth...), 200))
	if s.PrivacyLevel == nil || *s.PrivacyLevel != "general" {
		t.Fatalf("after a save that left the level as shown: %+v, want general", s)
	}
	if lv := e.levelEvents(t, "wade"); len(lv) != 2 || lv[1].Level != "general" || lv[1].Channel != "api" {
		t.Fatalf("level events: %+v", lv)
	}
	if got := e.reason(t, "wade", "newsletter"); got != "granted" {
		t.Fatalf("newsletter: %s", got)
	}

	// An anonymous device has no level and cannot choose one.
	dev := []string{"X-Fineline-Device", "0f0e0d0c-level-test"}
	if s := state(e.mustStatus(e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", dev...), 200)); s.PrivacyLevel != nil {
		t.Fatalf("an anonymous device's state has a level: %q", *s.PrivacyLevel)
	}
	if r := put(`{"choices":{"newsletter":"granted"},"privacy_level":"general","privacy_level_shown":"volunteered"}`, dev...); r.status != 400 || r.errorCode(t) != "privacy_level_needs_subject" {
		t.Fatalf("a level from a device: %d %s", r.status, r.body)
	}
	if r := e.do("GET", "/v1/subjects/device:0f0e0d0c-level-test/events", e.keyA, ""); r.status != http.StatusNotFound {
		t.Fatalf("the device after a refused save: %d %s, want no such subject", r.status, r.body)
	}
}

// TestFirstChoiceIsALevelAlone: a shopper who never decided on any purpose
// chooses only a privacy level, in the center and in the widget: it is
// saved and a receipt issued, though the receipt grants and refuses nothing.
func TestFirstChoiceIsALevelAlone(t *testing.T) {
	e := newTestEnv(t)
	for _, s := range []string{"nina", "noah"} {
		e.mustStatus(e.do("PUT", "/v1/subjects/"+s, e.keyA, `{}`), 201)
	}
	client, post := e.signInShopper(t, "nina")
	_, form := prefsForm(t, client, e.srv.URL)
	form.Set("level", "general")
	if res := post("/c/shop-a/preferences", form); res.StatusCode != http.StatusSeeOther || !strings.Contains(res.Header.Get("Location"), "receipt=") {
		t.Errorf("center: %d %s, want a redirect with a receipt", res.StatusCode, res.Header.Get("Location"))
	}
	r := e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{},"privacy_level":"full","privacy_level_shown":"volunteered"}`,
		append(e.widgetToken(t, "noah"), "Content-Type", "application/json")...)
	if r.status != 200 || !strings.Contains(string(r.body), `"receipt_url":"`) {
		t.Errorf("widget: %d %s, want the state with a receipt", r.status, r.body)
	}
	for subject, want := range map[string]string{"nina": "general", "noah": "full"} {
		if lv := e.levelEvents(t, subject); len(lv) != 1 || lv[0].Level != want {
			t.Errorf("%s: level events %+v, want %s", subject, lv, want)
		}
	}
}
