package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"
)

// The bench's phases for what follows the ledger: an export while the
// server idles, webhooks delivered live during the write phase, the feed
// read after the export's cursor, and a replay of the write phase pushed
// to a second endpoint as fast as it goes.

// api calls the server with the bench key.
type api struct{ base, key string }

func (a api) call(method, path string, body any, out any) error {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// exportResult is how an export of every subject went.
type exportResult struct {
	rows     int64
	took     time.Duration
	rssGrown int64
	cursor   string
}

// benchExport exports every subject's newsletter decision and waits.
func benchExport(a api, server *child) (exportResult, error) {
	before := server.rss()
	var x struct {
		ID, Status, Cursor, Error string
		Rows                      int64
	}
	began := time.Now()
	if err := a.call("POST", "/v1/exports", map[string]string{"purpose": "newsletter", "include": "all"}, &x); err != nil {
		return exportResult{}, err
	}
	peak := before
	for x.Status != "ready" {
		if x.Status == "failed" {
			return exportResult{}, fmt.Errorf("export failed: %s", x.Error)
		}
		time.Sleep(20 * time.Millisecond)
		peak = max(peak, server.rss())
		if err := a.call("GET", "/v1/exports/"+x.ID, nil, &x); err != nil {
			return exportResult{}, err
		}
	}
	return exportResult{rows: x.Rows, took: time.Since(began), rssGrown: peak - before, cursor: x.Cursor}, nil
}

// hookReceiver takes webhooks and notes when each message first came and
// when its event was recorded.
type hookReceiver struct {
	srv   *http.Server
	url   string
	mu    sync.Mutex
	first map[string]time.Time
	lag   []time.Duration
	n     int
}

func startReceiver() (*hookReceiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &hookReceiver{first: map[string]time.Time{}, url: "http://" + ln.Addr().String() + "/hooks"}
	r.srv = &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		at := time.Now()
		var p struct {
			Data struct {
				RecordedAt time.Time `json:"recorded_at"`
			} `json:"data"`
		}
		_ = json.NewDecoder(req.Body).Decode(&p)
		id := req.Header.Get("webhook-id")
		r.mu.Lock()
		r.n++
		if _, seen := r.first[id]; !seen {
			r.first[id] = at
			r.lag = append(r.lag, at.Sub(p.Data.RecordedAt))
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// distinct returns the messages received and the first and last arrival.
func (r *hookReceiver) distinct() (int, time.Time, time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var lo, hi time.Time
	for _, t := range r.first {
		if lo.IsZero() || t.Before(lo) {
			lo = t
		}
		if t.After(hi) {
			hi = t
		}
	}
	return len(r.first), lo, hi
}

func (r *hookReceiver) lagPercentile(p float64) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return percentileOf(r.lag, p)
}

func percentileOf(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

// registerHook registers an endpoint for the receiver.
func registerHook(a api, r *hookReceiver) (string, error) {
	var out struct {
		Endpoint struct {
			ID string `json:"id"`
		} `json:"endpoint"`
	}
	err := a.call("POST", "/v1/webhook-endpoints", map[string]any{"url": r.url, "label": "bench"}, &out)
	return out.Endpoint.ID, err
}

// waitDistinct waits until the receiver has n distinct messages, or d.
func waitDistinct(r *hookReceiver, n int, d time.Duration) int {
	deadline := time.Now().Add(d)
	for {
		got, _, _ := r.distinct()
		if got >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// feedRead times reading every event after the cursor, in pages of 1,000.
func feedRead(a api, after string) (int, time.Duration, error) {
	n := 0
	began := time.Now()
	for {
		var p struct {
			Changes []json.RawMessage `json:"changes"`
			Next    string            `json:"next"`
		}
		if err := a.call("GET", "/v1/changes?limit=1000&after="+url.QueryEscape(after), nil, &p); err != nil {
			return 0, 0, err
		}
		n += len(p.Changes)
		after = p.Next
		if len(p.Changes) == 0 {
			return n, time.Since(began), nil
		}
	}
}
