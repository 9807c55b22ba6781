package handlers_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
)

// lockedBuffer is a log destination requests may write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRequestLogsHoldNoTokens: JSON request logs name the route template
// and the path, never a query string, a token in the path or an address.
func TestRequestLogsHoldNoTokens(t *testing.T) {
	var out lockedBuffer
	ts := newTestServer(t, testOptions{Log: slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	_, key := ts.AddShop(t, "logged")
	secret := "s3cr3t-t0ken-value-0123456789"
	for _, u := range []string{
		"/c/logged/link?t=" + secret,
		"/u/" + secret + "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
		"/v1/check?subject=ada&purpose=newsletter&token=" + secret,
		"/v1/subjects/ada@example.com",
		"/no/such/page?token=" + secret,
	} {
		req, _ := http.NewRequest("GET", ts.URL+u, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	logs := out.String()
	for _, leak := range []string{secret, "ada@example.com", key, "token="} {
		if strings.Contains(logs, leak) {
			t.Errorf("the logs hold %q:\n%s", leak, logs)
		}
	}
	routes := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatalf("not a JSON line: %s", sc.Text())
		}
		if line["msg"] == "request" {
			routes[line["path"].(string)] = line["route"].(string)
		}
	}
	for path, route := range map[string]string{
		"/c/logged/link": "/c/:slug/link",
		"/u/…":           "/u/:token",
		"/v1/check":      "/v1/check",
		"/v1/subjects/…": "/v1/subjects/:subject",
		"/no/such/page":  "(no route)",
	} {
		if routes[path] != route {
			t.Errorf("path %s logged with route %q, want %q (all: %v)", path, routes[path], route, routes)
		}
	}
}
