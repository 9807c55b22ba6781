package receipts

import (
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/fineline/fineline/apperr"
	"github.com/google/go-cmp/cmp"
)

// testReceipt returns a complete, valid receipt (Version left for Sign).
func testReceipt() Receipt {
	return Receipt{
		Jurisdiction:     "EU",
		ConsentTimestamp: 1_790_000_000,
		CollectionMethod: "web form (consent widget)",
		ConsentReceiptID: "r-0123456789abcdefghijk",
		Language:         "en",
		PIIPrincipalID:   "shopper-42",
		PIIControllers: []PIIController{{
			PIIController:    "Example Shop GmbH",
			Contact:          "Data Protection Officer",
			Address:          Address{StreetAddress: "Hauptstr. 1", Locality: "Berlin", PostalCode: "10115", Country: "DE"},
			Email:            "privacy@shop.example",
			Phone:            "+49 30 1234567",
			PIIControllerURL: "https://shop.example",
		}},
		PolicyURL: "https://shop.example/privacy",
		Services: []Service{{
			Service: "Example Shop",
			Purposes: []Purpose{{
				Purpose:              "Newsletter",
				PurposeCategory:      []string{"marketing"},
				ConsentType:          "EXPLICIT",
				PIICategory:          []string{"email"},
				PrimaryPurpose:       false,
				Termination:          "until withdrawn",
				ThirdPartyDisclosure: true,
				ThirdPartyName:       "Mail Sender Ltd",
			}},
		}},
		Sensitive: true,
		SPICat:    []string{"health"},
		Fineline: Extension{
			Merchant: "m_1",
			States: []PurposeState{
				{Purpose: "newsletter", State: "granted", Seq: 3, NoticeVersion: 2, Channel: "widget", At: 1_790_000_000},
				{Purpose: "profiling", State: "withdrawn", Seq: 4, NoticeVersion: 2, Channel: "center", At: 1_790_000_100},
			},
		},
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(r *Receipt)
		want   string // "" for valid; else a fragment of the message
	}{
		{"complete", func(*Receipt) {}, ""},
		{"not sensitive without categories", func(r *Receipt) { r.Sensitive, r.SPICat = false, nil }, ""},
		{"no optional fields", func(r *Receipt) {
			r.Language, r.PublicKey, r.Fineline = "", "", Extension{}
			r.PIIControllers[0] = PIIController{PIIController: "Shop", Contact: "DPO"}
		}, ""},
		{"version", func(r *Receipt) { r.Version = "KI-CR-v1.0.0" }, "version"},
		{"jurisdiction", func(r *Receipt) { r.Jurisdiction = " " }, "jurisdiction"},
		{"consentTimestamp", func(r *Receipt) { r.ConsentTimestamp = 0 }, "consentTimestamp"},
		{"collectionMethod", func(r *Receipt) { r.CollectionMethod = "" }, "collectionMethod"},
		{"consentReceiptID", func(r *Receipt) { r.ConsentReceiptID = "" }, "consentReceiptID"},
		{"piiPrincipalId", func(r *Receipt) { r.PIIPrincipalID = "" }, "piiPrincipalId"},
		{"no controllers", func(r *Receipt) { r.PIIControllers = nil }, "piiControllers needs"},
		{"controller name", func(r *Receipt) { r.PIIControllers[0].PIIController = "" }, "piiControllers[0].piiController"},
		{"controller contact", func(r *Receipt) { r.PIIControllers[0].Contact = "" }, "piiControllers[0].contact"},
		{"policyUrl", func(r *Receipt) { r.PolicyURL = "" }, "policyUrl is required"},
		{"policyUrl relative", func(r *Receipt) { r.PolicyURL = "/privacy" }, "policyUrl must be"},
		{"policyUrl scheme", func(r *Receipt) { r.PolicyURL = "javascript:alert(1)" }, "policyUrl must be"},
		{"no services", func(r *Receipt) { r.Services = nil }, "services needs"},
		{"service name", func(r *Receipt) { r.Services[0].Service = "" }, "services[0].service"},
		{"no purposes", func(r *Receipt) { r.Services[0].Purposes = nil }, "services[0].purposes needs"},
		{"purpose name", func(r *Receipt) { r.Services[0].Purposes[0].Purpose = "" }, "purposes[0].purpose"},
		{"third party unnamed", func(r *Receipt) { r.Services[0].Purposes[0].ThirdPartyName = "" }, "thirdPartyName"},
		{"sensitive without spiCat", func(r *Receipt) { r.SPICat = nil }, "sensitive must be"},
		{"spiCat without sensitive", func(r *Receipt) { r.Sensitive = false }, "sensitive must be"},
		{"extension state", func(r *Receipt) { r.Fineline.States[1].State = "maybe" }, "fineline.states[1].state"},
		{"extension purpose", func(r *Receipt) { r.Fineline.States[0].Purpose = "" }, "fineline.states[0].purpose"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := testReceipt()
			r.Version = Version
			tt.change(&r)
			err := r.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidReceipt) {
				t.Fatalf("Validate() = %v, want ErrInvalidReceipt", err)
			}
			if apperr.CodeOf(err) != apperr.Invalid {
				t.Errorf("code %q, want %q", apperr.CodeOf(err), apperr.Invalid)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate() = %q, want it to mention %q", err, tt.want)
			}
		})
	}
}

func TestSignRefusesInvalidReceipt(t *testing.T) {
	s := NewSigner(testKey(t), testIssuer, nil)
	r := testReceipt()
	r.Services = nil
	tok, err := s.Sign(r)
	if !errors.Is(err, ErrInvalidReceipt) || tok != "" {
		t.Fatalf("Sign() = %q, %v; want no token and ErrInvalidReceipt", tok, err)
	}
	r = testReceipt()
	r.Sensitive = false
	if _, err := s.Sign(r); !errors.Is(err, ErrInvalidReceipt) {
		t.Fatalf("Sign(spiCat without sensitive) = %v, want ErrInvalidReceipt", err)
	}
	if _, err := NewSigner(testKey(t), "", nil).Sign(testReceipt()); err == nil {
		t.Fatal("Sign with an empty issuer succeeded")
	}
}

func TestReceiptJSONNames(t *testing.T) {
	r := testReceipt()
	r.Sensitive, r.SPICat = false, nil
	r.Services[0].Purposes[0].PurposeCategory = nil
	tok, err := NewSigner(testKey(t), testIssuer, nil).Sign(r)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]json.RawMessage
	if err := json.Unmarshal(segment(t, tok, 1), &got); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range got {
		keys = append(keys, k)
	}
	want := []string{
		"collectionMethod", "consentReceiptID", "consentTimestamp", "fineline", "iat", "iss", "jti",
		"jurisdiction", "language", "piiControllers", "piiPrincipalId", "policyUrl", "sensitive",
		"services", "spiCat", "sub", "version",
	}
	slices.Sort(keys)
	if diff := cmp.Diff(want, keys); diff != "" {
		t.Errorf("top-level claims (-want +got):\n%s", diff)
	}
	if string(got["spiCat"]) != "[]" {
		t.Errorf("spiCat = %s, want []", got["spiCat"])
	}
	if string(got["version"]) != `"KI-CR-v1.1.0"` {
		t.Errorf("version = %s", got["version"])
	}
	if string(got["consentTimestamp"]) != "1790000000" {
		t.Errorf("consentTimestamp = %s, want integer seconds", got["consentTimestamp"])
	}
	var services []map[string]any
	if err := json.Unmarshal(got["services"], &services); err != nil {
		t.Fatal(err)
	}
	p := services[0]["purposes"].([]any)[0].(map[string]any)
	for _, k := range []string{"purpose", "purposeCategory", "consentType", "piiCategory", "primaryPurpose", "termination", "thirdPartyDisclosure", "thirdPartyName"} {
		if _, ok := p[k]; !ok {
			t.Errorf("purpose lacks %q: %v", k, p)
		}
	}
	if c, ok := p["purposeCategory"].([]any); !ok || len(c) != 0 {
		t.Errorf("purposeCategory = %#v, want []", p["purposeCategory"])
	}
	var controllers []map[string]any
	if err := json.Unmarshal(got["piiControllers"], &controllers); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"piiController", "contact", "address", "email", "phone", "piiControllerUrl"} {
		if _, ok := controllers[0][k]; !ok {
			t.Errorf("controller lacks %q: %v", k, controllers[0])
		}
	}
	var ext map[string]any
	if err := json.Unmarshal(got["fineline"], &ext); err != nil {
		t.Fatal(err)
	}
	st := ext["states"].([]any)[1].(map[string]any)
	if diff := cmp.Diff(map[string]any{"purpose": "profiling", "state": "withdrawn", "seq": 4.0, "notice_version": 2.0, "channel": "center", "at": 1790000100.0}, st); diff != "" {
		t.Errorf("fineline.states[1] (-want +got):\n%s", diff)
	}
}

func TestNewID(t *testing.T) {
	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)
	seen := make(map[string]bool)
	for range 1000 {
		id := NewID()
		if !urlSafe.MatchString(id) {
			t.Fatalf("NewID() = %q, want 22 base64url characters", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}

func TestReceiptOfWithdrawalsNeedsNoService(t *testing.T) {
	r := Receipt{Version: Version, Jurisdiction: "EU", ConsentTimestamp: 1, CollectionMethod: "web form", ConsentReceiptID: NewID(),
		PIIPrincipalID: "p", PIIControllers: []PIIController{{PIIController: "Shop", Contact: "privacy"}}, PolicyURL: "https://shop.example/privacy",
		Fineline: Extension{States: []PurposeState{{Purpose: "newsletter", State: "withdrawn", Seq: 2}}}}
	if err := r.Validate(); err != nil {
		t.Fatalf("a receipt that only records a withdrawal: %v", err)
	}
	r.Fineline.States = append(r.Fineline.States, PurposeState{Purpose: "recs", State: "granted", Seq: 3})
	if err := r.Validate(); err == nil {
		t.Fatal("a receipt with a grant but no service passed")
	}
}
