package store

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
)

// TestStatesDerivedFromTheFileMatchTheEvents: on the embedded store a
// subject's state is derived from its events and the snapshots written
// with them, read straight from the file. Point reads, bulk reads and the
// whole-file scan give what folding the events gives, for chains shorter
// and longer than the snapshot distance, and point reads of events and
// subjects match reads through the server.
func TestStatesDerivedFromTheFileMatchTheEvents(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	var want []consent.SubjectState
	var ids []string
	for i := range 30 {
		rec := consent.SubjectState{MerchantID: "mer_a", SubjectID: fmt.Sprintf("s-%02d", i), Purposes: map[string]consent.PurposeState{}}
		n := int64(1 + i%4)
		if i == 7 {
			n = 3*snapshotEvery + 5 // past three snapshots
		}
		for seq := int64(1); seq <= n; seq++ {
			e := consent.Event{MerchantID: rec.MerchantID, SubjectID: rec.SubjectID, Seq: seq, Purpose: []string{"newsletter", "ünïcode_ok", "recs"}[seq%3],
				State: []consent.State{consent.Granted, consent.Withdrawn}[seq%2], NoticeVersion: 2, Channel: consent.ChannelCenter, Actor: `quote " and \ backslash`,
				RecordedAt: at.Add(time.Duration(seq) * time.Hour), PrevHash: rec.HeadHash}
			if seq == 2 {
				e.Field, e.State = "birthday", consent.Provided
			}
			e.Hash = e.ComputeHash()
			next := rec.Next(e)
			if _, err := s.AppendEvents(ctx, []consent.Event{e}, next); err != nil {
				t.Fatal(err)
			}
			rec = next
		}
		want = append(want, rec)
		ids = append(ids, rec.SubjectID)
		if err := s.PutSubject(ctx, consent.Subject{MerchantID: "mer_a", ID: rec.SubjectID, Email: fmt.Sprintf("s%d@example.com", i), Locale: "de", CreatedAt: at, UpdatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	var scanned []consent.SubjectState
	if err := s.EachSubjectState(ctx, func(r consent.SubjectState) error { scanned = append(scanned, r); return nil }); err != nil {
		t.Fatal(err)
	}
	sort.Slice(scanned, func(i, j int) bool { return scanned[i].SubjectID < scanned[j].SubjectID })
	if diff := cmp.Diff(want, scanned); diff != "" {
		t.Errorf("the scan differs from the folded events (-want +got):\n%s", diff)
	}
	bulk, err := s.SubjectStates(ctx, "mer_a", ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range want {
		got, err := s.SubjectState(ctx, "mer_a", w.SubjectID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%s: point read (-want +got):\n%s", w.SubjectID, diff)
		}
		if diff := cmp.Diff(w, bulk[w.SubjectID]); diff != "" {
			t.Errorf("%s: bulk read (-want +got):\n%s", w.SubjectID, diff)
		}
	}
	if _, err := s.SubjectState(ctx, "mer_a", "nobody"); err == nil {
		t.Error("a subject without events has a state")
	}
	// Point reads of events and subjects: the file against the server.
	fileEvent, err := s.Event(ctx, "mer_a", "s-07", 2)
	if err != nil {
		t.Fatal(err)
	}
	fileSubject, err := s.Subject(ctx, "mer_a", "s-07")
	if err != nil {
		t.Fatal(err)
	}
	s.scanViaDriver = true
	driverEvent, err := s.Event(ctx, "mer_a", "s-07", 2)
	if err != nil {
		t.Fatal(err)
	}
	driverSubject, err := s.Subject(ctx, "mer_a", "s-07")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(driverEvent, fileEvent); diff != "" {
		t.Errorf("event (-driver +file):\n%s", diff)
	}
	if diff := cmp.Diff(driverSubject, fileSubject); diff != "" {
		t.Errorf("subject (-driver +file):\n%s", diff)
	}
}
