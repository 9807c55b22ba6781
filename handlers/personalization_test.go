package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/guard"
	"github.com/fineline/fineline/merchants"
)

// attributeBody is POST /v1/attributes.
type attributeBody struct {
	Key           string                `json:"key"`
	Texts         map[string]guard.Text `json:"texts"`
	DefaultLocale string                `json:"default_locale,omitempty"`
	Category      string                `json:"category"`
	Provenance    string                `json:"provenance"`
	Identifier    bool                  `json:"identifier,omitempty"`
}

// fieldBody is POST /v1/fields.
type fieldBody struct {
	Key      string                 `json:"key"`
	Texts    map[string]fields.Text `json:"texts"`
	Type     string                 `json:"type"`
	OmitYear bool                   `json:"omit_year,omitempty"`
	Choices  []string               `json:"choices,omitempty"`
	Purposes []string               `json:"purposes"`
	Category string                 `json:"category,omitempty"`
}

// attributeListed is one attribute as GET /v1/attributes lists it.
type attributeListed struct {
	Key        string   `json:"key"`
	Category   string   `json:"category"`
	Provenance string   `json:"provenance"`
	Identifier bool     `json:"identifier"`
	Field      bool     `json:"field"`
	Purposes   []string `json:"purposes"`
}

// guardAttribute is the answer on one attribute.
type guardAttribute struct {
	Attribute string   `json:"attribute"`
	Allowed   bool     `json:"allowed"`
	Reason    string   `json:"reason"`
	Reasons   []string `json:"reasons,omitempty"`
	Explain   string   `json:"explain,omitempty"`
}

// guardAnswer is the answer for one subject.
type guardAnswer struct {
	Subject  string `json:"subject,omitempty"`
	Allowed  bool   `json:"allowed"`
	Decision struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
	} `json:"decision"`
	Level        string           `json:"level"`
	Relationship string           `json:"relationship"`
	Attributes   []guardAttribute `json:"attributes"`
}

// guardCampaign is the answer for a campaign.
type guardCampaign struct {
	Purpose string        `json:"purpose"`
	Results []guardAnswer `json:"results"`
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// newGuardEnv is shop-a and shop-b, shop-a with the demo's fields and
// attributes declared through the API, and three shoppers: alice (a
// customer who reads German), carol (a customer, English) and bob (never
// classed), all three with recommendations and newsletter granted.
func newGuardEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newTestEnv(t)
	for _, f := range demo.Fields() {
		e.mustStatus(e.do("POST", "/v1/fields", e.keyA, mustJSON(t, fieldBody{Key: f.Key, Texts: f.Texts, Type: string(f.Type), OmitYear: f.OmitYear,
			Choices: f.Choices, Purposes: f.Purposes, Category: f.Category})), 201)
	}
	for _, a := range demo.Attributes() {
		r := e.mustStatus(e.do("POST", "/v1/attributes", e.keyA, mustJSON(t, attributeBody{Key: a.Key, Texts: a.Texts, Category: a.Category,
			Provenance: string(a.Provenance), Identifier: a.Identifier})), 201)
		if loc := r.header.Get("Location"); loc != "/v1/attributes/"+a.Key {
			t.Errorf("created %s at %q", a.Key, loc)
		}
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/alice", e.keyA, `{"locale":"de","relationship":"customer"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/carol", e.keyA, `{"locale":"en","relationship":"customer"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/bob", e.keyA, `{}`), 201)
	for _, s := range []string{"alice", "carol", "bob"} {
		for _, p := range []string{"recommendations", "newsletter"} {
			e.mustStatus(e.do("PUT", "/v1/subjects/"+s+"/consents/"+p, e.keyA, `{"state":"granted"}`), 201)
		}
	}
	return e
}

// guardCheck posts a personalization check that must be answered.
func (e *testEnv) guardCheck(t *testing.T, key, body string) guardAnswer {
	t.Helper()
	var a guardAnswer
	e.mustStatus(e.do("POST", "/v1/personalization/check", key, body), 200).json(t, &a)
	if a.Subject != "" {
		t.Errorf("a single check names its subject %q", a.Subject)
	}
	return a
}

// attributeAnswer is the answer on the named attribute.
func attributeAnswer(t *testing.T, a guardAnswer, key string) guardAttribute {
	t.Helper()
	for _, at := range a.Attributes {
		if at.Attribute == key {
			return at
		}
	}
	t.Fatalf("no answer on %s in %+v", key, a)
	return guardAttribute{}
}

// wantAttribute fails unless the answer on key is allowed (reason "")
// or denied with that first reason.
func wantAttribute(t *testing.T, a guardAnswer, key, reason string) {
	t.Helper()
	at := attributeAnswer(t, a, key)
	if reason == "" {
		if !at.Allowed || at.Reason != string(guard.ReasonAllowed) || at.Explain == "" {
			t.Errorf("%s: %+v, want allowed with a line to show", key, at)
		}
		return
	}
	if at.Allowed || at.Reason != reason || at.Explain != "" {
		t.Errorf("%s: %+v, want denied with %s and no line to show", key, at, reason)
	}
}

const shoesTemplate = "Hi {{first_name}}, new shoes in your size {{shoe_size}}"

func TestPersonalizationCheckAnswersPerAttribute(t *testing.T) {
	e := newGuardEnv(t)
	body := func(subject, template string, attrs ...string) string {
		return mustJSON(t, struct {
			Subject    string   `json:"subject"`
			Purpose    string   `json:"purpose"`
			Channel    string   `json:"channel"`
			Attributes []string `json:"attributes,omitempty"`
			Template   string   `json:"template,omitempty"`
		}{subject, "recommendations", "email", attrs, template})
	}

	t.Run("template, in the subject's language", func(t *testing.T) {
		for _, tc := range []struct{ subject, name, size string }{
			{"carol", "Because you told us your name", "Because you told us your shoe size (EU)"},
			{"alice", "Weil du uns deinen Namen genannt hast", "Weil du uns deine Schuhgröße (EU) genannt hast"},
		} {
			a := e.guardCheck(t, e.keyA, body(tc.subject, shoesTemplate))
			want := guardAnswer{Allowed: true, Level: "volunteered", Relationship: "customer", Attributes: []guardAttribute{
				{Attribute: "first_name", Allowed: true, Reason: "allowed", Explain: tc.name},
				{Attribute: "shoe_size", Allowed: true, Reason: "allowed", Explain: tc.size},
			}}
			want.Decision.Allowed, want.Decision.Reason = true, "granted"
			if diff := cmp.Diff(want, a); diff != "" {
				t.Errorf("%s (-want +got):\n%s", tc.subject, diff)
			}
		}
	})

	t.Run("attributes listed, then the template's", func(t *testing.T) {
		a := e.guardCheck(t, e.keyA, body("carol", shoesTemplate, "city", "first_name", "last_order_total"))
		var keys []string
		for _, at := range a.Attributes {
			keys = append(keys, at.Attribute)
		}
		if diff := cmp.Diff([]string{"city", "first_name", "last_order_total", "shoe_size"}, keys); diff != "" {
			t.Errorf("answered attributes (-want +got):\n%s", diff)
		}
		if a.Allowed {
			t.Errorf("a message using an observed detail at the default level is allowed: %+v", a)
		}
		wantAttribute(t, a, "city", "not_volunteered")
		wantAttribute(t, a, "first_name", "")
		wantAttribute(t, a, "shoe_size", "")
		if at := attributeAnswer(t, a, "city"); at.Reasons != nil {
			t.Errorf("a single reason is also listed: %+v", at)
		}
		if diff := cmp.Diff([]string{"spend_never_shown_back", "not_volunteered", "not_used_by_purpose"}, attributeAnswer(t, a, "last_order_total").Reasons); diff != "" {
			t.Errorf("last_order_total reasons (-want +got):\n%s", diff)
		}
	})

	t.Run("the creep line", func(t *testing.T) {
		a := e.guardCheck(t, e.keyA, body("carol", "", "phone", "baby_interest"))
		wantAttribute(t, a, "phone", "identifier_never_in_messages")
		if rs := attributeAnswer(t, a, "baby_interest").Reasons; !slices.Contains(rs, "inferred_needs_explicit") || !slices.Contains(rs, "sensitive_needs_explicit") {
			t.Errorf("baby_interest reasons %v, want both inferred_needs_explicit and sensitive_needs_explicit", rs)
		}
		news := e.guardCheck(t, e.keyA, `{"subject":"carol","purpose":"newsletter","channel":"email","template":"{{shoe_size}}"}`)
		wantAttribute(t, news, "shoe_size", "not_used_by_purpose")
	})

	t.Run("unknown subject", func(t *testing.T) {
		a := e.guardCheck(t, e.keyA, body("nobody", shoesTemplate))
		if a.Allowed || a.Decision.Allowed || a.Decision.Reason != "no_record" || a.Relationship != "prospect" || a.Level != "volunteered" {
			t.Errorf("unknown subject: %+v", a)
		}
		wantAttribute(t, a, "first_name", "purpose_not_granted")
	})
}

func TestPersonalizationWithdrawalFlipsTheAnswerAtOnce(t *testing.T) {
	e := newGuardEnv(t)
	check := func() guardAnswer {
		t.Helper()
		return e.guardCheck(t, e.keyA, `{"subject":"alice","purpose":"recommendations","channel":"email","template":"`+shoesTemplate+`"}`)
	}
	if a := check(); !a.Allowed {
		t.Fatalf("before withdrawing: %+v", a)
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/alice/consents/recommendations", e.keyA, `{"state":"withdrawn"}`), 201)
	a := check()
	if a.Allowed || a.Decision.Allowed || a.Decision.Reason != "withdrawn" {
		t.Fatalf("the next check after withdrawing: %+v", a)
	}
	wantAttribute(t, a, "first_name", "purpose_not_granted")
	wantAttribute(t, a, "shoe_size", "purpose_not_granted")
	e.mustStatus(e.do("PUT", "/v1/subjects/alice/consents/recommendations", e.keyA, `{"state":"granted"}`), 201)
	if a := check(); !a.Allowed || a.Decision.Reason != "granted" {
		t.Fatalf("after granting again: %+v", a)
	}
}

func TestPersonalizationPrivacyLevelChangesTheAnswerAtOnce(t *testing.T) {
	e := newGuardEnv(t)
	ctx := context.Background()
	check := func() guardAnswer {
		t.Helper()
		return e.guardCheck(t, e.keyA, `{"subject":"carol","purpose":"recommendations","channel":"email","attributes":["city"],"template":"`+shoesTemplate+`"}`)
	}
	a := check()
	if a.Level != "volunteered" {
		t.Fatalf("level of a shopper who never chose: %q", a.Level)
	}
	wantAttribute(t, a, "city", "not_volunteered")

	if _, err := e.api.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merchA.ID, SubjectID: "carol", Channel: consent.ChannelAPI, Actor: "test", Level: consent.LevelFull}); err != nil {
		t.Fatal(err)
	}
	a = check()
	if !a.Allowed || a.Level != "full" {
		t.Fatalf("after choosing to personalize fully: %+v", a)
	}
	wantAttribute(t, a, "city", "")

	e.mustStatus(e.widget(t, "PUT", "/w/v1/shop-a/consents", shopOrigin, `{"choices":{},"privacy_level":"general","privacy_level_shown":"full"}`,
		append(e.widgetToken(t, "carol"), "Content-Type", "application/json")...), 200)
	a = check()
	if a.Allowed || a.Level != "general" {
		t.Fatalf("after keeping it general through the widget: %+v", a)
	}
	wantAttribute(t, a, "city", "privacy_level")
	wantAttribute(t, a, "shoe_size", "privacy_level")
	wantAttribute(t, a, "first_name", "")
}

func TestPersonalizationRelationship(t *testing.T) {
	e := newGuardEnv(t)
	if _, err := e.api.Ledger.Apply(context.Background(), consent.Choices{MerchantID: e.merchA.ID, SubjectID: "bob", Channel: consent.ChannelAPI, Actor: "test", Level: consent.LevelFull}); err != nil {
		t.Fatal(err)
	}
	check := func(rel string) guardAnswer {
		t.Helper()
		body := `{"subject":"bob","purpose":"recommendations","channel":"web","attributes":["recently_viewed","first_name"]`
		if rel != "" {
			body += `,"relationship":"` + rel + `"`
		}
		return e.guardCheck(t, e.keyA, body+"}")
	}
	for _, step := range []struct {
		name    string
		subject string // a PUT /v1/subjects/bob body, if any
		request string
		want    string // relationship answered
	}{
		{"never classed", "", "", "prospect"},
		{"customer from the request", "", "customer", "customer"},
		{"customer from the subject", `{"relationship":"customer"}`, "", "customer"},
		{"prospect from the request beats the subject", "", "prospect", "prospect"},
		{"cleared on the subject", `{"relationship":""}`, "", "prospect"},
	} {
		if step.subject != "" {
			e.mustStatus(e.do("PUT", "/v1/subjects/bob", e.keyA, step.subject), 200)
		}
		a := check(step.request)
		if a.Relationship != step.want {
			t.Errorf("%s: relationship %q, want %q", step.name, a.Relationship, step.want)
		}
		wantAttribute(t, a, "first_name", "")
		if step.want == "customer" {
			wantAttribute(t, a, "recently_viewed", "")
		} else {
			wantAttribute(t, a, "recently_viewed", "prospect_caution")
		}
	}
	r := e.do("POST", "/v1/personalization/check", e.keyA, `{"subject":"bob","purpose":"recommendations","channel":"web","attributes":["first_name"],"relationship":"vip"}`)
	if r.status != 400 || r.errorCode(t) != consent.CodeInvalidRelationship {
		t.Errorf("unknown relationship: %d %s", r.status, r.body)
	}
}

func TestPersonalizationCampaign(t *testing.T) {
	e := newGuardEnv(t)
	var c guardCampaign
	e.mustStatus(e.do("POST", "/v1/personalization/check", e.keyA,
		`{"subjects":["carol","ghost","alice","bob","carol"],"purpose":"recommendations","channel":"email","template":"`+shoesTemplate+` {{loyalty_tier}}"}`), 200).json(t, &c)
	if c.Purpose != "recommendations" {
		t.Errorf("campaign purpose %q", c.Purpose)
	}
	var order []string
	for _, r := range c.Results {
		order = append(order, r.Subject)
	}
	if diff := cmp.Diff([]string{"carol", "ghost", "alice", "bob", "carol"}, order); diff != "" {
		t.Fatalf("results order (-want +got):\n%s", diff)
	}
	for _, r := range c.Results {
		if r.Allowed {
			t.Errorf("%s: a message with an undeclared placeholder is allowed", r.Subject)
		}
		wantAttribute(t, r, "loyalty_tier", "unknown_attribute")
	}
	ghost := c.Results[1]
	if ghost.Decision.Allowed || ghost.Decision.Reason != "no_record" || ghost.Relationship != "prospect" {
		t.Errorf("unknown subject: %+v", ghost)
	}
	wantAttribute(t, ghost, "first_name", "purpose_not_granted")
	wantAttribute(t, c.Results[0], "shoe_size", "")
	if got := attributeAnswer(t, c.Results[0], "shoe_size").Explain; got != "Because you told us your shoe size (EU)" {
		t.Errorf("carol's shoe size line %q", got)
	}
	if got := attributeAnswer(t, c.Results[2], "shoe_size").Explain; got != "Weil du uns deine Schuhgröße (EU) genannt hast" {
		t.Errorf("alice's shoe size line %q", got)
	}
	if c.Results[3].Relationship != "prospect" || c.Results[0].Relationship != "customer" {
		t.Errorf("relationships: bob %q, carol %q", c.Results[3].Relationship, c.Results[0].Relationship)
	}
	if diff := cmp.Diff(c.Results[0], c.Results[4]); diff != "" {
		t.Errorf("the same subject twice is answered differently (-first +second):\n%s", diff)
	}

	ids := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("s%05d", i)
		}
		return mustJSON(t, s)
	}
	keys := func(n int) string {
		s := make([]string, n)
		for i := range s {
			s[i] = fmt.Sprintf("attr_%02d", i)
		}
		return mustJSON(t, s)
	}
	for _, tc := range []struct{ name, body, code string }{
		{"10,001 subjects", `{"subjects":` + ids(10_001) + `,"purpose":"newsletter","channel":"email","attributes":["first_name"]}`, guard.CodeTooManySubjects},
		{"51 attributes", `{"subject":"alice","purpose":"newsletter","channel":"email","attributes":` + keys(51) + `}`, guard.CodeTooManyAttrs},
		{"50 attributes and a template with one more", `{"subject":"alice","purpose":"newsletter","channel":"email","attributes":` + keys(50) + `,"template":"{{first_name}}"}`, guard.CodeTooManyAttrs},
		{"unbalanced template", `{"subject":"alice","purpose":"newsletter","channel":"email","template":"Hi {{first_name"}`, guard.CodeInvalidTemplate},
		{"stray closing braces", `{"subjects":["alice"],"purpose":"newsletter","channel":"email","template":"Hi first_name}}"}`, guard.CodeInvalidTemplate},
		{"placeholder not a key", `{"subject":"alice","purpose":"newsletter","channel":"email","template":"Hi {{First Name}}"}`, guard.CodeInvalidTemplate},
		{"unknown member", `{"subject":"alice","purpose":"newsletter","channel":"email","attributes":["first_name"],"merchant_id":"mer_x"}`, "unknown_field"},
		{"both subject and subjects", `{"subject":"alice","subjects":["bob"],"purpose":"newsletter","channel":"email","attributes":["first_name"]}`, consent.CodeInvalidSubject},
		{"neither subject nor subjects", `{"purpose":"newsletter","channel":"email","attributes":["first_name"]}`, consent.CodeInvalidSubject},
		{"no subjects", `{"subjects":[],"purpose":"newsletter","channel":"email","attributes":["first_name"]}`, consent.CodeInvalidSubject},
		{"an invalid subject id", `{"subjects":["alice","no spaces"],"purpose":"newsletter","channel":"email","attributes":["first_name"]}`, consent.CodeInvalidSubject},
		{"no attributes", `{"subject":"alice","purpose":"newsletter","channel":"email","template":"Hello"}`, guard.CodeInvalidAttribute},
		{"an invalid attribute key", `{"subject":"alice","purpose":"newsletter","channel":"email","attributes":["First Name"]}`, guard.CodeInvalidAttribute},
		{"unknown channel", `{"subject":"alice","purpose":"newsletter","channel":"fax","attributes":["first_name"]}`, guard.CodeInvalidChannel},
		{"unknown purpose", `{"subject":"alice","purpose":"horoscopes","channel":"email","attributes":["first_name"]}`, consent.CodeUnknownPurpose},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/personalization/check", e.keyA, tc.body)
			if r.status != 400 || r.errorCode(t) != tc.code {
				t.Errorf("%d %.300s, want 400 %s", r.status, r.body, tc.code)
			}
		})
	}

	t.Run("10,000 subjects and 50 attributes are answered", func(t *testing.T) {
		var c guardCampaign
		e.mustStatus(e.do("POST", "/v1/personalization/check", e.keyA, `{"subjects":`+ids(10_000)+`,"purpose":"newsletter","channel":"email","attributes":`+keys(50)+`}`), 200).json(t, &c)
		if len(c.Results) != 10_000 || c.Results[9_999].Subject != "s09999" || len(c.Results[9_999].Attributes) != 50 {
			t.Fatalf("%d results", len(c.Results))
		}
	})
}

func TestPersonalizationOtherMerchantSeesNothing(t *testing.T) {
	e := newGuardEnv(t)
	a := e.guardCheck(t, e.keyB, `{"subject":"alice","purpose":"recommendations","channel":"email","template":"`+shoesTemplate+`"}`)
	if a.Allowed || a.Decision.Reason != "no_record" || a.Relationship != "prospect" {
		t.Errorf("shop-b asking about shop-a's shopper: %+v", a)
	}
	wantAttribute(t, a, "first_name", "unknown_attribute")
	wantAttribute(t, a, "shoe_size", "unknown_attribute")

	var list struct{ Attributes []attributeListed }
	e.mustStatus(e.do("GET", "/v1/attributes", e.keyB, ""), 200).json(t, &list)
	if len(list.Attributes) != 0 {
		t.Errorf("shop-b lists %+v", list.Attributes)
	}
	for _, k := range []string{"first_name", "shoe_size"} {
		if r := e.do("GET", "/v1/attributes/"+k, e.keyB, ""); r.status != 404 {
			t.Errorf("shop-b reads shop-a's %s: %d %s", k, r.status, r.body)
		}
	}

	// shop-b's own attribute, under the key of one of shop-a's, changes
	// nothing for shop-a.
	e.mustStatus(e.do("POST", "/v1/attributes", e.keyB, mustJSON(t, attributeBody{Key: "first_name", Category: "name", Provenance: "observed",
		Texts: map[string]guard.Text{"en": {Label: "First name", Explanation: "Because it was on your order"}}})), 201)
	e.mustStatus(e.do("POST", "/v1/attributes", e.keyB, mustJSON(t, attributeBody{Key: "vip_status", Category: "purchase_history", Provenance: "observed",
		Texts: map[string]guard.Text{"en": {Label: "VIP status", Explanation: "Because of your orders with us"}}})), 201)
	a = e.guardCheck(t, e.keyA, `{"subject":"carol","purpose":"recommendations","channel":"email","attributes":["first_name","vip_status"]}`)
	wantAttribute(t, a, "first_name", "")
	wantAttribute(t, a, "vip_status", "unknown_attribute")
	var got attributeListed
	e.mustStatus(e.do("GET", "/v1/attributes/first_name", e.keyA, ""), 200).json(t, &got)
	if got.Provenance != "volunteered" {
		t.Errorf("shop-a's first_name now reads %+v", got)
	}
}

func TestAttributesAPI(t *testing.T) {
	e := newGuardEnv(t)
	text := map[string]guard.Text{"en": {Label: "Loyalty tier", Explanation: "Because of your points with us"}}
	for _, tc := range []struct {
		name   string
		body   string
		status int
		code   string
	}{
		{"unknown category", mustJSON(t, attributeBody{Key: "loyalty_tier", Texts: text, Category: "astrology", Provenance: "observed"}), 400, consent.CodeInvalidCategory},
		{"no category", mustJSON(t, attributeBody{Key: "loyalty_tier", Texts: text, Provenance: "observed"}), 400, consent.CodeInvalidCategory},
		{"bad provenance", mustJSON(t, attributeBody{Key: "loyalty_tier", Texts: text, Category: "purchase_history", Provenance: "guessed"}), 400, guard.CodeInvalidAttribute},
		{"bad key", mustJSON(t, attributeBody{Key: "Loyalty Tier", Texts: text, Category: "purchase_history", Provenance: "observed"}), 400, guard.CodeInvalidAttribute},
		{"explanation too short", mustJSON(t, attributeBody{Key: "loyalty_tier", Texts: map[string]guard.Text{"en": {Label: "Tier", Explanation: "Points"}},
			Category: "purchase_history", Provenance: "observed"}), 400, guard.CodeInvalidAttribute},
		{"unknown member", `{"key":"loyalty_tier","texts":{"en":{"label":"Loyalty tier","explanation":"Because of your points"}},"category":"purchase_history","provenance":"observed","sensitive":false}`, 400, "unknown_field"},
		{"key of a field", mustJSON(t, attributeBody{Key: "shoe_size", Texts: text, Category: "physical_description", Provenance: "volunteered"}), 409, guard.CodeAttributeExists},
		{"key of a declared attribute", mustJSON(t, attributeBody{Key: "city", Texts: text, Category: "location", Provenance: "observed"}), 409, guard.CodeAttributeExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/v1/attributes", e.keyA, tc.body)
			if r.status != tc.status || r.errorCode(t) != tc.code {
				t.Errorf("%d %s, want %d %s", r.status, r.body, tc.status, tc.code)
			}
		})
	}

	// Nor may a field take a declared attribute's key: the guard would
	// answer by the field's looser rules.
	if r := e.do("POST", "/v1/fields", e.keyA, mustJSON(t, fieldBody{Key: "city", Type: "text", Purposes: []string{"recommendations"},
		Texts: map[string]fields.Text{"en": {Label: "City", Explanation: "To show you what is near you"}}})); r.status != 409 || r.errorCode(t) != guard.CodeAttributeExists {
		t.Errorf("field with a declared attribute's key: %d %s", r.status, r.body)
	}
	var city attributeListed
	e.mustStatus(e.do("GET", "/v1/attributes/city", e.keyA, ""), 200).json(t, &city)
	if city.Field || city.Provenance != "observed" {
		t.Errorf("city now reads %+v", city)
	}

	// A government id is an identifier whatever the merchant says; an old
	// category name is stored as the vocabulary's.
	var gov attributeListed
	e.mustStatus(e.do("POST", "/v1/attributes", e.keyA, mustJSON(t, attributeBody{Key: "tax_id", Category: "government_id", Provenance: "volunteered",
		Texts: map[string]guard.Text{"en": {Label: "Tax id", Explanation: "Because you gave us your tax id"}}})), 201).json(t, &gov)
	if !gov.Identifier {
		t.Errorf("government id stored as %+v", gov)
	}
	var alias attributeListed
	e.mustStatus(e.do("POST", "/v1/attributes", e.keyA, mustJSON(t, attributeBody{Key: "age_group", Category: "age", Provenance: "volunteered",
		Texts: map[string]guard.Text{"en": {Label: "Age group", Explanation: "Because you told us your age group"}}})), 201).json(t, &alias)
	if alias.Category != consent.CategoryDemographic {
		t.Errorf("category alias stored as %q", alias.Category)
	}
	a := e.guardCheck(t, e.keyA, `{"subject":"carol","purpose":"newsletter","channel":"email","attributes":["tax_id"]}`)
	wantAttribute(t, a, "tax_id", "identifier_never_in_messages")

	var list struct{ Attributes []attributeListed }
	e.mustStatus(e.do("GET", "/v1/attributes", e.keyA, ""), 200).json(t, &list)
	byKey := make(map[string]attributeListed)
	var keys []string
	for _, at := range list.Attributes {
		byKey[at.Key] = at
		keys = append(keys, at.Key)
	}
	if !slices.IsSorted(keys) {
		t.Errorf("attributes not by key: %v", keys)
	}
	wantListed := map[string]attributeListed{
		"shoe_size":  {Key: "shoe_size", Category: "physical_description", Provenance: "volunteered", Field: true, Purposes: []string{"recommendations"}},
		"birthday":   {Key: "birthday", Category: "demographic", Provenance: "volunteered", Field: true, Purposes: []string{"birthday_reward"}},
		"first_name": {Key: "first_name", Category: "name", Provenance: "volunteered"},
		"phone":      {Key: "phone", Category: "contact", Provenance: "volunteered", Identifier: true},
		"city":       {Key: "city", Category: "location", Provenance: "observed"},
	}
	for k, want := range wantListed {
		if diff := cmp.Diff(want, byKey[k]); diff != "" {
			t.Errorf("%s listed (-want +got):\n%s", k, diff)
		}
	}
	if len(list.Attributes) != len(demo.Attributes())+len(demo.Fields())+2 {
		t.Errorf("%d attributes listed: %v", len(list.Attributes), keys)
	}
	var one attributeListed
	e.mustStatus(e.do("GET", "/v1/attributes/shoe_size", e.keyA, ""), 200).json(t, &one)
	if diff := cmp.Diff(wantListed["shoe_size"], one); diff != "" {
		t.Errorf("GET shoe_size (-want +got):\n%s", diff)
	}
	if r := e.do("GET", "/v1/attributes/loyalty_tier", e.keyA, ""); r.status != 404 || r.errorCode(t) != "unknown_attribute" {
		t.Errorf("GET an undeclared attribute: %d %s", r.status, r.body)
	}
}

func TestPersonalizationAccessCounts(t *testing.T) {
	e := newGuardEnv(t)
	ctx := context.Background()
	tool, secret, err := e.api.Merchants.CreateKey(ctx, e.merchA.ID, "campaign tool", merchants.AllScopes())
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now().UTC()
	for range 3 {
		e.guardCheck(t, secret, `{"subject":"alice","purpose":"recommendations","channel":"email","template":"`+shoesTemplate+`"}`)
	}
	e.mustStatus(e.do("POST", "/v1/personalization/check", secret, `{"subjects":["alice","carol"],"purpose":"newsletter","channel":"email","attributes":["first_name"]}`), 200)
	// A refused request counts nothing.
	e.mustStatus(e.do("POST", "/v1/personalization/check", secret, `{"subject":"alice","purpose":"newsletter","channel":"email","template":"{{first_name"}`), 400)
	e.guardCheck(t, e.keyA, `{"subject":"alice","purpose":"newsletter","channel":"email","attributes":["first_name"]}`)

	days := []string{start.Format(time.DateOnly)}
	if d := time.Now().UTC().Format(time.DateOnly); d != days[0] {
		days = append(days, d)
	}
	type counted struct {
		Actor, Purpose string
		N              int64
	}
	read := func() []counted {
		t.Helper()
		cs, err := e.api.Access.Counts(ctx, e.merchA.ID, "alice", days)
		if err != nil {
			t.Fatal(err)
		}
		sums := make(map[counted]int64)
		for _, c := range cs {
			if c.Kind != access.Guard || c.SubjectID != "alice" {
				t.Errorf("count of another kind or subject: %+v", c)
			}
			sums[counted{Actor: c.Actor, Purpose: c.Purpose}] += c.N
		}
		var out []counted
		for k, n := range sums {
			k.N = n
			out = append(out, k)
		}
		slices.SortFunc(out, func(a, b counted) int { return strings.Compare(a.Actor+a.Purpose, b.Actor+b.Purpose) })
		return out
	}
	toolActor := "api_key:" + tool.ID
	var got []counted
	// The counter writes behind (and its own loop may be writing a batch):
	// flush, then read until the counts are in.
	for deadline := time.Now().Add(5 * time.Second); ; {
		e.api.Access.Flush(ctx)
		got = read()
		if len(got) == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var other string
	for _, c := range got {
		if c.Actor != toolActor {
			other = c.Actor
		}
	}
	if !strings.HasPrefix(other, "api_key:") {
		t.Fatalf("counts %+v: no count for the other key", got)
	}
	want := []counted{{toolActor, "newsletter", 1}, {toolActor, "recommendations", 3}, {other, "newsletter", 1}}
	slices.SortFunc(want, func(a, b counted) int { return strings.Compare(a.Actor+a.Purpose, b.Actor+b.Purpose) })
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("alice's access counts (-want +got):\n%s", diff)
	}
	cs, err := e.api.Access.Counts(ctx, e.merchA.ID, "carol", days)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].Actor != toolActor || cs[0].Purpose != "newsletter" || cs[0].N != 1 {
		t.Errorf("carol's access counts: %+v", cs)
	}
}
