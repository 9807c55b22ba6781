package fields_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/store/storetest"
	"github.com/fineline/fineline/ttlcache"
)

// BenchmarkWithdrawal measures recording a withdrawal with the erasure
// step wired, as served (field definitions cached), against a ledger
// without it, on the embedded store: the cost the value exchange adds to
// every withdrawal of a purpose a field needs, when no value was given.
// Decisions alternate (a withdrawal of what is already withdrawn appends
// nothing), so half of them are withdrawals.
func BenchmarkWithdrawal(b *testing.B) {
	for _, wired := range []bool{false, true} {
		b.Run(fmt.Sprintf("erasure_step=%v", wired), func(b *testing.B) {
			e := newBenchEnv(b, wired)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				if _, err := e.ledger.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: fmt.Sprintf("s%d", i%500), Channel: consent.ChannelAPI, Actor: "bench", Requests: []consent.Request{{Purpose: "recommendations", State: []consent.State{consent.Granted, consent.Withdrawn}[(i/500)%2]}}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newBenchEnv(b *testing.B, wired bool) *env {
	b.Helper()
	e := newEnvTB(b)
	if !wired {
		// A ledger without the hook, over the same store.
		e.ledger = consent.NewLedger(e.st, e.st, e.st, e.notices, e.now, storetest.Logger(), consent.Options{})
		return e
	}
	e.svc.Definitions = ttlcache.New[string, []fields.Field](2e9, 100, e.now)
	return e
}
