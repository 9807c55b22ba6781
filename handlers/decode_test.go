package handlers

import (
	"strings"
	"testing"

	"github.com/fineline/fineline/apperr"
)

// TestDecodeStrictRefusesAmbiguousBodies: every body that could be read two
// ways is refused with a code, and the destination keeps its zero value.
func TestDecodeStrictRefusesAmbiguousBodies(t *testing.T) {
	type req struct {
		State         string `json:"state"`
		ExplicitOptIn bool   `json:"explicit_opt_in"`
	}
	cases := []struct {
		name, body, code string
	}{
		{"duplicate state", `{"state":"withdrawn","state":"granted"}`, "duplicate_field"},
		{"duplicate opt-in", `{"state":"granted","explicit_opt_in":false,"explicit_opt_in":true}`, "duplicate_field"},
		{"capitalized", `{"State":"granted"}`, "unknown_field"},
		{"upper case", `{"STATE":"granted"}`, "unknown_field"},
		{"unicode folding (long s)", `{"ſtate":"granted"}`, "unknown_field"},
		{"kelvin sign folding", `{"explicit_opt_\u212an":true}`, "unknown_field"},
		{"unknown member", `{"state":"granted","admin":true}`, "unknown_field"},
		{"invalid UTF-8 in a value", "{\"state\":\"gr\xffnted\"}", "invalid_utf8"},
		{"invalid UTF-8 in a name", "{\"st\xe2te\":\"granted\"}", "invalid_utf8"},
		{"trailing object", `{"state":"granted"}{"state":"withdrawn"}`, "malformed_json"},
		{"trailing garbage", `{"state":"granted"} x`, "malformed_json"},
		{"array", `[{"state":"granted"}]`, "invalid_field"},
		{"null", `null`, "invalid_field"},
		{"empty", ``, "malformed_json"},
		{"truncated", `{"state":"gran`, "malformed_json"},
		{"operator object", `{"state":{"$ne":"denied"}}`, "invalid_field"},
		{"number for bool", `{"explicit_opt_in":1}`, "invalid_field"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var r req
			err := decodeStrict(strings.NewReader(tc.body), &r)
			var ae *apperr.Error
			if err == nil || !asAppErr(err, &ae) {
				t.Fatalf("accepted %q as %+v", tc.body, r)
			}
			if ae.Detail != tc.code || ae.Code != apperr.Invalid {
				t.Fatalf("%q: got %s/%s (%s), want %s", tc.body, ae.Code, ae.Detail, ae.Message, tc.code)
			}
			if r != (req{}) {
				t.Fatalf("%q: refused but decoded %+v", tc.body, r)
			}
		})
	}
	var r req
	if err := decodeStrict(strings.NewReader(` {"state":"granted","explicit_opt_in":true} `), &r); err != nil || r.State != "granted" || !r.ExplicitOptIn {
		t.Fatalf("a plain body: %v %+v", err, r)
	}
}

func asAppErr(err error, ae **apperr.Error) bool {
	e, ok := err.(*apperr.Error)
	*ae = e
	return ok
}
