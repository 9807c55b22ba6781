package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/store/storetest"
)

func TestEventsAreAppendOnlyByKey(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	e := consent.Event{MerchantID: "mer_a", SubjectID: "c1", Seq: 1, Purpose: "newsletter", State: consent.Granted, Channel: consent.ChannelAPI, RecordedAt: time.Now().UTC().Truncate(time.Millisecond)}
	e.Hash = e.ComputeHash()
	if _, err := s.AppendEvents(ctx, []consent.Event{e}, consent.SubjectState{}); err != nil {
		t.Fatal(err)
	}
	e2 := e
	e2.State = consent.Withdrawn
	if n, err := s.AppendEvents(ctx, []consent.Event{e2}, consent.SubjectState{}); n.N != 0 || !apperr.Is(err, apperr.Conflict) {
		t.Fatalf("second event with seq 1: got %v, want Conflict", err)
	}
	got, err := s.Event(ctx, "mer_a", "c1", 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != consent.Granted || got.Hash != e.Hash || !got.RecordedAt.Equal(e.RecordedAt) {
		t.Fatalf("event changed: %+v", got)
	}
	if _, err := s.Event(ctx, "mer_b", "c1", 1); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("other merchant's event: got %v, want NotFound", err)
	}
}

func TestSaveRecordNeverGoesBack(t *testing.T) {
	s := storetest.OpenShared(t) // the embedded store keeps no projections
	ctx := context.Background()
	rec := consent.SubjectState{MerchantID: "mer_a", SubjectID: "c1", Seq: 5, HeadHash: "h5", Purposes: map[string]consent.PurposeState{"newsletter": {State: consent.Granted, Seq: 5}}}
	if err := s.SaveSubjectState(ctx, rec); err != nil {
		t.Fatal(err)
	}
	old := rec
	old.Seq, old.HeadHash = 4, "h4"
	if err := s.SaveSubjectState(ctx, old); err != nil {
		t.Fatal(err)
	}
	got, err := s.SubjectState(ctx, "mer_a", "c1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq != 5 || got.HeadHash != "h5" {
		t.Fatalf("projection went back to %d", got.Seq)
	}
}
