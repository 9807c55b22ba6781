package stats_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/notices"
)

type noticeDay struct {
	Date                                           string
	Day                                            int
	Reaccepted, Declined, Erased, StillDue, Lapsed int64
}

type noticeStats struct {
	Purpose                                        string
	Affected                                       int64
	Reaccepted, Declined, Erased, StillDue, Lapsed int64
	Days                                           []noticeDay
}

func (e *env) noticeReport(key string, v int, m merchants.Merchant) []noticeStats {
	e.t.Helper()
	if err := e.srv.Rollups.CatchUp(context.Background(), m); err != nil {
		e.t.Fatal(err)
	}
	code, body := e.get(key, "/v1/stats/notices/"+itoa(v))
	if code != 200 {
		e.t.Fatalf("notice stats: %d %s", code, body)
	}
	var r struct {
		Version  int
		TimeZone string `json:"time_zone"`
		Purposes []struct {
			noticeStats
			StillDue int64 `json:"still_due"`
			Days     []struct {
				noticeDay
				StillDue int64 `json:"still_due"`
			}
		}
	}
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatal(err)
	}
	if r.Version != v || r.TimeZone != m.Location().String() {
		e.t.Fatalf("report of %d in %s: %s", r.Version, r.TimeZone, body)
	}
	var out []noticeStats
	for _, p := range r.Purposes {
		s := p.noticeStats
		s.StillDue, s.Days = p.StillDue, nil
		for _, d := range p.Days {
			d.noticeDay.StillDue = d.StillDue
			s.Days = append(s.Days, d.noticeDay)
		}
		out = append(out, s)
	}
	return out
}

func itoa(n int) string { return strconv.Itoa(n) }

// A material change to the newsletter in Berlin, followed day by day: five
// subjects granted under the old terms when it took effect; one re-accepts
// on the first day and one declines at 23:30 (still the first Berlin day),
// one re-accepts on the second, one is erased on the third, and the last
// says nothing until the grace period is over.
func TestAMaterialChangeDayByDay(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	m, key := e.srv.AddShopWith(t, merchants.NewMerchant{Slug: "shop", Name: "Shop", TimeZone: "Europe/Berlin"})
	loc := m.Location()
	at := func(day, hour, minute int) time.Time { return time.Date(2027, 3, day, hour, minute, 0, 0, loc) }
	for _, s := range []string{"a", "b", "c", "d", "e", "g"} {
		e.decide(m, at(1, 10, 0), s, "newsletter", consent.Granted, consent.ChannelCenter, "de")
	}
	e.decide(m, at(1, 11, 0), "f", "recommendations", consent.Granted, consent.ChannelAPI, "")
	e.decide(m, at(1, 12, 0), "g", "newsletter", consent.Withdrawn, consent.ChannelUnsubscribe, "")

	// Published on the 2nd, in effect from the 3rd, three days of grace.
	e.clock.Set(at(2, 9, 0))
	v, err := e.srv.Notices.Create(ctx, m.ID, notices.Content{Material: true, Purposes: []string{"newsletter"},
		Texts: map[string]notices.Summary{"en": {Summary: "We now send the newsletter weekly.", Text: "Weekly."}}}, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if v, err = e.srv.Notices.Publish(ctx, m.ID, v.Number, at(3, 0, 0), 3*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	// Not in effect yet: those it will affect, no days.
	got := e.noticeReport(key, v.Number, m)
	if len(got) != 1 || got[0].Purpose != "newsletter" || got[0].Affected != 5 || got[0].StillDue != 5 || len(got[0].Days) != 0 {
		t.Fatalf("before it took effect: %+v", got)
	}

	e.decide(m, at(3, 8, 0), "a", "newsletter", consent.Granted, consent.ChannelCenter, "de")
	e.decide(m, at(3, 23, 30), "b", "newsletter", consent.Withdrawn, consent.ChannelCenter, "de")
	e.decide(m, at(4, 10, 0), "c", "newsletter", consent.Granted, consent.ChannelAPI, "")
	e.decide(m, at(4, 11, 0), "h", "newsletter", consent.Granted, consent.ChannelWidget, "en")   // new: not affected
	e.decide(m, at(4, 12, 0), "a", "newsletter", consent.Withdrawn, consent.ChannelCenter, "de") // answered already
	e.clock.Set(at(5, 10, 0))
	if _, err := e.srv.Erasure.Erase(ctx, m.ID, "d", consent.ChannelAPI, "test"); err != nil {
		t.Fatal(err)
	}
	e.decide(m, at(7, 9, 0), "f", "recommendations", consent.Denied, consent.ChannelAPI, "")

	got = e.noticeReport(key, v.Number, m)
	want := noticeStats{Purpose: "newsletter", Affected: 5, Reaccepted: 2, Declined: 1, Erased: 1, Lapsed: 1, Days: []noticeDay{
		{Date: "2027-03-03", Day: 0, Reaccepted: 1, Declined: 1, StillDue: 3},
		{Date: "2027-03-04", Day: 1, Reaccepted: 1, StillDue: 2},
		{Date: "2027-03-05", Day: 2, Erased: 1, Lapsed: 1}, // the grace ends at midnight
		{Date: "2027-03-06", Day: 3, Lapsed: 1},
		{Date: "2027-03-07", Day: 4, Lapsed: 1},
	}}
	if len(got) != 1 || !sameNotice(got[0], want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}

	// The CSV has the same days.
	code, body := e.get(key, "/v1/stats/notices/"+itoa(v.Number)+"?format=csv")
	rows, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if code != 200 || err != nil || len(rows) != 6 || strings.Join(rows[0], ",") != "date,day,purpose,affected,reaccepted,declined,erased,still_due,lapsed" ||
		strings.Join(rows[1], ",") != "2027-03-03,0,newsletter,5,1,1,0,3,0" {
		t.Fatalf("csv: %d %v %q", code, err, rows)
	}

	// The first version is not a material change; a draft is not
	// published; other merchants' versions are not found.
	for _, c := range []struct {
		path string
		code int
		want string
	}{
		{"/v1/stats/notices/1", 400, "not_material"},
		{"/v1/stats/notices/9", 404, ""},
		{"/v1/stats/notices/x", 404, ""},
		{"/v1/stats/notices/2?from=2027-03-01", 400, "invalid_query"},
		{"/v1/stats/notices/2?format=xml", 400, "invalid_query"},
	} {
		code, body := e.get(key, c.path)
		if code != c.code || !strings.Contains(string(body), c.want) {
			t.Errorf("%s: %d %s", c.path, code, body)
		}
	}
	e.clock.Set(at(7, 10, 0))
	d, err := e.srv.Notices.Create(ctx, m.ID, notices.Content{Material: true, Purposes: []string{"newsletter"},
		Texts: map[string]notices.Summary{"en": {Summary: "A draft nobody has seen.", Text: "Draft."}}}, func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if code, body := e.get(key, "/v1/stats/notices/"+itoa(d.Number)); code != 404 || !strings.Contains(string(body), "not_published") {
		t.Errorf("draft: %d %s", code, body)
	}
	_, other := e.srv.AddShopWith(t, merchants.NewMerchant{Slug: "other", Name: "Other"})
	if code, body := e.get(other, "/v1/stats/notices/"+itoa(v.Number)); code != 404 {
		t.Errorf("another merchant's version: %d %s", code, body)
	}
}

func sameNotice(a, b noticeStats) bool {
	if len(a.Days) != len(b.Days) {
		return false
	}
	for i := range a.Days {
		if a.Days[i] != b.Days[i] {
			return false
		}
	}
	a.Days, b.Days = nil, nil
	return a.Purpose == b.Purpose && a.Affected == b.Affected && a.Reaccepted == b.Reaccepted && a.Declined == b.Declined &&
		a.Erased == b.Erased && a.StillDue == b.StillDue && a.Lapsed == b.Lapsed
}
