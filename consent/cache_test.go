package consent_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
)

// instance is one app instance's Ledger over a shared store.
func instance(t testing.TB, st *store.Store, opts consent.Options) *consent.Ledger {
	t.Helper()
	ns := &notices.Service{Store: st, Now: time.Now}
	return consent.NewLedger(st, consent.NewCachedPurposes(st, time.Second, time.Now), st, ns, time.Now, storetest.Logger(), opts)
}

func checkReason(t *testing.T, l *consent.Ledger, subject string) consent.Reason {
	t.Helper()
	d, err := l.Check(context.Background(), merchant, subject, "newsletter")
	if err != nil {
		t.Fatal(err)
	}
	return d.Reason
}

func TestCacheReadsYourWritesAtOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := instance(t, e.store, consent.Options{Exclusive: true, CacheSize: 1000})
	if _, err := l.Warm(ctx, e.store, true); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		state, want := consent.Granted, consent.ReasonGranted
		if i%2 == 1 {
			state, want = consent.Withdrawn, consent.ReasonWithdrawn
		}
		if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: state}}}); err != nil {
			t.Fatal(err)
		}
		if got := checkReason(t, l, "c1"); got != want {
			t.Fatalf("write %d: check right after it says %s, want %s", i, got, want)
		}
		ds, err := l.CheckMany(ctx, merchant, "newsletter", []string{"c1", "nobody"})
		if err != nil {
			t.Fatal(err)
		}
		if ds[0].Reason != want || ds[1].Reason != consent.ReasonNoRecord {
			t.Fatalf("write %d: batch says %s/%s", i, ds[0].Reason, ds[1].Reason)
		}
	}
}

// flakyFeed is the real store's change feed, switched off on demand, as
// when the database cannot be reached for polling.
type flakyFeed struct {
	*store.Store
	down atomic.Bool
}

func (f *flakyFeed) TouchedSince(ctx context.Context, since time.Time) ([]consent.Touched, error) {
	if f.down.Load() {
		return nil, errors.New("poll failed")
	}
	return f.Store.TouchedSince(ctx, since)
}

func TestTwoInstancesSeeEachOthersWithdrawalWithinTheBound(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const bound = time.Second
	opts := consent.Options{Bound: bound, CacheSize: 1000}
	a, b := instance(t, e.store, opts), instance(t, e.store, opts)
	feedB := &flakyFeed{Store: e.store}
	go a.Follow(ctx, e.store, consent.FollowOptions{Interval: 50 * time.Millisecond, Overlap: time.Second, Since: time.Now()})
	go b.Follow(ctx, feedB, consent.FollowOptions{Interval: 50 * time.Millisecond, Overlap: time.Second, Since: time.Now()})

	if _, err := a.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
		t.Fatal(err)
	}
	waitFor := func(l *consent.Ledger, want consent.Reason, since time.Time) time.Duration {
		t.Helper()
		for {
			if checkReason(t, l, "c1") == want {
				return time.Since(since)
			}
			if time.Since(since) > 5*bound {
				t.Fatalf("still not %s after %v", want, time.Since(since))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(b, consent.ReasonGranted, time.Now()) // B now holds "granted" in its cache

	acked := time.Now()
	if _, err := a.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
		t.Fatal(err)
	}
	if got := checkReason(t, a, "c1"); got != consent.ReasonWithdrawn {
		t.Fatalf("instance A after its own withdrawal: %s", got)
	}
	took := waitFor(b, consent.ReasonWithdrawn, acked)
	t.Logf("instance B saw the withdrawal after %v (bound %v)", took, bound)
	if took > bound {
		t.Fatalf("instance B saw the withdrawal after %v, past the bound of %v", took, bound)
	}

	// When B cannot poll, its cache stops answering after the bound: the
	// next grant on A is read from the store instead of B's stale cache.
	feedB.down.Store(true)
	time.Sleep(100 * time.Millisecond) // let B's last successful poll age
	acked = time.Now()
	if _, err := a.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
		t.Fatal(err)
	}
	took = waitFor(b, consent.ReasonGranted, acked)
	t.Logf("with polling down, instance B saw the grant after %v", took)
	if took > bound+200*time.Millisecond {
		t.Fatalf("with polling down, B served a stale decision for %v", took)
	}
}

func TestWarmSweepRollsForwardWhatACrashLeftBehind(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.record(t, "c1", "newsletter", consent.Granted)
	e.record(t, "c2", "newsletter", consent.Granted)
	crashing := consent.NewLedger(crashAfterAppend{e.store}, e.store, e.store, &notices.Service{Store: e.store, Now: time.Now}, time.Now, storetest.Logger(), consent.Options{})
	for _, s := range []string{"c1", "c3"} {
		if _, err := crashing.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: s, Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
			t.Fatal(err)
		}
	}
	if crashing.ProjectionsComplete() {
		t.Fatal("a ledger whose projection failed reports complete projections: the next start would skip the sweep")
	}

	// Without a sweep, a warm cache would trust the stale projections.
	restarted := instance(t, e.store, consent.Options{Exclusive: true, CacheSize: 1000})
	rep, err := restarted.Warm(ctx, e.store, true)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 2 || rep.RolledForward != 2 || !rep.Complete {
		t.Fatalf("warm report %+v, want 2 records loaded and 2 subjects (c1, c3) rolled forward", rep)
	}
	for subject, want := range map[string]consent.Reason{"c1": consent.ReasonWithdrawn, "c2": consent.ReasonGranted, "c3": consent.ReasonWithdrawn, "c4": consent.ReasonNoRecord} {
		if got := checkReason(t, restarted, subject); got != want {
			t.Errorf("%s: %s, want %s", subject, got, want)
		}
	}
}

func TestCacheCapStillAnswersCorrectly(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, s := range []string{"a", "b", "c", "d"} {
		e.record(t, s, "newsletter", consent.Granted)
	}
	l := instance(t, e.store, consent.Options{Exclusive: true, CacheSize: 2})
	rep, err := l.Warm(ctx, e.store, false)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Complete {
		t.Fatal("4 subjects in a cache of 2 reported complete")
	}
	ds, err := l.CheckMany(ctx, merchant, "newsletter", []string{"a", "b", "c", "d", "e"})
	if err != nil {
		t.Fatal(err)
	}
	for i, d := range ds {
		want := consent.ReasonGranted
		if i == 4 {
			want = consent.ReasonNoRecord
		}
		if d.Reason != want {
			t.Fatalf("%s: %s, want %s (a miss in an overflowing cache is not 'no record')", d.SubjectID, d.Reason, want)
		}
	}
}

func TestProjectionsWrittenBehindReachTheStoreOnFlush(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := instance(t, e.store, consent.Options{Exclusive: true, CacheSize: 1000})
	if _, err := l.Warm(ctx, e.store, false); err != nil {
		t.Fatal(err)
	}
	for _, s := range []consent.State{consent.Granted, consent.Withdrawn, consent.Granted} {
		if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: s}}}); err != nil {
			t.Fatal(err)
		}
	}
	if l.ProjectionsComplete() {
		t.Fatal("projections reported complete before they were written")
	}
	if got := checkReason(t, l, "c1"); got != consent.ReasonGranted {
		t.Fatalf("the cache answers %s before the projection is written", got)
	}
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !l.ProjectionsComplete() {
		t.Fatal("projections incomplete after Flush")
	}
	rec, err := e.store.SubjectState(ctx, merchant, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != 3 || rec.Purposes["newsletter"].State != consent.Granted {
		t.Fatalf("stored projection at seq %d (%s), want 3 (granted)", rec.Seq, rec.Purposes["newsletter"].State)
	}

	// The write-behind loop does the same on its own.
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.WriteBehind(runCtx); close(done) }()
	if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !l.ProjectionsComplete() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if rec, err := e.store.SubjectState(ctx, merchant, "c1"); err != nil || rec.Seq != 4 {
		t.Fatalf("write-behind loop left the projection at %d (%v)", rec.Seq, err)
	}
}

// slowSave is the real store with projection writes that take a while, so
// a flush can be under way when shutdown asks for one.
type slowSave struct{ *store.Store }

func (s slowSave) SaveRecord(ctx context.Context, rec consent.SubjectState) error {
	time.Sleep(20 * time.Millisecond)
	return s.Store.SaveSubjectState(ctx, rec)
}

func TestFlushWaitsForTheWriteBehindBatchUnderWay(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ns := &notices.Service{Store: e.store, Now: time.Now}
	l := consent.NewLedger(slowSave{e.store}, e.store, e.store, ns, time.Now, storetest.Logger(), consent.Options{Exclusive: true, CacheSize: 1000})
	if _, err := l.Warm(ctx, e.store, false); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.WriteBehind(runCtx); close(done) }()
	for i := range 10 {
		if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: fmt.Sprint("s", i), Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(30 * time.Millisecond) // the loop is now writing its batch
	stop()                            // shutdown: the loop's context ends mid-batch
	if err := l.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if !l.ProjectionsComplete() {
		t.Fatal("projections incomplete after Flush")
	}
	<-done
	for i := range 10 {
		rec, err := e.store.SubjectState(ctx, merchant, fmt.Sprint("s", i))
		if err != nil || rec.Seq != 1 {
			t.Fatalf("s%d: projection missing after Flush returned (%v): a clean mark now would lose it", i, err)
		}
	}
}
