package guard_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/guard"
)

// testPurposes are the demo shop's purposes, and two more: an order recap
// that shows amounts spent, and one stored with a category name from
// before the vocabulary was closed.
func testPurposes() map[string]consent.Purpose {
	out := make(map[string]consent.Purpose)
	for _, p := range demo.Purposes() {
		out[p.Key] = p
	}
	out["order_recap"] = consent.Purpose{Key: "order_recap", DataCategories: []string{consent.CategoryName, consent.CategorySpend, consent.CategoryPurchaseHistory},
		LegalBasis: consent.BasisConsent, Texts: map[string]consent.Text{"en": {Name: "Monthly recap", Statement: "Once a month we email you what you ordered and spent with us."}}}
	out["age_offers"] = consent.Purpose{Key: "age_offers", DataCategories: []string{"age"}, LegalBasis: consent.BasisConsent,
		Texts: map[string]consent.Text{"en": {Name: "Offers for your age", Statement: "We suggest products made for your age group."}}}
	return out
}

// fieldAttribute is a volunteered field as the guard sees it: volunteered,
// usable only by the field's own purposes.
func fieldAttribute(f fields.Field) guard.Attribute {
	a := guard.Attribute{Key: f.Key, DefaultLocale: "en", Category: f.Category, Provenance: guard.Volunteered, Field: true, Purposes: f.Purposes,
		Texts: make(map[string]guard.Text, len(f.Texts))}
	for l, t := range f.Texts {
		a.Texts[l] = guard.Text{Label: t.Label, Explanation: t.Explanation}
	}
	return a
}

// testAttributes are the demo shop's attributes and fields, and a few
// more a shop may declare.
func testAttributes() map[string]guard.Attribute {
	out := make(map[string]guard.Attribute)
	for _, a := range demo.Attributes() {
		out[a.Key] = a
	}
	for _, f := range demo.Fields() {
		out[f.Key] = fieldAttribute(f)
	}
	text := func(label, explanation string) map[string]guard.Text {
		return map[string]guard.Text{"en": {Label: label, Explanation: explanation}}
	}
	out["last_purchase"] = guard.Attribute{Key: "last_purchase", Category: consent.CategoryPurchaseHistory, Provenance: guard.Observed,
		Texts: text("Last purchase", "Because of what you last bought from us")}
	out["passport_number"] = guard.Attribute{Key: "passport_number", Category: consent.CategoryGovernmentID, Provenance: guard.Volunteered,
		Texts: text("Passport number", "Because you gave us your passport number")}
	out["age_band"] = guard.Attribute{Key: "age_band", Category: consent.CategoryDemographic, Provenance: guard.Volunteered,
		Texts: text("Age group", "Because you told us your age group")}
	out["lifestyle_segment"] = guard.Attribute{Key: "lifestyle_segment", Category: consent.CategoryDemographic, Provenance: guard.ThirdParty,
		Texts: text("Lifestyle", "Because of a profile a partner shared with us")}
	out["due_date"] = fieldAttribute(fields.Field{Key: "due_date", Type: fields.TypeDate, Category: "health", Purposes: []string{"wellness_tips"},
		Texts: map[string]fields.Text{"en": {Label: "Your due date", Explanation: "So our tips fit each stage of your pregnancy."}}})
	return out
}

// Decisions a consent check may give.
var (
	granted     = consent.Decision{Allowed: true, Reason: consent.ReasonGranted}
	due         = consent.Decision{Allowed: true, Reason: consent.ReasonReconsentDue}
	withdrawn   = consent.Decision{Reason: consent.ReasonWithdrawn}
	noRecord    = consent.Decision{Reason: consent.ReasonNoRecord}
	required    = consent.Decision{Reason: consent.ReasonReconsentRequired}
	gpcOptOut   = consent.Decision{Reason: consent.ReasonGPCOptOut}
	erased      = consent.Decision{Reason: consent.ReasonSubjectErased}
	customer    = consent.Customer
	prospect    = consent.Prospect
	general     = consent.LevelGeneral
	volunteered = consent.LevelVolunteered
	full        = consent.LevelFull
)

func TestReasons(t *testing.T) {
	purposes, attrs := testPurposes(), testAttributes()
	const (
		allowed    = guard.ReasonAllowed // only as a marker in the table: no reasons
		erasedR    = guard.ReasonSubjectErased
		unknown    = guard.ReasonUnknownAttribute
		notGranted = guard.ReasonPurposeNotGranted
		identifier = guard.ReasonIdentifier
		sensitive  = guard.ReasonSensitive
		inferred   = guard.ReasonInferred
		spend      = guard.ReasonSpend
		level      = guard.ReasonPrivacyLevel
		caution    = guard.ReasonProspectCaution
		notVol     = guard.ReasonNotVolunteered
		notUsed    = guard.ReasonNotUsedByPurpose
	)
	for _, tc := range []struct {
		name      string
		purpose   string
		attribute string // a key not in attrs is one the merchant never declared
		decision  consent.Decision
		level     consent.Level
		rel       consent.Relationship
		want      []guard.Reason // {allowed}: none
	}{
		// The issue's own cases.
		{"shoe size in a newsletter, volunteered for recommendations only", "newsletter", "shoe_size", granted, volunteered, customer, []guard.Reason{notUsed}},
		{"last month's spend in a newsletter", "newsletter", "last_order_total", granted, volunteered, customer, []guard.Reason{spend, notVol, notUsed}},
		{"last month's spend in a recap that uses spend, at the default level", "order_recap", "last_order_total", granted, volunteered, customer, []guard.Reason{spend, notVol}},
		{"last month's spend in a recap that uses spend, personalize fully, customer", "order_recap", "last_order_total", granted, full, customer, []guard.Reason{allowed}},
		{"last month's spend, personalize fully, in a purpose not using spend", "newsletter", "last_order_total", granted, full, customer, []guard.Reason{spend, notUsed}},
		{"last month's spend, personalize fully, to a prospect", "order_recap", "last_order_total", granted, full, prospect, []guard.Reason{caution}},
		{"last month's spend, keep it general", "order_recap", "last_order_total", granted, general, customer, []guard.Reason{spend, level}},
		{"pregnancy inferred from purchases, in recommendations", "recommendations", "baby_interest", granted, volunteered, customer, []guard.Reason{sensitive, inferred, notUsed}},
		{"pregnancy inferred from purchases, personalize fully, not a sensitive purpose", "recommendations", "baby_interest", granted, full, customer, []guard.Reason{sensitive, notUsed}},
		{"phone number in an email", "newsletter", "phone", granted, full, customer, []guard.Reason{identifier}},
		{"prospect's purchase history, personalize fully", "recommendations", "last_purchase", granted, full, prospect, []guard.Reason{caution}},
		{"prospect's purchase history, default level", "recommendations", "last_purchase", granted, volunteered, prospect, []guard.Reason{caution, notVol}},
		{"keep it general denies the birthday under birthday_reward", "birthday_reward", "birthday", granted, general, customer, []guard.Reason{level}},
		{"keep it general still allows the first name", "birthday_reward", "first_name", granted, general, customer, []guard.Reason{allowed}},
		{"keep it general denies the shoe size", "recommendations", "shoe_size", granted, general, customer, []guard.Reason{level}},
		{"purpose withdrawn", "newsletter", "first_name", withdrawn, volunteered, customer, []guard.Reason{notGranted}},
		{"purpose withdrawn lists the other reasons too", "newsletter", "last_order_total", withdrawn, volunteered, customer, []guard.Reason{notGranted, spend, notVol, notUsed}},
		{"undeclared attribute", "newsletter", "loyalty_tier", granted, full, customer, []guard.Reason{unknown}},
		{"undeclared attribute, purpose withdrawn", "newsletter", "loyalty_tier", withdrawn, volunteered, prospect, []guard.Reason{unknown}},
		{"subject erased", "newsletter", "first_name", erased, volunteered, customer, []guard.Reason{erasedR}},
		{"subject erased, undeclared attribute", "newsletter", "loyalty_tier", erased, full, customer, []guard.Reason{erasedR}},

		// Consent decisions.
		{"no record", "newsletter", "first_name", noRecord, volunteered, customer, []guard.Reason{notGranted}},
		{"reconsent required", "newsletter", "first_name", required, volunteered, customer, []guard.Reason{notGranted}},
		{"reconsent due still counts", "newsletter", "first_name", due, volunteered, customer, []guard.Reason{allowed}},
		{"Global Privacy Control opt-out", "newsletter", "first_name", gpcOptOut, full, customer, []guard.Reason{notGranted}},

		// Stated beats observed beats inferred.
		{"volunteered attribute at the default level", "newsletter", "first_name", granted, volunteered, customer, []guard.Reason{allowed}},
		{"volunteered attribute for a prospect", "newsletter", "first_name", granted, volunteered, prospect, []guard.Reason{allowed}},
		{"volunteered field under its purpose", "recommendations", "shoe_size", granted, volunteered, prospect, []guard.Reason{allowed}},
		{"volunteered field under its purpose, personalize fully", "birthday_reward", "birthday", granted, full, customer, []guard.Reason{allowed}},
		{"volunteered field under another purpose using its category", "age_offers", "birthday", granted, full, customer, []guard.Reason{notUsed}},
		{"observed at the default level", "recommendations", "city", granted, volunteered, customer, []guard.Reason{notVol}},
		{"observed at full, customer, purpose using its category", "recommendations", "city", granted, full, customer, []guard.Reason{allowed}},
		{"browsing observed at full, customer", "recommendations", "recently_viewed", granted, full, customer, []guard.Reason{allowed}},
		{"browsing observed at full, purpose not using browsing", "newsletter", "recently_viewed", granted, full, customer, []guard.Reason{notUsed}},
		{"observed at full, prospect", "recommendations", "recently_viewed", granted, full, prospect, []guard.Reason{caution}},
		{"third party at the default level", "age_offers", "lifestyle_segment", granted, volunteered, customer, []guard.Reason{inferred}},
		{"third party at full, customer", "age_offers", "lifestyle_segment", granted, full, customer, []guard.Reason{allowed}},
		{"third party at full, prospect", "age_offers", "lifestyle_segment", granted, full, prospect, []guard.Reason{caution}},
		{"purpose stored with an old category name", "age_offers", "age_band", granted, volunteered, customer, []guard.Reason{allowed}},

		// Sensitive details.
		{"inferred health under the sensitive purpose granted, personalize fully", "wellness_tips", "baby_interest", granted, full, customer, []guard.Reason{allowed}},
		{"inferred health under the sensitive purpose granted, default level", "wellness_tips", "baby_interest", granted, volunteered, customer, []guard.Reason{inferred}},
		{"inferred health under the sensitive purpose not granted", "wellness_tips", "baby_interest", noRecord, full, customer, []guard.Reason{notGranted, sensitive}},
		{"volunteered health field under its sensitive purpose granted", "wellness_tips", "due_date", granted, volunteered, customer, []guard.Reason{allowed}},
		{"volunteered health field under its sensitive purpose withdrawn", "wellness_tips", "due_date", withdrawn, full, customer, []guard.Reason{notGranted, sensitive}},
		{"volunteered health field, keep it general", "wellness_tips", "due_date", granted, general, customer, []guard.Reason{level}},

		// Identifiers never appear.
		{"government id, not marked an identifier", "newsletter", "passport_number", granted, full, customer, []guard.Reason{identifier, notUsed}},
		{"phone number, purpose withdrawn, keep it general", "newsletter", "phone", withdrawn, general, customer, []guard.Reason{notGranted, identifier, level}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := purposes[tc.purpose]
			if !ok {
				t.Fatalf("no purpose %q in the table's setup", tc.purpose)
			}
			var a *guard.Attribute
			if at, ok := attrs[tc.attribute]; ok {
				a = &at
			}
			want := tc.want
			if len(want) == 1 && want[0] == allowed {
				want = nil
			}
			got := guard.Reasons(p, a, tc.decision, tc.level, tc.rel)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("Reasons(%s, %s, %s, %s, %s) (-want +got):\n%s", tc.purpose, tc.attribute, tc.decision.Reason, tc.level, tc.rel, diff)
			}
		})
	}
}

// TestReasonsGovernmentIDIsAnIdentifier: a government id is stored as an
// identifier whatever the merchant says, and never allowed in a message,
// even under a purpose that lists its category, personalize fully.
func TestReasonsGovernmentIDIsAnIdentifier(t *testing.T) {
	a := testAttributes()["passport_number"]
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
	if !a.Identifier {
		t.Fatalf("a validated government id is not an identifier: %+v", a)
	}
	p := consent.Purpose{Key: "travel_docs", DataCategories: []string{consent.CategoryGovernmentID, consent.CategoryName}}
	got := guard.Reasons(p, &a, granted, full, customer)
	if diff := cmp.Diff([]guard.Reason{guard.ReasonIdentifier}, got); diff != "" {
		t.Errorf("reasons (-want +got):\n%s", diff)
	}
}

func TestPlaceholders(t *testing.T) {
	for _, tc := range []struct {
		name     string
		template string
		want     []string
		invalid  bool
	}{
		{"empty", "", nil, false},
		{"text only", "New arrivals are in.", nil, false},
		{"one placeholder", "Hi {{first_name}}", []string{"first_name"}, false},
		{"the issue's template", "Hi {{first_name}}, new shoes in your size {{shoe_size}}", []string{"first_name", "shoe_size"}, false},
		{"spaces inside the braces", "Hi {{ first_name }}, size {{\tshoe_size\n}}", []string{"first_name", "shoe_size"}, false},
		{"several, in order of first use", "{{city}}: {{recently_viewed}} for {{first_name}}", []string{"city", "recently_viewed", "first_name"}, false},
		{"duplicates listed once", "{{city}} {{first_name}} {{city}} {{ first_name }}", []string{"city", "first_name"}, false},
		{"adjacent placeholders", "{{first_name}}{{shoe_size}}", []string{"first_name", "shoe_size"}, false},
		{"single braces are text", "Prices {from} 5 € {{city}} {", []string{"city"}, false},
		{"a lone closing brace is text", "Smile :} {{first_name}}", []string{"first_name"}, false},
		{"unbalanced {{", "Hi {{first_name", nil, true},
		{"unbalanced {{ after a good one", "Hi {{first_name}}, size {{shoe_size", nil, true},
		{"stray }}", "Hi first_name}}", nil, true},
		{"stray }} before a good one", "}} {{first_name}}", nil, true},
		{"stray }} after a good one", "{{first_name}} }}", nil, true},
		{"nested {{", "{{ {{first_name}} }}", nil, true},
		{"triple braces", "{{{first_name}}}", nil, true},
		{"empty placeholder", "Hi {{}}", nil, true},
		{"blank placeholder", "Hi {{   }}", nil, true},
		{"key with a space", "Hi {{first name}}", nil, true},
		{"key in capitals", "Hi {{First_Name}}", nil, true},
		{"key too short", "Hi {{a}}", nil, true},
		{"key starting with a digit", "Hi {{1st_name}}", nil, true},
		{"a template expression, not a key", "Hi {{.FirstName}}", nil, true},
		{"longest template", strings.Repeat("a", guard.MaxTemplate-len("{{city}}")) + "{{city}}", []string{"city"}, false},
		{"too long", strings.Repeat("a", guard.MaxTemplate+1), nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := guard.Placeholders(tc.template)
			if tc.invalid {
				var e *apperr.Error
				if !errors.As(err, &e) || e.Code != apperr.Invalid || e.Detail != guard.CodeInvalidTemplate {
					t.Fatalf("Placeholders = %v, %v; want an invalid %s error", got, err, guard.CodeInvalidTemplate)
				}
				return
			}
			if err != nil {
				t.Fatalf("Placeholders: %v", err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Placeholders (-want +got):\n%s", diff)
			}
		})
	}
}
