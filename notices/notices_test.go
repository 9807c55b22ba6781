package notices_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
)

const m = "mer_n"

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

type env struct {
	clk     *clock
	notices *notices.Service
	ledger  *consent.Ledger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st := storetest.Open(t)
	clk := &clock{now: time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)}
	ns := &notices.Service{Store: st, Now: clk.Now}
	ctx := context.Background()
	if _, err := ns.PublishFirst(ctx, m, nil, ""); err != nil {
		t.Fatal(err)
	}
	ps := &consent.Purposes{Store: st, Now: clk.Now}
	for _, k := range []string{"newsletter", "recommendations"} {
		if _, err := ps.Create(ctx, consent.Purpose{MerchantID: m, Key: k, Texts: map[string]consent.Text{"en": {Name: k, Statement: "A plain statement of " + k}}}); err != nil {
			t.Fatal(err)
		}
	}
	return &env{clk: clk, notices: ns, ledger: consent.NewLedger(st, st, st, ns, clk.Now, storetest.Logger(), consent.Options{})}
}

func (e *env) grant(t *testing.T, subject, purpose string, version int) consent.Applied {
	t.Helper()
	res, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: m, SubjectID: subject, Channel: consent.ChannelCenter, Requests: []consent.Request{{Purpose: purpose, State: consent.Granted, NoticeVersion: version}}})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func (e *env) reason(t *testing.T, subject, purpose string) consent.Decision {
	t.Helper()
	d, err := e.ledger.Check(context.Background(), m, subject, purpose)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.ledger.CheckMany(context.Background(), m, purpose, []string{subject})
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Reason != d.Reason || ds[0].Allowed != d.Allowed {
		t.Fatalf("single check says %s, batch says %s", d.Reason, ds[0].Reason)
	}
	return d
}

func (e *env) publish(t *testing.T, material bool, purposes []string, at time.Time, grace time.Duration) notices.Version {
	t.Helper()
	ctx := context.Background()
	v, err := e.notices.Create(ctx, m, notices.Content{Texts: map[string]notices.Summary{"en": {Summary: "We now also share with a new partner."}}, Material: material, Purposes: purposes},
		func(k string) bool { return k == "newsletter" || k == "recommendations" })
	if err != nil {
		t.Fatal(err)
	}
	v, err = e.notices.Publish(ctx, m, v.Number, at, grace)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMaterialChangeRequiresReconsent(t *testing.T) {
	e := newEnv(t)
	e.grant(t, "ann", "newsletter", 0)
	e.grant(t, "ann", "recommendations", 0)
	e.grant(t, "bob", "newsletter", 0)
	v2 := e.publish(t, true, []string{"newsletter"}, time.Time{}, 0)
	if v2.Number != 2 {
		t.Fatalf("version %d", v2.Number)
	}
	if d := e.reason(t, "ann", "newsletter"); d.Allowed || d.Reason != consent.ReasonReconsentRequired || !d.ReconsentBy.Equal(v2.Deadline) {
		t.Fatalf("after material v2: %+v", d)
	}
	if d := e.reason(t, "ann", "recommendations"); !d.Allowed || d.Reason != consent.ReasonGranted {
		t.Fatalf("a purpose v2 does not affect: %+v", d)
	}
	// Re-accepting records a grant under v2 and allows again.
	res := e.grant(t, "ann", "newsletter", 0)
	if res.Events[0].NoticeVersion != 2 || !res.Decisions[0].Allowed || res.Decisions[0].Reason != consent.ReasonGranted {
		t.Fatalf("re-accept: event v%d, %+v", res.Events[0].NoticeVersion, res.Decisions[0])
	}
	// Declining withdraws.
	r, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: m, SubjectID: "bob", Channel: consent.ChannelCenter, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}})
	if err != nil || r.Decisions[0].Reason != consent.ReasonWithdrawn {
		t.Fatalf("decline: %+v %v", r.Decisions[0], err)
	}
}

func TestGracePeriodAllowsUntilTheDeadline(t *testing.T) {
	e := newEnv(t)
	e.grant(t, "ann", "newsletter", 0)
	v2 := e.publish(t, true, []string{"newsletter"}, time.Time{}, 14*24*time.Hour)
	d := e.reason(t, "ann", "newsletter")
	if !d.Allowed || d.Reason != consent.ReasonReconsentDue || !d.ReconsentBy.Equal(e.clk.Now().Add(14*24*time.Hour)) {
		t.Fatalf("during the grace period: %+v", d)
	}
	e.clk.add(14*24*time.Hour - time.Second)
	if d := e.reason(t, "ann", "newsletter"); !d.Allowed {
		t.Fatalf("a second before the deadline: %+v", d)
	}
	e.clk.add(time.Second)
	if d := e.reason(t, "ann", "newsletter"); d.Allowed || d.Reason != consent.ReasonReconsentRequired {
		t.Fatalf("at the deadline: %+v", d)
	}
	_ = v2
}

func TestFutureVersionChangesNothingUntilItTakesEffect(t *testing.T) {
	e := newEnv(t)
	e.grant(t, "ann", "newsletter", 0)
	at := e.clk.Now().Add(48 * time.Hour)
	v2 := e.publish(t, true, []string{"newsletter"}, at, 0)
	if d := e.reason(t, "ann", "newsletter"); !d.Allowed || d.Reason != consent.ReasonGranted {
		t.Fatalf("before effect: %+v", d)
	}
	if n, _ := e.notices.VersionInForce(context.Background(), m); n != 1 {
		t.Fatalf("version in force before effect: %d", n)
	}
	// A shopper who re-accepts early, shown v2, is recorded under v2.
	res := e.grant(t, "bob", "newsletter", v2.Number)
	if res.Events[0].NoticeVersion != 2 {
		t.Fatalf("early re-accept under v%d", res.Events[0].NoticeVersion)
	}
	if _, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: m, SubjectID: "bob", Channel: consent.ChannelCenter, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted, NoticeVersion: 9}}}); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("an unpublished version: %v", err)
	}
	e.clk.add(48 * time.Hour)
	if d := e.reason(t, "ann", "newsletter"); d.Reason != consent.ReasonReconsentRequired {
		t.Fatalf("after effect: %+v", d)
	}
	if d := e.reason(t, "bob", "newsletter"); d.Reason != consent.ReasonGranted {
		t.Fatalf("early re-accept after effect: %+v", d)
	}
}

func TestNonMaterialVersionChangesNoDecision(t *testing.T) {
	e := newEnv(t)
	e.grant(t, "ann", "newsletter", 0)
	e.publish(t, false, nil, time.Time{}, 0)
	if d := e.reason(t, "ann", "newsletter"); !d.Allowed || d.Reason != consent.ReasonGranted {
		t.Fatalf("after a non-material version: %+v", d)
	}
	if n, _ := e.notices.VersionInForce(context.Background(), m); n != 2 {
		t.Fatalf("in force: %d", n)
	}
	if res := e.grant(t, "bob", "newsletter", 0); res.Events[0].NoticeVersion != 2 {
		t.Fatalf("new consent under v%d", res.Events[0].NoticeVersion)
	}
}

func TestPublishedVersionsNeverChange(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	known := func(k string) bool { return k == "newsletter" }
	content := notices.Content{Texts: map[string]notices.Summary{"en": {Summary: "A summary of the change."}}}
	if _, err := e.notices.Update(ctx, m, 1, content, known); !conflict(err, "notice_published") {
		t.Fatalf("edit published v1: %v", err)
	}
	if err := e.notices.Discard(ctx, m, 1); !conflict(err, "notice_published") {
		t.Fatalf("discard published v1: %v", err)
	}
	if _, err := e.notices.Publish(ctx, m, 1, time.Time{}, 0); !conflict(err, "notice_published") {
		t.Fatalf("publish v1 again: %v", err)
	}
	d, err := e.notices.Create(ctx, m, content, known)
	if err != nil {
		t.Fatal(err)
	}
	content.Material, content.Purposes = true, []string{"newsletter"}
	if d, err = e.notices.Update(ctx, m, d.Number, content, known); err != nil || !d.Material {
		t.Fatalf("edit draft: %+v %v", d, err)
	}
	if err := e.notices.Discard(ctx, m, d.Number); err != nil {
		t.Fatal(err)
	}
	if _, err := e.notices.Get(ctx, m, d.Number); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("discarded draft: %v", err)
	}
	content.Purposes = []string{"nope"}
	if _, err := e.notices.Create(ctx, m, content, known); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("unknown purpose: %v", err)
	}
	content.Purposes = nil
	if _, err := e.notices.Create(ctx, m, content, known); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("material without purposes: %v", err)
	}
	vs, err := e.notices.List(ctx, m)
	if err != nil || len(vs) != 1 || vs[0].Number != 1 {
		t.Fatalf("list: %d versions %v", len(vs), err)
	}
	if _, err := e.notices.Publish(ctx, m, 99, e.clk.Now().Add(-time.Hour), 0); err == nil {
		t.Fatal("published in the past")
	}
}

func conflict(err error, detail string) bool {
	var ae *apperr.Error
	return errors.As(err, &ae) && ae.Code == apperr.Conflict && ae.Detail == detail
}

func TestALaterGracePeriodDoesNotReviveLapsedConsent(t *testing.T) {
	e := newEnv(t)
	e.grant(t, "ann", "newsletter", 0)
	e.publish(t, true, []string{"newsletter"}, time.Time{}, 30*24*time.Hour)
	e.clk.add(35 * 24 * time.Hour)
	if d := e.reason(t, "ann", "newsletter"); d.Reason != consent.ReasonReconsentRequired {
		t.Fatalf("day 35: %+v", d)
	}
	e.publish(t, true, []string{"newsletter"}, e.clk.Now().Add(5*24*time.Hour), 30*24*time.Hour)
	e.clk.add(10 * 24 * time.Hour)
	if d := e.reason(t, "ann", "newsletter"); d.Allowed || d.Reason != consent.ReasonReconsentRequired {
		t.Fatalf("day 45, after a later material version with its own grace: %+v (lapsed consent revived)", d)
	}
}

func TestAPublicationThatStoppedHalfWayCanBeFinished(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	v, err := e.notices.Create(ctx, m, notices.Content{Texts: map[string]notices.Summary{"en": {Summary: "A change to the newsletter."}}, Material: true, Purposes: []string{"newsletter"}},
		func(string) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	// The version document says published, but the index decisions read
	// never heard of it (the process died in between).
	v.Status, v.EffectiveAt, v.Deadline, v.PublishedAt = notices.Published, e.clk.Now(), e.clk.Now(), e.clk.Now()
	if err := e.notices.Store.PutVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if n, _ := e.notices.VersionInForce(ctx, m); n != 1 {
		t.Fatalf("in force before the retry: %d", n)
	}
	if _, err := e.notices.Publish(ctx, m, v.Number, time.Time{}, 0); err != nil {
		t.Fatalf("retrying the publication: %v", err)
	}
	if n, _ := e.notices.VersionInForce(ctx, m); n != v.Number {
		t.Fatalf("in force after the retry: %d", n)
	}
	if _, err := e.notices.Publish(ctx, m, v.Number, time.Time{}, 0); !conflict(err, "notice_published") {
		t.Fatalf("publishing a complete publication again: %v", err)
	}
}

// TestRewordingLandsWhenPublished: a draft carrying new words for a purpose
// leaves the purpose as it is until published; a publication that stopped
// after the version was written, before the index and the words, applies
// the words when it is finished.
func TestRewordingLandsWhenPublished(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	st := e.notices.Store.(*store.Store)
	ps := &consent.Purposes{Store: st, Now: e.clk.Now}
	e.notices.Purposes = ps
	w, _, err := ps.CheckWording(ctx, m, consent.Wording{Purpose: "newsletter", Texts: map[string]consent.Text{"en": {Name: "Weekly news", Statement: "We email you every Friday."}}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := e.notices.CreateRewording(ctx, m, w, map[string]notices.Summary{"en": {Summary: "We changed how we describe the newsletter."}})
	if err != nil {
		t.Fatal(err)
	}
	name := func() string {
		t.Helper()
		p, err := ps.Get(ctx, m, "newsletter")
		if err != nil {
			t.Fatal(err)
		}
		return p.TextFor("en").Name
	}
	if got := name(); got != "newsletter" {
		t.Fatalf("before publishing: %q", got)
	}
	v.Status, v.EffectiveAt, v.Deadline, v.PublishedAt = notices.Published, e.clk.Now(), e.clk.Now(), e.clk.Now()
	if err := st.PutVersion(ctx, v); err != nil {
		t.Fatal(err)
	}
	if got := name(); got != "newsletter" {
		t.Fatalf("after a publication that stopped half-way: %q", got)
	}
	if _, err := e.notices.Publish(ctx, m, v.Number, time.Time{}, 0); err != nil {
		t.Fatalf("finishing the publication: %v", err)
	}
	if got := name(); got != "Weekly news" {
		t.Fatalf("after finishing the publication: %q", got)
	}
}
