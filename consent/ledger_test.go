package consent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
)

const merchant = "mer_test"

type env struct {
	store  *store.Store
	ledger *consent.Ledger
	now    time.Time
}

// newEnv starts a real embedded store with one merchant, notice v1 and
// three purposes (one sensitive).
func newEnv(t testing.TB) *env { return newEnvOn(t, storetest.Open(t)) }

// newEnvOn is newEnv over a given store.
func newEnvOn(t testing.TB, st *store.Store) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{store: st, now: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	clock := func() time.Time { return e.now }
	ns := &notices.Service{Store: st, Now: clock}
	if _, err := ns.PublishFirst(ctx, merchant, nil, ""); err != nil {
		t.Fatal(err)
	}
	ps := &consent.Purposes{Store: st, Now: clock}
	for _, p := range []consent.Purpose{
		{Key: "newsletter", Texts: map[string]consent.Text{"en": {Name: "Newsletter", Statement: "We email you new arrivals twice a month."}}},
		{Key: "recommendations", Texts: map[string]consent.Text{"en": {Name: "Recommendations", Statement: "We suggest products from what you bought."}}},
		{Key: "wellness", Sensitive: true, DataCategories: []string{"health"}, Texts: map[string]consent.Text{"en": {Name: "Wellness", Statement: "Tips from your health purchases."}}},
	} {
		p.MerchantID = merchant
		if _, err := ps.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	e.ledger = consent.NewLedger(st, st, st, ns, clock, storetest.Logger(), consent.Options{})
	return e
}

func (e *env) record(t testing.TB, subject, purpose string, s consent.State) consent.Applied {
	t.Helper()
	res, err := e.ledger.Apply(context.Background(), consent.Choices{MerchantID: merchant, SubjectID: subject, Channel: consent.ChannelAPI, Actor: "test", Requests: []consent.Request{{Purpose: purpose, State: s}}})
	if err != nil {
		t.Fatalf("record %s %s %s: %v", subject, purpose, s, err)
	}
	return res
}

func TestDecisionsDefaultDeny(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.record(t, "c1", "newsletter", consent.Granted)
	e.record(t, "c1", "recommendations", consent.Denied)
	e.record(t, "c2", "newsletter", consent.Granted)
	e.record(t, "c2", "newsletter", consent.Withdrawn)

	tests := []struct {
		subject, purpose string
		allowed          bool
		reason           consent.Reason
	}{
		{"c1", "newsletter", true, consent.ReasonGranted},
		{"c1", "recommendations", false, consent.ReasonNotGranted},
		{"c1", "wellness", false, consent.ReasonNoRecord},
		{"c2", "newsletter", false, consent.ReasonWithdrawn},
		{"nobody", "newsletter", false, consent.ReasonNoRecord},
	}
	for _, tt := range tests {
		t.Run(tt.subject+"/"+tt.purpose, func(t *testing.T) {
			d, err := e.ledger.Check(ctx, merchant, tt.subject, tt.purpose)
			if err != nil {
				t.Fatal(err)
			}
			if d.Allowed != tt.allowed || d.Reason != tt.reason {
				t.Fatalf("got allowed=%v reason=%s, want %v %s", d.Allowed, d.Reason, tt.allowed, tt.reason)
			}
		})
	}
	if _, err := e.ledger.Check(ctx, merchant, "c1", "no_such_purpose"); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("unknown purpose: got %v, want Invalid", err)
	}
	if _, err := e.ledger.Check(ctx, "mer_other", "c1", "newsletter"); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("another merchant's purpose: got %v, want Invalid (unknown purpose)", err)
	}
}

func TestSensitivePurposeNeedsExplicitOptIn(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, err := e.ledger.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "wellness", State: consent.Granted}}})
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Detail != "explicit_opt_in_required" {
		t.Fatalf("implicit grant of a sensitive purpose: got %v", err)
	}
	if d, _ := e.ledger.Check(ctx, merchant, "c1", "wellness"); d.Allowed {
		t.Fatal("refused grant still allowed")
	}
	res, err := e.ledger.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "wellness", State: consent.Granted, Explicit: true}}})
	if err != nil || !res.Decisions[0].Allowed {
		t.Fatalf("explicit grant: %v %+v", err, res.Decisions)
	}
}

func TestConcurrentWritesToOneSubjectAllLandInOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Two ledgers over one store stand for two app instances: their
	// in-process locks do not see each other, so they race on the unique key.
	other := consent.NewLedger(e.store, e.store, e.store, &notices.Service{Store: e.store, Now: time.Now}, time.Now, storetest.Logger(), consent.Options{})
	const writers = 50
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	var (
		mu       sync.Mutex
		appended []consent.Event
	)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := e.ledger
			if i%2 == 1 {
				l = other
			}
			s := consent.Granted
			if i%3 == 0 {
				s = consent.Withdrawn
			}
			res, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "busy", Channel: consent.ChannelAPI, Actor: fmt.Sprint("writer-", i), Requests: []consent.Request{{Purpose: "newsletter", State: s}}})
			mu.Lock()
			appended = append(appended, res.Events...)
			mu.Unlock()
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a write failed: %v", err)
		}
	}
	n, err := e.ledger.VerifySubject(ctx, merchant, "busy")
	if err != nil {
		t.Fatalf("chain does not verify: %v", err)
	}
	// A write that finds the state already saying so appends nothing; every
	// write that appended is in the chain, and nothing else is.
	if n != int64(len(appended)) || n < 2 {
		t.Fatalf("ledger holds %d events, writers appended %d: writes were lost or doubled", n, len(appended))
	}
	for _, want := range appended {
		ev, err := e.store.Event(ctx, merchant, "busy", want.Seq)
		if err != nil || ev.Hash != want.Hash || ev.Actor != want.Actor {
			t.Fatalf("event %d in the chain is not the one acknowledged: %+v %v", want.Seq, ev, err)
		}
	}
	for seq := int64(2); seq <= n; seq++ {
		prev, _ := e.store.Event(ctx, merchant, "busy", seq-1)
		ev, _ := e.store.Event(ctx, merchant, "busy", seq)
		if prev.State == ev.State {
			t.Fatalf("events %d and %d both say %s: a decision was taken on a stale state", seq-1, seq, ev.State)
		}
	}
	last, err := e.store.Event(ctx, merchant, "busy", n)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.ledger.StateOf(ctx, merchant, "busy")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != n || rec.Purposes["newsletter"].State != last.State || rec.HeadHash != last.Hash {
		t.Fatalf("state at seq %d (%s), want seq %d (%s)", rec.Seq, rec.Purposes["newsletter"].State, n, last.State)
	}
}

// crashAfterAppend is the real store, except that the process "dies" after
// appending an event and before advancing the projection.
type crashAfterAppend struct{ *store.Store }

func (crashAfterAppend) SaveSubjectState(context.Context, consent.SubjectState) error {
	return errors.New("process killed")
}

func TestCrashBetweenEventAndStateRollsForward(t *testing.T) {
	e := newEnvOn(t, storetest.OpenShared(t)) // a store that keeps projections
	ctx := context.Background()
	e.record(t, "c1", "newsletter", consent.Granted)

	crashing := consent.NewLedger(crashAfterAppend{e.store}, e.store, e.store, &notices.Service{Store: e.store, Now: time.Now}, time.Now, storetest.Logger(), consent.Options{})
	if _, err := crashing.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
		t.Fatal(err)
	}
	stale, err := e.store.SubjectState(ctx, merchant, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if stale.Seq != 1 {
		t.Fatalf("projection at %d; the injected crash should have left it at 1", stale.Seq)
	}

	// A read on a fresh instance rolls forward: the withdrawal counts.
	d, err := e.ledger.Check(ctx, merchant, "c1", "newsletter")
	if err != nil {
		t.Fatal(err)
	}
	if d.Allowed || d.Reason != consent.ReasonWithdrawn {
		t.Fatalf("after crash: %+v, want withdrawn", d)
	}
	healed, err := e.store.SubjectState(ctx, merchant, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if healed.Seq != 2 {
		t.Fatalf("projection not rolled forward: seq %d", healed.Seq)
	}

	// A write after a crash continues the chain at the right place.
	if _, err := crashing.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "recommendations", State: consent.Granted}}}); err != nil {
		t.Fatal(err)
	}
	res := e.record(t, "c1", "newsletter", consent.Granted)
	if len(res.Events) != 1 || res.Events[0].Seq != 4 {
		t.Fatalf("next events %+v, want one at seq 4", res.Events)
	}
	if _, err := e.ledger.VerifySubject(ctx, merchant, "c1"); err != nil {
		t.Fatal(err)
	}
}

func TestEditedEventBreaksVerify(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, s := range []consent.State{consent.Granted, consent.Withdrawn, consent.Granted} {
		e.record(t, "c1", "newsletter", s)
	}
	e.record(t, "c2", "newsletter", consent.Granted)
	if rep, err := e.ledger.VerifyAll(ctx); err != nil || rep.Broken != nil || rep.Events != 4 {
		t.Fatalf("before tampering: %+v %v", rep, err)
	}
	// Someone with database access turns the withdrawal into a grant.
	_, err := e.store.Database().Collection("consent_events").UpdateOne(ctx,
		bson.D{{Key: "_id", Value: merchant + "/c1/000000000002"}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "granted"}}}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := e.ledger.VerifyAll(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Broken == nil || rep.Broken.SubjectID != "c1" || rep.Broken.Seq != 2 {
		t.Fatalf("verify after tampering: %+v, want broken at c1 seq 2", rep.Broken)
	}
	if !errors.Is(rep.Broken, consent.ErrChainBroken) {
		t.Fatal("BrokenLink does not wrap ErrChainBroken")
	}
}

func TestIdempotencyKeyReplaysAndRefusesReuse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, IdempotencyKey: "order-42", Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}
	first, err := e.ledger.Apply(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.ledger.Apply(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Replayed || again.Events[0].Seq != first.Events[0].Seq || again.Events[0].Hash != first.Events[0].Hash {
		t.Fatalf("retry was not a replay: %+v", again)
	}
	if n, _ := e.ledger.VerifySubject(ctx, merchant, "c1"); n != 1 {
		t.Fatalf("%d events after a retried request, want 1", n)
	}
	c.Requests = []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}
	_, err = e.ledger.Apply(ctx, c)
	if !apperr.Is(err, apperr.Unprocessable) {
		t.Fatalf("key reused for another request: got %v, want Unprocessable", err)
	}
	// The same key from another merchant is another key.
	if _, err := e.ledger.Check(ctx, merchant, "c1", "newsletter"); err != nil {
		t.Fatal(err)
	}
}

func TestCheckManyAnswersInRequestOrder(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.record(t, "a", "newsletter", consent.Granted)
	e.record(t, "b", "newsletter", consent.Denied)
	ids := []string{"b", "zz", "a", "b"}
	ds, err := e.ledger.CheckMany(ctx, merchant, "newsletter", ids)
	if err != nil {
		t.Fatal(err)
	}
	want := []consent.Reason{consent.ReasonNotGranted, consent.ReasonNoRecord, consent.ReasonGranted, consent.ReasonNotGranted}
	for i, d := range ds {
		if d.SubjectID != ids[i] || d.Reason != want[i] || d.Allowed != (want[i] == consent.ReasonGranted) {
			t.Fatalf("decision %d: %+v, want %s for %s", i, d, want[i], ids[i])
		}
	}
	tooMany := make([]string, consent.MaxBatch+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprint("s", i)
	}
	if _, err := e.ledger.CheckMany(ctx, merchant, "newsletter", tooMany); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("oversized batch: got %v", err)
	}
	if _, err := e.ledger.CheckMany(ctx, merchant, "newsletter", []string{"ok", "$ne"}); !apperr.Is(err, apperr.Invalid) {
		t.Fatalf("bad id in batch: got %v", err)
	}
}

func TestEventsArePaged(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 5 {
		e.record(t, "c1", "newsletter", []consent.State{consent.Granted, consent.Withdrawn}[i%2])
	}
	page, next, err := e.ledger.Events(ctx, merchant, "c1", 0, 2)
	if err != nil || len(page) != 2 || page[0].Seq != 1 || next != 2 {
		t.Fatalf("first page: %d events, next %d, %v", len(page), next, err)
	}
	page, next, err = e.ledger.Events(ctx, merchant, "c1", 4, 2)
	if err != nil || len(page) != 1 || page[0].Seq != 5 || next != 0 {
		t.Fatalf("last page: %d events, next %d, %v", len(page), next, err)
	}
	if _, _, err := e.ledger.Events(ctx, merchant, "nobody", 0, 10); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("unknown subject: %v", err)
	}
}

func TestPrivacyLevelEventsVerify(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.record(t, "c1", "newsletter", consent.Granted)
	if _, err := e.ledger.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelCenter, Level: consent.LevelFull}); err != nil {
		t.Fatal(err)
	}
	if n, err := e.ledger.VerifySubject(ctx, merchant, "c1"); err != nil || n != 2 {
		t.Fatalf("verify after a privacy-level choice: %d events, %v", n, err)
	}
}

// TestPreviewDecidesLikeApplyAndWritesNothing: a preview refuses what Apply
// refuses, answers what Apply would for a newcomer, and leaves no record.
func TestPreviewDecidesLikeApplyAndWritesNothing(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	choices := func(reqs ...consent.Request) consent.Choices {
		return consent.Choices{MerchantID: merchant, SubjectID: "device:preview", Channel: consent.ChannelWidget, Actor: "widget", Requests: reqs}
	}
	for name, c := range map[string]consent.Choices{
		"a sensitive grant without explicit opt-in": choices(consent.Request{Purpose: "wellness", State: consent.Granted}),
		"an unknown purpose":                        choices(consent.Request{Purpose: "nope", State: consent.Granted}),
		"a purpose named twice":                     choices(consent.Request{Purpose: "newsletter", State: consent.Granted}, consent.Request{Purpose: "newsletter", State: consent.Denied}),
		"volunteered data": {MerchantID: merchant, SubjectID: "device:preview", Channel: consent.ChannelWidget,
			Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}, Values: map[string]string{"birthday": "05-01"}},
	} {
		if _, err := e.ledger.Preview(ctx, c); apperr.CodeOf(err) != apperr.Invalid && apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("%s: previewed with %v", name, err)
		}
	}
	st, err := e.ledger.Preview(ctx, choices(consent.Request{Purpose: "newsletter", State: consent.Granted}, consent.Request{Purpose: "recommendations", State: consent.Denied},
		consent.Request{Purpose: "wellness", State: consent.Granted, Explicit: true}))
	if err != nil {
		t.Fatal(err)
	}
	ps, err := (&consent.Purposes{Store: e.store}).List(ctx, merchant)
	if err != nil {
		t.Fatal(err)
	}
	ds, err := e.ledger.DecideAll(ctx, merchant, st, ps)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for i, p := range ps {
		got[p.Key] = ds[i].Allowed
	}
	if !got["newsletter"] || got["recommendations"] || !got["wellness"] || st.Seq != 3 {
		t.Fatalf("previewed state %+v decides %v", st, got)
	}
	if _, err := e.ledger.StateOf(ctx, merchant, "device:preview"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("a preview left a record: %v", err)
	}
}
