package exports

import (
	"encoding/json"
	"testing"
	"time"
)

// TestRowsAreTheirJSON: a row written by hand is the row encoding/json
// writes.
func TestRowsAreTheirJSON(t *testing.T) {
	since := time.Date(2026, 11, 30, 18, 2, 11, 204_000_000, time.UTC)
	for _, r := range []Row{
		{Subject: "cust_10042", Allowed: true, Reason: "granted", Since: &since, NoticeVersion: 3, Seq: 12, GPC: false},
		{Subject: "a.b@c+d:e-f", Allowed: false, Reason: "no_record", Seq: 0, GPC: true},
		{Subject: "x", Reason: "gpc_opt_out", Since: &since, GPC: true, NoticeVersion: 1, Seq: 1 << 40},
	} {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(appendNDJSON(nil, r)); got != string(want)+"\n" {
			t.Errorf("\n got %s\nwant %s", got, want)
		}
	}
}
