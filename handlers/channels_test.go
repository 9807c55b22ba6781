package handlers_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
)

// eventsAfter returns the subject's events after seq, as the API lists them.
func (e *testEnv) eventsAfter(t *testing.T, subject string, seq int64) []eventJSON {
	t.Helper()
	var out struct {
		Events []eventJSON `json:"events"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/"+subject+"/events?limit=200", e.keyA, ""), 200).json(t, &out)
	var after []eventJSON
	for _, ev := range out.Events {
		if ev.Seq > seq {
			after = append(after, ev)
		}
	}
	return after
}

// head is the subject's last event number, 0 if none.
func (e *testEnv) head(t *testing.T, subject string) int64 {
	t.Helper()
	evs := e.eventsAfter(t, subject, 0)
	if len(evs) == 0 {
		return 0
	}
	return evs[len(evs)-1].Seq
}

var wasPattern = regexp.MustCompile(`name="was\.([a-z_]+)" value="(on|off)"`)

// centerSave opens the preferences page as the shopper sees it and saves it
// with the requested purposes switched as asked, every other switch as shown.
func (e *testEnv) centerSave(t *testing.T, subject string, want map[string]consent.State) (*http.Response, *http.Client) {
	t.Helper()
	client, post := e.signInShopper(t, subject)
	_, page := getPage(t, client, e.srv.URL+"/c/shop-a/preferences")
	form := url.Values{"action": {"save"}}
	for _, m := range wasPattern.FindAllStringSubmatch(page, -1) {
		form.Set("was."+m[1], m[2])
		st, asked := want[m[1]]
		if (asked && st == consent.Granted) || (!asked && m[2] == "on") {
			form.Add("on", m[1])
		}
	}
	return post("/c/shop-a/preferences", form), client
}

// widgetToken mints a widget token for the subject, with shop-a's site allowed.
func (e *testEnv) widgetToken(t *testing.T, subject string) []string {
	t.Helper()
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["`+shopOrigin+`"]}`), 200)
	var tok struct{ Token string }
	e.mustStatus(e.do("POST", "/v1/widget-sessions", e.keyA, `{"subject":"`+subject+`"}`), 201).json(t, &tok)
	return []string{"Authorization", "Bearer " + tok.Token}
}

// widgetSave reads the widget's state as the widget does and saves the
// requested purposes with how they were shown.
func (e *testEnv) widgetSave(t *testing.T, subject string, want map[string]consent.State) response {
	t.Helper()
	auth := e.widgetToken(t, subject)
	var state struct {
		Consents map[string]struct {
			State   string `json:"state"`
			Allowed bool   `json:"allowed"`
		} `json:"consents"`
	}
	e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", auth...).json(t, &state)
	body := map[string]any{}
	choices, shown, explicit := map[string]string{}, map[string]string{}, []string{}
	for p, st := range want {
		choices[p] = string(st)
		c, ok := state.Consents[p]
		switch {
		case !ok:
			shown[p] = "undecided"
		case c.Allowed:
			shown[p] = "on"
		default:
			shown[p] = "off"
		}
		if st == consent.Granted {
			explicit = append(explicit, p)
		}
	}
	body["choices"], body["shown"], body["explicit"] = choices, shown, explicit
	b, _ := json.Marshal(body)
	return e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, string(b), append(auth, "Content-Type", "application/json")...)
}

// receiptClaims reads a receipt kept for its subject: the part of its
// claims that says what was decided.
func (e *testEnv) receiptClaims(t *testing.T, id string) map[string]any {
	t.Helper()
	r, err := e.api.Center.Receipts.Store.Receipt(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(r.Token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		t.Fatal(err)
	}
	// What the decision says, not when or how it was collected.
	fl, _ := claims["fineline"].(map[string]any)
	states, _ := fl["states"].([]any)
	for _, s := range states {
		m := s.(map[string]any)
		delete(m, "at")
		delete(m, "channel")
	}
	return map[string]any{"services": claims["services"], "spiCat": claims["spiCat"], "sensitive": claims["sensitive"], "states": states}
}

var receiptIDPattern = regexp.MustCompile(`receipts/([A-Za-z0-9_-]{22})`)

// TestEveryChannelAppliesChoicesAlike: the same requested choices, made
// through every channel that can make them, append the same events (the
// same decisions under the same notice versions, the same erasures) and,
// where the channel issues one, a receipt saying the same.
func TestEveryChannelAppliesChoicesAlike(t *testing.T) {
	rows := []struct {
		name string
		// setup prepares the subject, through the API and the ledger.
		setup func(t *testing.T, e *testEnv, subject string)
		want  map[string]consent.State
		// channels that can express the choices.
		channels []string
		// events are what must be appended: purpose, state, field.
		events []string
	}{
		{
			name: "grant the newsletter", want: map[string]consent.State{"newsletter": consent.Granted},
			channels: []string{"center", "widget", "api"}, events: []string{"newsletter granted v1"},
		},
		{
			name: "grant a sensitive purpose, switched on by the shopper", want: map[string]consent.State{"wellness_tips": consent.Granted},
			channels: []string{"center", "widget", "api"}, events: []string{"wellness_tips granted v1"},
		},
		{
			name: "withdraw the birthday reward, which erases the birthday",
			setup: func(t *testing.T, e *testEnv, s string) {
				if _, err := e.api.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merchA.ID, SubjectID: s, Channel: consent.ChannelCenter, Actor: "setup",
					Requests: []consent.Request{{Purpose: "birthday_reward", State: consent.Granted, Explicit: true}}, Values: map[string]string{"birthday": "--07-19"}}); err != nil {
					t.Fatal(err)
				}
			},
			want:     map[string]consent.State{"birthday_reward": consent.Withdrawn},
			channels: []string{"center", "widget", "api", "unsubscribe"}, events: []string{"birthday_reward withdrawn v1", "birthday_reward erased v1 birthday"},
		},
		{
			name: "withdraw partner offers, a sale or share",
			setup: func(t *testing.T, e *testEnv, s string) {
				e.mustStatus(e.do("PUT", "/v1/subjects/"+s+"/consents/partner_sharing", e.keyA, `{"state":"granted"}`), 201)
			},
			want:     map[string]consent.State{"partner_sharing": consent.Withdrawn},
			channels: []string{"center", "widget", "api", "unsubscribe", "gpc"}, events: []string{"partner_sharing withdrawn v1"},
		},
		{
			name: "renew the newsletter paused by a material change",
			setup: func(t *testing.T, e *testEnv, s string) {
				e.mustStatus(e.do("PUT", "/v1/subjects/"+s+"/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
			},
			want:     map[string]consent.State{"newsletter": consent.Granted},
			channels: []string{"center", "widget", "api", "review"}, events: []string{"newsletter granted v2"},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			e := newTestEnv(t)
			e.addValueExchange(t)
			receipts := map[string]map[string]any{}
			for _, ch := range row.channels {
				s := "who-" + ch
				e.mustStatus(e.do("PUT", "/v1/subjects/"+s, e.keyA, `{"email":"`+s+`@example.com"}`), 201)
				if row.setup != nil {
					row.setup(t, e, s)
				}
			}
			if strings.HasPrefix(row.name, "renew") {
				e.mustStatus(e.do("POST", "/v1/notices", e.keyA, `{"texts":{"en":{"summary":"The newsletter now comes every week."}},"material":true,"purposes":["newsletter"]}`), 201)
				e.mustStatus(e.do("POST", "/v1/notices/2/publish", e.keyA, `{}`), 200)
			}
			for _, ch := range row.channels {
				s := "who-" + ch
				before := e.head(t, s)
				receipt := ""
				switch ch {
				case "center":
					res, _ := e.centerSave(t, s, row.want)
					if res.StatusCode != http.StatusSeeOther {
						t.Fatalf("center save: %d", res.StatusCode)
					}
					if m := regexp.MustCompile(`receipt=([A-Za-z0-9_-]{22})`).FindStringSubmatch(res.Header.Get("Location")); m != nil {
						receipt = m[1]
					}
				case "widget":
					r := e.widgetSave(t, s, row.want)
					if r.status != 200 {
						t.Fatalf("widget save: %d %s", r.status, r.body)
					}
					if m := receiptIDPattern.FindStringSubmatch(string(r.body)); m != nil {
						receipt = m[1]
					}
				case "api":
					for p, st := range row.want {
						e.mustStatus(e.do("PUT", "/v1/subjects/"+s+"/consents/"+p, e.keyA, `{"state":"`+string(st)+`","explicit_opt_in":true}`), 201)
					}
				case "unsubscribe":
					for p := range row.want {
						var h struct {
							ListUnsubscribe string `json:"list_unsubscribe"`
						}
						e.mustStatus(e.do("GET", "/v1/subjects/"+s+"/unsubscribe-headers?purpose="+p, e.keyA, ""), 200).json(t, &h)
						res, err := http.PostForm(strings.Trim(h.ListUnsubscribe, "<>"), url.Values{"List-Unsubscribe": {"One-Click"}})
						if err != nil || res.StatusCode != 200 {
							t.Fatalf("one-click: %v %v", res, err)
						}
						res.Body.Close()
					}
				case "gpc":
					client, _ := e.signInShopper(t, s)
					req, _ := http.NewRequest("GET", e.srv.URL+"/c/shop-a/preferences", nil)
					req.Header.Set("Sec-GPC", "1")
					res, err := client.Do(req)
					if err != nil || res.StatusCode != 200 {
						t.Fatalf("GPC page: %v %v", res, err)
					}
					res.Body.Close()
				case "review":
					_, post := e.signInShopper(t, s)
					form := url.Values{}
					for p := range row.want {
						form.Set("answer-"+p, "accept")
					}
					res := post("/c/shop-a/review", form)
					if m := regexp.MustCompile(`receipt=([A-Za-z0-9_-]{22})`).FindStringSubmatch(res.Header.Get("Location")); m != nil {
						receipt = m[1]
					}
				}
				var got []string
				for _, ev := range e.eventsAfter(t, s, before) {
					line := ev.Purpose + " " + ev.State + " v" + strconv.Itoa(ev.NoticeVersion)
					if ev.Field != "" {
						line += " " + ev.Field
					}
					got = append(got, line)
					if want := map[string]string{"center": "center", "widget": "widget", "api": "api", "unsubscribe": "unsubscribe", "gpc": "gpc", "review": "center"}[ch]; ev.Channel != want {
						t.Errorf("%s: event on channel %s", ch, ev.Channel)
					}
					// Decisions carry what they replace and the language the
					// shopper was asked in, where a page or widget asked.
					if want := map[string]string{"center": "en", "widget": "en", "gpc": "en", "review": "en"}[ch]; ev.Field == "" && (ev.Locale != want || ev.Prev == "") {
						t.Errorf("%s: event with locale %q (want %q) and prev %q", ch, ev.Locale, want, ev.Prev)
					}
				}
				if diff := cmp.Diff(row.events, got); diff != "" {
					t.Errorf("%s appended other events (-want +got):\n%s", ch, diff)
				}
				if receipt != "" {
					receipts[ch] = e.receiptClaims(t, receipt)
				} else if slices.Contains([]string{"center", "widget", "review"}, ch) {
					t.Errorf("%s issued no receipt", ch)
				}
			}
			var first string
			for ch, r := range receipts {
				if first == "" {
					first = ch
					continue
				}
				if diff := cmp.Diff(receipts[first], r); diff != "" {
					t.Errorf("the receipts of %s and %s differ (-%s +%s):\n%s", first, ch, first, ch, diff)
				}
			}
		})
	}
}

// The API records the language a merchant says the shopper was asked in,
// canonically, and refuses one that is not a language tag, changing nothing.
func TestAPIRecordsTheLocaleAskedIn(t *testing.T) {
	e := newTestEnv(t)
	var out struct {
		Event eventJSON `json:"event"`
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/loc-1/consents/newsletter", e.keyA, `{"state":"granted","locale":"de-ch"}`), 201).json(t, &out)
	if out.Event.Locale != "de-CH" || out.Event.Prev != "undecided" {
		t.Errorf("event: %+v", out.Event)
	}
	for _, bad := range []string{`"not a tag!"`, `"en-"`, `"` + strings.Repeat("a", 40) + `"`, `7`} {
		r := e.do("PUT", "/v1/subjects/loc-1/consents/newsletter", e.keyA, `{"state":"withdrawn","locale":`+bad+`}`)
		if r.status != 400 || (bad != "7" && !strings.Contains(string(r.body), "invalid_locale")) {
			t.Errorf("locale %s: %d %s", bad, r.status, r.body)
		}
	}
	if h := e.head(t, "loc-1"); h != 1 {
		t.Errorf("a refused locale changed the chain: head %d", h)
	}
}
