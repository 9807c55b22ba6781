package server_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/server/servertest"
)

// importSubjects writes n subjects with three events each into the store
// as an import does.
func importSubjects(t *testing.T, f *fineline, n int) {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Millisecond)
	for lo := 0; lo < n; lo += 1000 {
		var (
			subs []consent.Subject
			evs  []consent.Event
			recs []consent.SubjectState
		)
		for i := lo; i < min(lo+1000, n); i++ {
			id := fmt.Sprintf("imp-%06d", i)
			subs = append(subs, consent.Subject{MerchantID: f.merch.ID, ID: id, CreatedAt: now, UpdatedAt: now})
			rec := consent.SubjectState{MerchantID: f.merch.ID, SubjectID: id}
			for k, p := range []string{"newsletter", "recommendations", "newsletter"} {
				e := consent.Event{MerchantID: f.merch.ID, SubjectID: id, Seq: rec.Seq + 1, Purpose: p, State: []consent.State{consent.Granted, consent.Granted, consent.Withdrawn}[k],
					NoticeVersion: 1, Channel: consent.ChannelImport, Actor: "import", RecordedAt: now, PrevHash: rec.HeadHash}
				e.Hash = e.ComputeHash()
				evs = append(evs, e)
				rec = rec.Next(e)
			}
			recs = append(recs, rec)
		}
		if err := f.Store.Import(ctx, subs, evs, recs); err != nil {
			t.Fatal(err)
		}
	}
}

// TestStartUpReadsABoundedNumberOfDocuments: however many subjects the
// store holds, a start (after a clean stop, with writes since the last
// start) reads the same few documents: nothing is warmed or swept.
func TestStartUpReadsABoundedNumberOfDocuments(t *testing.T) {
	reads := map[int]int64{}
	for _, n := range []int{100, 5000} {
		dir, err := os.MkdirTemp("", "fl")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		var merchantID string
		t.Run(fmt.Sprintf("seed %d", n), func(t *testing.T) {
			f := start(t, dir)
			merchantID = f.merch.ID
			importSubjects(t, f, n)
			for i := range 20 {
				if code, _, body := f.call(t, "PUT", fmt.Sprintf("/v1/subjects/imp-%06d/consents/newsletter", i), `{"state":"granted"}`); code != 201 {
					t.Fatalf("write: %d %s", code, body)
				}
			}
		})
		t.Run(fmt.Sprintf("start on %d", n), func(t *testing.T) {
			r := servertest.Start(t, servertest.Options{DataDir: dir})
			reads[n] = r.Store.DocumentsRead()
			// The store is all there: a subject seeded last answers.
			d, err := r.Ledger.Check(context.Background(), merchantID, fmt.Sprintf("imp-%06d", n-1), "recommendations")
			if err != nil || !d.Allowed {
				t.Fatalf("a seeded grant after the restart: %+v %v", d, err)
			}
		})
	}
	t.Logf("documents read by a start: %v", reads)
	if reads[100] == 0 {
		t.Fatal("no reads counted: the counter is not wired")
	}
	if reads[5000] > reads[100]+10 || reads[5000] > 200 {
		t.Fatalf("a start read %d documents over 5000 subjects and %d over 100: it grows with the subjects", reads[5000], reads[100])
	}
}
