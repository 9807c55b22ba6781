package stats_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/server/servertest"
	"github.com/fineline/fineline/stats"
)

// clock is a settable clock: events are recorded at what it says.
type clock struct {
	mu sync.Mutex
	at time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.at
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.at = t
}

type env struct {
	t     *testing.T
	srv   *servertest.Running
	clock *clock
}

func start(t *testing.T) *env {
	c := &clock{at: time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)}
	return &env{t: t, srv: servertest.Start(t, servertest.Options{Now: c.Now, LedgerNow: c.Now}), clock: c}
}

// decide records one decision at a moment, through the ledger's one
// operation, as the channel would.
func (e *env) decide(m merchants.Merchant, at time.Time, subject, purpose string, st consent.State, ch consent.Channel, locale string) {
	e.t.Helper()
	e.clock.Set(at)
	_, err := e.srv.Ledger.Apply(context.Background(), consent.Choices{MerchantID: m.ID, SubjectID: subject, Channel: ch, Actor: "test", Locale: locale,
		Requests: []consent.Request{{Purpose: purpose, State: st}}})
	if err != nil {
		e.t.Fatalf("%s %s %s: %v", subject, purpose, st, err)
	}
}

func (e *env) get(key, path string) (int, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

type flows struct{ Grants, Denials, Withdrawals int64 }

type purposeStats struct {
	Purpose        string
	Allowed, Asked int64
	flows
	OptInRate      *float64         `json:"opt_in_rate"`
	WithdrawalRate *float64         `json:"withdrawal_rate"`
	ByChannel      map[string]flows `json:"by_channel"`
	ByLocale       map[string]flows `json:"by_locale"`
}

type report struct {
	Interval string
	TimeZone string `json:"time_zone"`
	Through  *time.Time
	Subjects int64
	Periods  []struct {
		Start, End string
		Purposes   []purposeStats
	}
}

func (e *env) report(key, query string) report {
	e.t.Helper()
	status, body := e.get(key, "/v1/stats/purposes?"+query)
	if status != http.StatusOK {
		e.t.Fatalf("stats: %d %s", status, body)
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	var r report
	if err := dec.Decode(&r); err != nil {
		e.t.Fatal(err)
	}
	return r
}

func (r report) of(period, purpose string) purposeStats {
	for _, p := range r.Periods {
		if p.Start != period {
			continue
		}
		for _, pp := range p.Purposes {
			if pp.Purpose == purpose {
				return pp
			}
		}
	}
	return purposeStats{Purpose: "missing"}
}

// A hand-counted week in Tokyo: every number below was worked out by hand
// from the decisions listed.
func TestAWeekInTokyo(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	m, key := e.srv.AddShopWith(t, merchants.NewMerchant{Slug: "tokyo", Name: "Tokyo shop", TimeZone: "Asia/Tokyo"})
	utcShop, utcKey := e.srv.AddShop(t, "utc-shop")
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	at := func(day, hour, min int) time.Time { return time.Date(2027, 3, day, hour, min, 0, 0, tokyo) }
	const n, p = "newsletter", "partner_sharing"
	e.decide(m, at(1, 10, 0), "alice", n, consent.Granted, consent.ChannelCenter, "de")
	e.decide(m, at(1, 11, 0), "bob", n, consent.Granted, consent.ChannelWidget, "en")
	e.decide(m, at(1, 12, 0), "carol", n, consent.Denied, consent.ChannelAPI, "")
	e.decide(m, at(1, 12, 30), "bob", p, consent.Granted, consent.ChannelWidget, "en")
	e.decide(m, at(2, 9, 0), "alice", n, consent.Withdrawn, consent.ChannelUnsubscribe, "")
	e.decide(m, at(3, 23, 30), "erin", n, consent.Granted, consent.ChannelAPI, "fr")
	// 00:30 in Tokyo on the 4th is 15:30 UTC on the 3rd.
	e.decide(m, at(4, 0, 30), "dave", n, consent.Granted, consent.ChannelImport, "")
	e.decide(utcShop, at(4, 0, 30), "dave", n, consent.Granted, consent.ChannelAPI, "")
	e.decide(m, at(4, 10, 0), "bob", p, consent.Withdrawn, consent.ChannelGPC, "en")
	e.decide(m, at(5, 10, 0), "bob", p, consent.Granted, consent.ChannelWidget, "en")
	e.decide(m, at(5, 10, 5), "bob", p, consent.Granted, consent.ChannelWidget, "en") // the same again: nothing
	e.decide(m, at(6, 10, 0), "frank", n, consent.Granted, consent.ChannelAPI, "en-gb")
	e.clock.Set(at(6, 11, 0))
	if _, err := e.srv.Erasure.Erase(ctx, m.ID, "frank", consent.ChannelAPI, "test"); err != nil {
		t.Fatal(err)
	}
	e.decide(m, at(7, 10, 0), "alice", n, consent.Granted, consent.ChannelCenter, "de")
	e.decide(m, at(7, 11, 0), "carol", n, consent.Granted, consent.ChannelAPI, "es")

	ev, err := e.srv.Ledger.Event(ctx, m.ID, "frank", 1)
	if err != nil || ev.Prev != consent.Undecided || ev.Locale != "en-GB" {
		t.Fatalf("frank's first decision: %+v %v", ev, err)
	}
	if ev, _ := e.srv.Ledger.Event(ctx, m.ID, "alice", 3); ev.Prev != consent.Withdrawn || ev.Locale != "de" {
		t.Fatalf("alice's third decision: %+v", ev)
	}

	// Before the rollups run, the report counts nothing (and says so).
	if r := e.report(key, "from=2027-03-01&to=2027-03-07"); r.Through != nil || r.of("2027-03-07", n).Asked != 0 {
		t.Fatalf("before rolling up: %+v", r)
	}
	for _, mm := range []merchants.Merchant{m, utcShop} {
		if err := e.srv.Rollups.CatchUp(ctx, mm); err != nil {
			t.Fatal(err)
		}
	}
	r := e.report(key, "from=2027-03-01&to=2027-03-07&interval=day")
	if r.Interval != "day" || r.TimeZone != "Asia/Tokyo" || len(r.Periods) != 7 || r.Subjects != 5 || r.Through == nil || !r.Through.Equal(at(7, 11, 0)) {
		t.Fatalf("report: %s %s %d periods, through %v", r.Interval, r.TimeZone, len(r.Periods), r.Through)
	}
	type want struct {
		allowed, asked, g, d, w int64
	}
	days := map[string]want{
		"2027-03-01": {2, 3, 2, 1, 0},
		"2027-03-02": {1, 3, 0, 0, 1},
		"2027-03-03": {2, 4, 1, 0, 0},
		"2027-03-04": {3, 5, 1, 0, 0},
		"2027-03-05": {3, 5, 0, 0, 0},
		"2027-03-06": {3, 5, 1, 0, 0}, // frank granted, then was erased
		"2027-03-07": {5, 5, 2, 0, 0},
	}
	for day, w := range days {
		got := r.of(day, n)
		if got.Allowed != w.allowed || got.Asked != w.asked || got.Grants != w.g || got.Denials != w.d || got.Withdrawals != w.w {
			t.Errorf("newsletter on %s: %+v, want %+v", day, got, w)
		}
	}
	if d := r.of("2027-03-01", n); d.ByChannel["center"] != (flows{Grants: 1}) || d.ByChannel["widget"] != (flows{Grants: 1}) ||
		d.ByChannel["api"] != (flows{Denials: 1}) || d.ByLocale["de"] != (flows{Grants: 1}) || d.ByLocale["und"] != (flows{Denials: 1}) ||
		*d.OptInRate != 0.6667 || *d.WithdrawalRate != 0 {
		t.Errorf("newsletter on the 1st: %+v", d)
	}
	if d := r.of("2027-03-02", n); *d.WithdrawalRate != 0.5 || d.ByChannel["unsubscribe"] != (flows{Withdrawals: 1}) || d.ByLocale["und"] != (flows{Withdrawals: 1}) {
		t.Errorf("newsletter on the 2nd: %+v", d)
	}
	if d := r.of("2027-03-04", n); d.ByChannel["import"] != (flows{Grants: 1}) {
		t.Errorf("the grant at 00:30 in Tokyo is not on the Tokyo day: %+v", d)
	}
	if d := r.of("2027-03-05", n); d.WithdrawalRate == nil || *d.WithdrawalRate != 0 || *d.OptInRate != 0.6 {
		t.Errorf("newsletter on the 5th: %+v", d)
	}
	for day, w := range map[string]want{"2027-03-01": {1, 1, 1, 0, 0}, "2027-03-04": {0, 1, 0, 0, 1}, "2027-03-05": {1, 1, 1, 0, 0}} {
		got := r.of(day, p)
		if got.Allowed != w.allowed || got.Asked != w.asked || got.Grants != w.g || got.Withdrawals != w.w {
			t.Errorf("partner_sharing on %s: %+v, want %+v", day, got, w)
		}
	}
	if d := r.of("2027-03-04", p); d.ByChannel["gpc"] != (flows{Withdrawals: 1}) || d.ByLocale["en"] != (flows{Withdrawals: 1}) {
		t.Errorf("partner_sharing on the 4th: %+v", d)
	}
	if d := r.of("2027-03-01", "wellness_tips"); d.Asked != 0 || d.OptInRate != nil || d.WithdrawalRate != nil {
		t.Errorf("a purpose nobody was asked about: %+v", d)
	}

	week := e.report(key, "from=2027-03-01&to=2027-03-07&interval=week&purpose=newsletter")
	if len(week.Periods) != 1 || week.Periods[0].End != "2027-03-07" || len(week.Periods[0].Purposes) != 1 {
		t.Fatalf("week: %+v", week)
	}
	wk := week.of("2027-03-01", n)
	if wk.Allowed != 5 || wk.Asked != 5 || wk.Grants != 7 || wk.Denials != 1 || wk.Withdrawals != 1 || *wk.WithdrawalRate != 0.1429 ||
		wk.ByChannel["api"] != (flows{Grants: 3, Denials: 1}) || wk.ByChannel["center"] != (flows{Grants: 2}) ||
		wk.ByLocale["en"] != (flows{Grants: 1}) || wk.ByLocale["en-GB"] != (flows{Grants: 1}) || wk.ByLocale["und"] != (flows{Grants: 1, Denials: 1, Withdrawals: 1}) {
		t.Errorf("the week: %+v", wk)
	}
	month := e.report(key, "from=2027-03-01&interval=month&purpose=partner_sharing")
	if len(month.Periods) != 1 || month.Periods[0].Start != "2027-03-01" || month.Periods[0].End != "2027-03-07" ||
		month.of("2027-03-01", p).Grants != 2 || month.of("2027-03-01", p).Allowed != 1 {
		t.Errorf("the month: %+v", month)
	}

	// The UTC shop's grant at the same instant is on the UTC day.
	u := e.report(utcKey, "from=2027-03-03&to=2027-03-04")
	if u.TimeZone != "UTC" || u.of("2027-03-03", n).Grants != 1 || u.of("2027-03-04", n).Grants != 0 {
		t.Errorf("the UTC shop: %+v", u)
	}

	status, body := e.get(key, "/v1/stats/purposes?from=2027-03-01&to=2027-03-02&purpose=newsletter&format=csv")
	if status != http.StatusOK {
		t.Fatalf("csv: %d %s", status, body)
	}
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows[0], ",") != "period_start,period_end,purpose,channel,locale,allowed,asked,grants,denials,withdrawals,opt_in_rate,withdrawal_rate" ||
		strings.Join(rows[1], ",") != "2027-03-01,2027-03-01,newsletter,all,all,2,3,2,1,0,0.6667,0" ||
		!strings.Contains(string(body), "2027-03-02,2027-03-02,newsletter,unsubscribe,all,,,0,0,1,,\n") ||
		!strings.Contains(string(body), "2027-03-01,2027-03-01,newsletter,all,de,,,1,0,0,,\n") {
		t.Errorf("csv:\n%s", body)
	}
}

func TestReportRefusesBadQueries(t *testing.T) {
	e := start(t)
	_, key := e.srv.AddShop(t, "shop")
	other, _ := e.srv.AddShop(t, "other")
	e.decide(other, e.clock.Now(), "alice", "newsletter", consent.Granted, consent.ChannelAPI, "")
	if err := e.srv.Rollups.CatchUp(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	for q, code := range map[string]string{
		"interval=hour":                     "invalid_interval",
		"from=2027-13-01":                   "invalid_date",
		"from=2027-03-02&to=2027-03-01":     "invalid_range",
		"from=2025-01-01&to=2027-03-01":     "invalid_range", // more than 366 days
		"purpose=nope":                      "unknown_purpose",
		"format=xml":                        "invalid_query",
		"sort=asc":                          "invalid_query",
		"interval=day&interval=week":        "invalid_query",
		"purpose[$ne]=x":                    "invalid_query",
		"from=2027-03-01&to=2027-03-01&x=1": "invalid_query",
		"from=2027-03-01%00&to=2027-03-01":  "invalid_date",
		"interval=month&from=2010-01-01":    "invalid_range",
		"interval=week&from=2020-01-01":     "invalid_range",
		"from=2027-02-29":                   "invalid_date",
		"to=2027-03-01T00:00:00Z":           "invalid_date",
		"from=0001-01-01&to=0001-12-31":     "invalid_range", // a year, but long ago
		"interval=month&from=2016-01-01":    "invalid_range", // more than ten years back
	} {
		status, body := e.get(key, "/v1/stats/purposes?"+q)
		var out struct {
			Error struct{ Code string }
		}
		_ = json.Unmarshal(body, &out)
		if status/100 != 4 || out.Error.Code != code {
			t.Errorf("%s: %d %s, want %s", q, status, body, code)
		}
	}
	// Another merchant's grant is not counted here.
	r := e.report(key, "")
	if len(r.Periods) != 30 || r.of(r.Periods[29].Start, "newsletter").Asked != 0 {
		t.Errorf("the default report, or another merchant's grant: %d periods, %+v", len(r.Periods), r.of(r.Periods[29].Start, "newsletter"))
	}
	if status, _ := e.get("fl_nope_nope", "/v1/stats/purposes"); status != http.StatusUnauthorized {
		t.Errorf("without a key: %d", status)
	}
}

// failingStore fails every rollup write after the first n: a crash between
// two writes, as the next start finds it.
type failingStore struct {
	stats.Store
	n int
}

var errCrash = errors.New("crash")

func (f *failingStore) ApplyRollup(ctx context.Context, merchantID string, gen int64, a stats.Add) error {
	if f.n <= 0 {
		return errCrash
	}
	f.n--
	return f.Store.ApplyRollup(ctx, merchantID, gen, a)
}

func (f *failingStore) SaveRollupState(ctx context.Context, st stats.State) (bool, error) {
	if f.n <= 0 {
		return false, errCrash
	}
	f.n--
	return f.Store.SaveRollupState(ctx, st)
}

// Random decisions and erasures over six weeks, rolled up through crashes
// at many points between two writes, equal a recount of every chain.
func TestRollupsEqualARecountAfterCrashes(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	m, key := e.srv.AddShopWith(t, merchants.NewMerchant{Slug: "shop", Name: "Shop", TimeZone: "America/New_York"})
	loc := m.Location()
	rng := rand.New(rand.NewPCG(7, 11))
	purposes := []string{"newsletter", "recommendations", "birthday_reward"}
	channels := []consent.Channel{consent.ChannelAPI, consent.ChannelCenter, consent.ChannelWidget, consent.ChannelUnsubscribe, consent.ChannelImport}
	locales := []string{"", "en", "de", "fr-CA"}
	states := []consent.State{consent.Granted, consent.Denied, consent.Withdrawn}
	subjects := make([]string, 120)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("s%03d", i)
	}
	at := time.Date(2027, 3, 1, 5, 0, 0, 0, loc)
	erased, seen := map[string]bool{}, map[string]bool{}
	// Two material changes on the way, the second while the first's grace
	// runs.
	var versions []consent.PublishedVersion
	publish := func(at time.Time, purposes ...string) {
		e.clock.Set(at)
		v, err := e.srv.Notices.Create(ctx, m.ID, notices.Content{Material: true, Purposes: purposes,
			Texts: map[string]notices.Summary{"en": {Summary: "What we do with it has changed.", Text: "Changed."}}}, func(string) bool { return true })
		if err == nil {
			v, err = e.srv.Notices.Publish(ctx, m.ID, v.Number, at, 10*24*time.Hour)
		}
		if err != nil {
			t.Fatal(err)
		}
		versions = append(versions, consent.PublishedVersion{Number: v.Number, Material: true, Purposes: purposes, EffectiveAt: v.EffectiveAt, Deadline: v.Deadline})
	}
	for i := range 1500 {
		at = at.Add(time.Duration(rng.IntN(80)) * time.Minute)
		switch i {
		case 500:
			publish(at, "newsletter", "recommendations")
		case 1000:
			publish(at, "newsletter")
		}
		s := subjects[rng.IntN(len(subjects))]
		if erased[s] {
			continue
		}
		if rng.IntN(100) == 0 && seen[s] {
			e.clock.Set(at)
			if _, err := e.srv.Erasure.Erase(ctx, m.ID, s, consent.ChannelAPI, "test"); err != nil {
				t.Fatal(err)
			}
			erased[s] = true
			continue
		}
		e.decide(m, at, s, purposes[rng.IntN(len(purposes))], states[rng.IntN(3)], channels[rng.IntN(len(channels))], locales[rng.IntN(len(locales))])
		seen[s] = true
	}
	last := at

	// Crash after n writes, again and again, each start resuming from what
	// the last left.
	real := e.srv.Rollups.Store
	crashes := 0
	for i := 0; ; i++ {
		r := &stats.Roller{Store: &failingStore{Store: real, n: i%5 + i/10}, Feed: e.srv.Ledger, Merchants: e.srv.Store, Terms: e.srv.Rollups.Terms, Log: e.srv.Log, Page: 97, Step: 200}
		err := r.CatchUp(ctx, m)
		if err == nil {
			break
		}
		if !errors.Is(err, errCrash) {
			t.Fatal(err)
		}
		crashes++
	}
	if crashes < 20 {
		t.Fatalf("only %d crashes", crashes)
	}
	if err := e.srv.Rollups.CatchUp(ctx, m); err != nil {
		t.Fatal(err)
	}
	if st, err := real.RollupState(ctx, m.ID); err != nil || st.Intent != nil {
		t.Fatalf("state after catching up: %+v %v", st, err)
	}

	// The recount: every chain read from the ledger, replayed in time order.
	var all []consent.Event
	for _, s := range subjects {
		for seq := int64(1); ; seq++ {
			x, err := e.srv.Ledger.Event(ctx, m.ID, s, seq)
			if apperr.Is(err, apperr.NotFound) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, x)
		}
	}
	type dayKey struct{ day, purpose string }
	type counted struct {
		f       flows
		ch, loc map[string]flows
	}
	got := map[dayKey]*counted{}
	bump := func(k dayKey, e consent.Event) {
		c := got[k]
		if c == nil {
			c = &counted{ch: map[string]flows{}, loc: map[string]flows{}}
			got[k] = c
		}
		add := func(f *flows) {
			switch e.State {
			case consent.Granted:
				f.Grants++
			case consent.Denied:
				f.Denials++
			default:
				f.Withdrawals++
			}
		}
		add(&c.f)
		ch := c.ch[string(e.Channel)]
		add(&ch)
		c.ch[string(e.Channel)] = ch
		l := e.Locale
		if l == "" {
			l = "und"
		}
		lf := c.loc[l]
		add(&lf)
		c.loc[l] = lf
	}
	// Stocks at the end of each day: who is allowed and asked.
	current := map[string]map[string]consent.State{}
	slices.SortStableFunc(all, func(a, b consent.Event) int { return a.RecordedAt.Compare(b.RecordedAt) })
	first := time.Date(2027, 3, 1, 0, 0, 0, 0, loc)
	stock := map[dayKey][2]int64{}
	i := 0
	for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
		end := d.AddDate(0, 0, 1)
		for ; i < len(all) && all[i].RecordedAt.Before(end); i++ {
			x := all[i]
			if x.State == consent.SubjectErased {
				delete(current, x.SubjectID)
				continue
			}
			if x.Field != "" || !x.State.Valid() {
				continue
			}
			if current[x.SubjectID] == nil {
				current[x.SubjectID] = map[string]consent.State{}
			}
			if current[x.SubjectID][x.Purpose] != x.State {
				bump(dayKey{d.Format("2006-01-02"), x.Purpose}, x)
			}
			current[x.SubjectID][x.Purpose] = x.State
		}
		for _, p := range purposes {
			var allowed, asked int64
			for _, ps := range current {
				if st, ok := ps[p]; ok {
					asked++
					if st == consent.Granted {
						allowed++
					}
				}
			}
			stock[dayKey{d.Format("2006-01-02"), p}] = [2]int64{allowed, asked}
		}
	}
	e.clock.Set(last)
	r := e.report(key, "from=2027-03-01&to="+last.In(loc).Format("2006-01-02"))
	if want := int64(len(seen) - len(erased)); r.Subjects != want {
		t.Errorf("subjects: %d, want %d", r.Subjects, want)
	}
	checked := 0
	for _, period := range r.Periods {
		for _, p := range period.Purposes {
			k := dayKey{period.Start, p.Purpose}
			want := got[k]
			if want == nil {
				want = &counted{ch: map[string]flows{}, loc: map[string]flows{}}
			}
			if p.flows != want.f || stock[k] != [2]int64{p.Allowed, p.Asked} || !sameFlows(p.ByChannel, want.ch) || !sameFlows(p.ByLocale, want.loc) {
				t.Errorf("%s %s: rollups %+v, recount %+v %v", k.day, k.purpose, p, *want, stock[k])
			}
			checked++
		}
	}
	if checked < 3*40 || len(all) < 600 {
		t.Fatalf("checked %d days of %d events", checked, len(all))
	}

	// The material changes: who each affected as it took effect, and
	// what they did after, replayed from the ledger.
	type held struct {
		st consent.State
		n  int
	}
	type answers struct{ affected, reaccepted, declined, erased int64 }
	holds := map[string]map[string]held{}
	counts := map[int]map[string]*answers{}
	for _, v := range versions {
		counts[v.Number] = map[string]*answers{}
		for _, p := range v.Purposes {
			counts[v.Number][p] = &answers{}
		}
	}
	inEffect := map[int]bool{}
	for _, x := range all {
		for _, v := range versions {
			if inEffect[v.Number] || v.EffectiveAt.After(x.RecordedAt) {
				continue
			}
			inEffect[v.Number] = true
			for _, p := range v.Purposes {
				for _, h := range holds {
					if h[p].st == consent.Granted && h[p].n < v.Number {
						counts[v.Number][p].affected++
					}
				}
			}
		}
		if x.State == consent.SubjectErased {
			for p, h := range holds[x.SubjectID] {
				if h.st == consent.Granted {
					for _, v := range versions {
						if a := counts[v.Number][p]; a != nil && inEffect[v.Number] && h.n < v.Number {
							a.erased++
						}
					}
				}
			}
			delete(holds, x.SubjectID)
			continue
		}
		if x.Field != "" || !x.State.Valid() {
			continue
		}
		if holds[x.SubjectID] == nil {
			holds[x.SubjectID] = map[string]held{}
		}
		if h := holds[x.SubjectID][x.Purpose]; h.st == consent.Granted {
			for _, v := range versions {
				a := counts[v.Number][x.Purpose]
				if a == nil || h.n >= v.Number || x.NoticeVersion < v.Number {
					continue
				}
				if !inEffect[v.Number] {
					a.affected++
				}
				if x.State == consent.Granted {
					a.reaccepted++
				} else {
					a.declined++
				}
			}
		}
		holds[x.SubjectID][x.Purpose] = held{x.State, x.NoticeVersion}
	}
	for _, v := range versions {
		for _, p := range e.noticeReport(key, v.Number, m) {
			p.Days = nil
			want := counts[v.Number][p.Purpose]
			if want == nil || *want != (answers{p.Affected, p.Reaccepted, p.Declined, p.Erased}) {
				t.Errorf("version %d, %s: rollups %+v, recount %+v", v.Number, p.Purpose, p, want)
			}
			if p.Affected < 10 || p.Reaccepted+p.Declined < 5 {
				t.Errorf("version %d, %s: too little to tell: %+v", v.Number, p.Purpose, p)
			}
		}
	}
}

func sameFlows(a, b map[string]flows) bool {
	for k, v := range a {
		if v != b[k] {
			return false
		}
	}
	for k, v := range b {
		if v != a[k] {
			return false
		}
	}
	return true
}
