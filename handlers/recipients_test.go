package handlers_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recipientBody is one recipient as PUT and GET /v1/recipients carry it.
type recipientBody struct {
	Name     string   `json:"name"`
	Role     string   `json:"role"`
	Purposes []string `json:"purposes"`
	Country  string   `json:"country,omitempty"`
}

// recipientList is GET /v1/recipients.
type recipientList struct {
	Recipients []recipientBody `json:"recipients"`
	UpdatedAt  *time.Time      `json:"updated_at"`
}

func TestRecipientsPutGetReplaceClear(t *testing.T) {
	e := newTestEnv(t)
	get := func(key string) (recipientList, string) {
		t.Helper()
		r := e.mustStatus(e.do("GET", "/v1/recipients", key, ""), 200)
		var l recipientList
		r.json(t, &l)
		return l, string(r.body)
	}

	// Never set: an empty list and no time.
	if _, body := get(e.keyA); body != `{"recipients":[],"updated_at":null}` {
		t.Fatalf("never set: %s", body)
	}

	// Stored trimmed, upper-cased, purposes sorted and each once.
	before := time.Now().Add(-time.Second)
	r := e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[
		{"name":"  Mailer Ltd ","role":"processor","purposes":["newsletter","birthday_reward","newsletter"],"country":"ie"},
		{"name":"Partner Shoes GmbH","role":"partner","purposes":["partner_sharing"]}]}`), 200)
	var put recipientList
	r.json(t, &put)
	want := []recipientBody{
		{Name: "Mailer Ltd", Role: "processor", Purposes: []string{"birthday_reward", "newsletter"}, Country: "IE"},
		{Name: "Partner Shoes GmbH", Role: "partner", Purposes: []string{"partner_sharing"}},
	}
	if diff := cmp.Diff(want, put.Recipients); diff != "" {
		t.Errorf("PUT answer (-want +got):\n%s", diff)
	}
	if put.UpdatedAt == nil || put.UpdatedAt.Before(before) || put.UpdatedAt.After(time.Now()) {
		t.Errorf("updated_at = %v", put.UpdatedAt)
	}
	if strings.Contains(string(r.body), `"country":""`) {
		t.Errorf("an absent country is sent as empty: %s", r.body)
	}
	got, stored := get(e.keyA)
	if diff := cmp.Diff(put, got); diff != "" {
		t.Errorf("GET after PUT (-want +got):\n%s", diff)
	}

	// Replaced whole: the old entries are gone.
	e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[{"name":"Host Inc","role":"processor","purposes":["recommendations"],"country":"US"}]}`), 200)
	got, _ = get(e.keyA)
	if diff := cmp.Diff([]recipientBody{{Name: "Host Inc", Role: "processor", Purposes: []string{"recommendations"}, Country: "US"}}, got.Recipients); diff != "" {
		t.Errorf("after replacing (-want +got):\n%s", diff)
	}
	e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[
		{"name":"Mailer Ltd","role":"processor","purposes":["newsletter","birthday_reward","newsletter"],"country":"ie"},
		{"name":"Partner Shoes GmbH","role":"partner","purposes":["partner_sharing"]}]}`), 200)
	if _, body := get(e.keyA); body == stored {
		t.Fatalf("a later PUT kept the earlier time: %s", body)
	}
	_, stored = get(e.keyA)

	// Another merchant sees its own list, empty, and its list is its own.
	if _, body := get(e.keyB); body != `{"recipients":[],"updated_at":null}` {
		t.Errorf("merchant B sees: %s", body)
	}
	e.mustStatus(e.do("PUT", "/v1/recipients", e.keyB, `{"recipients":[{"name":"B's Mailer","role":"processor","purposes":["newsletter"]}]}`), 200)
	if _, body := get(e.keyA); body != stored {
		t.Errorf("merchant B's PUT changed A's list: %s", body)
	}

	// Cleared: an empty list, with the time it was cleared.
	r = e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[]}`), 200)
	var cleared recipientList
	r.json(t, &cleared)
	if len(cleared.Recipients) != 0 || cleared.UpdatedAt == nil || !strings.Contains(string(r.body), `"recipients":[]`) {
		t.Errorf("cleared: %s", r.body)
	}
	if got, _ := get(e.keyA); len(got.Recipients) != 0 || got.UpdatedAt == nil || !got.UpdatedAt.Equal(*cleared.UpdatedAt) {
		t.Errorf("GET after clearing: %+v", got)
	}
	if got, _ := get(e.keyB); len(got.Recipients) != 1 {
		t.Errorf("clearing A's list changed B's: %+v", got)
	}
}

func TestRecipientsRefusedChangesNothing(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[{"name":"Mailer Ltd","role":"processor","purposes":["newsletter"],"country":"IE"}]}`), 200)
	stored := string(e.mustStatus(e.do("GET", "/v1/recipients", e.keyA, ""), 200).body)

	one := func(fields string) string {
		return `{"recipients":[{"name":"Mailer Ltd","role":"processor","purposes":["newsletter"],"country":"IE"},{` + fields + `}]}`
	}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf(`{"name":"R%d","role":"partner","purposes":["partner_sharing"]}`, i)
	}
	for _, tc := range []struct {
		name, body, code string
	}{
		{"unknown role", one(`"name":"Other","role":"controller","purposes":["newsletter"]`), "invalid_recipient"},
		{"no role", one(`"name":"Other","purposes":["newsletter"]`), "invalid_recipient"},
		{"no name", one(`"role":"partner","purposes":["newsletter"]`), "invalid_recipient"},
		{"blank name", one(`"name":"   ","role":"partner","purposes":["newsletter"]`), "invalid_recipient"},
		{"name over 100 characters", one(`"name":"` + strings.Repeat("n", 101) + `","role":"partner","purposes":["newsletter"]`), "invalid_recipient"},
		{"control character in name", one(`"name":"Other\u0007","role":"partner","purposes":["newsletter"]`), "invalid_recipient"},
		{"newline in name", one(`"name":"Other\nLtd","role":"partner","purposes":["newsletter"]`), "invalid_recipient"},
		{"same name in another case", one(`"name":"mailer LTD","role":"partner","purposes":["partner_sharing"]`), "invalid_recipient"},
		{"no purposes", one(`"name":"Other","role":"partner"`), "invalid_recipient"},
		{"empty purposes", one(`"name":"Other","role":"partner","purposes":[]`), "invalid_recipient"},
		{"unknown purpose", one(`"name":"Other","role":"partner","purposes":["partner_sharing","never_made"]`), "unknown_purpose"},
		{"not a purpose key", one(`"name":"Other","role":"partner","purposes":["Not A Key"]`), "invalid_purpose"},
		{"three-letter country", one(`"name":"Other","role":"partner","purposes":["newsletter"],"country":"IRL"`), "invalid_recipient"},
		{"unassigned country", one(`"name":"Other","role":"partner","purposes":["newsletter"],"country":"ZZ"`), "invalid_recipient"},
		{"101 recipients", `{"recipients":[` + strings.Join(many, ",") + `]}`, "invalid_recipient"},
		{"no recipients member", `{}`, "invalid_recipient"},
		{"null recipients", `{"recipients":null}`, "invalid_recipient"},
		{"unknown member", `{"recipients":[],"updated_at":"2026-01-01T00:00:00Z"}`, "unknown_field"},
		{"unknown member in a recipient", one(`"name":"Other","role":"partner","purposes":["newsletter"],"Country":"IE"`), "unknown_field"},
		{"member in another case", `{"Recipients":[]}`, "unknown_field"},
		{"duplicate member", `{"recipients":[],"recipients":[]}`, "duplicate_field"},
		{"duplicate member in a recipient", one(`"name":"Other","role":"partner","role":"processor","purposes":["newsletter"]`), "duplicate_field"},
		{"wrong type", one(`"name":"Other","role":"partner","purposes":"newsletter"`), "invalid_field"},
		{"operator instead of a string", one(`"name":{"$ne":""},"role":"partner","purposes":["newsletter"]`), "invalid_field"},
		{"not JSON", `{"recipients":[`, "malformed_json"},
		{"trailing data", `{"recipients":[]} {}`, "malformed_json"},
		{"invalid UTF-8", one("\"name\":\"Other \xff\",\"role\":\"partner\",\"purposes\":[\"newsletter\"]"), "invalid_utf8"},
	} {
		// Not t.Run: e.do and e.mustStatus report to the test that made e.
		r := e.do("PUT", "/v1/recipients", e.keyA, tc.body)
		if r.status != 400 {
			t.Errorf("%s: status %d, want 400: %s", tc.name, r.status, r.body)
		} else if code := r.errorCode(t); code != tc.code {
			t.Errorf("%s: code %s, want %s", tc.name, code, tc.code)
		}
		if body := string(e.mustStatus(e.do("GET", "/v1/recipients", e.keyA, ""), 200).body); body != stored {
			t.Errorf("%s: the refused PUT changed the list: %s", tc.name, body)
		}
	}

	// Not JSON at all, and too large.
	if code := e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[]}`, "Content-Type", "text/plain"), 415).errorCode(t); code != "unsupported_media_type" {
		t.Errorf("code %s", code)
	}
	huge := `{"recipients":[{"name":"` + strings.Repeat("n", 70<<10) + `","role":"partner","purposes":["newsletter"]}]}`
	if code := e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, huge), 413).errorCode(t); code != "payload_too_large" {
		t.Errorf("code %s", code)
	}
	if body := string(e.mustStatus(e.do("GET", "/v1/recipients", e.keyA, ""), 200).body); body != stored {
		t.Errorf("a refused PUT changed the list: %s", body)
	}
}

func TestRecipientsNeedAdminToChange(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/recipients", e.keyA, `{"recipients":[{"name":"Mailer Ltd","role":"processor","purposes":["newsletter"]}]}`), 200)
	stored := string(e.mustStatus(e.do("GET", "/v1/recipients", e.keyA, ""), 200).body)
	var viewer struct {
		Secret string `json:"secret"`
	}
	e.mustStatus(e.do("POST", "/v1/api-keys", e.keyA, `{"name":"viewer","scopes":["consent:read"]}`), 201).json(t, &viewer)

	if body := string(e.mustStatus(e.do("GET", "/v1/recipients", viewer.Secret, ""), 200).body); body != stored {
		t.Errorf("the viewer reads %s, want %s", body, stored)
	}
	if code := e.mustStatus(e.do("PUT", "/v1/recipients", viewer.Secret, `{"recipients":[]}`), 403).errorCode(t); code != "insufficient_scope" {
		t.Errorf("code %s", code)
	}
	e.mustStatus(e.do("PUT", "/v1/recipients", "", `{"recipients":[]}`), 401).errorCode(t)
	e.mustStatus(e.do("GET", "/v1/recipients", "", ""), 401).errorCode(t)
	if body := string(e.mustStatus(e.do("GET", "/v1/recipients", e.keyA, ""), 200).body); body != stored {
		t.Errorf("a refused PUT changed the list: %s", body)
	}
}
