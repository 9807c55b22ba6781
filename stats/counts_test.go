package stats_test

import (
	"maps"
	"testing"

	"github.com/fineline/fineline/stats"
)

// Counters read back as they were written, and a damaged document is an
// error, never a zero.
func TestCountsEncodeAndDecode(t *testing.T) {
	c := stats.Counts{"d.05.g": 3, "d.05.c.api.g": 2, "d.31.a": -4, "a.newsletter": 1_000_000_000_000}
	got, err := stats.DecodeCounts(c.Encode())
	if err != nil || !maps.Equal(got, c) {
		t.Fatalf("%v %v", got, err)
	}
	if c.Encode() != "a.newsletter 1000000000000\nd.05.c.api.g 2\nd.05.g 3\nd.31.a -4\n" {
		t.Errorf("encoded %q", c.Encode())
	}
	if got, err := stats.DecodeCounts(""); err != nil || len(got) != 0 {
		t.Errorf("empty: %v %v", got, err)
	}
	for _, bad := range []string{"d.05.g\n", "d.05.g x\n", " 3\n", "d.05.g 3 4\n"} {
		if _, err := stats.DecodeCounts(bad); err == nil {
			t.Errorf("%q was read", bad)
		}
	}
}
