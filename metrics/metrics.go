// Package metrics records what an operator watches, in Prometheus form:
// requests by route template and status with their latency, consent
// checks by decision reason, the state cache, ledger appends and the
// group commits that write them, store errors, and the work queues.
// Recording is a few atomic adds per request; the registry is read only
// when /metrics is scraped.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/fineline/fineline/consent"
)

// Metrics holds every collector of one process.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	latency       *prometheus.HistogramVec
	checks        *prometheus.CounterVec
	storeErrors   prometheus.Counter
	appends       prometheus.Counter
	appendLatency prometheus.Histogram
	batchRequests prometheus.Histogram
	batchDocs     prometheus.Histogram
	batchLatency  prometheus.Histogram
	// series and reasons hold the labelled collectors already made: a
	// request finds its own without hashing its labels again. Routes are
	// templates, statuses and reasons few, so both stay small.
	series  sync.Map // requestKey → *requestSeries
	reasons sync.Map // consent.Reason → prometheus.Counter
}

// New makes the collectors and registers them with Go's and the process's.
func New() *Metrics {
	m := &Metrics{registry: prometheus.NewRegistry()}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fineline_http_requests_total",
		Help: "HTTP requests by route template, method and status."}, []string{"route", "method", "status"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "fineline_http_request_duration_seconds",
		Help: "HTTP request latency by route template.", Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}},
		[]string{"route"})
	m.checks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "fineline_consent_checks_total",
		Help: "Consent decisions answered to merchants' checks, by reason."}, []string{"reason"})
	m.storeErrors = prometheus.NewCounter(prometheus.CounterOpts{Name: "fineline_store_errors_total",
		Help: "Requests answered 503 because the store was down, full or too slow."})
	m.appends = prometheus.NewCounter(prometheus.CounterOpts{Name: "fineline_ledger_events_appended_total",
		Help: "Events appended to subjects' chains."})
	m.appendLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fineline_ledger_append_duration_seconds",
		Help: "Time to append one subject's events, queueing and group commit included.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.batchRequests = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fineline_ledger_group_commit_appends",
		Help: "Appends written together in one group commit.", Buckets: prometheus.ExponentialBuckets(1, 2, 10)})
	m.batchDocs = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fineline_ledger_group_commit_documents",
		Help: "Documents (events, journal and feed entries, states) one group commit wrote.", Buckets: prometheus.ExponentialBuckets(1, 2, 12)})
	m.batchLatency = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "fineline_ledger_group_commit_duration_seconds",
		Help: "Time one group commit took to write.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14)})
	m.registry.MustRegister(m.requests, m.latency, m.checks, m.storeErrors, m.appends, m.appendLatency, m.batchRequests, m.batchDocs, m.batchLatency,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// requestKey names one request counter.
type requestKey struct {
	route, method string
	status        int
}

// requestSeries are one route's collectors, looked up once.
type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// Request records one HTTP request.
func (m *Metrics) Request(route, method string, status int, took time.Duration) {
	k := requestKey{route, method, status}
	v, ok := m.series.Load(k)
	if !ok {
		v, _ = m.series.LoadOrStore(k, &requestSeries{count: m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			latency: m.latency.WithLabelValues(route)})
	}
	rs := v.(*requestSeries)
	rs.count.Inc()
	rs.latency.Observe(took.Seconds())
}

// Check records one consent decision answered to a merchant.
func (m *Metrics) Check(reason consent.Reason) {
	v, ok := m.reasons.Load(reason)
	if !ok {
		v, _ = m.reasons.LoadOrStore(reason, m.checks.WithLabelValues(string(reason)))
	}
	v.(prometheus.Counter).Inc()
}

// StoreError records a request the store could not serve.
func (m *Metrics) StoreError() { m.storeErrors.Inc() }

// Appended records one append of events to a subject's chain.
func (m *Metrics) Appended(events int, took time.Duration) {
	m.appends.Add(float64(events))
	m.appendLatency.Observe(took.Seconds())
}

// Committed records one group commit of the store.
func (m *Metrics) Committed(appends, docs int, took time.Duration) {
	m.batchRequests.Observe(float64(appends))
	m.batchDocs.Observe(float64(docs))
	m.batchLatency.Observe(took.Seconds())
}

// Cache publishes the state cache's figures, read at each scrape.
func (m *Metrics) Cache(stats func() consent.CacheStats) {
	gauge := func(name, help string, f func(consent.CacheStats) uint64) {
		m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, func() float64 { return float64(f(stats())) }))
	}
	counter := func(name, help string, f func(consent.CacheStats) uint64) {
		m.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(f(stats())) }))
	}
	gauge("fineline_state_cache_entries", "Subjects whose state is held in memory.", func(s consent.CacheStats) uint64 { return s.Entries })
	gauge("fineline_state_cache_bytes", "Memory the state cache weighs its entries at.", func(s consent.CacheStats) uint64 { return s.Bytes })
	gauge("fineline_state_cache_budget_bytes", "The state cache's memory budget.", func(s consent.CacheStats) uint64 { return s.Budget })
	counter("fineline_state_cache_hits_total", "Lookups answered from memory.", func(s consent.CacheStats) uint64 { return s.Hits })
	counter("fineline_state_cache_misses_total", "Lookups that read the store.", func(s consent.CacheStats) uint64 { return s.Misses })
	counter("fineline_state_cache_evictions_total", "Entries dropped to stay within the budget.", func(s consent.CacheStats) uint64 { return s.Evictions })
}

// Gauge publishes a figure read at each scrape (a queue's depth, the
// age of its oldest item, the change feed's lag).
func (m *Metrics) Gauge(name, help string, read func() float64) {
	m.registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, read))
}
