package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBackupDuringWritesRestoresEveryAcknowledgedWrite: a backup taken
// while writers run holds every write acknowledged before it began;
// restored into a new directory, with the keys copied apart, the server
// starts on it and every chain verifies.
func TestBackupDuringWritesRestoresEveryAcknowledgedWrite(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	key := keyPattern.FindString(s.stdout.String())
	put := func(subject string) bool {
		req, _ := http.NewRequest("PUT", s.base+"/v1/subjects/"+subject+"/consents/newsletter", strings.NewReader(`{"state":"granted"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == 201
	}
	// Writers keep going through the backup; each remembers what was
	// acknowledged before the backup began.
	var (
		started  atomic.Bool
		stopping atomic.Bool
		mu       sync.Mutex
		before   []string
		wg       sync.WaitGroup
	)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stopping.Load(); i++ {
				subject := fmt.Sprintf("w%d-%d", w, i)
				// Acknowledged before the backup began: the answer came
				// before started was set.
				if put(subject) && !started.Load() {
					mu.Lock()
					before = append(before, subject)
					mu.Unlock()
				}
			}
		}()
	}
	for {
		mu.Lock()
		n := len(before)
		mu.Unlock()
		if n >= 200 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	started.Store(true)
	file := filepath.Join(t.TempDir(), "fineline.backup")
	var out bytes.Buffer
	env := mapEnv(map[string]string{"FINELINE_DATA_DIR": dir})
	if code := run(context.Background(), []string{"backup", "--to", file}, env, &out, io.Discard); code != 0 {
		t.Fatalf("backup: exit %d: %s", code, out.String())
	}
	if !strings.Contains(out.String(), "master.key") || !strings.Contains(out.String(), "not in the backup") {
		t.Errorf("the backup does not say where the keys are:\n%s", out.String())
	}
	stopping.Store(true)
	wg.Wait()
	s.stop()
	if b, err := os.ReadFile(file); err != nil || bytes.Contains(b, mustRead(t, filepath.Join(dir, "master.key"))) {
		t.Fatalf("the backup holds the master key (or is unreadable: %v)", err)
	}
	if code := run(context.Background(), []string{"backup", "--to", file}, env, io.Discard, io.Discard); code == 0 {
		t.Error("a backup overwrote an existing file")
	}

	restored := filepath.Join(t.TempDir(), "restored")
	out.Reset()
	if code := run(context.Background(), []string{"restore", "--from", file, "--data-dir", restored}, mapEnv(nil), &out, io.Discard); code != 0 {
		t.Fatalf("restore: exit %d: %s", code, out.String())
	}
	if code := run(context.Background(), []string{"restore", "--from", file, "--data-dir", restored}, mapEnv(nil), io.Discard, io.Discard); code == 0 {
		t.Error("a restore overwrote a store")
	}
	for _, k := range []string{"master.key", "signing.key"} {
		if err := os.WriteFile(filepath.Join(restored, k), mustRead(t, filepath.Join(dir, k)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	r := startServer(t, restored)
	mu.Lock()
	defer mu.Unlock()
	for _, subject := range before {
		if code, body := r.call(t, "GET", "/v1/check?subject="+subject+"&purpose=newsletter", key, ""); code != 200 || !strings.Contains(body, `"reason":"granted"`) {
			t.Fatalf("%s, acknowledged before the backup, after the restore: %d %s", subject, code, body)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"ledger", "verify"}, mapEnv(map[string]string{"FINELINE_DATA_DIR": restored}), &out, io.Discard); code != 0 || !strings.HasPrefix(out.String(), "OK") {
		t.Fatalf("verify on the restored store: exit %d: %s", code, out.String())
	}
	t.Logf("%d writes acknowledged before the backup, all restored", len(before))
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSpace(b)
}
