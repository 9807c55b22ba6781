package handlers_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/handlers"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
)

const testAdminToken = "operator-token-for-tests"

// testEnv is the whole of Fineline, wired as cmd/fineline wires it, over
// a real embedded store, with two merchants.
type testEnv struct {
	api    *testServer
	t      *testing.T
	srv    *testServer
	store  *store.Store
	keyA   string // merchant A, all scopes
	keyB   string // merchant B, all scopes
	merchA merchants.Merchant
}

func newTestEnv(t *testing.T) *testEnv {
	t.Helper()
	ts := newTestServer(t, testOptions{AdminToken: testAdminToken})
	e := &testEnv{t: t, srv: ts, store: ts.Store, api: ts}
	addShops(t, e)
	return e
}

// addShops creates shop-a and shop-b, each with notice v1 and the demo
// purposes, and keeps their keys.
func addShops(t *testing.T, e *testEnv) {
	t.Helper()
	ts := e.api
	ctx := context.Background()
	for i, slug := range []string{"shop-a", "shop-b"} {
		m, _, secret, err := ts.Merchants.Create(ctx, merchants.NewMerchant{Slug: slug, Name: slug})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ts.Notices.PublishFirst(ctx, m.ID, nil, ""); err != nil {
			t.Fatal(err)
		}
		for _, p := range demo.Purposes() {
			p.MerchantID = m.ID
			if _, err := ts.Purposes.Create(ctx, p); err != nil {
				t.Fatal(err)
			}
		}
		if i == 0 {
			e.keyA, e.merchA = secret, m
		} else {
			e.keyB = secret
		}
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("response is not JSON: %v: %s", err, r.body)
	}
}

// errorCode returns the code of a JSON error, failing the test if the body
// is not in the error shape.
func (r response) errorCode(t *testing.T) string {
	t.Helper()
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	r.json(t, &b)
	if b.Error.Code == "" || b.Error.Message == "" {
		t.Fatalf("not the error shape: %s", r.body)
	}
	return b.Error.Code
}

func (e *testEnv) do(method, path, key, body string, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

func (e *testEnv) mustStatus(r response, want int) response {
	e.t.Helper()
	if r.status != want {
		e.t.Fatalf("status %d, want %d: %s", r.status, want, r.body)
	}
	return r
}

func TestConsentRoundTrip(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/cust-1", e.keyA, `{"email":"Ann@Example.com","locale":"de","time_zone":"Europe/Berlin"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/cust-1", e.keyA, `{"locale":"fr"}`), 200)

	r := e.mustStatus(e.do("PUT", "/v1/subjects/cust-1/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	var res struct {
		Event struct {
			Seq     int64  `json:"seq"`
			Channel string `json:"channel"`
			Actor   string `json:"actor"`
		} `json:"event"`
		Decision struct {
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		} `json:"decision"`
		Changed bool `json:"changed"`
	}
	r.json(t, &res)
	if res.Event.Seq != 1 || res.Event.Channel != "api" || !strings.HasPrefix(res.Event.Actor, "api_key:") || !res.Decision.Allowed || !res.Changed {
		t.Fatalf("unexpected result: %s", r.body)
	}

	var check struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	}
	e.mustStatus(e.do("GET", "/v1/check?subject=cust-1&purpose=newsletter", e.keyA, ""), 200).json(t, &check)
	if !check.Allowed || check.Reason != "granted" {
		t.Fatalf("check after grant: %+v", check)
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/cust-1/consents/newsletter", e.keyA, `{"state":"withdrawn"}`), 201)
	e.mustStatus(e.do("GET", "/v1/check?subject=cust-1&purpose=newsletter", e.keyA, ""), 200).json(t, &check)
	if check.Allowed || check.Reason != "withdrawn" {
		t.Fatalf("check right after withdrawal: %+v", check)
	}

	var batch struct {
		Decisions []struct {
			Subject string `json:"subject"`
			Allowed bool   `json:"allowed"`
			Reason  string `json:"reason"`
		} `json:"decisions"`
	}
	e.mustStatus(e.do("POST", "/v1/check", e.keyA, `{"purpose":"newsletter","subjects":["nobody","cust-1"]}`), 200).json(t, &batch)
	if len(batch.Decisions) != 2 || batch.Decisions[0].Reason != "no_record" || batch.Decisions[1].Reason != "withdrawn" {
		t.Fatalf("batch: %+v", batch)
	}

	var events struct {
		Events    []struct{ Seq int64 } `json:"events"`
		NextAfter *int64                `json:"next_after"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/cust-1/events?limit=1", e.keyA, ""), 200).json(t, &events)
	if len(events.Events) != 1 || events.NextAfter == nil || *events.NextAfter != 1 {
		t.Fatalf("events page: %+v", events)
	}

	var consents struct {
		Consents []struct {
			Purpose string `json:"purpose"`
			Reason  string `json:"reason"`
		} `json:"consents"`
	}
	e.mustStatus(e.do("GET", "/v1/subjects/cust-1/consents", e.keyA, ""), 200).json(t, &consents)
	if len(consents.Consents) != len(demo.Purposes()) {
		t.Fatalf("consents list has %d purposes, want every purpose", len(consents.Consents))
	}
}

func TestIdempotencyKeyOverHTTP(t *testing.T) {
	e := newTestEnv(t)
	first := e.mustStatus(e.do("PUT", "/v1/subjects/c/consents/newsletter", e.keyA, `{"state":"granted"}`, "Idempotency-Key", "k-1"), 201)
	again := e.mustStatus(e.do("PUT", "/v1/subjects/c/consents/newsletter", e.keyA, `{"state":"granted"}`, "Idempotency-Key", "k-1"), 200)
	if again.header.Get("Idempotent-Replayed") != "true" {
		t.Fatal("replay not marked")
	}
	var a, b struct{ Event struct{ Hash string } }
	first.json(t, &a)
	again.json(t, &b)
	if a.Event.Hash != b.Event.Hash {
		t.Fatal("replay returned another event")
	}
	r := e.mustStatus(e.do("PUT", "/v1/subjects/c/consents/newsletter", e.keyA, `{"state":"withdrawn"}`, "Idempotency-Key", "k-1"), 422)
	if code := r.errorCode(t); code != "idempotency_key_reused" {
		t.Fatalf("code %s", code)
	}
}

func TestTenantIsolation(t *testing.T) {
	e := newTestEnv(t)
	// Merchant A's own purpose, subject and consent.
	e.mustStatus(e.do("POST", "/v1/purposes", e.keyA, `{"key":"a_only","texts":{"en":{"name":"A only","statement":"Something only shop A does."}}}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/shared-id", e.keyA, `{"email":"a@example.com"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/shared-id/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)

	// B cannot see A's purpose, subject, consents or events: 404, like anything absent.
	for _, path := range []string{"/v1/purposes/a_only", "/v1/subjects/shared-id", "/v1/subjects/shared-id/consents", "/v1/subjects/shared-id/events"} {
		e.mustStatus(e.do("GET", path, e.keyB, ""), 404).errorCode(t)
	}
	var list struct{ Purposes []struct{ Key string } }
	e.mustStatus(e.do("GET", "/v1/purposes", e.keyB, ""), 200).json(t, &list)
	for _, p := range list.Purposes {
		if p.Key == "a_only" {
			t.Fatal("B lists A's purpose")
		}
	}
	// B's check of the same customer id knows nothing of A's grant.
	var d struct {
		Allowed bool
		Reason  string
	}
	e.mustStatus(e.do("GET", "/v1/check?subject=shared-id&purpose=newsletter", e.keyB, ""), 200).json(t, &d)
	if d.Allowed || d.Reason != "no_record" {
		t.Fatalf("B's check sees A's consent: %+v", d)
	}
	e.mustStatus(e.do("GET", "/v1/check?subject=shared-id&purpose=a_only", e.keyB, ""), 400)
	// B's write lands in B's own subject, never in A's chain.
	e.mustStatus(e.do("PUT", "/v1/subjects/shared-id/consents/newsletter", e.keyB, `{"state":"withdrawn"}`), 201)
	e.mustStatus(e.do("GET", "/v1/check?subject=shared-id&purpose=newsletter", e.keyA, ""), 200).json(t, &d)
	if !d.Allowed {
		t.Fatal("B's withdrawal changed A's subject")
	}
	var ev struct{ Events []struct{ Actor string } }
	e.mustStatus(e.do("GET", "/v1/subjects/shared-id/events", e.keyA, ""), 200).json(t, &ev)
	if len(ev.Events) != 1 {
		t.Fatalf("A's chain has %d events, want 1", len(ev.Events))
	}
	// A merchant named in the query or body is ignored: the key decides.
	e.mustStatus(e.do("GET", "/v1/check?subject=shared-id&purpose=newsletter&merchant_id="+e.merchA.ID, e.keyB, ""), 200).json(t, &d)
	if d.Allowed {
		t.Fatal("merchant_id in the query crossed tenants")
	}
	// B cannot make a preference link into A's subject.
	e.mustStatus(e.do("POST", "/v1/subjects/a-only-subject/preference-links", e.keyA, ""), 404)
	e.mustStatus(e.do("PUT", "/v1/subjects/a-only-subject", e.keyA, `{}`), 201)
	e.mustStatus(e.do("POST", "/v1/subjects/a-only-subject/preference-links", e.keyB, ""), 404)
	e.mustStatus(e.do("POST", "/v1/subjects/a-only-subject/preference-links", e.keyA, ""), 201)
	// B cannot revoke A's keys.
	var keys struct {
		APIKeys []struct{ ID string } `json:"api_keys"`
	}
	e.mustStatus(e.do("GET", "/v1/api-keys", e.keyA, ""), 200).json(t, &keys)
	e.mustStatus(e.do("DELETE", "/v1/api-keys/"+keys.APIKeys[0].ID, e.keyB, ""), 404)
	e.mustStatus(e.do("GET", "/v1/purposes", e.keyA, ""), 200)
}

func TestAPIKeysAreHashedScopedAndRevocable(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	var created struct {
		ID     string   `json:"id"`
		Secret string   `json:"secret"`
		Scopes []string `json:"scopes"`
	}
	e.mustStatus(e.do("POST", "/v1/api-keys", e.keyA, `{"name":"reader","scopes":["consent:read"]}`), 201).json(t, &created)
	if !strings.HasPrefix(created.Secret, "fl_") {
		t.Fatalf("secret %q does not start with fl_", created.Secret)
	}

	// The store holds the hash and never the secret.
	cur, err := e.store.Database().Collection("api_keys").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var docs []bson.M
	if err := cur.All(ctx, &docs); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(created.Secret))
	found := false
	for _, d := range docs {
		raw, _ := bson.Marshal(d)
		for _, secret := range []string{created.Secret, e.keyA, e.keyB} {
			if bytes.Contains(raw, []byte(secret)) || bytes.Contains(raw, []byte(secret[16:])) {
				t.Fatalf("a key's secret is stored in clear: %v", d)
			}
		}
		if d["_id"] == created.ID && d["hash"] == hex.EncodeToString(sum[:]) {
			found = true
		}
	}
	if !found {
		t.Fatal("no stored hash for the new key")
	}

	// Scopes: a read-only key reads but cannot write or manage.
	e.mustStatus(e.do("GET", "/v1/check?subject=x&purpose=newsletter", created.Secret, ""), 200)
	if code := e.mustStatus(e.do("PUT", "/v1/subjects/x/consents/newsletter", created.Secret, `{"state":"granted"}`), 403).errorCode(t); code != "insufficient_scope" {
		t.Fatalf("code %s", code)
	}
	e.mustStatus(e.do("POST", "/v1/purposes", created.Secret, `{}`), 403)

	// Revoked: 401 at once.
	e.mustStatus(e.do("DELETE", "/v1/api-keys/"+created.ID, e.keyA, ""), 204)
	e.mustStatus(e.do("GET", "/v1/check?subject=x&purpose=newsletter", created.Secret, ""), 401).errorCode(t)

	// The last active admin key cannot be revoked: the merchant would be locked out.
	var keys struct {
		APIKeys []struct {
			ID     string   `json:"id"`
			Scopes []string `json:"scopes"`
		} `json:"api_keys"`
	}
	e.mustStatus(e.do("GET", "/v1/api-keys", e.keyA, ""), 200).json(t, &keys)
	for _, k := range keys.APIKeys {
		if k.ID != created.ID {
			if code := e.mustStatus(e.do("DELETE", "/v1/api-keys/"+k.ID, e.keyA, ""), 409).errorCode(t); code != "last_admin_key" {
				t.Fatalf("code %s", code)
			}
		}
	}
	e.mustStatus(e.do("GET", "/v1/purposes", e.keyA, ""), 200)

	// Unknown, malformed, forged and missing keys: 401.
	forged := created.Secret[:len(created.Secret)-1] + "x"
	for _, k := range []string{"", "fl_nope", forged, strings.Repeat("a", 600), "fl_" + created.ID + "_" + strings.Repeat("A", 32)} {
		e.mustStatus(e.do("GET", "/v1/purposes", k, ""), 401).errorCode(t)
	}
}

func TestBadInputGetsA400NeverA500(t *testing.T) {
	e := newTestEnv(t)
	big := `{"purpose":"newsletter","subjects":[` + strings.Repeat(`"s",`, consent.MaxBatch) + `"s"]}`
	huge := `{"state":"` + strings.Repeat("x", 70<<10) + `"}`
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     string
	}{
		{"operator in body", "PUT", "/v1/subjects/c/consents/newsletter", `{"state":{"$ne":null}}`, 400, "invalid_field"},
		{"operator as subject", "PUT", "/v1/subjects/$ne/consents/newsletter", `{"state":"granted"}`, 400, "invalid_subject"},
		{"operator as purpose", "PUT", "/v1/subjects/c/consents/$where", `{"state":"granted"}`, 400, "invalid_purpose"},
		{"operator in query", "GET", "/v1/check?subject[$ne]=x&purpose=newsletter", "", 400, "invalid_query"},
		{"operator as query value", "GET", "/v1/check?subject=%24gt&purpose=newsletter", "", 400, "invalid_subject"},
		{"subject with slash", "GET", "/v1/check?subject=a%2Fb&purpose=newsletter", "", 400, "invalid_subject"},
		{"operator in batch", "POST", "/v1/check", `{"purpose":"newsletter","subjects":[{"$gt":""}]}`, 400, "invalid_field"},
		{"operator as locale key", "POST", "/v1/purposes", `{"key":"p_x","texts":{"$gt":{"name":"x","statement":"a long enough statement"}}}`, 400, "invalid_request"},
		{"unknown field", "PUT", "/v1/subjects/c/consents/newsletter", `{"state":"granted","merchant_id":"mer_x"}`, 400, "unknown_field"},
		{"unknown state", "PUT", "/v1/subjects/c/consents/newsletter", `{"state":"maybe"}`, 400, "invalid_state"},
		{"unknown purpose", "PUT", "/v1/subjects/c/consents/not_there", `{"state":"granted"}`, 400, "unknown_purpose"},
		{"malformed JSON", "PUT", "/v1/subjects/c/consents/newsletter", `{"state":`, 400, "malformed_json"},
		{"trailing data", "PUT", "/v1/subjects/c/consents/newsletter", `{"state":"granted"} {}`, 400, "malformed_json"},
		{"array body", "PUT", "/v1/subjects/c", `[1,2]`, 400, "invalid_field"},
		{"empty body", "PUT", "/v1/subjects/c", ``, 415, "unsupported_media_type"},
		{"bad email", "PUT", "/v1/subjects/c", `{"email":"not an email"}`, 400, "invalid_request"},
		{"bad time zone", "PUT", "/v1/subjects/c", `{"time_zone":"Mars/Olympus"}`, 400, "invalid_request"},
		{"long subject", "GET", "/v1/check?subject=" + strings.Repeat("a", 200) + "&purpose=newsletter", "", 400, "invalid_subject"},
		{"oversized batch", "POST", "/v1/check", big, 400, "batch_too_large"},
		{"empty batch", "POST", "/v1/check", `{"purpose":"newsletter","subjects":[]}`, 400, "empty_batch"},
		{"body too large", "PUT", "/v1/subjects/c/consents/newsletter", huge, 413, "payload_too_large"},
		{"bad limit", "GET", "/v1/subjects/c/events?limit=0", "", 400, "invalid_query"},
		{"non-numeric cursor", "GET", "/v1/subjects/c/events?after=abc", "", 400, "invalid_query"},
		{"sensitive without opt-in", "PUT", "/v1/subjects/c/consents/wellness_tips", `{"state":"granted"}`, 400, "explicit_opt_in_required"},
		{"sensitive category unflagged", "POST", "/v1/purposes", `{"key":"p_h","data_categories":["health"],"texts":{"en":{"name":"x","statement":"a long enough statement"}}}`, 400, "invalid_request"},
		{"no route", "GET", "/v1/nothing", "", 404, "not_found"},
		{"wrong method", "DELETE", "/v1/purposes", "", 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.do(tt.method, tt.path, e.keyA, tt.body)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if code := r.errorCode(t); code != tt.code {
				t.Fatalf("code %q, want %q", code, tt.code)
			}
		})
	}
	// Nothing was written by any of them.
	e.mustStatus(e.do("GET", "/v1/subjects/c", e.keyA, ""), 404)
	r := e.do("PUT", "/v1/subjects/c", e.keyA, `{}`, "Content-Type", "text/plain")
	if r.status != 415 {
		t.Fatalf("text/plain body: %d", r.status)
	}
}

func TestOperatorCreatesMerchant(t *testing.T) {
	e := newTestEnv(t)
	body := `{"slug":"new-shop","name":"New Shop","default_locale":"fr"}`
	e.mustStatus(e.do("POST", "/admin/v1/merchants", "", body), 401)
	e.mustStatus(e.do("POST", "/admin/v1/merchants", "wrong-token-wrong-token", body), 401)
	e.mustStatus(e.do("POST", "/admin/v1/merchants", e.keyA, body), 401)
	var out struct {
		Merchant struct{ Slug string }   `json:"merchant"`
		APIKey   struct{ Secret string } `json:"api_key"`
	}
	e.mustStatus(e.do("POST", "/admin/v1/merchants", testAdminToken, body), 201).json(t, &out)
	if out.Merchant.Slug != "new-shop" || !strings.HasPrefix(out.APIKey.Secret, "fl_") {
		t.Fatalf("created: %+v", out)
	}
	var list struct{ Purposes []any }
	e.mustStatus(e.do("GET", "/v1/purposes", out.APIKey.Secret, ""), 200).json(t, &list)
	if len(list.Purposes) != 0 {
		t.Fatal("a new merchant starts with purposes of another")
	}
	if code := e.mustStatus(e.do("POST", "/admin/v1/merchants", testAdminToken, body), 409).errorCode(t); code != "slug_taken" {
		t.Fatalf("code %s", code)
	}
	e.mustStatus(e.do("POST", "/admin/v1/merchants", testAdminToken, `{"slug":"Bad Slug!","name":"x"}`), 400)
}

func TestOperatorAPIDisabledWithoutToken(t *testing.T) {
	st := storetest.Open(t)
	h, err := handlers.New(&handlers.API{Merchants: &merchants.Service{Store: st, Now: time.Now}, Store: st, Log: storetest.Logger()})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	for _, token := range []string{"", "anything-at-all-here"} {
		req, _ := http.NewRequest("POST", srv.URL+"/admin/v1/merchants", strings.NewReader(`{"slug":"x","name":"x"}`))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 404 {
			t.Fatalf("operator API without a token answered %d, want 404", res.StatusCode)
		}
	}
}

func TestHealthAndHeaders(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("GET", "/healthz", "", ""), 200)
	r := e.mustStatus(e.do("GET", "/readyz", "", ""), 200)
	for h, want := range map[string]string{"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY", "Cache-Control": "no-store"} {
		if got := r.header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if r.header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id")
	}
	if err := e.store.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	r = e.do("GET", "/readyz", "", "")
	if r.status != 503 || r.errorCode(t) != "store_unavailable" {
		t.Fatalf("readyz with the store down: %d %s", r.status, r.body)
	}
}
