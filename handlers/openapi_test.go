package handlers_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/handlers"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/requests"
	"github.com/fineline/fineline/store"
)

// The tests below keep handlers/openapi.json honest: it must be a valid
// OpenAPI 3.1 document, list exactly the routes New registers, declare the
// credentials the router really demands, and describe the bodies the
// handlers really send. The handlers run on a real embedded store.

const oaAdminToken = "operator-token-for-tests"

// loadOpenAPI parses the embedded document and validates it.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(readOpenAPIDocument(t))
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableMultiError()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// openAPIPath turns gin's /a/:b/*c into OpenAPI's /a/{b}/{c}.
func openAPIPath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if strings.HasPrefix(s, ":") || strings.HasPrefix(s, "*") {
			segs[i] = "{" + s[1:] + "}"
		}
	}
	return strings.Join(segs, "/")
}

type openAPIOp struct {
	method, path string
	op           *openapi3.Operation
}

func (o openAPIOp) String() string { return o.method + " " + o.path }

func openAPIOperations(doc *openapi3.T) []openAPIOp {
	var out []openAPIOp
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out = append(out, openAPIOp{method: method, path: path, op: op})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func TestOpenAPIDocumentValid(t *testing.T) {
	doc := loadOpenAPI(t)
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Errorf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	if doc.Info.Title != "Fineline API" || doc.Info.Version != "1" {
		t.Errorf("info = %q %q, want Fineline API 1", doc.Info.Title, doc.Info.Version)
	}
	schemes := doc.Components.SecuritySchemes
	for _, name := range []string{"apiKey", "adminToken"} {
		s := schemes[name]
		if s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" {
			t.Errorf("security scheme %s must be http bearer", name)
		}
	}
	var scopes []string
	for _, s := range merchants.AllScopes() {
		scopes = append(scopes, string(s))
	}
	for _, o := range openAPIOperations(doc) {
		if o.op.OperationID == "" || o.op.Description == "" {
			t.Errorf("%s: needs an operationId and a description", o)
		}
		// Every operation states its credentials; there is no global default.
		if o.op.Security == nil {
			t.Errorf("%s: no security requirement (use [] for public operations)", o)
			continue
		}
		for _, req := range *o.op.Security {
			for name, sc := range req {
				if schemes[name] == nil {
					t.Errorf("%s: unknown security scheme %q", o, name)
				}
				if name == "apiKey" && (len(sc) != 1 || !slices.Contains(scopes, sc[0])) {
					t.Errorf("%s: apiKey must name exactly one of the scopes %v, got %v", o, scopes, sc)
				}
			}
		}
		// Unknown fields are refused, so request bodies say so.
		if rb := o.op.RequestBody; rb != nil {
			mt := rb.Value.Content.Get("application/json")
			if mt == nil {
				mt = rb.Value.Content.Get("application/x-ndjson") // POST /v1/imports: one such object a line
			}
			if mt == nil || !rb.Value.Required {
				t.Errorf("%s: request body must be required application/json", o)
			} else if ap := mt.Schema.Value.AdditionalProperties.Has; ap == nil || *ap {
				t.Errorf("%s: request body schema must set additionalProperties: false", o)
			}
			for _, code := range []int{400, 413} {
				if o.op.Responses.Status(code) == nil {
					t.Errorf("%s: takes a JSON body but does not document %d", o, code)
				}
			}
		}
		// Every error is the shared Error shape.
		for code, r := range o.op.Responses.Map() {
			if code[0] != '4' && code[0] != '5' {
				continue
			}
			mt := r.Value.Content.Get("application/json")
			if mt == nil || mt.Schema.Ref != "#/components/schemas/Error" {
				t.Errorf("%s: response %s must use #/components/schemas/Error", o, code)
			}
		}
	}
}

func TestOpenAPIListsEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	h, err := newTestServer(t, testOptions{}).Handler()
	if err != nil {
		t.Fatal(err)
	}
	engine, ok := h.(*gin.Engine)
	if !ok {
		t.Fatalf("New returned %T, want *gin.Engine", h)
	}
	registered := map[string]bool{}
	for _, r := range engine.Routes() {
		if !isAPIRoute(r.Path) {
			continue // shopper pages, their assets and keys are not the JSON API
		}
		registered[r.Method+" "+openAPIPath(r.Path)] = true
	}
	documented := map[string]bool{}
	for _, o := range openAPIOperations(doc) {
		documented[o.String()] = true
	}
	for r := range registered {
		if !documented[r] {
			t.Errorf("route %s is registered but missing from openapi.json", r)
		}
	}
	for o := range documented {
		if !registered[o] {
			t.Errorf("openapi.json lists %s, which is not a registered route", o)
		}
	}
	if len(registered) == 0 {
		t.Fatal("the router has no routes")
	}
}

func TestOpenAPIServed(t *testing.T) {
	h, err := handlers.New(&handlers.API{Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/v1/openapi.json", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json = %d, want 200", w.Code)
	}
	if ct, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type")); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", w.Header().Get("Content-Type"))
	}
	if !bytes.Equal(w.Body.Bytes(), readOpenAPIDocument(t)) {
		t.Error("GET /v1/openapi.json does not serve the embedded document byte for byte")
	}
}

// TestOpenAPISecurityMatchesRouter calls every operation without credentials,
// with credentials lacking the documented scope, and with exactly the
// documented scope, and checks the router agrees with the document.
func TestOpenAPISecurityMatchesRouter(t *testing.T) {
	doc := loadOpenAPI(t)
	a, _ := newOATestAPI(t)
	c := newOpenAPIClient(t, doc, a)
	ctx := context.Background()
	m, _, _, err := a.Merchants.Create(ctx, merchants.NewMerchant{Slug: "acme", Name: "Acme"})
	if err != nil {
		t.Fatal(err)
	}
	keyWith := func(scopes ...merchants.Scope) string {
		_, secret, err := a.Merchants.CreateKey(ctx, m.ID, "test", scopes)
		if err != nil {
			t.Fatal(err)
		}
		return secret
	}
	params := strings.NewReplacer("{subject}", "cust_1", "{purpose}", "newsletter", "{key}", "newsletter", "{id}", "AAAAAAAAAAAA",
		"{code}", "AAAA-AAAA-AAAA-AAAA-AAAA")
	for _, o := range openAPIOperations(doc) {
		path := params.Replace(o.path)
		if o.op.Security == nil {
			continue // TestOpenAPIDocumentValid reports it
		}
		reqs := *o.op.Security
		switch {
		case len(reqs) == 0:
			if w := c.do(o.method, path, "", nil, nil); w.Code != http.StatusOK {
				t.Errorf("%s is documented as public but answered %d", o, w.Code)
			}
		case reqs[0]["adminToken"] != nil:
			for _, token := range []string{"", "wrong-token-wrong-token"} {
				if w := c.do(o.method, path, token, nil, nil); w.Code != http.StatusUnauthorized {
					t.Errorf("%s with operator token %q answered %d, want 401", o, token, w.Code)
				}
			}
			if w := c.do(o.method, path, oaAdminToken, nil, nil); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("%s with the operator token answered %d", o, w.Code)
			}
		case reqs[0]["apiKey"] != nil:
			scope := merchants.Scope(reqs[0]["apiKey"][0])
			for _, token := range []string{"", "fl_notakey"} {
				if w := c.do(o.method, path, token, nil, nil); w.Code != http.StatusUnauthorized {
					t.Errorf("%s with API key %q answered %d, want 401", o, token, w.Code)
				}
			}
			// Every other scope short of admin, which implies them all.
			var others []merchants.Scope
			for _, s := range merchants.AllScopes() {
				if s != scope && s != merchants.ScopeAdmin {
					others = append(others, s)
				}
			}
			if w := c.do(o.method, path, keyWith(others...), nil, nil); w.Code != http.StatusForbidden {
				t.Errorf("%s documents scope %s, but a key with %v answered %d, want 403", o, scope, others, w.Code)
			}
			if w := c.do(o.method, path, keyWith(scope), nil, nil); w.Code == http.StatusUnauthorized || w.Code == http.StatusForbidden {
				t.Errorf("%s documents scope %s, but a key with it answered %d", o, scope, w.Code)
			}
		default:
			t.Errorf("%s: unexpected security requirement %v", o, reqs)
		}
	}
}

// TestOpenAPIResponsesMatchHandlers drives every operation through the real
// handlers and validates each answer against the document: the status must
// be documented for the operation and the body must match its schema.
func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	doc := loadOpenAPI(t)
	a, _ := newOATestAPI(t)
	c := newOpenAPIClient(t, doc, a)
	type obj = map[string]any
	wantCode := func(w *httptest.ResponseRecorder, code string) {
		t.Helper()
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != code {
			t.Errorf("error code = %q, want %q (%s)", e.Error.Code, code, w.Body)
		}
	}

	// Public.
	c.expect("GET", "/healthz", "", nil, nil, 200)
	c.expect("GET", "/readyz", "", nil, nil, 200)
	c.expect("GET", "/v1/openapi.json", "", nil, nil, 200)

	// Operator.
	newMerchant := obj{"slug": "acme-shop", "name": "Acme Shop", "default_locale": "de"}
	w := c.expect("POST", "/admin/v1/merchants", oaAdminToken, newMerchant, nil, 201)
	var created struct {
		Merchant merchantJSON `json:"merchant"`
		APIKey   keyJSON      `json:"api_key"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &created); err != nil || created.APIKey.Secret == "" {
		t.Fatalf("no API key in %s", w.Body)
	}
	admin := created.APIKey.Secret
	wantCode(c.expect("POST", "/admin/v1/merchants", oaAdminToken, newMerchant, nil, 409), "slug_taken")
	c.expect("POST", "/admin/v1/merchants", "", newMerchant, nil, 401)
	wantCode(c.expect("POST", "/admin/v1/merchants", oaAdminToken, obj{"slug": "Bad Slug", "name": "x"}, nil, 400), "invalid_slug")
	wantCode(c.expect("POST", "/admin/v1/merchants", oaAdminToken, obj{"slug": "evil", "name": "Evil\r\nBcc: x@y.com"}, nil, 400), "invalid_text")
	w = c.expect("POST", "/admin/v1/merchants", oaAdminToken, obj{"slug": "paused-shop", "name": "Paused Shop"}, nil, 201)
	var paused struct {
		Merchant merchantJSON `json:"merchant"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &paused); err != nil {
		t.Fatal(err)
	}
	c.expect("GET", "/admin/v1/merchants?limit=1", oaAdminToken, nil, nil, 200)
	c.expect("GET", "/admin/v1/merchants", oaAdminToken, nil, nil, 200)
	wantCode(c.expect("GET", "/admin/v1/merchants?limit=0", oaAdminToken, nil, nil, 400), "invalid_limit")
	wantCode(c.expect("GET", "/admin/v1/merchants?after=x", oaAdminToken, nil, nil, 400), "invalid_cursor")
	c.expect("POST", "/admin/v1/merchants/"+paused.Merchant.ID+"/suspend", oaAdminToken, nil, nil, 200)
	c.expect("POST", "/admin/v1/merchants/"+paused.Merchant.ID+"/resume", oaAdminToken, nil, nil, 200)
	c.expect("POST", "/admin/v1/merchants/mer_0000000000/suspend", oaAdminToken, nil, nil, 404)
	c.expect("POST", "/admin/v1/merchants/mer_0000000000/resume", "", nil, nil, 401)
	c.expect("POST", "/admin/v1/merchants/"+paused.Merchant.ID+"/owner-invites", oaAdminToken, obj{"email": "owner@paused-shop.example"}, nil, 201)
	wantCode(c.expect("POST", "/admin/v1/merchants/"+paused.Merchant.ID+"/owner-invites", oaAdminToken, obj{"email": "nobody"}, nil, 400), "invalid_email")
	c.expect("POST", "/admin/v1/merchants/mer_0000000000/owner-invites", oaAdminToken, obj{"email": "a@b.example"}, nil, 404)
	wantCode(c.expect("POST", "/admin/v1/merchants", oaAdminToken, obj{"slug": "owned-shop", "name": "Owned", "owner_email": "x"}, nil, 400), "invalid_email")
	c.expect("POST", "/admin/v1/merchants", oaAdminToken, obj{"slug": "owned-shop", "name": "Owned", "owner_email": "owner@owned-shop.example"}, nil, 201)

	// Purposes.
	newsletter := obj{"key": "newsletter", "texts": obj{"en": obj{"name": "Newsletter", "statement": "We email you our weekly offers."}}, "data_categories": []string{"email"}}
	w = c.expect("POST", "/v1/purposes", admin, newsletter, nil, 201)
	if loc := w.Header().Get("Location"); loc != "/v1/purposes/newsletter" {
		t.Errorf("Location = %q", loc)
	}
	c.expect("POST", "/v1/purposes", admin, obj{
		"key": "health_tips", "texts": obj{"de": obj{"name": "Gesundheit", "statement": "Tipps passend zu Ihren Gesundheitsdaten."}},
		"default_locale": "de", "data_categories": []string{"health"}, "sensitive": true, "legal_basis": "consent",
	}, nil, 201)
	wantCode(c.expect("POST", "/v1/purposes", admin, newsletter, nil, 409), "purpose_exists")
	wantCode(c.expect("POST", "/v1/purposes", admin, obj{"key": "x_y", "bogus": 1}, nil, 400), "unknown_field")
	wantCode(c.expect("POST", "/v1/purposes", admin, obj{"key": "two_lines", "texts": obj{"en": obj{"name": "Two\nlines", "statement": "A statement long enough to pass."}}}, nil, 400), "invalid_text")
	wantCode(c.expect("POST", "/v1/purposes", admin, obj{"key": strings.Repeat("a", maxBody)}, nil, 413), "payload_too_large")
	c.expect("GET", "/v1/purposes", admin, nil, nil, 200)
	c.expect("GET", "/v1/purposes/newsletter", admin, nil, nil, 200)
	c.expect("GET", "/v1/purposes/never_made", admin, nil, nil, 404)
	wantCode(c.expect("GET", "/v1/purposes/Bad-Key", admin, nil, nil, 400), "invalid_purpose")
	c.expect("POST", "/v1/purposes", admin, obj{"key": "old_promo", "texts": obj{"en": obj{"name": "Old promotion", "statement": "We emailed you about a promotion that has ended."}}}, nil, 201)
	c.expect("PATCH", "/v1/purposes/old_promo", admin, obj{"data_categories": []string{"contact"}}, nil, 201)
	wantCode(c.expect("PATCH", "/v1/purposes/old_promo", admin, obj{}, nil, 400), "nothing_to_change")
	c.expect("PATCH", "/v1/purposes/never_made", admin, obj{"data_categories": []string{"contact"}}, nil, 404)
	c.expect("POST", "/v1/purposes/old_promo/retire", admin, nil, nil, 200)
	wantCode(c.expect("PATCH", "/v1/purposes/old_promo", admin, obj{"data_categories": []string{"contact"}}, nil, 409), "purpose_retired")
	c.expect("POST", "/v1/purposes/never_made/retire", admin, nil, nil, 404)
	wantCode(c.expect("POST", "/v1/purposes/Bad-Key/retire", admin, nil, nil, 400), "invalid_purpose")

	// Recipients.
	w = c.expect("GET", "/v1/recipients", admin, nil, nil, 200)
	if !strings.Contains(w.Body.String(), `"updated_at":null`) {
		t.Errorf("recipients never set: %s", w.Body)
	}
	mailer := obj{"name": " Mailer Ltd ", "role": "processor", "purposes": []string{"newsletter", "newsletter"}, "country": "ie"}
	c.expect("PUT", "/v1/recipients", admin, obj{"recipients": []obj{mailer, {"name": "Health Partner", "role": "partner", "purposes": []string{"health_tips"}}}}, nil, 200)
	c.expect("GET", "/v1/recipients", admin, nil, nil, 200)
	wantCode(c.expect("PUT", "/v1/recipients", admin, obj{"recipients": []obj{{"name": "X", "role": "owner", "purposes": []string{"newsletter"}}}}, nil, 400), "invalid_recipient")
	wantCode(c.expect("PUT", "/v1/recipients", admin, obj{"recipients": []obj{{"name": "X", "role": "partner", "purposes": []string{"never_made"}}}}, nil, 400), "unknown_purpose")
	wantCode(c.expect("PUT", "/v1/recipients", admin, obj{"recipients": []obj{{"name": "X", "role": "partner", "purposes": []string{"newsletter"}, "Country": "IE"}}}, nil, 400), "unknown_field")
	c.expect("PUT", "/v1/recipients", admin, obj{"recipients": []obj{}}, nil, 200)

	// Subjects.
	c.expect("PUT", "/v1/subjects/cust_1", admin, obj{}, nil, 201)
	c.expect("PUT", "/v1/subjects/cust_1", admin, obj{"email": "Ada@Example.com", "locale": "de", "time_zone": "Europe/Berlin"}, nil, 200)
	c.expect("PUT", "/v1/subjects/cust_1", admin, obj{"email": nil, "locale": ""}, nil, 200)
	c.expect("PUT", "/v1/subjects/cust_1", admin, obj{"email": "not an address"}, nil, 400)
	c.expect("GET", "/v1/subjects/cust_1", admin, nil, nil, 200)
	w = c.expect("POST", "/v1/subjects/cust_1/preference-links", admin, nil, nil, 201)
	if !strings.Contains(w.Body.String(), "/c/acme-shop/p?t=") {
		t.Errorf("preference link: %s", w.Body)
	}
	c.expect("POST", "/v1/subjects/cust_404/preference-links", admin, nil, nil, 404)
	c.expect("GET", "/v1/subjects/cust_1/unsubscribe-headers?purpose=newsletter", admin, nil, nil, 200)
	c.expect("PUT", "/v1/widget-settings", admin, obj{"allowed_origins": []string{"https://shop.example"}}, nil, 200)
	c.expect("PUT", "/v1/widget-settings", admin, obj{"allowed_origins": []string{"not an origin"}}, nil, 400)
	c.expect("GET", "/v1/widget-settings", admin, nil, nil, 200)
	c.expect("POST", "/v1/widget-sessions", admin, obj{"subject": "cust_1"}, nil, 201)
	c.expect("POST", "/v1/widget-sessions", admin, obj{"subject": "cust_404"}, nil, 404)
	c.expect("GET", "/v1/subjects/cust_1/unsubscribe-headers?purpose=never_made", admin, nil, nil, 400)
	c.expect("GET", "/v1/subjects/cust_2", admin, nil, nil, 404)
	wantCode(c.expect("GET", "/v1/subjects/-cust", admin, nil, nil, 400), "invalid_subject")
	c.expect("PUT", "/v1/subjects/cust_gone", admin, obj{"email": "gone@example.com"}, nil, 201)
	c.expect("PUT", "/v1/subjects/cust_gone/consents/newsletter", admin, obj{"state": "granted"}, nil, 201)
	c.expect("DELETE", "/v1/subjects/cust_gone", admin, nil, nil, 200)
	c.expect("DELETE", "/v1/subjects/cust_gone", admin, nil, nil, 200)
	c.expect("GET", "/v1/subjects/cust_gone", admin, nil, nil, 200)
	wantCode(c.expect("PUT", "/v1/subjects/cust_gone", admin, obj{"email": "back@example.com"}, nil, 409), "subject_erased")
	wantCode(c.expect("PUT", "/v1/subjects/cust_gone/consents/newsletter", admin, obj{"state": "granted"}, nil, 409), "subject_erased")
	c.expect("DELETE", "/v1/subjects/cust_404", admin, nil, nil, 404)
	c.expect("GET", "/v1/requests", admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/requests?after=nope", admin, nil, nil, 400), "invalid_request_id")
	c.expect("POST", "/v1/requests/r0000000000000000000000/complete", admin, obj{}, nil, 404)
	c.expect("POST", "/v1/requests/r000000000000000000000/complete", admin, obj{"note": "done"}, nil, 404)
	asked, err := a.Requests.Create(context.Background(), created.Merchant.ID, "cust_1", requests.Access)
	if err != nil {
		t.Fatal(err)
	}
	c.expect("POST", "/v1/requests/"+asked.ID+"/complete", admin, obj{"note": "We emailed you a copy."}, nil, 200)
	wantCode(c.expect("POST", "/v1/requests/"+asked.ID+"/complete", admin, obj{}, nil, 409), "request_completed")
	wantCode(c.expect("DELETE", "/v1/subjects/-cust", admin, nil, nil, 400), "invalid_subject")

	// Consents.
	idem := map[string]string{"Idempotency-Key": "retry-me-1"}
	c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", admin, obj{"state": "denied"}, nil, 201)
	c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", admin, obj{"state": "granted"}, idem, 201)
	w = c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", admin, obj{"state": "granted"}, idem, 200)
	if w.Header().Get("Idempotent-Replayed") != "true" {
		t.Error("replay without Idempotent-Replayed: true")
	}
	wantCode(c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", admin, obj{"state": "withdrawn"}, idem, 422), "idempotency_key_reused")
	wantCode(c.expect("PUT", "/v1/subjects/cust_1/consents/health_tips", admin, obj{"state": "granted"}, nil, 400), "explicit_opt_in_required")
	c.expect("PUT", "/v1/subjects/cust_1/consents/health_tips", admin, obj{"state": "granted", "explicit_opt_in": true}, nil, 201)
	wantCode(c.expect("PUT", "/v1/subjects/cust_1/consents/never_made", admin, obj{"state": "granted"}, nil, 400), "unknown_purpose")
	wantCode(c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", admin, obj{"state": "maybe"}, nil, 400), "invalid_state")
	wantCode(c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", admin, obj{"state": "granted"}, map[string]string{"Idempotency-Key": "has space"}, 400), "invalid_idempotency_key")
	c.expect("PUT", "/v1/subjects/cust_9/consents/newsletter", admin, obj{"state": "withdrawn"}, nil, 201)
	c.expect("GET", "/v1/subjects/cust_1/consents", admin, nil, nil, 200)
	c.expect("GET", "/v1/subjects/cust_2/consents", admin, nil, nil, 404)
	w = c.expect("GET", "/v1/subjects/cust_1/events?limit=2", admin, nil, nil, 200)
	var page struct {
		Events    []eventJSON `json:"events"`
		NextAfter *int64      `json:"next_after"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Events) != 2 || page.NextAfter == nil || *page.NextAfter != 2 {
		t.Errorf("first page of 3 events: %s", w.Body)
	}
	w = c.expect("GET", "/v1/subjects/cust_1/events?after=2", admin, nil, nil, 200)
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Events) != 1 || page.NextAfter != nil {
		t.Errorf("last page: %s", w.Body)
	}
	wantCode(c.expect("GET", "/v1/subjects/cust_1/events?limit=201", admin, nil, nil, 400), "invalid_query")
	c.expect("GET", "/v1/subjects/cust_1/events?after=-1", admin, nil, nil, 400)
	c.expect("GET", "/v1/subjects/cust_2/events", admin, nil, nil, 404)
	w = c.expect("GET", "/v1/changes?limit=2", admin, nil, nil, 200)
	var changes struct {
		Changes []eventJSON `json:"changes"`
		Next    string      `json:"next"`
		HasMore bool        `json:"has_more"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &changes); err != nil || len(changes.Changes) != 2 || !changes.HasMore {
		t.Errorf("first page of changes: %s", w.Body)
	}
	c.expect("GET", "/v1/changes?after="+changes.Next, admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/changes?after=nope", admin, nil, nil, 400), "invalid_cursor")
	wantCode(c.expect("GET", "/v1/changes?limit=1001", admin, nil, nil, 400), "invalid_query")

	// Webhook endpoints (a literal public address: nothing is sent here).
	w = c.expect("POST", "/v1/webhook-endpoints", admin, obj{"url": "https://93.184.215.14/hooks", "types": []string{"consent.withdrawn"}, "label": "CRM"}, nil, 201)
	var hook struct {
		Endpoint struct {
			ID string `json:"id"`
		} `json:"endpoint"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &hook); err != nil || hook.Endpoint.ID == "" {
		t.Fatalf("created endpoint: %s", w.Body)
	}
	wantCode(c.expect("POST", "/v1/webhook-endpoints", admin, obj{"url": "https://10.0.0.1/hooks"}, nil, 400), "url_not_allowed")
	c.expect("GET", "/v1/webhook-endpoints", admin, nil, nil, 200)
	c.expect("GET", "/v1/webhook-endpoints/"+hook.Endpoint.ID, admin, nil, nil, 200)
	c.expect("GET", "/v1/webhook-endpoints/ep_nope", admin, nil, nil, 404)
	c.expect("POST", "/v1/webhook-endpoints/"+hook.Endpoint.ID+"/rotate-secret", admin, nil, nil, 200)
	c.expect("GET", "/v1/webhook-endpoints/"+hook.Endpoint.ID+"/attempts", admin, nil, nil, 200)
	c.expect("POST", "/v1/webhook-endpoints/"+hook.Endpoint.ID+"/replay", admin, obj{"since": "2025-12-01T00:00:00Z", "until": "2025-12-31T00:00:00Z"}, nil, 202)
	wantCode(c.expect("POST", "/v1/webhook-endpoints/"+hook.Endpoint.ID+"/replay", admin, obj{"since": "2025-12-31T00:00:00Z", "until": "2025-12-01T00:00:00Z"}, nil, 400), "invalid_replay")
	c.expect("DELETE", "/v1/webhook-endpoints/"+hook.Endpoint.ID, admin, nil, nil, 204)

	// Imports: one NDJSON line.
	c.expect("POST", "/v1/imports", admin, obj{"subject": "imp_1", "purpose": "newsletter", "state": "granted", "given_at": "2024-03-14T15:09:26Z", "source": "shopify"},
		map[string]string{"Content-Type": "application/x-ndjson"}, 200)
	wantCode(c.expect("POST", "/v1/imports", admin, obj{"subject": "imp_1", "purpose": "nope", "state": "granted", "given_at": "2024-03-14T15:09:26Z", "source": "shopify"},
		map[string]string{"Content-Type": "application/x-ndjson"}, 400), "invalid_lines")

	// Analytics.
	c.expect("GET", "/v1/stats/purposes?interval=week", admin, nil, nil, 200)
	c.expect("GET", "/v1/stats/purposes?purpose=newsletter&format=csv", admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/stats/purposes?interval=hour", admin, nil, nil, 400), "invalid_interval")
	wantCode(c.expect("GET", "/v1/stats/purposes?purpose=nope", admin, nil, nil, 404), "unknown_purpose")

	// Exports: queued, not ready, then made and downloaded.
	w = c.expect("POST", "/v1/exports", admin, obj{"purpose": "newsletter", "format": "ndjson", "include": "all"}, nil, 202)
	var exp struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &exp); err != nil || exp.ID == "" {
		t.Fatalf("created export: %s", w.Body)
	}
	c.expect("POST", "/v1/exports", admin, obj{"purpose": "no_such_purpose"}, nil, 404)
	c.expect("GET", "/v1/exports/"+exp.ID, admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/exports/"+exp.ID+"/data", admin, nil, nil, 409), "export_not_ready")
	c.expect("GET", "/v1/exports/exp_nope", admin, nil, nil, 404)
	jobs, stopJobs := context.WithCancel(context.Background())
	jobsDone := make(chan struct{})
	go func() { defer close(jobsDone); a.Exports.Run(jobs) }()
	for i := 0; ; i++ {
		w = c.expect("GET", "/v1/exports/"+exp.ID, admin, nil, nil, 200)
		if strings.Contains(w.Body.String(), `"status":"ready"`) || i == 200 {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	stopJobs()
	<-jobsDone
	c.expect("GET", "/v1/exports/"+exp.ID+"/data", admin, nil, nil, 200)

	// Notices.
	draft := obj{"texts": obj{"en": obj{"summary": "We now share purchases with a delivery partner."}}, "material": true, "purposes": []string{"newsletter"}}
	c.expect("POST", "/v1/notices", admin, draft, nil, 201)
	c.expect("POST", "/v1/notices", admin, obj{"texts": obj{"en": obj{"summary": "Too short"}}}, nil, 400)
	c.expect("PUT", "/v1/notices/2", admin, obj{"texts": obj{"en": obj{"summary": "We now share purchases with two partners."}}, "material": true, "purposes": []string{"newsletter"}}, nil, 200)
	c.expect("GET", "/v1/notices/2", admin, nil, nil, 200)
	c.expect("GET", "/v1/notices/7", admin, nil, nil, 404)
	c.expect("POST", "/v1/notices/2/publish", admin, obj{"grace_period_days": 14}, nil, 200)
	wantCode(c.expect("PUT", "/v1/notices/2", admin, draft, nil, 409), "notice_published")
	wantCode(c.expect("DELETE", "/v1/notices/2", admin, nil, nil, 409), "notice_published")
	c.expect("POST", "/v1/notices", admin, draft, nil, 201)
	c.expect("DELETE", "/v1/notices/3", admin, nil, nil, 204)
	c.expect("GET", "/v1/notices", admin, nil, nil, 200)
	c.expect("GET", "/v1/notices/current", admin, nil, nil, 200)
	w = c.expect("GET", "/v1/notices/2/announcement", admin, nil, nil, 200)
	if !strings.Contains(w.Body.String(), `"version":2`) {
		t.Errorf("announcement: %s", w.Body)
	}
	c.expect("GET", "/v1/notices/1/announcement", admin, nil, nil, 404)
	c.expect("GET", "/v1/stats/notices/2", admin, nil, nil, 200)
	c.expect("GET", "/v1/stats/notices/2?format=csv", admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/stats/notices/1", admin, nil, nil, 400), "not_material")
	wantCode(c.expect("GET", "/v1/stats/notices/2?to=2026-01-01", admin, nil, nil, 400), "invalid_query")
	c.expect("GET", "/v1/stats/notices/9", admin, nil, nil, 404)
	c.expect("GET", "/v1/stats/banner?interval=week", admin, nil, nil, 200)
	c.expect("GET", "/v1/stats/banner?format=csv", admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/stats/banner?purpose=newsletter", admin, nil, nil, 400), "invalid_query")
	w = c.expect("GET", "/v1/check?subject=cust_1&purpose=newsletter", admin, nil, nil, 200)
	if !strings.Contains(w.Body.String(), `"reason":"reconsent_due"`) {
		t.Errorf("check during the grace period: %s", w.Body)
	}

	// Checks.
	c.expect("GET", "/v1/check?subject=cust_1&purpose=newsletter", admin, nil, nil, 200)
	c.expect("GET", "/v1/check?subject=cust_9&purpose=newsletter", admin, nil, nil, 200)
	c.expect("GET", "/v1/check?subject=nobody&purpose=newsletter", admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/check?purpose=newsletter", admin, nil, nil, 400), "invalid_query")
	wantCode(c.expect("GET", "/v1/check?subject=cust_1&purpose=never_made", admin, nil, nil, 400), "unknown_purpose")
	c.expect("POST", "/v1/check", admin, obj{"purpose": "newsletter", "subjects": []string{"cust_1", "nobody", "cust_9", "cust_1"}}, nil, 200)
	wantCode(c.expect("POST", "/v1/check", admin, obj{"purpose": "newsletter", "subjects": []string{}}, nil, 400), "empty_batch")
	wantCode(c.expect("POST", "/v1/check", admin, obj{"purpose": "newsletter", "subjects": make([]string, consent.MaxBatch+1)}, nil, 400), "batch_too_large")

	fieldsOffersRewards(t, a, c, admin, created.Merchant.ID)

	// API keys.
	w = c.expect("POST", "/v1/api-keys", admin, obj{"name": "reader", "scopes": []string{"consent:read"}}, nil, 201)
	var reader keyJSON
	if err := json.Unmarshal(w.Body.Bytes(), &reader); err != nil || reader.Secret == "" {
		t.Fatalf("no secret in %s", w.Body)
	}
	c.expect("POST", "/v1/api-keys", admin, obj{"scopes": []string{"owner"}}, nil, 400)
	c.expect("GET", "/v1/check?subject=cust_1&purpose=newsletter", reader.Secret, nil, nil, 200)
	wantCode(c.expect("PUT", "/v1/subjects/cust_1/consents/newsletter", reader.Secret, obj{"state": "granted"}, nil, 403), "insufficient_scope")
	c.expect("DELETE", "/v1/api-keys/"+reader.ID, admin, nil, nil, 204)
	c.expect("DELETE", "/v1/api-keys/"+reader.ID, admin, nil, nil, 204)
	c.expect("GET", "/v1/api-keys", admin, nil, nil, 200)
	c.expect("DELETE", "/v1/api-keys/AAAAAAAAAAAA", admin, nil, nil, 404)
	wantCode(c.expect("GET", "/v1/purposes", reader.Secret, nil, nil, 401), "unauthorized")

	// Readiness with the store down.
	down, downStore := newOATestAPI(t)
	if err := downStore.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	wantCode(newOpenAPIClient(t, doc, down).expect("GET", "/readyz", "", nil, nil, 503), "store_unavailable")

	// Operator routes without an operator token configured.
	noAdmin := newTestServer(t, testOptions{})
	wantCode(newOpenAPIClient(t, doc, noAdmin).expect("POST", "/admin/v1/merchants", oaAdminToken, newMerchant, nil, 404), "not_found")

	for _, o := range openAPIOperations(doc) {
		if !c.succeeded[o.String()] {
			t.Errorf("%s was never answered with a documented 2xx here: add a case", o)
		}
	}
}

// fieldsOffersRewards drives the value exchange's routes for the merchant
// whose admin key is given: fields, offers, a subject's volunteered data
// before and after it is given and withdrawn, and rewards looked up and
// redeemed. Values are given and rewards issued through the domain, as the
// preference center and the issuing job do.
func fieldsOffersRewards(t *testing.T, a *testServer, c *openAPIClient, admin, merchantID string) {
	t.Helper()
	type obj = map[string]any
	ctx := context.Background()
	wantCode := func(w *httptest.ResponseRecorder, code string) {
		t.Helper()
		var e errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error.Code != code {
			t.Errorf("error code = %q, want %q (%s)", e.Error.Code, code, w.Body)
		}
	}
	type disclosure struct {
		Subject  string          `json:"subject"`
		Purpose  string          `json:"purpose"`
		Allowed  bool            `json:"allowed"`
		Fields   []disclosedJSON `json:"fields"`
		Withheld []withheldJSON  `json:"withheld"`
	}
	wantDisclosure := func(target string, want disclosure) {
		t.Helper()
		w := c.expect("GET", target, admin, nil, nil, 200)
		var got disclosure
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || got.Subject != want.Subject || got.Purpose != want.Purpose ||
			got.Allowed != want.Allowed || !slices.Equal(got.Fields, want.Fields) || !slices.Equal(got.Withheld, want.Withheld) {
			t.Errorf("GET %s = %s, want %+v", target, w.Body, want)
		}
	}
	wantEvent := func(e eventJSON, seq int64, state, field, channel, actor string) {
		t.Helper()
		if e.Seq != seq || e.State != state || e.Field != field || e.Purpose != "birthday_reward" || e.Channel != channel || e.Actor != actor {
			t.Errorf("event %d = %+v, want %s of %q by %s via %s", seq, e, state, field, actor, channel)
		}
	}

	// Fields.
	c.expect("POST", "/v1/purposes", admin, obj{"key": "birthday_reward", "texts": obj{"en": obj{"name": "Birthday reward",
		"statement": "Tell us your birthday and we email you 15% off in your birthday month."}}, "data_categories": []string{"birthday", "email"}}, nil, 201)
	birthday := obj{"key": "birthday", "type": "date", "omit_year": true, "purposes": []string{"birthday_reward"},
		"texts": obj{"en": obj{"label": "Your birthday", "explanation": "Only the month and day, to send you a birthday treat."}}}
	w := c.expect("POST", "/v1/fields", admin, birthday, nil, 201)
	if loc := w.Header().Get("Location"); loc != "/v1/fields/birthday" {
		t.Errorf("Location = %q", loc)
	}
	wantCode(c.expect("POST", "/v1/fields", admin, birthday, nil, 409), "field_exists")
	c.expect("POST", "/v1/fields", admin, obj{"key": "shoe_size", "type": "choice", "choices": []string{"38", "39", "40", "41"},
		"purposes": []string{"newsletter"}, "default_locale": "de",
		"texts": obj{"de": obj{"label": "Deine Schuhgröße", "explanation": "Damit die Schuhe, die wir vorschlagen, in deiner Größe da sind."}}}, nil, 201)
	c.expect("POST", "/v1/fields", admin, obj{"key": "household_size", "type": "number", "min": 1, "max": 20, "purposes": []string{"newsletter"},
		"texts": obj{"en": obj{"label": "People in your household", "explanation": "So the pack sizes we suggest fit your household."}}}, nil, 201)
	wantCode(c.expect("POST", "/v1/fields", admin, obj{"key": "zodiac", "type": "text", "purposes": []string{"never_made"},
		"texts": obj{"en": obj{"label": "Your sign", "explanation": "For horoscopes in the newsletter."}}}, nil, 400), "unknown_purpose")
	wantCode(c.expect("POST", "/v1/fields", admin, obj{"key": "Bad-Key", "type": "text", "purposes": []string{"newsletter"},
		"texts": obj{"en": obj{"label": "Bad", "explanation": "A key that is not a key."}}}, nil, 400), "invalid_field_key")
	wantCode(c.expect("POST", "/v1/fields", admin, obj{"key": "shoe_width", "type": "number", "omit_year": true, "purposes": []string{"newsletter"},
		"texts": obj{"en": obj{"label": "Shoe width", "explanation": "So the shoes we suggest fit."}}}, nil, 400), "invalid_request")
	wantCode(c.expect("POST", "/v1/fields", admin, obj{"key": "x_y", "bogus": 1}, nil, 400), "unknown_field")
	c.expect("GET", "/v1/fields", admin, nil, nil, 200)
	c.expect("GET", "/v1/fields/birthday", admin, nil, nil, 200)
	c.expect("GET", "/v1/fields/never_made", admin, nil, nil, 404)
	wantCode(c.expect("GET", "/v1/fields/Bad-Key", admin, nil, nil, 400), "invalid_field_key")

	// Attributes and the personalization guard.
	c.expect("POST", "/v1/attributes", admin, obj{"key": "last_order_total", "category": "spend", "provenance": "observed",
		"texts": obj{"en": obj{"label": "Last order total", "explanation": "Because of your last order with us"}}}, nil, 201)
	wantCode(c.expect("POST", "/v1/attributes", admin, obj{"key": "mood", "category": "feelings", "provenance": "inferred",
		"texts": obj{"en": obj{"label": "Mood", "explanation": "Because of how you seem today"}}}, nil, 400), "invalid_category")
	wantCode(c.expect("POST", "/v1/attributes", admin, obj{"key": "birthday", "category": "demographic", "provenance": "volunteered",
		"texts": obj{"en": obj{"label": "Birthday", "explanation": "Because you told us your birthday"}}}, nil, 409), "attribute_exists")
	c.expect("GET", "/v1/attributes", admin, nil, nil, 200)
	c.expect("GET", "/v1/attributes/birthday", admin, nil, nil, 200)
	c.expect("GET", "/v1/attributes/never_made", admin, nil, nil, 404)
	c.expect("POST", "/v1/personalization/check", admin, obj{"subject": "cust_1", "purpose": "birthday_reward", "channel": "email",
		"template": "Happy birthday! {{birthday}} {{last_order_total}}"}, nil, 200)
	c.expect("POST", "/v1/personalization/check", admin, obj{"subjects": []string{"cust_1", "cust_2"}, "purpose": "birthday_reward", "channel": "email",
		"attributes": []string{"birthday"}}, nil, 200)
	wantCode(c.expect("POST", "/v1/personalization/check", admin, obj{"subject": "cust_1", "purpose": "birthday_reward", "channel": "email",
		"template": "Hi {{first_name"}, nil, 400), "invalid_template")

	// Offers: the demo merchant's birthday offer, in four locales.
	treat := demo.BirthdayOffer()
	offer := obj{"key": treat.Key, "purpose": treat.Purpose, "fields": treat.Fields, "texts": treat.Texts,
		"birthday_reward": obj{"field": treat.Birthday.Field, "on": string(treat.Birthday.On), "valid_days": treat.Birthday.ValidDays}}
	w = c.expect("POST", "/v1/offers", admin, offer, nil, 201)
	if loc := w.Header().Get("Location"); loc != "/v1/offers/"+treat.Key {
		t.Errorf("Location = %q", loc)
	}
	wantCode(c.expect("POST", "/v1/offers", admin, offer, nil, 409), "offer_exists")
	small := func(key, purpose string, fields []string, text offers.Text) obj {
		return obj{"key": key, "purpose": purpose, "fields": fields, "texts": map[string]offers.Text{"en": text}}
	}
	en := treat.Texts["en"]
	c.expect("POST", "/v1/offers", admin, small("birthday_plain", "birthday_reward", []string{"birthday"}, en), nil, 201)
	c.expect("GET", "/v1/stats/offers/"+treat.Key+"?interval=month", admin, nil, nil, 200)
	c.expect("GET", "/v1/stats/offers/"+treat.Key+"?format=csv", admin, nil, nil, 200)
	c.expect("GET", "/v1/stats/offers/nope", admin, nil, nil, 404)
	wantCode(c.expect("GET", "/v1/stats/offers/"+treat.Key+"?interval=hour", admin, nil, nil, 400), "invalid_interval")
	incomplete := en
	incomplete.Notice.ValueMethod = ""
	wantCode(c.expect("POST", "/v1/offers", admin, small("birthday_lite", "birthday_reward", []string{"birthday"}, incomplete), nil, 400), "incomplete_notice")
	wantCode(c.expect("POST", "/v1/offers", admin, small("zodiac", "birthday_reward", []string{"zodiac"}, en), nil, 400), "unknown_field_key")
	wantCode(c.expect("POST", "/v1/offers", admin, small("news_bday", "newsletter", []string{"birthday"}, en), nil, 400), "field_not_needed")
	wantCode(c.expect("POST", "/v1/offers", admin, small("nothing", "never_made", []string{"birthday"}, en), nil, 400), "unknown_purpose")
	wantCode(c.expect("POST", "/v1/offers", admin, small("Bad-Key", "birthday_reward", []string{"birthday"}, en), nil, 400), "invalid_offer")
	c.expect("GET", "/v1/offers", admin, nil, nil, 200)
	c.expect("GET", "/v1/offers/"+treat.Key, admin, nil, nil, 200)
	c.expect("GET", "/v1/offers/never_made", admin, nil, nil, 404)
	wantCode(c.expect("GET", "/v1/offers/Bad-Key", admin, nil, nil, 400), "invalid_offer")

	// A subject's fields: nothing before the purpose is granted.
	notNeeded := []withheldJSON{{Key: "household_size", Reason: fields.ReasonNotNeeded}, {Key: "shoe_size", Reason: fields.ReasonNotNeeded}}
	wantDisclosure("/v1/subjects/cust_7/fields?purpose=birthday_reward", disclosure{Subject: "cust_7", Purpose: "birthday_reward", Fields: []disclosedJSON{},
		Withheld: append([]withheldJSON{{Key: "birthday", Reason: fields.ReasonNotGranted, Decision: "no_record"}}, notNeeded...)})
	wantCode(c.expect("GET", "/v1/subjects/cust_7/fields", admin, nil, nil, 400), "purpose_required")
	wantCode(c.expect("GET", "/v1/subjects/cust_7/fields?purpose=Bad-Key", admin, nil, nil, 400), "invalid_purpose")
	wantCode(c.expect("GET", "/v1/subjects/cust_7/fields?purpose=never_made", admin, nil, nil, 400), "unknown_purpose")
	wantCode(c.expect("GET", "/v1/subjects/-cust/fields?purpose=birthday_reward", admin, nil, nil, 400), "invalid_subject")
	// fields:read is its own scope: consent:read does not include it, nor it consent:read.
	w = c.expect("POST", "/v1/api-keys", admin, obj{"name": "crm", "scopes": []string{"fields:read"}}, nil, 201)
	var crm keyJSON
	if err := json.Unmarshal(w.Body.Bytes(), &crm); err != nil || crm.Secret == "" {
		t.Fatalf("no secret in %s", w.Body)
	}
	w = c.expect("POST", "/v1/api-keys", admin, obj{"name": "checkout", "scopes": []string{"consent:read", "consent:write"}}, nil, 201)
	var checkout keyJSON
	if err := json.Unmarshal(w.Body.Bytes(), &checkout); err != nil || checkout.Secret == "" {
		t.Fatalf("no secret in %s", w.Body)
	}
	c.expect("GET", "/v1/subjects/cust_7/fields?purpose=birthday_reward", crm.Secret, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/fields", crm.Secret, nil, nil, 403), "insufficient_scope")
	wantCode(c.expect("GET", "/v1/subjects/cust_7/fields?purpose=birthday_reward", checkout.Secret, nil, nil, 403), "insufficient_scope")

	// The shopper accepts the offer in the preference center: the purpose
	// is granted and the birthday stored, and disclosed for that purpose only.
	if _, err := a.Offers.Accept(ctx, offers.Acceptance{MerchantID: merchantID, SubjectID: "cust_7", Offer: treat.Key,
		Values: map[string]string{"birthday": "--03-05"}, Channel: consent.ChannelCenter, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	wantDisclosure("/v1/subjects/cust_7/fields?purpose=birthday_reward", disclosure{Subject: "cust_7", Purpose: "birthday_reward", Allowed: true,
		Fields: []disclosedJSON{{Key: "birthday", Type: "date", Value: "--03-05"}}, Withheld: notNeeded})
	wantDisclosure("/v1/subjects/cust_7/fields?purpose=newsletter", disclosure{Subject: "cust_7", Purpose: "newsletter", Fields: []disclosedJSON{},
		Withheld: []withheldJSON{{Key: "birthday", Reason: fields.ReasonNotNeeded},
			{Key: "household_size", Reason: fields.ReasonNotGranted, Decision: "no_record"}, {Key: "shoe_size", Reason: fields.ReasonNotGranted, Decision: "no_record"}}})
	c.expect("PUT", "/v1/subjects/cust_8/consents/newsletter", admin, obj{"state": "granted"}, nil, 201)
	wantDisclosure("/v1/subjects/cust_8/fields?purpose=newsletter", disclosure{Subject: "cust_8", Purpose: "newsletter", Allowed: true, Fields: []disclosedJSON{},
		Withheld: []withheldJSON{{Key: "birthday", Reason: fields.ReasonNotNeeded},
			{Key: "household_size", Reason: fields.ReasonNotGiven}, {Key: "shoe_size", Reason: fields.ReasonNotGiven}}})

	// The ledger records the value given and, on withdrawal, erased: by
	// field and purpose, never the value.
	var page struct {
		Events []eventJSON `json:"events"`
	}
	w = c.expect("GET", "/v1/subjects/cust_7/events", admin, nil, nil, 200)
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Events) != 2 || strings.Contains(w.Body.String(), "03-05") {
		t.Fatalf("events after accepting: %s", w.Body)
	}
	wantEvent(page.Events[0], 1, "granted", "", "center", "test")
	wantEvent(page.Events[1], 2, "provided", "birthday", "center", "test")
	c.expect("PUT", "/v1/subjects/cust_7/consents/birthday_reward", admin, obj{"state": "withdrawn"}, nil, 201)
	w = c.expect("GET", "/v1/subjects/cust_7/events?after=2", admin, nil, nil, 200)
	if err := json.Unmarshal(w.Body.Bytes(), &page); err != nil || len(page.Events) != 2 {
		t.Fatalf("events after withdrawing: %s", w.Body)
	}
	wantEvent(page.Events[0], 3, "withdrawn", "", "api", "api_key:"+strings.Split(admin, "_")[1])
	wantEvent(page.Events[1], 4, "erased", "birthday", "api", "system:purpose_withdrawn")
	wantDisclosure("/v1/subjects/cust_7/fields?purpose=birthday_reward", disclosure{Subject: "cust_7", Purpose: "birthday_reward", Fields: []disclosedJSON{},
		Withheld: append([]withheldJSON{{Key: "birthday", Reason: fields.ReasonNotGranted, Decision: "withdrawn"}}, notNeeded...)})

	// Rewards, issued as the birthday job does: one valid now, one next year.
	w = c.expect("GET", "/v1/rewards?subject=cust_7", admin, nil, nil, 200)
	if !strings.Contains(w.Body.String(), `"rewards":[]`) {
		t.Errorf("rewards before any is issued: %s", w.Body)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	issue := func(period int, from, until time.Time) string {
		t.Helper()
		p := fmt.Sprint(period)
		code := a.Offers.Codes.For(merchantID, treat.Key, "cust_7", p)
		if _, err := a.Offers.Store.IssueReward(ctx, offers.Reward{MerchantID: merchantID, Offer: treat.Key, SubjectID: "cust_7", Period: p, Code: code,
			IssuedAt: now, ValidFrom: from, ValidUntil: until, Mail: offers.MailSkipped}); err != nil {
			t.Fatal(err)
		}
		return offers.Display(code)
	}
	code := issue(now.Year(), now.Add(-time.Hour), now.Add(30*24*time.Hour))
	nextYear := issue(now.Year()+1, now.AddDate(1, 0, 0), now.AddDate(1, 1, 0))
	w = c.expect("GET", "/v1/rewards?subject=cust_7", admin, nil, nil, 200)
	var list struct {
		Rewards []rewardJSON `json:"rewards"`
	}
	if err := json.Unmarshal(w.Body.Bytes(), &list); err != nil || len(list.Rewards) != 2 {
		t.Errorf("rewards: %s", w.Body)
	}
	c.expect("GET", "/v1/rewards?subject=nobody", admin, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/rewards", admin, nil, nil, 400), "subject_required")
	wantCode(c.expect("GET", "/v1/rewards?subject=-cust", admin, nil, nil, 400), "invalid_subject")
	w = c.expect("GET", "/v1/rewards/"+code, admin, nil, nil, 200)
	if !strings.Contains(w.Body.String(), `"code":"`+code+`"`) || !strings.Contains(w.Body.String(), `"redeemed":false`) {
		t.Errorf("reward: %s", w.Body)
	}
	// As a shopper may type it.
	c.expect("GET", "/v1/rewards/"+strings.ToLower(strings.ReplaceAll(code, "-", "")), admin, nil, nil, 200)
	// A made-up code fails its tag; a well-tagged one never issued is not found either.
	wantCode(c.expect("GET", "/v1/rewards/AAAA-AAAA-AAAA-AAAA-AAAA", admin, nil, nil, 404), "invalid_code")
	wantCode(c.expect("GET", "/v1/rewards/"+offers.Display(a.Offers.Codes.For(merchantID, treat.Key, "cust_7", "1999")), admin, nil, nil, 404), "invalid_code")
	w = c.expect("POST", "/v1/rewards/"+code+"/redeem", admin, nil, nil, 200)
	if !strings.Contains(w.Body.String(), `"redeemed":true`) || !strings.Contains(w.Body.String(), `"redeemed_at":`) {
		t.Errorf("redeemed: %s", w.Body)
	}
	wantCode(c.expect("POST", "/v1/rewards/"+code+"/redeem", admin, nil, nil, 409), "already_redeemed")
	wantCode(c.expect("POST", "/v1/rewards/"+nextYear+"/redeem", admin, nil, nil, 409), "reward_not_valid_now")
	wantCode(c.expect("POST", "/v1/rewards/AAAA-AAAA-AAAA-AAAA-AAAA/redeem", admin, nil, nil, 404), "invalid_code")
	wantCode(c.expect("POST", "/v1/rewards/"+nextYear+"/redeem", crm.Secret, nil, nil, 403), "insufficient_scope")
	// A till's key: codes only.
	w = c.expect("POST", "/v1/api-keys", admin, obj{"name": "till", "scopes": []string{"rewards:redeem"}}, nil, 201)
	var till keyJSON
	if err := json.Unmarshal(w.Body.Bytes(), &till); err != nil || till.Secret == "" {
		t.Fatalf("till key: %s", w.Body)
	}
	c.expect("GET", "/v1/rewards/"+code, till.Secret, nil, nil, 200)
	wantCode(c.expect("GET", "/v1/rewards/"+code, checkout.Secret, nil, nil, 403), "insufficient_scope")
	wantCode(c.expect("GET", "/v1/rewards?subject=cust_7", till.Secret, nil, nil, 403), "insufficient_scope")

	// The till's offline check, with only the key the API gives.
	w = c.expect("GET", "/v1/reward-code-key", admin, nil, nil, 200)
	var ck struct{ Key string }
	if err := json.Unmarshal(w.Body.Bytes(), &ck); err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(ck.Key)
	if err != nil || !offers.VerifyOffline(key, strings.ReplaceAll(code, "-", "")) || offers.VerifyOffline(key, "AAAAAAAAAAAAAAAAAAAA") {
		t.Errorf("the reward-code key does not check codes offline (%v)", err)
	}
	wantCode(c.expect("GET", "/v1/reward-code-key", checkout.Secret, nil, nil, 403), "insufficient_scope")
}

// openAPIClient sends requests to the real handler and checks each answer
// against the document.
type openAPIClient struct {
	t         *testing.T
	doc       *openapi3.T
	h         http.Handler
	succeeded map[string]bool
}

func newOpenAPIClient(t *testing.T, doc *openapi3.T, a *testServer) *openAPIClient {
	t.Helper()
	h, err := a.Handler()
	if err != nil {
		t.Fatal(err)
	}
	return &openAPIClient{t: t, doc: doc, h: h, succeeded: map[string]bool{}}
}

// expect is do that also requires the status.
func (c *openAPIClient) expect(method, target, token string, body any, header map[string]string, status int) *httptest.ResponseRecorder {
	c.t.Helper()
	w := c.do(method, target, token, body, header)
	if w.Code != status {
		c.t.Errorf("%s %s = %d, want %d: %s", method, target, w.Code, status, w.Body)
	}
	return w
}

// do sends the request, then checks that the operation documents the status
// and that the body and headers match the documented response.
func (c *openAPIClient) do(method, target, token string, body any, header map[string]string) *httptest.ResponseRecorder {
	c.t.Helper()
	o, ok := c.find(method, target)
	if !ok {
		c.t.Fatalf("%s %s matches no documented operation", method, target)
	}
	var r *http.Request
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			c.t.Fatal(err)
		}
		r = httptest.NewRequest(method, target, bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)

	where := fmt.Sprintf("%s %s -> %d", method, target, w.Code)
	if w.Header().Get("X-Request-Id") == "" {
		c.t.Errorf("%s: no X-Request-Id", where)
	}
	ref := o.op.Responses.Status(w.Code)
	if ref == nil {
		c.t.Errorf("%s: status not documented for %s: %s", where, o, w.Body)
		return w
	}
	if w.Code/100 == 2 {
		c.succeeded[o.String()] = true
		// What the handler accepted, the documented request schema accepts.
		if rb := o.op.RequestBody; rb != nil && body != nil {
			mt := rb.Value.Content.Get("application/json")
			if mt == nil {
				mt = rb.Value.Content.Get("application/x-ndjson")
			}
			c.validate(where+" request body", mt.Schema.Value, body)
		}
	}
	resp := ref.Value
	for name, h := range resp.Headers {
		if h.Value.Required && w.Header().Get(name) == "" {
			c.t.Errorf("%s: documented header %s missing", where, name)
		}
	}
	mt := resp.Content.Get("application/json")
	if ct, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type")); ct != "" && ct != "application/json" && resp.Content.Get(ct) != nil {
		return w // a documented body of another type (an export's rows, a CSV download)
	}
	if mt == nil {
		if w.Body.Len() != 0 {
			c.t.Errorf("%s: documented without a body, got %s", where, w.Body)
		}
		return w
	}
	if ct, _, _ := mime.ParseMediaType(w.Header().Get("Content-Type")); ct != "application/json" {
		c.t.Errorf("%s: Content-Type %q, want application/json", where, w.Header().Get("Content-Type"))
	}
	var v any
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		c.t.Errorf("%s: body is not JSON: %v", where, err)
		return w
	}
	c.validate(where, mt.Schema.Value, v)
	return w
}

func (c *openAPIClient) validate(where string, s *openapi3.Schema, v any) {
	c.t.Helper()
	// Round-trip through JSON so that Go values become JSON values.
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	var jv any
	if err := json.Unmarshal(b, &jv); err != nil {
		c.t.Fatal(err)
	}
	if err := s.VisitJSON(jv, openapi3.EnableJSONSchema2020(), openapi3.EnableFormatValidation(), openapi3.MultiErrors()); err != nil {
		c.t.Errorf("%s: does not match the documented schema: %v\n%s", where, err, b)
	}
}

// find returns the documented operation whose path template matches target,
// preferring literal segments over parameters.
func (c *openAPIClient) find(method, target string) (openAPIOp, bool) {
	path, _, _ := strings.Cut(target, "?")
	got := strings.Split(path, "/")
	best, bestParams := openAPIOp{}, -1
	for _, o := range openAPIOperations(c.doc) {
		if o.method != method {
			continue
		}
		tmpl := strings.Split(o.path, "/")
		if len(tmpl) != len(got) {
			continue
		}
		params, match := 0, true
		for i, s := range tmpl {
			if strings.HasPrefix(s, "{") {
				params++
				match = match && got[i] != ""
			} else {
				match = match && s == got[i]
			}
		}
		if match && (bestParams < 0 || params < bestParams) {
			best, bestParams = o, params
		}
	}
	return best, bestParams >= 0
}

// newOATestAPI wires Fineline over a real embedded store, with the operator API.
func newOATestAPI(t *testing.T) (*testServer, *store.Store) {
	t.Helper()
	ts := newTestServer(t, testOptions{AdminToken: oaAdminToken})
	return ts, ts.Store
}

// isAPIRoute tells the JSON API's routes from the shopper pages.
func isAPIRoute(path string) bool {
	return strings.HasPrefix(path, "/v1/") || strings.HasPrefix(path, "/admin/") || path == "/healthz" || path == "/readyz"
}
