package offers_test

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkIssuePass is one pass of the birthday job over 500 members
// whose birthday is not today: each birthday is opened (data key unwrapped,
// value decrypted) after a consent check. It sizes --reward-interval.
func BenchmarkIssuePass(b *testing.B) {
	f := setup(b)
	for i := range 500 {
		f.join(b, fmt.Sprintf("m%03d", i), "Europe/Paris", fmt.Sprintf("--%02d-%02d", 1+i%6, 1+i%28))
	}
	f.clock.Set("2027-09-15T12:00:00Z") // nobody's birthday
	issuer := f.issuer()
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		n, err := issuer.Issue(ctx)
		if err != nil || n != 0 {
			b.Fatalf("issued %d (err %v)", n, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*500), "µs/member")
}
