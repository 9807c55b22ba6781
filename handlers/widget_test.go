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
	if r.status != 200 || r.header.Get("Access-Control-Allow-Origin") != shopOrigin || !strings.Contains(string(r.body), `"lang":"de"`) {
		t.Fatalf("config from an allowed origin: %d %v %s", r.status, r.header, r.body)
	}
	for _, origin := range []string{"https://evil.example", ""} {
		r := e.widget(t, "GET", "/w/v1/shop-a/config", origin, "")
		if r.status != 403 || r.header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("config from %q: %d %v", origin, r.status, r.header)
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
