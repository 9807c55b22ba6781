package consent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store/storetest"
)

// seedSubjects gives n subjects one or two events each.
func seedSubjects(b *testing.B, e *env, n int) []string {
	b.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("cust-%06d", i)
		e.record(b, ids[i], "newsletter", consent.Granted)
		if i%4 == 0 {
			e.record(b, ids[i], "newsletter", consent.Withdrawn)
		}
	}
	return ids
}

func BenchmarkCheck(b *testing.B) {
	e := newEnv(b)
	ids := seedSubjects(b, e, 1000)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := e.ledger.Check(ctx, merchant, ids[i%len(ids)], "newsletter"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckMany1000(b *testing.B) {
	e := newEnv(b)
	ids := seedSubjects(b, e, 1000)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := e.ledger.CheckMany(ctx, merchant, "newsletter", ids); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/float64(len(ids)), "µs/subject")
}

func BenchmarkRecord(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	states := []consent.State{consent.Granted, consent.Withdrawn}
	for i := 0; b.Loop(); i++ {
		_, err := e.ledger.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: fmt.Sprintf("w-%d", i%100), Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: states[i%2]}}})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCachedCheck is the check path with the state cache, the subject
// in memory: what a hot check costs beside HTTP.
func BenchmarkCachedCheck(b *testing.B) {
	e := newEnv(b)
	ids := seedSubjects(b, e, 1000)
	l := consent.NewLedger(e.store, consent.NewCachedPurposes(e.store, time.Minute, time.Now), e.store, &notices.Service{Store: notices.NewCachedStore(e.store, time.Minute, time.Now), Now: time.Now}, time.Now, storetest.Logger(),
		consent.Options{Exclusive: true, CacheBytes: 64 << 20})
	ctx := context.Background()
	if _, err := l.CheckMany(ctx, merchant, "newsletter", ids); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := l.Check(ctx, merchant, ids[i%len(ids)], "newsletter"); err != nil {
			b.Fatal(err)
		}
	}
}
