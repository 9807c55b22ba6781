package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

// TestKill9DuringDeliveryLosesNoWebhook: the server is killed while it
// delivers to a slow receiver; after the restart every acknowledged write
// reaches the receiver, each event under one webhook-id however often it
// came.
func TestKill9DuringDeliveryLosesNoWebhook(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the server twice")
	}
	dir, err := os.MkdirTemp("", "flw")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	key, ids, _, err := seedBench(context.Background(), dir, 400)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	idsOf := map[string]map[string]bool{} // subject/seq -> webhook-ids seen
	received := 0
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(50 * time.Millisecond)
		var p struct {
			Data struct {
				Subject string `json:"subject"`
				Seq     int64  `json:"seq"`
			} `json:"data"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("not a payload: %s", b)
		}
		k := fmt.Sprintf("%s/%d", p.Data.Subject, p.Data.Seq)
		mu.Lock()
		if idsOf[k] == nil {
			idsOf[k] = map[string]bool{}
		}
		idsOf[k][r.Header.Get("webhook-id")] = true
		received++
		mu.Unlock()
		w.WriteHeader(204)
	}))
	defer recv.Close()
	env := map[string]string{"FINELINE_DATA_DIR": dir, "FINELINE_LOG_LEVEL": "error", "FINELINE_DEMO": "false", "FINELINE_WEBHOOKS_ALLOW_LOOPBACK": "true"}
	in := serveInstance(t, env)
	in.must(t, "POST", "/v1/webhook-endpoints", key, fmt.Sprintf(`{"url":%q}`, recv.URL), 201)
	type ack struct {
		Event struct {
			Subject string `json:"subject"`
			Seq     int64  `json:"seq"`
		} `json:"event"`
	}
	var acked []string
	for _, id := range ids {
		code, body, err := in.do("PUT", "/v1/subjects/"+id+"/consents/"+benchPurpose, key, `{"state":"granted"}`)
		if err != nil || code != 201 {
			t.Fatalf("write: %d %s %v", code, body, err)
		}
		var a ack
		if err := json.Unmarshal([]byte(body), &a); err != nil || a.Event.Seq == 0 {
			t.Fatalf("write answered %s", body)
		}
		acked = append(acked, fmt.Sprintf("%s/%d", a.Event.Subject, a.Event.Seq))
	}
	waitFor(t, in.proc, "deliveries under way", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return received >= 40
	})
	in.kill()
	mu.Lock()
	before := received
	mu.Unlock()
	if before >= len(acked) {
		t.Fatalf("all %d delivered before the kill: the test did not kill during delivery", before)
	}
	in = serveInstance(t, env)
	defer in.stop()
	waitFor(t, in.proc, "every event delivered after the restart", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, k := range acked {
			if len(idsOf[k]) == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for _, k := range acked {
		if len(idsOf[k]) != 1 {
			t.Fatalf("%s came under %d webhook-ids", k, len(idsOf[k]))
		}
	}
	t.Logf("%d events: %d received before kill -9, %d deliveries in all (%d duplicates)", len(acked), before, received, received-len(acked))
}
