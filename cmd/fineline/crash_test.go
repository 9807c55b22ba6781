package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"
)

// TestKill9UnderWritesLosesNothing seeds a store (FINELINE_CRASH_SUBJECTS
// subjects, 20,000 by default; the closing figures were taken at 1,000,000),
// kills the server with SIGKILL while 16 clients write, starts it again and
// finds every acknowledged write, then walks every chain with ledger verify.
func TestKill9UnderWritesLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("seeds a store and runs the server twice")
	}
	n := 20_000
	if v := os.Getenv("FINELINE_CRASH_SUBJECTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "flk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ctx := context.Background()
	key, ids, _, err := seedBench(ctx, dir, n)
	if err != nil {
		t.Fatal(err)
	}
	serve := func() *instance {
		return serveInstance(t, map[string]string{"FINELINE_DATA_DIR": dir, "FINELINE_LOG_LEVEL": "error", "FINELINE_DEMO": "false"})
	}
	in := serve()
	var mu sync.Mutex
	var acked []string
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(ids); i += 16 {
				code, _, err := in.do("PUT", "/v1/subjects/"+ids[i]+"/consents/"+benchPurpose, key, `{"state":"granted"}`)
				if err != nil {
					return // the server is gone
				}
				if code == 201 {
					mu.Lock()
					acked = append(acked, ids[i])
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	in.kill()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no write was acknowledged before the kill")
	}
	began := time.Now()
	in = serve()
	t.Logf("%d subjects: %d writes acknowledged before kill -9; start after it %v", n, len(acked), time.Since(began).Round(time.Millisecond))
	for lo := 0; lo < len(acked); lo += 10_000 {
		part := acked[lo:min(lo+10_000, len(acked))]
		body, _ := json.Marshal(map[string]any{"purpose": benchPurpose, "subjects": part})
		req, _ := http.NewRequest("POST", in.base+"/v1/check", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Decisions []struct {
				Subject string `json:"subject"`
				Allowed bool   `json:"allowed"`
			} `json:"decisions"`
		}
		err = json.NewDecoder(res.Body).Decode(&out)
		res.Body.Close()
		if err != nil || len(out.Decisions) != len(part) {
			t.Fatalf("batch check: %v, %d decisions for %d", err, len(out.Decisions), len(part))
		}
		for _, d := range out.Decisions {
			if !d.Allowed {
				t.Fatalf("%s's acknowledged grant is lost after kill -9", d.Subject)
			}
		}
	}
	in.stop()
	verify := exec.Command(program(t), "ledger", "verify")
	verify.Env = append(os.Environ(), "FINELINE_DATA_DIR="+dir)
	began = time.Now()
	out, err := verify.CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("OK")) {
		t.Fatalf("ledger verify after kill -9: %v\n%s", err, out)
	}
	t.Logf("ledger verify: %s in %v", bytes.TrimSpace(out), time.Since(began).Round(time.Millisecond))
}
