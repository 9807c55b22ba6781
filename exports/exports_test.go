package exports_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/exports"
	"github.com/fineline/fineline/server/servertest"
)

type env struct {
	t     *testing.T
	srv   *servertest.Running
	key   string
	merch string
}

func newEnv(t *testing.T) *env {
	s := servertest.Start(t, servertest.Options{})
	m, key := s.AddShop(t, "shop")
	s.Exports.Page = 150 // many pages, so that writes land between them
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Exports.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{t: t, srv: s, key: key, merch: m.ID}
}

func (e *env) call(method, path, body string, header ...string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	tr := &http.Transport{DisableCompression: true}
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

type exportJSON struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Rows   int64  `json:"rows"`
	Cursor string `json:"cursor"`
	Error  string `json:"error"`
}

// export asks for one and waits until it is ready.
func (e *env) export(body string) exportJSON {
	e.t.Helper()
	code, _, b := e.call("POST", "/v1/exports", body)
	var x exportJSON
	if code != 202 || json.Unmarshal(b, &x) != nil || x.ID == "" {
		e.t.Fatalf("POST /v1/exports: %d %s", code, b)
	}
	deadline := time.Now().Add(60 * time.Second)
	for x.Status != "ready" {
		if x.Status == "failed" || time.Now().After(deadline) {
			e.t.Fatalf("export %s: %+v", x.ID, x)
		}
		time.Sleep(50 * time.Millisecond)
		code, _, b = e.call("GET", "/v1/exports/"+x.ID, "")
		if code != 200 || json.Unmarshal(b, &x) != nil {
			e.t.Fatalf("GET export: %d %s", code, b)
		}
	}
	return x
}

// feed reads the merchant's change feed from after to its end.
func (e *env) feed(after string) []consent.Event {
	e.t.Helper()
	var all []consent.Event
	for {
		var p struct {
			Changes []struct {
				Subject       string    `json:"subject"`
				Seq           int64     `json:"seq"`
				Purpose       string    `json:"purpose"`
				State         string    `json:"state"`
				NoticeVersion int       `json:"notice_version"`
				Channel       string    `json:"channel"`
				RecordedAt    time.Time `json:"recorded_at"`
				Field         string    `json:"field"`
			} `json:"changes"`
			Next    string `json:"next"`
			HasMore bool   `json:"has_more"`
		}
		code, _, b := e.call("GET", "/v1/changes?limit=1000&after="+url.QueryEscape(after), "")
		if code != 200 || json.Unmarshal(b, &p) != nil {
			e.t.Fatalf("feed: %d %s", code, b)
		}
		for _, c := range p.Changes {
			all = append(all, consent.Event{MerchantID: e.merch, SubjectID: c.Subject, Seq: c.Seq, Purpose: c.Purpose, State: consent.State(c.State),
				NoticeVersion: c.NoticeVersion, Channel: consent.Channel(c.Channel), RecordedAt: c.RecordedAt, Field: c.Field})
		}
		after = p.Next
		if len(p.Changes) == 0 {
			return all
		}
	}
}

// TestAnExportTakenWhileWritesContinueEqualsTheLedgerAtItsCursor: with
// writers changing and adding subjects all along, the export's rows are
// exactly the decisions the ledger gives up to its cursor, and the feed
// from its cursor gives the rest.
func TestAnExportTakenWhileWritesContinueEqualsTheLedgerAtItsCursor(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 1500 {
		s := consent.Granted
		if i%3 == 0 {
			s = consent.Denied
		}
		if _, err := e.srv.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merch, SubjectID: fmt.Sprintf("s%04d", i), Channel: consent.ChannelAPI, Actor: "test",
			Requests: []consent.Request{{Purpose: "newsletter", State: s}}}); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				states := []consent.State{consent.Granted, consent.Withdrawn, consent.Denied}
				id := fmt.Sprintf("s%04d", r.IntN(1700)) // some new subjects too
				if _, err := e.srv.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merch, SubjectID: id, Channel: consent.ChannelAPI, Actor: "test",
					Requests: []consent.Request{{Purpose: "newsletter", State: states[r.IntN(3)]}}}); err != nil {
					t.Error(err)
					return
				}
				writes.Add(1)
			}
		}()
	}
	time.Sleep(200 * time.Millisecond)
	before := writes.Load()
	x := e.export(`{"purpose":"newsletter","format":"ndjson","include":"all"}`)
	during := writes.Load() - before
	close(stop)
	wg.Wait()
	if during < 20 {
		t.Fatalf("only %d writes landed during the export: the test shows nothing", during)
	}
	code, h, body := e.call("GET", "/v1/exports/"+x.ID+"/data", "")
	if code != 200 || h.Get("Content-Type") != "application/x-ndjson" || h.Get("Fineline-Cursor") != x.Cursor {
		t.Fatalf("data: %d %v", code, h)
	}
	got := map[string]exports.Row{}
	for _, line := range bytes.Split(bytes.TrimSpace(body), []byte("\n")) {
		var r exports.Row
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatalf("row %q: %v", line, err)
		}
		if _, dup := got[r.Subject]; dup {
			t.Fatalf("%s listed twice", r.Subject)
		}
		got[r.Subject] = r
	}
	if int64(len(got)) != x.Rows {
		t.Fatalf("%d rows, the export says %d", len(got), x.Rows)
	}
	// The ledger at the cursor: every event minus those after it.
	after := map[string]bool{}
	for _, ev := range e.feed(x.Cursor) {
		after[fmt.Sprintf("%s/%d", ev.SubjectID, ev.Seq)] = true
	}
	if len(after) == 0 {
		t.Fatal("no event after the export's cursor: writes did not overlap it")
	}
	states := map[string]consent.SubjectState{}
	for _, ev := range e.feed("") {
		if after[fmt.Sprintf("%s/%d", ev.SubjectID, ev.Seq)] {
			continue
		}
		st := states[ev.SubjectID]
		if st.Seq != ev.Seq-1 {
			t.Fatalf("%s: event %d after %d: the cursor splits a chain", ev.SubjectID, ev.Seq, st.Seq)
		}
		states[ev.SubjectID] = st.Next(ev)
	}
	p, err := e.srv.Purposes.Get(ctx, e.merch, "newsletter")
	if err != nil {
		t.Fatal(err)
	}
	terms, err := e.srv.Notices.Terms(ctx, e.merch)
	if err != nil {
		t.Fatal(err)
	}
	if len(states) != len(got) {
		t.Fatalf("the ledger at the cursor has %d subjects, the export %d", len(states), len(got))
	}
	for id, st := range states {
		d := consent.Decide(st, p, terms, time.Now())
		r, ok := got[id]
		if !ok || r.Allowed != d.Allowed || r.Reason != string(d.Reason) || r.Seq != st.Seq || r.Since == nil || !r.Since.Equal(d.Since) {
			t.Fatalf("%s: exported %+v, the ledger at the cursor says %+v (seq %d)", id, r, d, st.Seq)
		}
	}
	t.Logf("%d rows; %d writes during the export, %d events after its cursor", len(got), during, len(after))
}

// TestExportFormatsAndOwnership: CSV with a header row, only the allowed,
// gzip when asked; another merchant's export is not found.
func TestExportFormatsAndOwnership(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i, s := range []consent.State{consent.Granted, consent.Denied, consent.Granted} {
		if _, err := e.srv.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merch, SubjectID: fmt.Sprintf("c%d", i), Channel: consent.ChannelAPI, Actor: "test",
			Requests: []consent.Request{{Purpose: "recommendations", State: s}}}); err != nil {
			t.Fatal(err)
		}
	}
	x := e.export(`{"purpose":"recommendations","format":"csv"}`)
	code, h, body := e.call("GET", "/v1/exports/"+x.ID+"/data", "", "Accept-Encoding", "gzip")
	if code != 200 || h.Get("Content-Encoding") != "gzip" || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("csv data: %d %v", code, h)
	}
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(zr).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 3 || strings.Join(recs[0], ",") != "subject,allowed,reason,since,notice_version,seq,gpc" || recs[1][0] != "c0" || recs[2][0] != "c2" || recs[1][1] != "true" {
		t.Fatalf("csv: %v", recs)
	}
	for _, bad := range []string{`{"purpose":"nope"}`, `{"purpose":"newsletter","format":"xml"}`, `{"purpose":"newsletter","include":"some"}`, `{"purpose":"newsletter","Purpose":"x"}`} {
		if code, _, b := e.call("POST", "/v1/exports", bad); code != 400 && code != 404 {
			t.Errorf("%s: %d %s", bad, code, b)
		}
	}
	_, otherKey := e.srv.AddShop(t, "other")
	other := &env{t: t, srv: e.srv, key: otherKey}
	for _, path := range []string{"/v1/exports/" + x.ID, "/v1/exports/" + x.ID + "/data"} {
		if code, _, _ := other.call("GET", path, ""); code != 404 {
			t.Fatalf("another merchant's %s: %d", path, code)
		}
	}
}

// TestExportsExpireAfterAWeek: a week after it was made an export is gone,
// its chunks with it.
func TestExportsExpireAfterAWeek(t *testing.T) {
	var mu sync.Mutex
	now := time.Now().UTC()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := servertest.Start(t, servertest.Options{Now: clock})
	m, key := s.AddShop(t, "shop")
	if _, err := s.Ledger.Apply(context.Background(), consent.Choices{MerchantID: m.ID, SubjectID: "a", Channel: consent.ChannelAPI, Actor: "test",
		Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
		t.Fatal(err)
	}
	run := func() func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); s.Exports.Run(ctx) }()
		return func() { cancel(); <-done }
	}
	stop := run()
	e := &env{t: t, srv: s, key: key, merch: m.ID}
	x := e.export(`{"purpose":"newsletter"}`)
	stop()
	if code, _, _ := e.call("GET", "/v1/exports/"+x.ID+"/data", ""); code != 200 {
		t.Fatalf("a fresh export: %d", code)
	}
	mu.Lock()
	now = now.Add(exports.Keep + time.Hour)
	mu.Unlock()
	if code, _, _ := e.call("GET", "/v1/exports/"+x.ID, ""); code != 404 {
		t.Fatalf("an expired export: %d", code)
	}
	stop = run()
	defer stop()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := s.Store.Chunk(context.Background(), m.ID, x.ID, 0); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the expired export's data is still stored")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
