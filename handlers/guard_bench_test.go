package handlers_test

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
)

// BenchmarkGuardCheck is one message's guard check for a subject in
// memory, through the whole HTTP stack (in process): the request cost the
// load benchmark's "guard check" phase measures over the network.
func BenchmarkGuardCheck(b *testing.B) {
	ts := newTestServer(b, testOptions{})
	m, key := ts.AddShop(b, "guarded")
	ctx := context.Background()
	for _, a := range demo.Attributes() {
		a.MerchantID = m.ID
		if _, err := ts.Guard.Create(ctx, a); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := ts.Ledger.Apply(ctx, consent.Choices{MerchantID: m.ID, SubjectID: "alice", Channel: consent.ChannelAPI, Actor: "bench",
		Requests: []consent.Request{{Purpose: "recommendations", State: consent.Granted}}}); err != nil {
		b.Fatal(err)
	}
	h, err := ts.Handler()
	if err != nil {
		b.Fatal(err)
	}
	body := `{"subject":"alice","purpose":"recommendations","channel":"email","attributes":["first_name","city","last_order_total","recently_viewed","baby_interest"]}`
	for b.Loop() {
		req, _ := http.NewRequest("POST", "/v1/personalization/check", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, req)
		if w.code != 0 && w.code != 200 {
			b.Fatalf("status %d", w.code)
		}
	}
}

type discardWriter struct {
	h    http.Header
	code int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(code int)        { w.code = code }

// BenchmarkCheck is one consent check of a subject in memory (1,000 of
// them in turn), through the whole HTTP stack in process: with everything
// recorded ("counted"), without the "who asked about me" count
// ("uncounted"), and without the Prometheus metrics ("unmeasured").
func BenchmarkCheck(b *testing.B) {
	ts := newTestServer(b, testOptions{})
	m, key := ts.AddShop(b, "checked")
	ctx := context.Background()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = "cust-" + strconv.Itoa(i)
		if _, err := ts.Ledger.Apply(ctx, consent.Choices{MerchantID: m.ID, SubjectID: ids[i], Channel: consent.ChannelAPI, Actor: "bench",
			Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
			b.Fatal(err)
		}
	}
	counted, err := ts.Handler()
	if err != nil {
		b.Fatal(err)
	}
	counter, recorder := ts.Access, ts.Metrics
	ts.Access = nil
	uncounted, err := ts.Handler()
	ts.Access, ts.Metrics = counter, nil
	if err != nil {
		b.Fatal(err)
	}
	unmeasured, err := ts.Handler()
	ts.Metrics = recorder
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"counted", counted}, {"uncounted", uncounted}, {"unmeasured", unmeasured}} {
		b.Run(c.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				req, _ := http.NewRequest("GET", "/v1/check?subject="+ids[i%len(ids)]+"&purpose=newsletter", nil)
				req.Header.Set("Authorization", "Bearer "+key)
				w := &discardWriter{h: http.Header{}}
				c.h.ServeHTTP(w, req)
				if w.code != 0 && w.code != 200 {
					b.Fatalf("status %d", w.code)
				}
				i++
			}
		})
	}
}
