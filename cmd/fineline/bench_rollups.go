package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/stats"
	"github.com/fineline/fineline/store"
)

// benchRollups rolls the seeded ledger up in this process with the roller
// a server runs, from nothing to its end, and reports the events it went
// over and how long that took.
func benchRollups(ctx context.Context, dir string, log io.Writer) (int64, time.Duration, error) {
	lg := newLogger(log, slog.LevelWarn)
	st, err := store.Open(ctx, store.Config{DataDir: dir, Logger: lg})
	if err != nil {
		return 0, 0, err
	}
	defer st.Close(ctx)
	ms, err := st.ListMerchants(ctx, "", 100)
	if err != nil {
		return 0, 0, err
	}
	l := consent.NewLedger(st, st, st, nil, time.Now, lg, consent.Options{Exclusive: true})
	r := &stats.Roller{Store: st, Feed: l, Merchants: st, Log: lg}
	began := time.Now()
	var events int64
	for _, m := range ms {
		if err := r.CatchUp(ctx, m); err != nil {
			return 0, 0, err
		}
		s, err := st.RollupState(ctx, m.ID)
		if err != nil {
			return 0, 0, err
		}
		events += s.Events
	}
	return events, time.Since(began), nil
}

// timeYearOfDays asks the running server for a year of daily points of
// every purpose, calls times, and returns the median and the slowest.
func timeYearOfDays(a api, calls int) (median, slowest time.Duration, err error) {
	from := time.Now().UTC().AddDate(-1, 0, 1).Format("2006-01-02")
	took := make([]time.Duration, 0, calls)
	for range calls {
		var r struct {
			Periods []struct{} `json:"periods"`
		}
		began := time.Now()
		if err := a.call("GET", "/v1/stats/purposes?interval=day&from="+from, nil, &r); err != nil {
			return 0, 0, err
		}
		took = append(took, time.Since(began))
		if len(r.Periods) < 365 {
			return 0, 0, fmt.Errorf("a year of days gave %d periods", len(r.Periods))
		}
	}
	slices.Sort(took)
	return took[len(took)/2], took[len(took)-1], nil
}
