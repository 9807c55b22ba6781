package handlers_test

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The banner's signals: only the merchant's own sites may send them, a
// signal that does not make sense (or a member the contract lacks) is
// refused and counts nothing, and one address cannot flood the counts.
func TestWidgetReachSignals(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/widget-settings", e.keyA, `{"allowed_origins":["`+shopOrigin+`"]}`), 200)
	if r := e.widget(t, "OPTIONS", "/w/v1/shop-a/reach", shopOrigin, "", "Access-Control-Request-Method", "POST"); r.status != 204 ||
		!strings.Contains(r.header.Get("Access-Control-Allow-Methods"), "POST") {
		t.Fatalf("preflight: %d %v", r.status, r.header)
	}
	if r := e.widget(t, "POST", "/w/v1/shop-a/reach", "https://evil.example", `{"event":"shown"}`); r.status != 403 || r.errorCode(t) != "origin_not_allowed" {
		t.Fatalf("from a site not allowed: %d %s", r.status, r.body)
	}
	for _, c := range []struct{ body, code string }{
		{`{"event":"seen"}`, "invalid_signal"},
		{`{"event":"shown","clicks":2}`, "invalid_signal"},
		{`{"event":"choice","button":"save","layer":1,"clicks":1}`, "invalid_signal"},
		{`{"event":"choice","button":"accept","layer":1,"clicks":0}`, "invalid_signal"},
		{`{"event":"shown","device":"0f0e0d0c"}`, "unknown_field"},
		{`{"event":"shown","Event":"shown"}`, "unknown_field"},
	} {
		if r := e.widget(t, "POST", "/w/v1/shop-a/reach", shopOrigin, c.body); r.status != 400 || r.errorCode(t) != c.code {
			t.Errorf("%s: %d %s", c.body, r.status, r.body)
		}
	}
	sent := 0
	for ; sent < 100; sent++ {
		r := e.widget(t, "POST", "/w/v1/shop-a/reach", shopOrigin, `{"event":"shown"}`)
		if r.status == 429 {
			if r.errorCode(t) != "too_many_requests" {
				t.Fatalf("flood: %s", r.body)
			}
			break
		}
		if r.status != 204 {
			t.Fatalf("signal: %d %s", r.status, r.body)
		}
	}
	if sent < 30 || sent == 100 {
		t.Fatalf("%d signals passed before the limit", sent)
	}
	e.api.Reach.Flush(context.Background())
	r := e.mustStatus(e.do("GET", "/v1/stats/banner?from="+time.Now().In(e.merchA.Location()).Format("2006-01-02"), e.keyA, ""), 200)
	var rep struct{ Periods []struct{ Shown int64 } }
	r.json(t, &rep)
	if len(rep.Periods) != 1 || rep.Periods[0].Shown != int64(sent) {
		t.Fatalf("%d signals counted as %s", sent, r.body)
	}
	// Another merchant sees none of them.
	r = e.mustStatus(e.do("GET", "/v1/stats/banner", e.keyB, ""), 200)
	if strings.Contains(string(r.body), `"shown":`+strconv.Itoa(sent)) || !strings.Contains(string(r.body), `"shown":0`) {
		t.Fatalf("shop-b: %s", r.body)
	}
}

// Saves on the preference center count, for parity, the switches they
// changed and the button that saved: a grant of two purposes took three
// clicks (erin's first save, in the set-up, took as many), a withdrawal of
// one two, "all off" one; a save that changes nothing counts nothing.
func TestCenterSavesCountTheirClicks(t *testing.T) {
	e, _, erin := newDataEnv(t)
	post := func(form url.Values) {
		t.Helper()
		req, _ := http.NewRequest("POST", e.srv.URL+"/c/shop-a/preferences", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", e.srv.URL)
		res, err := erin.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusSeeOther {
			t.Fatalf("save %v: %d", form, res.StatusCode)
		}
	}
	post(url.Values{"action": {"save"}, "was.newsletter": {"off"}, "was.recommendations": {"off"}, "on": {"newsletter", "recommendations"}})
	post(url.Values{"action": {"save"}, "was.newsletter": {"on"}, "was.recommendations": {"on"}, "on": {"recommendations"}})
	post(url.Values{"action": {"save"}, "was.newsletter": {"off"}, "was.recommendations": {"on"}, "on": {"recommendations"}})
	post(url.Values{"action": {"all_off"}})
	e.api.Reach.Flush(context.Background())
	r := e.mustStatus(e.do("GET", "/v1/stats/banner?from="+time.Now().In(e.merchA.Location()).Format("2006-01-02"), e.keyA, ""), 200)
	var rep struct {
		Periods []struct {
			Shown  int64
			Parity map[string]struct {
				Grants, Withdrawals    int64
				MedianClicksToGrant    *int `json:"median_clicks_to_grant"`
				MedianClicksToWithdraw *int `json:"median_clicks_to_withdraw"`
			}
		}
	}
	r.json(t, &rep)
	if len(rep.Periods) != 1 {
		t.Fatalf("%s", r.body)
	}
	c, w := rep.Periods[0].Parity["center"], rep.Periods[0].Parity["widget"]
	if c.Grants != 2 || c.MedianClicksToGrant == nil || *c.MedianClicksToGrant != 3 || c.Withdrawals != 2 || c.MedianClicksToWithdraw == nil ||
		*c.MedianClicksToWithdraw != 1 || w.Grants != 0 || w.MedianClicksToGrant != nil || rep.Periods[0].Shown != 0 {
		t.Errorf("parity: %s", r.body)
	}
}
