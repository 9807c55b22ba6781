package handlers_test

import (
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/signin"
)

const shopOrigin = "https://shop-a.example"

func (e *testEnv) widget(t *testing.T, method, path, origin, body string, headers ...string) response {
	t.Helper()
	h := append([]string{"Origin", origin}, headers...)
	return e.do(method, path, "", body, h...)
}

func TestWidgetEndpoints(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["https://shop-a.example/path"]}`), 400)
	var settings struct {
		AllowedOrigins []string `json:"allowed_origins"`
	}
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["HTTPS://Shop-A.example","https://shop-a.example"]}`), 200).json(t, &settings)
	if len(settings.AllowedOrigins) != 1 || settings.AllowedOrigins[0] != shopOrigin {
		t.Fatalf("settings: %+v", settings)
	}

	// Only the merchant's own sites get answers.
	r := e.widget(t, "GET", "/w/v1/shop-a/config?lang=de", shopOrigin, "")
	var cfg struct {
		ConsentMode map[string][]string `json:"consent_mode"`
		DetailsURL  string              `json:"details_url"`
		Texts       map[string]string   `json:"texts"`
	}
	r.json(t, &cfg)
	if cfg.ConsentMode == nil || len(cfg.ConsentMode) != 0 || cfg.DetailsURL != e.srv.URL+"/c/shop-a/notices?lang=de" || cfg.Texts["banner"] == "" || cfg.Texts["choose"] == "" {
		t.Fatalf("config: %+v", cfg)
	}
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != shopOrigin || !strings.Contains(string(r.body), `"lang":"de"`) {
		t.Fatalf("config from an allowed origin: %d %v %s", r.status, r.header, r.body)
	}
	// A site not allowed reads why the config was refused (so the widget
	// can say which setting to change), and nothing else: no preflight
	// passes, no state is answered.
	r = e.widget(t, "GET", "/w/v1/shop-a/config", "https://evil.example", "")
	if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "https://evil.example" || !strings.Contains(string(r.body), `"code":"origin_not_allowed"`) ||
		!strings.Contains(string(r.body), "allowed_origins") {
		t.Fatalf("config from a site not allowed: %d %v %s", r.status, r.header, r.body)
	}
	if r := e.widget(t, "GET", "/w/v1/shop-a/config", "", ""); r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("config without an origin: %d %v", r.status, r.header)
	}
	for _, req := range [][2]string{{"OPTIONS", "/w/v1/shop-a/state"}, {"OPTIONS", "/w/v1/shop-a/consents"}, {"GET", "/w/v1/shop-a/state"}} {
		r := e.widget(t, req[0], req[1], "https://evil.example", "", "Access-Control-Request-Method", "PUT", "X-Fineline-Device", "0f0e0d0c-aaaa-bbbb")
		if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" || r.header.Get("Access-Control-Allow-Methods") != "" {
			t.Fatalf("%s %s from a site not allowed: %d %v", req[0], req[1], r.status, r.header)
		}
	}
	if r := e.widget(t, "GET", "/w/v1/shop-b/config", shopOrigin, ""); r.status != 403 {
		t.Fatalf("another merchant's widget from shop A's site: %d", r.status)
	}
	if r := e.widget(t, "OPTIONS", "/w/v1/shop-a/consents", shopOrigin, "", "Access-Control-Request-Method", "PUT"); r.status != 204 || !strings.Contains(r.header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}

	// An identified shopper: the merchant's server mints a token.
	e.mustStatus(e.do("PUT", "/v1/subjects/wendy", e.keyA, `{}`), 201)
	var tok struct{ Token string }
	e.mustStatus(e.do("POST", "/v1/widget-sessions", e.keyA, `{"subject":"wendy"}`), 201).json(t, &tok)
	auth := []string{"Authorization", "Bearer " + tok.Token}
	r = e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"newsletter":"granted","wellness_tips":"granted"}}`, append(auth, "Content-Type", "application/json")...)
	if r.status != 400 || !strings.Contains(string(r.body), "explicit_opt_in_required") {
		t.Fatalf("a sensitive purpose without explicit opt-in: %d %s", r.status, r.body)
	}
	r = e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"newsletter":"granted","wellness_tips":"granted"},"explicit":["wellness_tips"]}`, append(auth, "Content-Type", "application/json")...)
	if r.status != 200 || !strings.Contains(string(r.body), `"receipt_url":"`+e.srv.URL+`/c/shop-a/receipts/`) {
		t.Fatalf("save: %d %s", r.status, r.body)
	}
	if got := e.reason(t, "wendy", "wellness_tips"); got != "granted" {
		t.Fatalf("explicit sensitive grant: %s", got)
	}
	if ch, _, _ := e.lastEvent(t, "wendy"); ch != "widget" {
		t.Fatalf("channel %s", ch)
	}
	r = e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", auth...)
	if r.status != 200 || !strings.Contains(string(r.body), `"newsletter":{"state":"granted","allowed":true`) {
		t.Fatalf("state: %d %s", r.status, r.body)
	}
	// The token works only for its merchant, its audience, and its hour.
	if r := e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", "Authorization", "Bearer "+tok.Token[:len(tok.Token)-2]+"xx"); r.status != 401 {
		t.Fatalf("tampered token: %d", r.status)
	}
	session, _, _ := e.api.Center.Signin.NewSession(e.merchA.ID, "wendy")
	if r := e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", "Authorization", "Bearer "+session); r.status != 401 {
		t.Fatalf("a center session as a widget token: %d", r.status)
	}
	past := &signin.Service{Store: e.store, Key: e.api.Center.Signin.Key, Issuer: e.api.Center.Signin.Issuer, Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}
	expired, _, _ := past.NewWidgetToken(e.merchA.ID, "wendy")
	if r := e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", "Authorization", "Bearer "+expired); r.status != 401 {
		t.Fatalf("expired token: %d", r.status)
	}
	if r := e.widget(t, "GET", "/w/v1/shop-a/state", "https://evil.example", "", auth...); r.status != 403 {
		t.Fatalf("a valid token from a site not allowed: %d", r.status)
	}

	// An anonymous visitor's choices, then linked when the shopper is known.
	dev := []string{"X-Fineline-Device", "0f0e0d0c-aaaa-bbbb", "Content-Type", "application/json"}
	if r := e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{"recommendations":"granted","newsletter":"denied"}}`, dev...); r.status != 200 || strings.Contains(string(r.body), `"receipt_url":"`) {
		t.Fatalf("anonymous save: %d %s", r.status, r.body)
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/vic", e.keyA, `{}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/vic/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("POST", "/v1/widget-sessions", e.keyA, `{"subject":"vic","device_id":"0f0e0d0c-aaaa-bbbb"}`), 201)
	if got := e.reason(t, "vic", "recommendations"); got != "granted" {
		t.Fatalf("the device's choice was not linked: %s", got)
	}
	if got := e.reason(t, "vic", "newsletter"); got != "granted" {
		t.Fatalf("the device overrode the subject's own choice: %s", got)
	}
	e.mustStatus(e.do("POST", "/v1/widget-sessions", e.keyB, `{"subject":"vic"}`), 404)

	// Global Privacy Control from the widget.
	gpc := append(append([]string{}, dev...), "X-Fineline-GPC", "1")
	if r := e.widget(t, "GET", "/w/v1/shop-a/state", shopOrigin, "", gpc...); r.status != 200 || !strings.Contains(string(r.body), `"partner_sharing":{"state":"withdrawn","allowed":false,"reason":"gpc_opt_out"}`) {
		t.Fatalf("GPC from the widget: %d %s", r.status, r.body)
	}
}

// TestWidgetConsentModeSettings: the Consent Mode map is validated whole
// (known types, the merchant's own purposes, 1 to 20 each) before anything
// is stored, reaches the widget's config, and a PUT without it empties it.
func TestWidgetConsentModeSettings(t *testing.T) {
	e := newTestEnv(t)
	good := `{"allowed_origins":["https://shop-a.example"],"consent_mode":{"ad_storage":["partner_sharing"],"analytics_storage":["recommendations","newsletter","recommendations"]}}`
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, good), 200)
	for _, tc := range []struct{ body, code string }{
		{`{"allowed_origins":[],"consent_mode":{"ad_storrage":["partner_sharing"]}}`, "invalid_consent_mode"},
		{`{"allowed_origins":[],"consent_mode":{"ad_storage":[]}}`, "invalid_consent_mode"},
		{`{"allowed_origins":[],"consent_mode":{"ad_storage":["no_such_purpose"]}}`, "unknown_purpose"},
		{`{"allowed_origins":["ftp://x"],"consent_mode":{"ad_storage":["partner_sharing"]}}`, "invalid_origin"},
		{`{"allowed_origins":[],"consent_mode":{"ad_storage":"partner_sharing"}}`, "invalid_field"},
		{`{"allowed_origins":[],"Consent_Mode":{}}`, "unknown_field"},
	} {
		r := e.do("PUT", "/v1/widget-settings", e.keyA, tc.body)
		if r.status != 400 || !strings.Contains(string(r.body), `"code":"`+tc.code+`"`) {
			t.Errorf("%s: %d %s, want 400 %s", tc.body, r.status, r.body, tc.code)
		}
	}
	// Shop B's purposes are its own: the same map names nothing of A's.
	var got struct {
		AllowedOrigins []string            `json:"allowed_origins"`
		ConsentMode    map[string][]string `json:"consent_mode"`
	}
	e.mustStatus(e.do("GET", "/v1/widget-settings", e.keyA, ""), 200).json(t, &got)
	want := map[string][]string{"ad_storage": {"partner_sharing"}, "analytics_storage": {"newsletter", "recommendations"}}
	if len(got.AllowedOrigins) != 1 || !equalModes(got.ConsentMode, want) {
		t.Fatalf("settings after refused PUTs: %+v, want %v", got, want)
	}
	var cfg struct {
		ConsentMode map[string][]string `json:"consent_mode"`
	}
	e.widget(t, "GET", "/w/v1/shop-a/config", shopOrigin, "").json(t, &cfg)
	if !equalModes(cfg.ConsentMode, want) {
		t.Fatalf("config consent_mode %v, want %v", cfg.ConsentMode, want)
	}
	got.AllowedOrigins, got.ConsentMode = nil, nil
	e.mustStatus(e.do("GET", "/v1/widget-settings", e.keyB, ""), 200).json(t, &got)
	if len(got.ConsentMode) != 0 || len(got.AllowedOrigins) != 0 {
		t.Fatalf("shop B's settings: %+v", got)
	}
	got.AllowedOrigins, got.ConsentMode = nil, nil
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["https://shop-a.example"]}`), 200).json(t, &got)
	if got.ConsentMode == nil || len(got.ConsentMode) != 0 {
		t.Fatalf("a PUT without consent_mode keeps %v", got.ConsentMode)
	}
}

func equalModes(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if strings.Join(v, ",") != strings.Join(b[k], ",") {
			return false
		}
	}
	return true
}
