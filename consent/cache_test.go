package consent_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
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
	l := instance(t, e.store, consent.Options{Exclusive: true, CacheBytes: 1 << 20})
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

// flakyJournal is a store whose journal cannot be read on demand, as when
// the database cannot be reached for following.
type flakyJournal struct {
	*store.Store
	down atomic.Bool
}

func (f *flakyJournal) JournalEntry(ctx context.Context, slot int, pos int64) (consent.JournalEntry, error) {
	if f.down.Load() {
		return consent.JournalEntry{}, errors.New("store unreachable")
	}
	return f.Store.JournalEntry(ctx, slot, pos)
}

func TestTwoInstancesSeeEachOthersWithdrawalWithinTheBound(t *testing.T) {
	shared := storetest.OpenShared(t)
	e := newEnvOn(t, shared)
	other := &flakyJournal{Store: storetest.Join(t, shared)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const bound = time.Second
	opts := consent.Options{Bound: bound, CacheBytes: 1 << 20}
	a := instance(t, e.store, opts)
	ns := &notices.Service{Store: other, Now: time.Now}
	b := consent.NewLedger(other, consent.NewCachedPurposes(other, time.Second, time.Now), other, ns, time.Now, storetest.Logger(), opts)
	if e.store.Slot() == other.Slot() {
		t.Fatalf("both instances write slot %d", e.store.Slot())
	}
	var following sync.WaitGroup
	for _, l := range []*consent.Ledger{a, b} {
		following.Go(func() {
			l.Follow(ctx, consent.FollowOptions{Interval: 50 * time.Millisecond, SlotsEvery: 100 * time.Millisecond})
		})
	}
	defer func() { cancel(); following.Wait() }() // before the stores close

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

	// When B cannot follow, its cache stops answering after the bound: the
	// next grant on A is read from the store instead of B's stale cache.
	other.down.Store(true)
	time.Sleep(100 * time.Millisecond) // let B's last successful round age
	acked = time.Now()
	if _, err := a.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
		t.Fatal(err)
	}
	took = waitFor(b, consent.ReasonGranted, acked)
	t.Logf("with following down, instance B saw the grant after %v", took)
	if took > bound+200*time.Millisecond {
		t.Fatalf("with following down, B served a stale decision for %v", took)
	}
}

// TestRecoverReplaysWhatACrashLeftBehind: projections a crash left behind
// their events are rolled forward at the next start from the journal, and
// only those: the work follows what was in flight.
func TestRecoverReplaysWhatACrashLeftBehind(t *testing.T) {
	t.Run("embedded", func(t *testing.T) { testRecover(t, newEnv(t)) })
	t.Run("shared", func(t *testing.T) { testRecover(t, newEnvOn(t, storetest.OpenShared(t))) })
}

func testRecover(t *testing.T, e *env) {
	ctx := context.Background()
	first := instance(t, e.store, consent.Options{Exclusive: true, CacheBytes: 1 << 20})
	for i := range 50 {
		if _, err := first.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: fmt.Sprint("old", i), Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := first.Flush(ctx); err != nil { // a clean stop
		t.Fatal(err)
	}
	rep, err := instance(t, e.store, consent.Options{Exclusive: true, CacheBytes: 1 << 20}).Recover(ctx)
	if err != nil || rep.Subjects != 0 || rep.Checkpoint != rep.Tail {
		t.Fatalf("after a clean stop: %+v %v, want nothing to replay", rep, err)
	}

	// Now a "crash": events appended, projections never written.
	crashing := consent.NewLedger(crashAfterAppend{e.store}, e.store, e.store, &notices.Service{Store: e.store, Now: time.Now}, time.Now, storetest.Logger(), consent.Options{})
	for _, s := range []string{"old1", "new1", "new2"} {
		if _, err := crashing.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: s, Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
			t.Fatal(err)
		}
	}
	if crashing.ProjectionsComplete() {
		t.Fatal("a ledger whose projections failed reports them complete")
	}
	restarted := instance(t, e.store, consent.Options{Exclusive: true, CacheBytes: 1 << 20})
	rep, err = restarted.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Subjects != 3 {
		t.Fatalf("recovery rolled forward %d subjects, want the 3 in flight: %+v", rep.Subjects, rep)
	}
	if err := restarted.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"old1", "new1", "new2"} {
		st, err := e.store.SubjectState(ctx, merchant, s)
		if err != nil || st.Purposes["newsletter"].State != consent.Withdrawn {
			t.Errorf("%s: stored projection %+v (%v) after recovery", s, st.Purposes, err)
		}
	}
	for subject, want := range map[string]consent.Reason{"old1": consent.ReasonWithdrawn, "old2": consent.ReasonGranted, "new1": consent.ReasonWithdrawn, "never": consent.ReasonNoRecord} {
		if got := checkReason(t, restarted, subject); got != want {
			t.Errorf("%s: %s, want %s", subject, got, want)
		}
	}
}

// TestJobsSeeWritesAnotherInstanceHasNotStored: a job on one instance
// (building an announcement, an export) goes through every subject; a write
// acknowledged on another instance whose projection is not stored yet (its
// save failed, or it is about to happen) is seen all the same.
func TestJobsSeeWritesAnotherInstanceHasNotStored(t *testing.T) {
	shared := storetest.OpenShared(t)
	e := newEnvOn(t, shared)
	ctx := context.Background()
	e.record(t, "old1", "newsletter", consent.Granted)
	e.record(t, "old2", "newsletter", consent.Granted)

	other := storetest.Join(t, shared)
	if other.Slot() == e.store.Slot() {
		t.Fatalf("both instances write slot %d", other.Slot())
	}
	behind := consent.NewLedger(crashAfterAppend{other}, other, other, &notices.Service{Store: other, Now: time.Now}, time.Now, storetest.Logger(), consent.Options{})
	for _, s := range []string{"old1", "new1"} {
		if _, err := behind.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: s, Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := shared.SubjectState(ctx, merchant, "new1"); err == nil {
		t.Fatal("the other instance stored new1's projection: the test shows nothing")
	}

	job := instance(t, shared, consent.Options{CacheBytes: 1 << 20})
	got := map[string]consent.State{}
	if err := job.EachState(ctx, shared, func(st consent.SubjectState) error {
		if _, dup := got[st.SubjectID]; dup {
			t.Errorf("%s given twice", st.SubjectID)
		}
		got[st.SubjectID] = st.Purposes["newsletter"].State
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]consent.State{"old1": consent.Withdrawn, "old2": consent.Granted, "new1": consent.Withdrawn}
	if !maps.Equal(got, want) {
		t.Fatalf("the job saw %v, want %v", got, want)
	}
}

// TestATinyCacheStillGivesTheLedgersAnswer: with room for a few hundred
// subjects and thousands in play, under concurrent writes, every check
// says what the ledger says.
func TestATinyCacheStillGivesTheLedgersAnswer(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	l := instance(t, e.store, consent.Options{Exclusive: true, CacheBytes: 1000 * 250})
	runCtx, stop := context.WithCancel(ctx)
	behind := make(chan struct{})
	go func() { defer close(behind); l.WriteBehind(runCtx) }()
	defer func() { stop(); <-behind }() // before the store closes
	const subjects = 1500
	want := make([]atomic.Value, subjects)
	for i := range subjects {
		want[i].Store(consent.ReasonNoRecord)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < subjects; i += 8 {
				st, reason := consent.Granted, consent.ReasonGranted
				if i%3 == 0 {
					st, reason = consent.Withdrawn, consent.ReasonWithdrawn
				}
				if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: fmt.Sprint("t", i), Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: st}}}); err != nil {
					errs <- err
					return
				}
				want[i].Store(reason)
				// Read back a subject written a while ago (long evicted).
				j := i / 2
				if d, err := l.Check(ctx, merchant, fmt.Sprint("t", j), "newsletter"); err != nil {
					errs <- err
					return
				} else if w, _ := want[j].Load().(consent.Reason); w != consent.ReasonNoRecord && d.Reason != w {
					errs <- fmt.Errorf("t%d: %s, want %s", j, d.Reason, w)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	ids := make([]string, subjects)
	for i := range ids {
		ids[i] = fmt.Sprint("t", i)
	}
	for lo := 0; lo < subjects; lo += 1000 {
		ds, err := l.CheckMany(ctx, merchant, "newsletter", ids[lo:min(lo+1000, subjects)])
		if err != nil {
			t.Fatal(err)
		}
		for k, d := range ds {
			if w := want[lo+k].Load().(consent.Reason); d.Reason != w {
				t.Fatalf("%s: batch says %s, want %s", d.SubjectID, d.Reason, w)
			}
		}
	}
	stats := l.CacheStats()
	if stats.Entries >= subjects || stats.Bytes > stats.Budget {
		t.Fatalf("the cache holds %d entries, %d bytes of a %d budget: it does not bound itself", stats.Entries, stats.Bytes, stats.Budget)
	}
	t.Logf("cache: %+v", stats)
}

// failingSave is the real store with projection writes that fail while
// failing is set, and take a while otherwise, so that a retry can be under
// way when shutdown asks for a flush.
type failingSave struct {
	*store.Store
	failing *atomic.Bool
}

func (s failingSave) SaveSubjectState(ctx context.Context, rec consent.SubjectState) error {
	if s.failing.Load() {
		return errors.New("store unreachable")
	}
	time.Sleep(20 * time.Millisecond)
	return s.Store.SaveSubjectState(ctx, rec)
}

// A projection whose write failed is written later by the write-behind
// loop, and the cache answers from the ledger meanwhile.
func TestFailedProjectionWritesAreRetried(t *testing.T) {
	e := newEnvOn(t, storetest.OpenShared(t)) // a store that keeps projections
	ctx := context.Background()
	failing := &atomic.Bool{}
	failing.Store(true)
	ns := &notices.Service{Store: e.store, Now: time.Now}
	l := consent.NewLedger(failingSave{e.store, failing}, e.store, e.store, ns, time.Now, storetest.Logger(), consent.Options{CacheBytes: 1 << 20})
	for _, s := range []consent.State{consent.Granted, consent.Withdrawn, consent.Granted} {
		if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: "c1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: s}}}); err != nil {
			t.Fatal(err)
		}
	}
	if l.ProjectionsComplete() {
		t.Fatal("projections reported complete though their writes failed")
	}
	if got := checkReason(t, l, "c1"); got != consent.ReasonGranted {
		t.Fatalf("the cache answers %s before the projection is written", got)
	}
	if err := l.Flush(ctx); err == nil {
		t.Fatal("Flush reported success while the store refuses writes")
	}
	failing.Store(false)
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.WriteBehind(runCtx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for !l.ProjectionsComplete() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	rec, err := e.store.SubjectState(ctx, merchant, "c1")
	if err != nil || rec.Seq != 3 || rec.Purposes["newsletter"].State != consent.Granted {
		t.Fatalf("stored projection at seq %d (%s, %v), want 3 (granted)", rec.Seq, rec.Purposes["newsletter"].State, err)
	}
}

func TestFlushWaitsForTheRetryUnderWay(t *testing.T) {
	e := newEnvOn(t, storetest.OpenShared(t))
	ctx := context.Background()
	failing := &atomic.Bool{}
	failing.Store(true)
	ns := &notices.Service{Store: e.store, Now: time.Now}
	l := consent.NewLedger(failingSave{e.store, failing}, e.store, e.store, ns, time.Now, storetest.Logger(), consent.Options{CacheBytes: 1 << 20})
	for i := range 10 {
		if _, err := l.Apply(ctx, consent.Choices{MerchantID: merchant, SubjectID: fmt.Sprint("s", i), Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
			t.Fatal(err)
		}
	}
	failing.Store(false)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { l.WriteBehind(runCtx); close(done) }()
	time.Sleep(1200 * time.Millisecond) // the loop's retry is now writing its batch
	stop()                              // shutdown: the loop's context ends mid-batch
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
			t.Fatalf("s%d: projection missing after Flush returned (%v): the checkpoint now would skip it", i, err)
		}
	}
}
