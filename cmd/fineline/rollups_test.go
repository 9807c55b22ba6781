package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/stats"
	"github.com/fineline/fineline/store"
)

// TestKill9DuringRollupsCountsEverythingOnce seeds a year of decisions,
// kills the server with SIGKILL three times while its rollups catch up,
// lets a last start finish, then recounts every chain from the ledger:
// the rollups' totals and monthly flows equal the recount exactly.
func TestKill9DuringRollupsCountsEverythingOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a store and runs the server four times")
	}
	dir, err := os.MkdirTemp("", "flr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	key, ids, events, err := seedBench(ctx, dir, 20_000)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"FINELINE_DATA_DIR": dir, "FINELINE_LOG_LEVEL": "error", "FINELINE_DEMO": "false"}
	from := time.Now().UTC().AddDate(-1, -1, 0).Format("2006-01-02")
	progress := func(in *instance) (through string, asked int64) {
		code, body, err := in.do("GET", "/v1/stats/purposes?interval=month&from="+from, key, "")
		if err != nil || code != 200 {
			t.Fatalf("stats: %d %v %s", code, err, body)
		}
		var r struct {
			Through *string
			Periods []struct {
				Purposes []struct{ Grants int64 }
			}
		}
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			t.Fatal(err)
		}
		for _, p := range r.Periods {
			for _, pp := range p.Purposes {
				asked += pp.Grants
			}
		}
		if r.Through != nil {
			through = *r.Through
		}
		return through, asked
	}
	for round := range 3 {
		in := serveInstance(t, env)
		began := time.Now()
		for {
			if through, _ := progress(in); through != "" && time.Since(began) > time.Duration(300*(round+1))*time.Millisecond {
				break
			}
			if time.Since(began) > time.Minute {
				t.Fatal("the rollups did not start")
			}
			time.Sleep(50 * time.Millisecond)
		}
		_, grants := progress(in)
		in.kill()
		t.Logf("kill -9 %d: %d grants counted so far", round+1, grants)
	}
	in := serveInstance(t, env)
	var last int64 = -1
	for stable := 0; stable < 3; {
		_, grants := progress(in)
		if grants == last {
			stable++
		} else {
			stable = 0
		}
		last = grants
		time.Sleep(time.Second)
	}
	in.stop()

	st, err := store.Open(ctx, store.Config{DataDir: dir, Logger: newLogger(os.Stderr, slog.LevelWarn)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close(ctx)
	ms, err := st.ListMerchants(ctx, "", 10)
	if err != nil || len(ms) != 1 {
		t.Fatalf("merchants: %v %v", ms, err)
	}
	m := ms[0]
	if s, err := st.RollupState(ctx, m.ID); err != nil || s.Intent != nil {
		t.Fatalf("rollup state after the last start: %+v %v", s, err)
	}
	totals, err := st.RollupTotals(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The recount: every chain, event by event.
	allowed, asked, grants := map[string]int64{}, map[string]int64{}, map[string]map[string]int64{}
	seen := 0
	for _, id := range ids {
		states := map[string]consent.State{}
		for seq := int64(1); ; seq++ {
			e, err := st.Event(ctx, m.ID, id, seq)
			if apperr.Is(err, apperr.NotFound) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			seen++
			if e.Field != "" || !e.State.Valid() {
				continue
			}
			if e.State == consent.Granted && states[e.Purpose] != consent.Granted {
				month := e.RecordedAt.UTC().Format("2006-01")
				if grants[month] == nil {
					grants[month] = map[string]int64{}
				}
				grants[month][e.Purpose]++
			}
			states[e.Purpose] = e.State
		}
		for p, s := range states {
			asked[p]++
			if s == consent.Granted {
				allowed[p]++
			}
		}
	}
	if seen != events {
		t.Fatalf("recounted %d events of %d", seen, events)
	}
	if totals.Subjects != int64(len(ids)) {
		t.Errorf("subjects: %d, want %d", totals.Subjects, len(ids))
	}
	for p := range asked {
		if totals.Allowed[p] != allowed[p] || totals.Asked[p] != asked[p] {
			t.Errorf("%s: rollups allowed %d asked %d, recount %d %d", p, totals.Allowed[p], totals.Asked[p], allowed[p], asked[p])
		}
	}
	rep := stats.Reporter{Store: st, Now: time.Now}
	first, lastDay, err := rep.Range(merchants.Merchant{ID: m.ID}, stats.Monthly, from, "")
	if err != nil {
		t.Fatal(err)
	}
	keys := make([]string, 0, len(asked))
	for p := range asked {
		keys = append(keys, p)
	}
	r, err := rep.Purposes(ctx, m, keys, stats.Monthly, first, lastDay)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, per := range r.Periods {
		for _, pp := range per.Purposes {
			if want := grants[per.Start.Format("2006-01")][pp.Purpose]; pp.Grants != want {
				t.Errorf("%s %s: %d grants rolled up, %d recounted", per.Start.Format("2006-01"), pp.Purpose, pp.Grants, want)
			}
			checked++
		}
	}
	t.Logf("%d events over %d subjects: totals and %d monthly counts equal the recount after three kills", events, len(ids), checked)
}
