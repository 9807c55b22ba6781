package stats_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/demo"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/webhooks"
)

type offerPeriod struct {
	Start           string
	Joins, Leaves   int64
	Erased          map[string]int64
	RewardsIssued   int64 `json:"rewards_issued"`
	RewardsRedeemed int64 `json:"rewards_redeemed"`
}

// The birthday offer over four months: four members join on 1 March; one
// leaves four days later, one after fifty days, one is erased after 92;
// a reward is issued and redeemed in March. On 1 July: one member left,
// three of four stayed 30 days, two of four 90, and nobody has been a
// member for a year yet.
func TestAnOfferOverFourMonths(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	m, key := e.srv.AddShopWith(t, merchants.NewMerchant{Slug: "shop", Name: "Shop"})
	for _, f := range demo.Fields() {
		f.MerchantID = m.ID
		if _, err := e.srv.Fields.Create(ctx, f); err != nil {
			t.Fatal(err)
		}
	}
	o := demo.BirthdayOffer()
	o.MerchantID = m.ID
	if _, err := e.srv.Offers.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	at := func(month time.Month, day int) time.Time { return time.Date(2027, month, day, 12, 0, 0, 0, time.UTC) }
	for _, s := range []string{"a", "b", "c", "d"} {
		e.clock.Set(at(3, 1))
		if _, err := e.srv.Offers.Accept(ctx, offers.Acceptance{MerchantID: m.ID, SubjectID: s, Offer: o.Key, Values: map[string]string{"birthday": "--03-15"},
			Channel: consent.ChannelCenter, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	e.decide(m, at(3, 3), "c", "newsletter", consent.Granted, consent.ChannelCenter, "en") // another purpose: not the offer
	e.decide(m, at(3, 5), "a", o.Purpose, consent.Withdrawn, consent.ChannelCenter, "en")
	e.clock.Set(at(3, 15))
	e.srv.Offers.Notes.Record(ctx, m.ID, webhooks.TypeRewardIssued, map[string]any{"subject": "c", "offer": o.Key, "period": "2027"})
	e.clock.Set(at(3, 20))
	e.srv.Offers.Notes.Record(ctx, m.ID, webhooks.TypeRewardRedeemed, map[string]any{"subject": "c", "offer": o.Key, "period": "2027"})
	e.decide(m, at(4, 20), "b", o.Purpose, consent.Denied, consent.ChannelAPI, "")
	e.clock.Set(at(6, 1))
	if _, err := e.srv.Erasure.Erase(ctx, m.ID, "d", consent.ChannelAPI, "test"); err != nil {
		t.Fatal(err)
	}
	e.clock.Set(at(7, 1))
	if err := e.srv.Rollups.CatchUp(ctx, m); err != nil {
		t.Fatal(err)
	}
	code, body := e.get(key, "/v1/stats/offers/"+o.Key+"?interval=month&from=2027-03-01&to=2027-07-01")
	var r struct {
		Offer, Purpose string
		Members        int64
		Periods        []offerPeriod
		Stays          []struct {
			Days        int
			Joined      int64
			StillJoined int64 `json:"still_joined"`
			Share       *float64
		}
	}
	if err := json.Unmarshal(body, &r); code != 200 || err != nil {
		t.Fatalf("%d %v %s", code, err, body)
	}
	if r.Offer != o.Key || r.Purpose != o.Purpose || r.Members != 1 || len(r.Periods) != 5 {
		t.Fatalf("report: %s", body)
	}
	want := []string{
		"2027-03-01 joins 4 leaves 1 erased 1 issued 1 redeemed 1",
		"2027-04-01 joins 0 leaves 1 erased 1 issued 0 redeemed 0",
		"2027-05-01 joins 0 leaves 0 erased 0 issued 0 redeemed 0",
		"2027-06-01 joins 0 leaves 1 erased 1 issued 0 redeemed 0",
		"2027-07-01 joins 0 leaves 0 erased 0 issued 0 redeemed 0",
	}
	for i, p := range r.Periods {
		got := p.Start + " joins " + itoa(int(p.Joins)) + " leaves " + itoa(int(p.Leaves)) + " erased " + itoa(int(p.Erased["birthday"])) +
			" issued " + itoa(int(p.RewardsIssued)) + " redeemed " + itoa(int(p.RewardsRedeemed))
		if got != want[i] {
			t.Errorf("got  %s\nwant %s", got, want[i])
		}
	}
	if len(r.Stays) != 3 {
		t.Fatalf("stays: %s", body)
	}
	for i, w := range []struct {
		days           int
		joined, stayed int64
		share          float64
		noShare        bool
	}{{30, 4, 3, 0.75, false}, {90, 4, 2, 0.5, false}, {365, 0, 0, 0, true}} {
		s := r.Stays[i]
		if s.Days != w.days || s.Joined != w.joined || s.StillJoined != w.stayed || (s.Share == nil) != w.noShare || (s.Share != nil && *s.Share != w.share) {
			t.Errorf("stay %d: %+v, want %+v", w.days, s, w)
		}
	}
	if code, body := e.get(key, "/v1/stats/offers/nope"); code != 404 {
		t.Errorf("an unknown offer: %d %s", code, body)
	}
	if code, body := e.get(key, "/v1/stats/offers/"+o.Key+"?format=csv&interval=month&from=2027-03-01&to=2027-03-31"); code != 200 ||
		!strings.HasPrefix(string(body), "period_start,period_end,joins,leaves,values_erased,rewards_issued,rewards_redeemed\n2027-03-01,2027-03-31,4,1,1,1,1\n") {
		t.Errorf("csv: %d %s", code, body)
	}
}
