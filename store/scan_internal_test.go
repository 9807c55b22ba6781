package store

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/consent"
)

// TestProjectionsInTheFileFollowTheEvents: on the embedded store each
// projection is written with its events in one transaction and read
// straight from the file. Point reads, bulk reads and the whole-file scan
// give what folding the events gives; a refused append leaves it alone;
// it reads the same through the server; and point reads of events and
// subjects match reads through the server.
func TestProjectionsInTheFileFollowTheEvents(t *testing.T) {
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
			n = 40
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
	// An append whose event is taken leaves the projection where it was.
	taken := consent.Event{MerchantID: "mer_a", SubjectID: "s-03", Seq: 1, Purpose: "newsletter", State: consent.Withdrawn, Channel: consent.ChannelAPI, RecordedAt: at}
	taken.Hash = taken.ComputeHash()
	if res, err := s.AppendEvents(ctx, []consent.Event{taken}, want[3].Next(taken)); res.N != 0 || err == nil {
		t.Fatalf("an event with a taken number: %+v %v", res, err)
	}
	if got, err := s.SubjectState(ctx, "mer_a", "s-03"); err != nil || got.Seq != want[3].Seq {
		t.Fatalf("a refused append moved the projection to %d (%v)", got.Seq, err)
	}
	// The projection the file holds reads the same through the server.
	var viaServer recordDoc
	if err := s.db.Collection(collRecords).FindOne(ctx, bson.D{{Key: "_id", Value: "mer_a/s-07"}}).Decode(&viaServer); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want[7], viaServer.state()); diff != "" {
		t.Errorf("projection through the server (-want +got):\n%s", diff)
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
