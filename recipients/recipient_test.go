package recipients_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/recipients"
	"github.com/fineline/fineline/store/storetest"
)

const merchant = "mer_recipients"

// newService has the purposes newsletter, partner_sharing and wellness_tips
// over a real embedded store, and a fixed clock.
func newService(t *testing.T) *recipients.Service {
	t.Helper()
	ctx := context.Background()
	st := storetest.Open(t)
	ps := &consent.Purposes{Store: st, Now: time.Now}
	for _, k := range []string{"newsletter", "partner_sharing", "wellness_tips"} {
		if _, err := ps.Create(ctx, consent.Purpose{MerchantID: merchant, Key: k, Texts: map[string]consent.Text{"en": {Name: k, Statement: "A plain statement of " + k + "."}}}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Date(2026, 12, 1, 9, 0, 0, 123456789, time.UTC)
	return &recipients.Service{Store: st, Purposes: ps, Now: func() time.Time { return now }}
}

func mailer() recipients.Recipient {
	return recipients.Recipient{Name: "Mailer Ltd", Role: recipients.RoleProcessor, Purposes: []string{"newsletter"}, Country: "IE"}
}

func TestRecipientNormalize(t *testing.T) {
	many := make([]recipients.Recipient, recipients.MaxRecipients+1)
	for i := range many {
		many[i] = recipients.Recipient{Name: fmt.Sprint("R", i), Role: recipients.RolePartner, Purposes: []string{"newsletter"}}
	}
	with := func(change func(r *recipients.Recipient)) []recipients.Recipient {
		r := mailer()
		change(&r)
		return []recipients.Recipient{r}
	}
	for _, tc := range []struct {
		name string
		in   []recipients.Recipient
		want []recipients.Recipient // nil: refused with invalid_recipient
	}{
		{"empty list clears", []recipients.Recipient{}, []recipients.Recipient{}},
		{"as given", with(func(*recipients.Recipient) {}), []recipients.Recipient{mailer()}},
		{"name trimmed", with(func(r *recipients.Recipient) { r.Name = "  Mailer Ltd\u00a0" }), []recipients.Recipient{mailer()}},
		{"country upper-cased", with(func(r *recipients.Recipient) { r.Country = "ie" }), []recipients.Recipient{mailer()}},
		{"country mixed case", with(func(r *recipients.Recipient) { r.Country = "iE" }), []recipients.Recipient{mailer()}},
		{"no country", with(func(r *recipients.Recipient) { r.Country = "" }), with(func(r *recipients.Recipient) { r.Country = "" })},
		{"purposes sorted and each once", with(func(r *recipients.Recipient) { r.Purposes = []string{"wellness_tips", "newsletter", "wellness_tips"} }),
			with(func(r *recipients.Recipient) { r.Purposes = []string{"newsletter", "wellness_tips"} })},
		{"100 characters", with(func(r *recipients.Recipient) { r.Name = strings.Repeat("é", 100) }), with(func(r *recipients.Recipient) { r.Name = strings.Repeat("é", 100) })},
		{"100 recipients", many[:100], many[:100]},

		{"101 recipients", many, nil},
		{"empty name", with(func(r *recipients.Recipient) { r.Name = "" }), nil},
		{"blank name", with(func(r *recipients.Recipient) { r.Name = " \t " }), nil},
		{"101 characters", with(func(r *recipients.Recipient) { r.Name = strings.Repeat("é", 101) }), nil},
		{"newline in name", with(func(r *recipients.Recipient) { r.Name = "Mailer\nLtd" }), nil},
		{"NUL in name", with(func(r *recipients.Recipient) { r.Name = "Mailer\x00Ltd" }), nil},
		{"C1 control in name", with(func(r *recipients.Recipient) { r.Name = "Mailer\u0085Ltd" }), nil},
		{"direction override in name", with(func(r *recipients.Recipient) { r.Name = "Mailer \u202eLtd" }), nil},
		{"invalid UTF-8 in name", with(func(r *recipients.Recipient) { r.Name = "Mailer \xff" }), nil},
		{"same name twice", []recipients.Recipient{mailer(), mailer()}, nil},
		{"same name in another case", []recipients.Recipient{mailer(), {Name: " MAILER ltd", Role: recipients.RolePartner, Purposes: []string{"partner_sharing"}}}, nil},
		{"no role", with(func(r *recipients.Recipient) { r.Role = "" }), nil},
		{"unknown role", with(func(r *recipients.Recipient) { r.Role = "controller" }), nil},
		{"role in capitals", with(func(r *recipients.Recipient) { r.Role = "Processor" }), nil},
		{"no purposes", with(func(r *recipients.Recipient) { r.Purposes = nil }), nil},
		{"empty purposes", with(func(r *recipients.Recipient) { r.Purposes = []string{} }), nil},
		{"three-letter country", with(func(r *recipients.Recipient) { r.Country = "IRL" }), nil},
		{"one-letter country", with(func(r *recipients.Recipient) { r.Country = "I" }), nil},
		{"digits as country", with(func(r *recipients.Recipient) { r.Country = "37" }), nil},
		{"unassigned country", with(func(r *recipients.Recipient) { r.Country = "ZZ" }), nil},
		{"reserved country", with(func(r *recipients.Recipient) { r.Country = "EU" }), nil},
		{"non-ASCII letter upper-casing to a country", with(func(r *recipients.Recipient) { r.Country = "ıe" }), nil},
		{"spaces around country", with(func(r *recipients.Recipient) { r.Country = " IE" }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := recipients.Normalize(tc.in)
			if tc.want == nil {
				if !apperr.Is(err, apperr.Invalid) || !hasDetail(err, recipients.CodeInvalidRecipient) {
					t.Fatalf("Normalize = %v, %v; want invalid_recipient", got, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Normalize (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRecipientNormalizeLeavesInputAlone(t *testing.T) {
	in := []recipients.Recipient{{Name: " Mailer Ltd ", Role: recipients.RoleProcessor, Purposes: []string{"z_last", "a_first", "z_last"}, Country: "ie"}}
	if _, err := recipients.Normalize(in); err != nil {
		t.Fatal(err)
	}
	want := []recipients.Recipient{{Name: " Mailer Ltd ", Role: recipients.RoleProcessor, Purposes: []string{"z_last", "a_first", "z_last"}, Country: "ie"}}
	if diff := cmp.Diff(want, in); diff != "" {
		t.Errorf("input changed (-want +got):\n%s", diff)
	}
}

func TestRecipientCountry(t *testing.T) {
	for c, want := range map[string]bool{"IE": true, "DE": true, "GB": true, "US": true, "AX": true, "ZW": true,
		"ie": false, "UK": false, "EU": false, "XK": false, "ZZ": false, "AA": false, "": false, "IEE": false} {
		if got := recipients.ValidCountry(c); got != want {
			t.Errorf("ValidCountry(%q) = %v, want %v", c, got, want)
		}
	}
}

func TestRecipientsPutGetFor(t *testing.T) {
	ctx := context.Background()
	s := newService(t)
	l, err := s.Get(ctx, merchant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recipients.List{MerchantID: merchant, Recipients: []recipients.Recipient{}}, l); diff != "" {
		t.Errorf("never set (-want +got):\n%s", diff)
	}

	partner := recipients.Recipient{Name: "Partner Shoes GmbH", Role: recipients.RolePartner, Purposes: []string{"partner_sharing", "newsletter"}, Country: "de"}
	put, err := s.Put(ctx, merchant, []recipients.Recipient{mailer(), partner})
	if err != nil {
		t.Fatal(err)
	}
	want := recipients.List{MerchantID: merchant, UpdatedAt: time.Date(2026, 12, 1, 9, 0, 0, 123000000, time.UTC), Recipients: []recipients.Recipient{
		mailer(), {Name: "Partner Shoes GmbH", Role: recipients.RolePartner, Purposes: []string{"newsletter", "partner_sharing"}, Country: "DE"}}}
	if diff := cmp.Diff(want, put); diff != "" {
		t.Errorf("Put (-want +got):\n%s", diff)
	}
	got, err := s.Get(ctx, merchant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after Put (-want +got):\n%s", diff)
	}
	for purpose, names := range map[string][]string{"newsletter": {"Mailer Ltd", "Partner Shoes GmbH"}, "partner_sharing": {"Partner Shoes GmbH"},
		"wellness_tips": {}, "never_made": {}} {
		rs, err := s.For(ctx, merchant, purpose)
		if err != nil {
			t.Fatal(err)
		}
		gotNames := []string{}
		for _, r := range rs {
			gotNames = append(gotNames, r.Name)
		}
		if diff := cmp.Diff(names, gotNames); diff != "" {
			t.Errorf("For(%s) (-want +got):\n%s", purpose, diff)
		}
	}

	// A refused list changes nothing, even when only its last purpose is unknown.
	for _, bad := range [][]recipients.Recipient{
		{mailer(), {Name: "Other", Role: recipients.RolePartner, Purposes: []string{"newsletter", "never_made"}}},
		{mailer(), {Name: "Other", Role: recipients.RolePartner, Purposes: []string{"Not A Key"}}},
		{mailer(), {Name: "Other", Role: "owner", Purposes: []string{"newsletter"}}},
	} {
		if _, err := s.Put(ctx, merchant, bad); !apperr.Is(err, apperr.Invalid) {
			t.Errorf("Put(%v) = %v, want invalid", bad, err)
		}
	}
	if _, err := s.Put(ctx, merchant, []recipients.Recipient{{Name: "Other", Role: recipients.RolePartner, Purposes: []string{"never_made"}}}); !hasDetail(err, consent.CodeUnknownPurpose) {
		t.Errorf("unknown purpose: %v, want %s", err, consent.CodeUnknownPurpose)
	}
	got, err = s.Get(ctx, merchant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Get after refused puts (-want +got):\n%s", diff)
	}

	// Another merchant has its own, empty, list; a purpose of this one is unknown there.
	other, err := s.Get(ctx, "mer_other")
	if err != nil || len(other.Recipients) != 0 || !other.UpdatedAt.IsZero() {
		t.Errorf("another merchant's list: %+v, %v", other, err)
	}
	if _, err := s.Put(ctx, "mer_other", []recipients.Recipient{mailer()}); !hasDetail(err, consent.CodeUnknownPurpose) {
		t.Errorf("another merchant naming this one's purpose: %v", err)
	}

	// Clearing keeps the time of the change.
	cleared, err := s.Put(ctx, merchant, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Get(ctx, merchant)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(recipients.List{MerchantID: merchant, Recipients: []recipients.Recipient{}, UpdatedAt: want.UpdatedAt}, got); diff != "" || len(cleared.Recipients) != 0 {
		t.Errorf("Get after clearing (-want +got):\n%s", diff)
	}
}

func hasDetail(err error, detail string) bool {
	var ae *apperr.Error
	return errors.As(err, &ae) && ae.Detail == detail
}
