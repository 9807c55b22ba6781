package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStopWithASlowClientStillEndsClean: a SIGTERM while a client trickles
// a request body still flushes the ledger and marks a clean stop, so the
// next start replays nothing.
func TestStopWithASlowClientStillEndsClean(t *testing.T) {
	dir := t.TempDir()
	start := func() (base string, logs *syncBuffer, stdout *syncBuffer, stop func() int) {
		addr := freeAddr(t)
		env := map[string]string{"FINELINE_ADDR": addr, "FINELINE_DATA_DIR": dir, "FINELINE_LOG_LEVEL": "info", "FINELINE_LOG_FORMAT": "json",
			"FINELINE_DEMO_SHOP_ADDR": "", "FINELINE_DRAIN_TIMEOUT": "1s"}
		ctx, cancel := context.WithCancel(context.Background())
		logs, stdout = &syncBuffer{}, &syncBuffer{}
		done := make(chan int, 1)
		go func() { done <- run(ctx, nil, mapEnv(env), stdout, logs) }()
		base = "http://" + addr
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			if res, err := http.Get(base + "/readyz"); err == nil {
				res.Body.Close()
				if res.StatusCode == 200 {
					break
				}
			}
			if time.Now().After(deadline) {
				t.Fatal("not ready")
			}
		}
		return base, logs, stdout, func() int {
			cancel()
			select {
			case c := <-done:
				return c
			case <-time.After(40 * time.Second):
				t.Fatal("the server did not stop")
				return -1
			}
		}
	}
	base, _, stdout, stop := start()
	key := keyPattern.FindString(stdout.String())
	for i := range 50 {
		req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/subjects/s%d/consents/newsletter", base, i), strings.NewReader(`{"state":"granted"}`))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil || res.StatusCode != 201 {
			t.Fatalf("write %d: %v %v", i, res, err)
		}
		res.Body.Close()
	}
	// A client that sends headers and a byte of its body, then waits.
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT /v1/subjects/slow/consents/newsletter HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{", key)
	time.Sleep(200 * time.Millisecond)
	began := time.Now()
	if code := stop(); code != 0 {
		t.Fatalf("the stop ended with %d", code)
	}
	if took := time.Since(began); took > 15*time.Second {
		t.Errorf("the stop took %s", took)
	}

	_, logs, _, stop2 := start()
	defer stop2()
	var ready map[string]any
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		var line map[string]any
		if json.Unmarshal(sc.Bytes(), &line) == nil && line["msg"] == "ledger ready" {
			ready = line
		}
	}
	if ready == nil {
		t.Fatalf("no ledger-ready line in:\n%s", logs.String())
	}
	if ready["checkpoint"] != ready["journal_tail"] || ready["rolled_forward"] != float64(0) {
		t.Errorf("the start after the stop replayed the journal: %v", ready)
	}
}

// TestPreviousSigningKeysArePublished: a signing key rotated out stays in
// the JWKS, so the receipts it signed still verify.
func TestPreviousSigningKeysArePublished(t *testing.T) {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	x := base64.RawURLEncoding.EncodeToString(pub)
	addr := freeAddr(t)
	env := map[string]string{"FINELINE_ADDR": addr, "FINELINE_DATA_DIR": t.TempDir(), "FINELINE_LOG_LEVEL": "error", "FINELINE_DEMO": "false",
		"FINELINE_DEMO_SHOP_ADDR": "", "FINELINE_PREVIOUS_SIGNING_KEYS": x}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, mapEnv(env), &syncBuffer{}, &syncBuffer{}) }()
	defer func() { cancel(); <-done }()
	var body []byte
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if res, err := http.Get("http://" + addr + "/.well-known/jwks.json"); err == nil {
			body, _ = io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("not ready")
		}
	}
	var set struct{ Keys []struct{ X string } }
	if err := json.Unmarshal(body, &set); err != nil || len(set.Keys) != 2 || set.Keys[1].X != x {
		t.Fatalf("the JWKS: %s (%v)", body, err)
	}
	env["FINELINE_PREVIOUS_SIGNING_KEYS"], env["FINELINE_DATA_DIR"], env["FINELINE_ADDR"] = "not-a-key", t.TempDir(), freeAddr(t)
	var stderr syncBuffer
	if code := run(context.Background(), nil, mapEnv(env), io.Discard, &stderr); code == 0 || !strings.Contains(stderr.String(), "previous signing key 1") {
		t.Errorf("a malformed previous key: exit %d: %s", code, stderr.String())
	}
}
