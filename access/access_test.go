package access_test

import (
	"context"
	"testing"
	"time"

	"github.com/fineline/fineline/access"
	"github.com/fineline/fineline/store/storetest"
)

// TestCountsBeforeAndAfterTheyAreWritten: what the counter holds shows at
// once, and writing it neither loses nor doubles any.
func TestCountsBeforeAndAfterTheyAreWritten(t *testing.T) {
	ctx := context.Background()
	st := storetest.Open(t)
	c := &access.Counter{Store: st, Interval: time.Hour, Max: 1000, Log: storetest.Logger()}
	at := time.Date(2026, 12, 3, 23, 59, 59, 0, time.UTC)
	check, guard := c.Of(access.Check), c.Of(access.Guard)
	for range 3 {
		check.Count("mer_a", "erin", "api_key:esp", "newsletter", at)
	}
	guard.Count("mer_a", "erin", "api_key:esp", "newsletter", at)
	check.Count("mer_a", "erin", "api_key:esp", "newsletter", at.Add(time.Second)) // the next day
	check.Count("mer_a", "finn", "api_key:esp", "newsletter", at)
	check.Count("mer_b", "erin", "api_key:esp", "newsletter", at)

	want := func(when string) {
		t.Helper()
		got, err := c.Counts(ctx, "mer_a", "erin", []string{"2026-12-03", "2026-12-04"})
		if err != nil {
			t.Fatal(err)
		}
		sum := map[string]int64{}
		for _, n := range got {
			sum[n.Day+" "+string(n.Kind)] += n.N
		}
		if len(sum) != 3 || sum["2026-12-03 check"] != 3 || sum["2026-12-03 guard"] != 1 || sum["2026-12-04 check"] != 1 {
			t.Errorf("%s: %v", when, sum)
		}
	}
	want("before the write")
	c.Flush(ctx)
	want("after the write")
	check.Count("mer_a", "erin", "api_key:esp", "newsletter", at)
	c.Flush(ctx)
	got, err := c.Counts(ctx, "mer_a", "erin", []string{"2026-12-03"})
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, x := range got {
		if x.Kind == access.Check {
			n += x.N
		}
	}
	if n != 4 {
		t.Errorf("after a second write: %d checks, want 4", n)
	}
	if err := st.DeleteAccessCounts(ctx, "mer_a", "erin"); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.Counts(ctx, "mer_a", "erin", []string{"2026-12-03", "2026-12-04"}); len(got) != 0 {
		t.Errorf("after deleting erin's counts: %v", got)
	}
	if got, _ := c.Counts(ctx, "mer_a", "finn", []string{"2026-12-03"}); len(got) != 1 {
		t.Errorf("finn's counts went with erin's: %v", got)
	}
}
