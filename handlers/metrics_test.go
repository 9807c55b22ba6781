package handlers_test

import (
	"net/http"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// scrape reads /metrics with the Prometheus text parser.
func scrape(t *testing.T, e *testEnv) map[string]*dto.MetricFamily {
	t.Helper()
	req, _ := http.NewRequest("GET", e.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d", res.StatusCode)
	}
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// sample is the value of the family's sample whose labels include want.
func sample(fams map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	f, ok := fams[name]
	if !ok {
		return -1
	}
	var total float64
	for _, m := range f.Metric {
		match := true
		for k, v := range want {
			found := false
			for _, l := range m.Label {
				found = found || (l.GetName() == k && l.GetValue() == v)
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			total += m.Counter.GetValue()
		case m.Gauge != nil:
			total += m.Gauge.GetValue()
		case m.Histogram != nil:
			total += float64(m.Histogram.GetSampleCount())
		}
	}
	return total
}

func TestMetricsMoveWithRequests(t *testing.T) {
	e := newTestEnv(t)
	// Behind the admin token.
	if r := e.do("GET", "/metrics", e.keyA, ""); r.status == 200 {
		t.Fatal("/metrics answered a merchant's key")
	}
	before := scrape(t, e)
	e.mustStatus(e.do("PUT", "/v1/subjects/ada/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	for range 3 {
		e.mustStatus(e.do("GET", "/v1/check?subject=ada&purpose=newsletter", e.keyA, ""), 200)
	}
	e.mustStatus(e.do("POST", "/v1/check", e.keyA, `{"purpose":"newsletter","subjects":["ada","bob"]}`), 200)
	e.do("GET", "/no/such/thing", "", "")
	after := scrape(t, e)
	for _, c := range []struct {
		name   string
		labels map[string]string
		delta  float64
	}{
		{"fineline_consent_checks_total", map[string]string{"reason": "granted"}, 4},
		{"fineline_consent_checks_total", map[string]string{"reason": "no_record"}, 1},
		{"fineline_http_requests_total", map[string]string{"route": "/v1/check", "method": "GET", "status": "200"}, 3},
		{"fineline_http_requests_total", map[string]string{"route": "(no route)", "status": "404"}, 1},
		{"fineline_http_request_duration_seconds", map[string]string{"route": "/v1/check"}, 4},
		{"fineline_ledger_events_appended_total", nil, 1},
		{"fineline_ledger_append_duration_seconds", nil, 1},
		{"fineline_ledger_group_commit_appends", nil, 1},
	} {
		if got := sample(after, c.name, c.labels) - max(0, sample(before, c.name, c.labels)); got < c.delta {
			t.Errorf("%s%v moved by %v, want at least %v", c.name, c.labels, got, c.delta)
		}
	}
	for _, name := range []string{"fineline_state_cache_entries", "fineline_state_cache_hits_total", "fineline_announcements_queued", "fineline_announcements_overdue_seconds",
		"fineline_erasures_under_way", "fineline_access_counts_pending", "fineline_webhook_behind_seconds", "fineline_reward_mails_due", "fineline_reward_mails_overdue_seconds", "fineline_follow_lag_seconds", "fineline_store_errors_total", "go_goroutines"} {
		if _, ok := after[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if sample(after, "fineline_state_cache_hits_total", nil) <= 0 {
		t.Error("the cache's hits did not move")
	}
	for name := range after {
		if strings.Contains(name, "token") {
			t.Errorf("a metric named %s", name)
		}
	}
}
