package store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/offers"
)

// TestMongoDBCodePaths runs the code Fineline uses on MongoDB (compare-and-
// set in the update filter, $in bulk reads, one insert per event, the
// ledger poll) against the embedded server, which accepts the same
// commands, so those paths are tested although no MongoDB runs here.
func TestMongoDBCodePaths(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir(), Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if s.local {
		t.Fatal("shared mode still takes single-process shortcuts")
	}
	s2, err := s.Join(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	if s.Slot() == s2.Slot() {
		t.Fatalf("two instances write slot %d", s.Slot())
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ns := &notices.Service{Store: s, Now: time.Now}
	if _, err := ns.PublishFirst(ctx, "mer_r", nil, ""); err != nil {
		t.Fatal(err)
	}
	ps := &consent.Purposes{Store: s, Now: time.Now}
	if _, err := ps.Create(ctx, consent.Purpose{MerchantID: "mer_r", Key: "newsletter", Texts: map[string]consent.Text{"en": {Name: "News", Statement: "We email you news twice a month."}}}); err != nil {
		t.Fatal(err)
	}
	opts := consent.Options{Bound: time.Second, CacheBytes: 1 << 20}
	a := consent.NewLedger(s, s, s, ns, time.Now, log, opts)
	b := consent.NewLedger(s2, s2, s2, &notices.Service{Store: s2, Now: time.Now}, time.Now, log, opts)
	runCtx, cancel := context.WithCancel(ctx)
	var following sync.WaitGroup
	for _, l := range []*consent.Ledger{a, b} {
		following.Go(func() {
			l.Follow(runCtx, consent.FollowOptions{Interval: 50 * time.Millisecond, SlotsEvery: 100 * time.Millisecond})
		})
	}
	defer func() { cancel(); following.Wait() }() // before the stores close

	// Concurrent writes from two instances to one subject all land in order.
	const writes = 30
	var wg sync.WaitGroup
	errs := make(chan error, writes)
	var appended atomic.Int64
	for i := range writes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := a
			if i%2 == 1 {
				l = b
			}
			state := consent.Granted
			if i%3 == 0 {
				state = consent.Withdrawn
			}
			res, err := l.Apply(ctx, consent.Choices{MerchantID: "mer_r", SubjectID: "busy", Channel: consent.ChannelAPI, Actor: fmt.Sprint(i), Requests: []consent.Request{{Purpose: "newsletter", State: state}}})
			appended.Add(int64(len(res.Events)))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// A write that finds the state already saying so appends nothing.
	n, err := a.VerifySubject(ctx, "mer_r", "busy")
	if err != nil || n != appended.Load() || n < 2 {
		t.Fatalf("%d events (%v), writers appended %d", n, err, appended.Load())
	}
	rec, err := s.SubjectState(ctx, "mer_r", "busy")
	if err != nil {
		t.Fatal(err)
	}
	last, err := s.Event(ctx, "mer_r", "busy", n)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Seq != n || rec.HeadHash != last.Hash {
		t.Fatalf("projection at %d, want %d: the compare-and-set let an older state win", rec.Seq, n)
	}

	// Bulk reads by $in agree with point reads; a projection behind its
	// ledger is reported pending.
	for i := range 5 {
		if _, err := a.Apply(ctx, consent.Choices{MerchantID: "mer_r", SubjectID: fmt.Sprint("s", i), Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}}}); err != nil {
			t.Fatal(err)
		}
	}
	behind := consent.Event{MerchantID: "mer_r", SubjectID: "s0", Seq: 2, Purpose: "newsletter", State: consent.Withdrawn, RecordedAt: time.Now().UTC().Truncate(time.Millisecond)}
	prev, _ := s.Event(ctx, "mer_r", "s0", 1)
	behind.PrevHash = prev.Hash
	behind.Hash = behind.ComputeHash()
	if _, err := s.AppendEvents(ctx, []consent.Event{behind}, consent.SubjectState{}); err != nil {
		t.Fatal(err)
	}
	ids := []string{"s0", "s1", "s2", "s3", "s4", "nobody"}
	recs, err := s.SubjectStates(ctx, "mer_r", ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || recs["s3"].Seq != 1 {
		t.Fatalf("bulk read: %d records", len(recs))
	}
	heads := map[string]int64{}
	for _, id := range ids {
		heads[id] = recs[id].Seq
	}
	pending, err := s.Pending(ctx, "mer_r", heads)
	if err != nil || !slices.Equal(pending, []string{"s0"}) {
		t.Fatalf("pending: %v %v, want [s0]", pending, err)
	}
	ds, err := b.CheckMany(ctx, "mer_r", "newsletter", ids)
	if err != nil {
		t.Fatal(err)
	}
	if ds[0].Reason != consent.ReasonWithdrawn || ds[1].Reason != consent.ReasonGranted || ds[5].Reason != consent.ReasonNoRecord {
		t.Fatalf("batch over bulk reads: %s %s %s", ds[0].Reason, ds[1].Reason, ds[5].Reason)
	}

	// A withdrawal on A reaches B through the ledger poll.
	if d, err := b.Check(ctx, "mer_r", "s1", "newsletter"); err != nil || !d.Allowed {
		t.Fatalf("B before: %+v %v", d, err)
	}
	if _, err := a.Apply(ctx, consent.Choices{MerchantID: "mer_r", SubjectID: "s1", Channel: consent.ChannelAPI, Requests: []consent.Request{{Purpose: "newsletter", State: consent.Withdrawn}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(opts.Bound)
	for {
		d, err := b.Check(ctx, "mer_r", "s1", "newsletter")
		if err != nil {
			t.Fatal(err)
		}
		if !d.Allowed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("B still allows after the bound")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMongoDBConditionalWritesOfTheValueExchange runs the MongoDB paths of
// the value exchange's conditional writes: an erasure deletes a value only
// while it is marked, and a reward's email is claimed by one caller.
func TestMongoDBConditionalWritesOfTheValueExchange(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir(), Shared: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	v := fields.Value{MerchantID: "mer_r", SubjectID: "s1", Field: "birthday", Sealed: []byte{1, 2, 3}, Purpose: "birthday_reward", UpdatedAt: time.Now()}
	if err := s.PutValue(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteErasing(ctx, "mer_r", "s1", "birthday"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Value(ctx, "mer_r", "s1", "birthday"); err != nil {
		t.Fatalf("a value not marked erasing was deleted: %v", err)
	}
	v.Erasing, v.Sealed = true, nil
	if err := s.PutValue(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteErasing(ctx, "mer_r", "s1", "birthday"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Value(ctx, "mer_r", "s1", "birthday"); err == nil {
		t.Fatal("a value marked erasing was kept")
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	r := offers.Reward{MerchantID: "mer_r", Offer: "treat", SubjectID: "s1", Period: "2027", Code: "CODE", IssuedAt: now,
		ValidFrom: now, ValidUntil: now.Add(time.Hour), Mail: offers.MailPending, MailNextAt: now}
	if ok, err := s.IssueReward(ctx, r); err != nil || !ok {
		t.Fatalf("issue: %v %v", ok, err)
	}
	if ok, err := s.IssueReward(ctx, r); err != nil || ok {
		t.Fatalf("issued twice: %v %v", ok, err)
	}
	var wins int
	for range 3 {
		ok, err := s.ClaimMail(ctx, r, "owner", now.Add(time.Second), now.Add(time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			wins++
		}
	}
	if wins != 1 {
		t.Fatalf("%d claims of one email won, want 1", wins)
	}

	// Leases: of claimers on two instances reading the same state, one
	// wins; a lease whose holder died before marking the job is taken over
	// once it has ended, again by one.
	s2, err := s.Join(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close(ctx)
	claim := func(at time.Time) int {
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				st := []*Store{s, s2}[i%2]
				ok, err := st.takeLease(ctx, "job-1", 0, time.Time{}, fmt.Sprint("w", i), at, at.Add(time.Minute))
				if err != nil {
					t.Error(err)
				}
				if ok {
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		return int(won.Load())
	}
	if n := claim(now); n != 1 {
		t.Fatalf("%d claimers took one lease, want 1", n)
	}
	if n := claim(now.Add(30 * time.Second)); n != 0 {
		t.Fatalf("%d claimers took a lease still held", n)
	}
	if n := claim(now.Add(2 * time.Minute)); n != 1 {
		t.Fatalf("%d claimers took over an ended lease, want 1", n)
	}
}
