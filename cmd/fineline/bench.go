package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store"
)

// benchOptions tune `fineline bench`.
type benchOptions struct {
	subjects    int
	duration    time.Duration
	connections int
	dataDir     string
	cacheMemory string
	// profileDir receives a CPU profile of the server for each load phase.
	profileDir string
	debugAddr  string
	// metrics is the server's --metrics ("" : its default, on), rollups
	// its --rollups.
	metrics, rollups string
}

// bench seeds a fresh data directory with realistic consent histories,
// starts Fineline and a bare gin endpoint (the ceiling) as child processes of
// this binary, drives both over loopback and prints one table.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fineline bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o benchOptions
	fs.IntVar(&o.subjects, "subjects", 100_000, "subjects to seed (about five ledger events each)")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "length of each load phase")
	fs.IntVar(&o.connections, "connections", 32, "concurrent connections of the load generator")
	fs.StringVar(&o.dataDir, "data-dir", "", "fresh directory to seed (default: a new temporary directory, removed afterwards)")
	fs.StringVar(&o.cacheMemory, "cache-memory", "", "the server's --cache-memory (default: its own default); smaller than the subjects need makes the checks of any subject cold")
	fs.StringVar(&o.metrics, "metrics", "", "the server's --metrics: true or false (default: its own, true)")
	fs.StringVar(&o.rollups, "rollups", "", "the server's --rollups: true or false (default: its own, true); the seeded ledger is rolled up before the server starts either way")
	fs.StringVar(&o.profileDir, "profile", "", "directory to write a CPU profile of the server for each load phase (<phase>.pprof; read with go tool pprof)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if o.subjects < 1 || o.connections < 1 || o.duration <= 0 {
		fmt.Fprintln(stderr, "fineline bench: --subjects, --connections and --duration must be positive")
		return 2
	}
	if err := runBench(ctx, o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "fineline bench:", err)
		return 1
	}
	return 0
}

// coldBytesPerSubject is the cache budget per subject of the cold phase:
// about a tenth of what an entry takes.
const coldBytesPerSubject = 48

// benchPurpose is a purpose no seeded subject decided: every write of the
// write phase is a change (a first grant), never a repeat.
const benchPurpose = "bench_writes"

func runBench(ctx context.Context, o benchOptions, stdout, stderr io.Writer) error {
	if o.dataDir == "" {
		dir, err := os.MkdirTemp("", "fineline-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		o.dataDir = dir
	} else if entries, err := os.ReadDir(o.dataDir); err == nil && len(entries) > 0 {
		return fmt.Errorf("%s is not empty; the benchmark needs a fresh data directory", o.dataDir)
	}
	fmt.Fprintf(stderr, "seeding %d subjects into %s ...\n", o.subjects, o.dataDir)
	seedStart := time.Now()
	key, ids, events, err := seedBench(ctx, o.dataDir, o.subjects)
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	seeding := time.Since(seedStart)
	fmt.Fprintf(stderr, "seeded %d subjects and %d events in %v\n", len(ids), events, seeding.Round(time.Second))
	fmt.Fprintln(stderr, "rolling the ledger up for analytics ...")
	rolled, rolling, err := benchRollups(ctx, o.dataDir, stderr)
	if err != nil {
		return fmt.Errorf("rollups: %w", err)
	}

	self, err := os.Executable()
	if err != nil {
		return err
	}
	ceilingAddr, serverAddr := freeLoopback(), freeLoopback()
	ceiling, err := startChild(ctx, self, []string{"bench-ceiling", "--addr", ceilingAddr}, nil, "http://"+ceilingAddr+"/ping")
	if err != nil {
		return fmt.Errorf("start the ceiling endpoint: %w", err)
	}
	defer ceiling.stop()
	env := []string{"FINELINE_DATA_DIR=" + o.dataDir, "FINELINE_ADDR=" + serverAddr, "FINELINE_DEMO=false", "FINELINE_LOG_LEVEL=error",
		"FINELINE_WEBHOOKS_ALLOW_LOOPBACK=true"} // the bench's receivers are on loopback
	if o.metrics != "" {
		env = append(env, "FINELINE_METRICS="+o.metrics)
	}
	if o.cacheMemory != "" {
		env = append(env, "FINELINE_CACHE_MEMORY="+o.cacheMemory)
	}
	if o.rollups != "" {
		env = append(env, "FINELINE_ROLLUPS="+o.rollups)
	}
	if o.profileDir != "" {
		if err := os.MkdirAll(o.profileDir, 0o755); err != nil {
			return err
		}
		o.debugAddr = freeLoopback()
		env = append(env, "FINELINE_DEBUG_ADDR="+o.debugAddr)
	}
	startWith := func(extra ...string) (*child, time.Duration, error) {
		began := time.Now()
		c, err := startChild(ctx, self, []string{"serve"}, append(slices.Clone(env), extra...), "http://"+serverAddr+"/readyz")
		return c, time.Since(began), err
	}
	startServer := func() (*child, time.Duration, error) { return startWith() }
	// The seed leaves a checkpoint at the journal's tail, as a clean stop does.
	server, startup, err := startServer()
	if err != nil {
		return fmt.Errorf("start fineline: %w", err)
	}
	defer func() { server.stop() }()
	fmt.Fprintf(stderr, "fineline ready in %v\n", startup.Round(time.Millisecond))

	base := "http://" + serverAddr
	auth := http.Header{"Authorization": {"Bearer " + key}}
	rng := rand.New(rand.NewPCG(1, 2))
	hot := ids[:min(len(ids), 10_000)]

	fmt.Fprintln(stderr, "load: bare gin endpoint ...")
	bare := attack(o, "bare", 0, func() vegeta.Target { return vegeta.Target{Method: "GET", URL: "http://" + ceilingAddr + "/ping"} })
	fmt.Fprintln(stderr, "load: checks of subjects in memory ...")
	if _, err := lostWrites(base, key, hot, ""); err != nil { // a batch check of the whole hot set brings it into memory
		return err
	}
	hotChecks := attack(o, "hot checks", 0, func() vegeta.Target {
		return vegeta.Target{Method: "GET", URL: base + "/v1/check?purpose=newsletter&subject=" + hot[rng.IntN(len(hot))], Header: auth}
	})
	fmt.Fprintln(stderr, "analytics: a year of daily points ...")
	yearMedian, yearSlowest, err := timeYearOfDays(api{base: base, key: key}, 21)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "load: guard checks of subjects in memory ...")
	if err := declareGuardAttributes(api{base: base, key: key}); err != nil {
		return err
	}
	guardChecks := attack(o, "guard checks", 0, func() vegeta.Target {
		return vegeta.Target{Method: "POST", URL: base + "/v1/personalization/check", Body: guardBody(hot[rng.IntN(len(hot))]),
			Header: http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}}
	})
	fmt.Fprintln(stderr, "load: guard campaign ...")
	campaign := ids[:min(len(ids), 100_000)]
	campaignFirst, campaignWarm, err := timeCampaign(base, key, campaign, 10_000)
	if err != nil {
		return err
	}
	peak := server.peakMemory()

	// Cold checks: a clean stop, and a start with room for a tenth of the
	// subjects, so that most checks miss the cache.
	server.stop()
	coldBudget := max(1<<20, int64(len(ids))*coldBytesPerSubject)
	server, cleanStart, err := startWith(fmt.Sprintf("FINELINE_CACHE_MEMORY=%d", coldBudget))
	if err != nil {
		return fmt.Errorf("restart fineline: %w", err)
	}
	fmt.Fprintln(stderr, "load: checks of any subject, cache for a tenth of them ...")
	anySubject := func() vegeta.Target {
		return vegeta.Target{Method: "GET", URL: base + "/v1/check?purpose=newsletter&subject=" + ids[rng.IntN(len(ids))], Header: auth}
	}
	coldChecks := attack(o, "cold checks", 0, anySubject)
	// Latency at the goal's rate (0.15 of the ceiling), not at saturation,
	// where 32 connections queue.
	coldRate := max(1, int(0.15*bare.Throughput))
	coldPaced := attack(o, "cold checks paced", coldRate, anySubject)
	fmt.Fprintln(stderr, "load: batch checks ...")
	batch10k, err := timeBatches(base, key, ids, rng, 10_000, 10)
	if err != nil {
		return err
	}
	server.stop()
	if server, _, err = startServer(); err != nil {
		return fmt.Errorf("restart fineline: %w", err)
	}
	a := api{base: base, key: key}
	fmt.Fprintln(stderr, "export of every subject ...")
	exp, err := benchExport(a, server)
	if err != nil {
		return err
	}
	live, err := startReceiver()
	if err != nil {
		return err
	}
	defer live.srv.Close()
	if _, err := registerHook(a, live); err != nil {
		return err
	}
	writesBegan := time.Now().Add(-time.Second)
	fmt.Fprintln(stderr, "load: writes (each sent to a webhook endpoint) ...")
	jsonAuth := http.Header{"Authorization": {"Bearer " + key}, "Content-Type": {"application/json"}}
	perm := rng.Perm(len(ids))
	var next atomic.Int64
	writeTarget := func() vegeta.Target {
		i := next.Add(1) - 1
		return vegeta.Target{Method: "PUT", URL: base + "/v1/subjects/" + ids[perm[int(i)%len(perm)]] + "/consents/" + benchPurpose,
			Body: []byte(`{"state":"granted"}`), Header: jsonAuth}
	}
	writes := attack(o, "writes", 0, writeTarget)
	written := writes.StatusCodes["201"]
	liveGot := waitDistinct(live, written, time.Minute)
	fmt.Fprintln(stderr, "feed after the export's cursor ...")
	feedN, feedTook, err := feedRead(a, exp.cursor)
	if err != nil {
		return err
	}
	fmt.Fprintln(stderr, "replay of the write phase to a second endpoint ...")
	replayed, err := startReceiver()
	if err != nil {
		return err
	}
	defer replayed.srv.Close()
	hook, err := registerHook(a, replayed)
	if err != nil {
		return err
	}
	if err := a.call("POST", "/v1/webhook-endpoints/"+hook+"/replay", map[string]time.Time{"since": writesBegan, "until": time.Now()}, nil); err != nil {
		return err
	}
	replayGot := waitDistinct(replayed, written, 2*time.Minute)
	_, rlo, rhi := replayed.distinct()
	fmt.Fprintln(stderr, "load: checks right after withdrawals ...")
	stale, tried, err := staleAfterWithdrawal(base, key, ids, rng, 1000)
	if err != nil {
		return err
	}
	peak = max(peak, server.peakMemory())

	// kill -9 under write load, then start: every acknowledged write is there.
	fmt.Fprintln(stderr, "load: kill -9 during writes ...")
	// Withdrawals, from the start of the order the writes followed: each one
	// a change whether or not that subject's grant was written.
	var nextWithdrawal atomic.Int64
	acked := killDuringWrites(o, server, func() vegeta.Target {
		i := nextWithdrawal.Add(1) - 1
		return vegeta.Target{Method: "PUT", URL: base + "/v1/subjects/" + ids[perm[int(i)%len(perm)]] + "/consents/" + benchPurpose,
			Body: []byte(`{"state":"withdrawn"}`), Header: jsonAuth}
	})
	server, crashStart, err := startServer()
	if err != nil {
		return fmt.Errorf("start fineline after kill -9: %w", err)
	}
	lost, err := lostWrites(base, key, acked, "withdrawn")
	if err != nil {
		return err
	}

	for name, m := range map[string]*vegeta.Metrics{"bare": bare, "hot checks": hotChecks, "guard checks": guardChecks, "checks": coldChecks, "paced checks": coldPaced, "writes": writes} {
		if m.Success < 0.999 {
			return fmt.Errorf("%s: only %.2f%% of requests succeeded (status codes %v, errors %v)", name, 100*m.Success, m.StatusCodes, first(m.Errors, 3))
		}
	}
	rollupsOn := o.rollups
	if rollupsOn == "" {
		rollupsOn = "true"
	}
	budget := o.cacheMemory
	if budget == "" {
		budget = "512MiB (default)"
	}
	cpu := cpuModel()
	fmt.Fprintf(stdout, "\nFineline benchmark: %d subjects, %d ledger events, embedded store, state cache %s, rollups %s; %s, %d cores; %d connections, %v a phase\n\n",
		len(ids), events, budget, rollupsOn, cpu, runtime.NumCPU(), o.connections, o.duration)
	fmt.Fprintf(stdout, "| measure | result | goal |\n|---|---|---|\n")
	fmt.Fprintf(stdout, "| seeding %d subjects, %d events | %.0f s | 1M in ≤ 180 s |\n", len(ids), events, seeding.Seconds())
	fmt.Fprintf(stdout, "| start-up on the seeded store | %.2f s | ≤ 3 s |\n", startup.Seconds())
	fmt.Fprintf(stdout, "| start-up after a clean stop | %.2f s | ≤ 3 s |\n", cleanStart.Seconds())
	fmt.Fprintf(stdout, "| start-up after kill -9 under writes | %.2f s | ≤ 10 s |\n", crashStart.Seconds())
	fmt.Fprintf(stdout, "| acknowledged writes lost to kill -9 | %d of %d | 0 |\n", lost, len(acked))
	fmt.Fprintf(stdout, "| bare gin endpoint (ceiling) | %.0f req/s, p50 %v, p99 %v | |\n", bare.Throughput, ms(bare.Latencies.P50), ms(bare.Latencies.P99))
	fmt.Fprintf(stdout, "| check, subject in memory (%d hot) | %.0f req/s, p50 %v, p99 %v | |\n", len(hot), hotChecks.Throughput, ms(hotChecks.Latencies.P50), ms(hotChecks.Latencies.P99))
	fmt.Fprintf(stdout, "| hot check / bare endpoint | %.2f | ≥ 0.8 |\n", hotChecks.Throughput/bare.Throughput)
	fmt.Fprintf(stdout, "| guard check, one subject in memory, 5 attributes | %.0f req/s, p50 %v, p99 %v | |\n", guardChecks.Throughput, ms(guardChecks.Latencies.P50), ms(guardChecks.Latencies.P99))
	fmt.Fprintf(stdout, "| guard check / bare endpoint | %.2f | ≥ 0.5 |\n", guardChecks.Throughput/bare.Throughput)
	fmt.Fprintf(stdout, "| guard campaign: %d subjects × 5 attributes in %d calls | %.2f s first (profiles read), %.2f s again | ≤ 1 s |\n", len(campaign), (len(campaign)+9_999)/10_000, campaignFirst.Seconds(), campaignWarm.Seconds())
	fmt.Fprintf(stdout, "| check, any of %d subjects (cache of %d MiB: a tenth of them) | %.0f req/s, p50 %v, p99 %v | |\n", len(ids), coldBudget>>20, coldChecks.Throughput, ms(coldChecks.Latencies.P50), ms(coldChecks.Latencies.P99))
	fmt.Fprintf(stdout, "| check, any subject, at %d req/s (0.15 × bare) | p50 %v, p99 %v | p99 ≤ 5 ms |\n", coldRate, ms(coldPaced.Latencies.P50), ms(coldPaced.Latencies.P99))
	fmt.Fprintf(stdout, "| cold check / bare endpoint | %.2f | ≥ 0.15 |\n", coldChecks.Throughput/bare.Throughput)
	fmt.Fprintf(stdout, "| batch check of 10,000 subjects (cold) | %.1f ms a call (mean of 10) | |\n", float64(batch10k.Microseconds())/10/1000)
	fmt.Fprintf(stdout, "| writes (each a change) | %.0f writes/s, p50 %v, p99 %v | ≥ 3,000/s, p99 ≤ 50 ms |\n", writes.Throughput, ms(writes.Latencies.P50), ms(writes.Latencies.P99))
	fmt.Fprintf(stdout, "| export of every subject (%d rows) | %.2f s, server memory +%d MiB | 1M in ≤ 10 s, ≤ +50 MiB |\n", exp.rows, exp.took.Seconds(), exp.rssGrown>>20)
	fmt.Fprintf(stdout, "| change feed: the %d events after a cursor | %.0f ms (%.1f ms per 1,000) | O(new): the same at any ledger size |\n", feedN, float64(feedTook.Microseconds())/1000, float64(feedTook.Microseconds())/1000/max(1, float64(feedN)/1000))
	fmt.Fprintf(stdout, "| webhooks during the writes: delivered | %d of %d, ledger append → first attempt p50 %v, p99 %v | p99 ≤ 1 s |\n", liveGot, written, ms(live.lagPercentile(0.5)), ms(live.lagPercentile(0.99)))
	fmt.Fprintf(stdout, "| webhooks: replay of the write phase to a local receiver | %d messages, %.0f deliveries/s | ≥ 2,000/s |\n", replayGot, float64(replayGot)/max(rhi.Sub(rlo).Seconds(), 0.001))
	fmt.Fprintf(stdout, "| stale checks right after a withdrawal (same instance) | %d of %d | 0 |\n", stale, tried)
	fmt.Fprintf(stdout, "| analytics rollups catching up from nothing | %d events in %.2f s: %.0f events/s | ≥ 5,000/s |\n", rolled, rolling.Seconds(), float64(rolled)/max(rolling.Seconds(), 0.001))
	fmt.Fprintf(stdout, "| analytics: a year of daily points, every purpose | median %v, slowest %v (21 calls) | ≤ 100 ms |\n", ms(yearMedian), ms(yearSlowest))
	fmt.Fprintf(stdout, "| peak server memory (VmHWM) | %d MiB | ≤ 1 GiB |\n", peak>>20)
	return nil
}

// killDuringWrites writes for a few seconds, kills the server with SIGKILL
// half-way, and returns the subjects whose write was acknowledged.
func killDuringWrites(o benchOptions, server *child, next func() vegeta.Target) []string {
	a := vegeta.NewAttacker(vegeta.Workers(uint64(o.connections)), vegeta.MaxWorkers(uint64(o.connections)),
		vegeta.Connections(o.connections), vegeta.MaxConnections(o.connections), vegeta.KeepAlive(true), vegeta.Timeout(5*time.Second))
	targeter := func(t *vegeta.Target) error { *t = next(); return nil }
	go func() {
		time.Sleep(1500 * time.Millisecond)
		_ = server.cmd.Process.Kill()
	}()
	var acked []string
	for res := range a.Attack(targeter, vegeta.Rate{Freq: 0}, 3*time.Second, "") {
		if res.Code == http.StatusCreated {
			u, _ := url.Parse(res.URL)
			parts := strings.Split(u.Path, "/")
			acked = append(acked, parts[3])
		}
	}
	_ = server.cmd.Wait()
	return acked
}

// lostWrites batch-checks the subjects for the bench purpose and counts
// those whose reason is not want (with want empty, none).
func lostWrites(base, key string, subjects []string, want string) (int, error) {
	lost := 0
	for lo := 0; lo < len(subjects); lo += 10_000 {
		part := subjects[lo:min(lo+10_000, len(subjects))]
		body, _ := json.Marshal(map[string]any{"purpose": benchPurpose, "subjects": part})
		req, _ := http.NewRequest("POST", base+"/v1/check", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		var out struct {
			Decisions []struct {
				Reason string `json:"reason"`
			} `json:"decisions"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil {
			return 0, err
		}
		if len(out.Decisions) != len(part) {
			return 0, fmt.Errorf("batch check after kill -9: %d decisions for %d subjects (status %d)", len(out.Decisions), len(part), res.StatusCode)
		}
		for _, d := range out.Decisions {
			if want != "" && d.Reason != want {
				lost++
			}
		}
	}
	return lost, nil
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// attack drives the server as hard as the connections allow (rate 0) or
// at a fixed rate, for the phase's length, profiling it if asked.
func attack(o benchOptions, phase string, rate int, next func() vegeta.Target) *vegeta.Metrics {
	a := vegeta.NewAttacker(vegeta.Workers(uint64(o.connections)), vegeta.MaxWorkers(uint64(o.connections)),
		vegeta.Connections(o.connections), vegeta.MaxConnections(o.connections), vegeta.KeepAlive(true), vegeta.Timeout(30*time.Second))
	targeter := func(t *vegeta.Target) error { *t = next(); return nil }
	defer o.profile(phase)()
	var m vegeta.Metrics
	for res := range a.Attack(targeter, vegeta.Rate{Freq: rate, Per: time.Second}, o.duration, "") {
		m.Add(res)
	}
	m.Close()
	return &m
}

// profile records a CPU profile of the server while a phase runs (with
// --profile) and returns what waits for it.
func (o benchOptions) profile(phase string) func() {
	if o.debugAddr == "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		// Where the server's goroutines wait, half-way through.
		time.Sleep(o.duration / 2)
		res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/goroutine?debug=1", o.debugAddr))
		if err != nil {
			return
		}
		defer res.Body.Close()
		if f, err := os.Create(filepath.Join(o.profileDir, strings.ReplaceAll(phase, " ", "-")+"-goroutines.txt")); err == nil {
			_, _ = io.Copy(f, res.Body)
			_ = f.Close()
		}
	}()
	go func() {
		defer close(done)
		secs := max(1, int(o.duration.Seconds())-1)
		res, err := http.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", o.debugAddr, secs))
		if err != nil {
			return
		}
		defer res.Body.Close()
		f, err := os.Create(filepath.Join(o.profileDir, strings.ReplaceAll(phase, " ", "-")+".pprof"))
		if err != nil {
			return
		}
		_, _ = io.Copy(f, res.Body)
		_ = f.Close()
	}()
	return func() { <-done }
}

// timeBatches sends calls batch checks of size subjects each, one after
// another, and returns the total time.
func timeBatches(base, key string, ids []string, rng *rand.Rand, size, calls int) (time.Duration, error) {
	var total time.Duration
	for range calls {
		subjects := make([]string, size)
		for i := range subjects {
			subjects[i] = ids[rng.IntN(len(ids))]
		}
		body, _ := json.Marshal(map[string]any{"purpose": "newsletter", "subjects": subjects})
		req, _ := http.NewRequest("POST", base+"/v1/check", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		start := time.Now()
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		total += time.Since(start)
		if err != nil || res.StatusCode != 200 {
			return 0, fmt.Errorf("batch check: status %d %v", res.StatusCode, err)
		}
	}
	return total, nil
}

// staleAfterWithdrawal grants, withdraws, then at once checks n subjects,
// and counts checks that still allow.
func staleAfterWithdrawal(base, key string, ids []string, rng *rand.Rand, n int) (stale, tried int, err error) {
	call := func(method, url, body string) (string, error) {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			return "", fmt.Errorf("%s %s: %d %s", method, url, res.StatusCode, b)
		}
		return string(b), err
	}
	for range n {
		id := ids[rng.IntN(len(ids))]
		url := base + "/v1/subjects/" + id + "/consents/newsletter"
		if _, err := call("PUT", url, `{"state":"granted"}`); err != nil {
			return 0, 0, err
		}
		if _, err := call("PUT", url, `{"state":"withdrawn"}`); err != nil {
			return 0, 0, err
		}
		body, err := call("GET", base+"/v1/check?purpose=newsletter&subject="+id, "")
		if err != nil {
			return 0, 0, err
		}
		tried++
		if strings.Contains(body, `"allowed":true`) {
			stale++
		}
	}
	return stale, tried, nil
}

func freeLoopback() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "127.0.0.1:18080"
	}
	defer ln.Close()
	return ln.Addr().String()
}

type child struct {
	cmd *exec.Cmd
}

// startChild runs this binary with args and waits until ready answers 200.
func startChild(ctx context.Context, self string, args, env []string, ready string) (*child, error) {
	cmd := exec.CommandContext(ctx, self, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &child{cmd: cmd}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		res, err := http.Get(ready)
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return c, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.stop()
	return nil, fmt.Errorf("%s not ready after 5 minutes", ready)
}

func (c *child) stop() {
	_ = c.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = c.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = c.cmd.Process.Kill()
		<-done
	}
}

// peakMemory reads the child's peak resident set size from /proc.
func (c *child) peakMemory() int64 { return c.status("VmHWM") }

// rss is the child's resident memory now.
func (c *child) rss() int64 { return c.status("VmRSS") }

// status reads a size in kB from the child's /proc status.
func (c *child) status(field string) int64 {
	f, err := os.Open(filepath.Join("/proc", fmt.Sprint(c.cmd.Process.Pid), "status"))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var kb int64
		if _, err := fmt.Sscanf(sc.Text(), field+": %d kB", &kb); err == nil {
			return kb << 10
		}
	}
	return 0
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return runtime.GOARCH
}

// benchCeiling serves a bare gin endpoint: the most any handler in this
// binary could answer on this machine.
func benchCeiling(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("fineline bench-ceiling", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:18081", "address to serve on")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.GET("/ping", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"ok": true}) })
	srv := &http.Server{Addr: *addr, Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// seedBench creates a merchant with the demo purposes and n subjects with
// one to nine events each, written straight into the store as whole chains.
func seedBench(ctx context.Context, dir string, n int) (key string, ids []string, events int, err error) {
	st, err := store.Open(ctx, store.Config{DataDir: dir, Logger: newLogger(io.Discard, nil)})
	if err != nil {
		return "", nil, 0, err
	}
	defer st.Close(context.WithoutCancel(ctx))
	now := time.Now().UTC().Truncate(time.Millisecond)
	clock := func() time.Time { return now }
	ms := &merchants.Service{Store: st, Now: clock}
	m, _, key, err := ms.Create(ctx, merchants.NewMerchant{Slug: "bench-shop", Name: "Bench Shop"})
	if err != nil {
		return "", nil, 0, err
	}
	if _, err := (&notices.Service{Store: st, Now: clock}).PublishFirst(ctx, m.ID, nil, ""); err != nil {
		return "", nil, 0, err
	}
	ps := &consent.Purposes{Store: st, Now: clock}
	var keys []string
	for _, p := range demo.Purposes() {
		p.MerchantID = m.ID
		if _, err := ps.Create(ctx, p); err != nil {
			return "", nil, 0, err
		}
		keys = append(keys, p.Key)
	}
	bp := demo.Purposes()[0]
	bp.MerchantID, bp.Key = m.ID, benchPurpose
	if _, err := ps.Create(ctx, bp); err != nil {
		return "", nil, 0, err
	}
	rng := rand.New(rand.NewPCG(7, 11))
	channels := []consent.Channel{consent.ChannelCenter, consent.ChannelWidget, consent.ChannelAPI, consent.ChannelImport}
	statesFor := []consent.State{consent.Granted, consent.Granted, consent.Withdrawn, consent.Denied}
	const batch = 2000
	for lo := 0; lo < n; lo += batch {
		var (
			subs []consent.Subject
			evs  []consent.Event
			recs []consent.SubjectState
		)
		for i := lo; i < min(lo+batch, n); i++ {
			id := fmt.Sprintf("cust-%07d", i)
			ids = append(ids, id)
			created := now.Add(-time.Duration(rng.IntN(365*24)) * time.Hour)
			subs = append(subs, consent.Subject{MerchantID: m.ID, ID: id, Locale: consent.Locales()[rng.IntN(4)], CreatedAt: created, UpdatedAt: created})
			rec := consent.SubjectState{MerchantID: m.ID, SubjectID: id}
			at := created
			for range 1 + rng.IntN(9) {
				if at = at.Add(time.Duration(1+rng.IntN(72)) * time.Hour); at.After(now) {
					at = now // nothing recorded in the future
				}
				e := consent.Event{MerchantID: m.ID, SubjectID: id, Seq: rec.Seq + 1, Purpose: keys[rng.IntN(len(keys))],
					State: statesFor[rng.IntN(len(statesFor))], NoticeVersion: 1, Channel: channels[rng.IntN(len(channels))],
					Actor: "import", RecordedAt: at, PrevHash: rec.HeadHash, Prev: consent.Undecided, Locale: consent.Locales()[rng.IntN(4)]}
				if p, ok := rec.Purposes[e.Purpose]; ok {
					e.Prev, e.PrevNotice = p.State, p.NoticeVersion
				}
				e.Hash = e.ComputeHash()
				evs = append(evs, e)
				rec = rec.Next(e)
			}
			recs = append(recs, rec)
		}
		if err := st.Import(ctx, subs, evs, recs); err != nil {
			return "", nil, 0, err
		}
		events += len(evs)
	}
	// Every projection was written with its events: the journal is done.
	tail, err := st.JournalTail(ctx, st.Slot())
	if err != nil {
		return "", nil, 0, err
	}
	if err := st.SaveCheckpoint(ctx, st.Slot(), tail); err != nil {
		return "", nil, 0, err
	}
	return key, ids, events, nil
}
