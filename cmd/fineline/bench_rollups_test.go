package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/fineline/fineline/stats"
	"github.com/fineline/fineline/store"
)

// BenchmarkYearOfDays reads a year of daily points of every purpose from
// the rollups of 20,000 seeded subjects (FINELINE_BENCH_SUBJECTS for
// more), and encodes it. The counters documents do not grow with
// subjects, so neither should this.
//
//	go test ./cmd/fineline -run '^$' -bench YearOfDays -benchtime 20x
func BenchmarkYearOfDays(b *testing.B) {
	dir := b.TempDir()
	ctx := context.Background()
	n := 20_000
	if v, err := strconv.Atoi(os.Getenv("FINELINE_BENCH_SUBJECTS")); err == nil && v > 0 {
		n = v
	}
	began := time.Now()
	if _, _, events, err := seedBench(ctx, dir, n); err != nil {
		b.Fatal(err)
	} else {
		b.Logf("seeded %d subjects, %d events in %v", n, events, time.Since(began).Round(time.Second))
	}
	rolled, took, err := benchRollups(ctx, dir, io.Discard)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("rolled up %d events in %v: %.0f events/s", rolled, took.Round(time.Millisecond), float64(rolled)/took.Seconds())
	st, err := store.Open(ctx, store.Config{DataDir: dir, Logger: newLogger(os.Stderr, slog.LevelWarn)})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close(ctx)
	ms, err := st.ListMerchants(ctx, "", 10)
	if err != nil {
		b.Fatal(err)
	}
	ps, err := st.Purposes(ctx, ms[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	var keys []string
	for _, p := range ps {
		keys = append(keys, p.Key)
	}
	r := stats.Reporter{Store: st, Now: time.Now}
	first, last, err := r.Range(ms[0], stats.Daily, time.Now().AddDate(-1, 0, 1).Format(stats.DateLayout), "")
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		rep, err := r.Purposes(ctx, ms[0], keys, stats.Daily, first, last)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := json.Marshal(rep); err != nil {
			b.Fatal(err)
		}
	}
}
