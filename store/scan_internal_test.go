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

// TestFileScansMatchDriverScans checks the embedded store's direct file
// reads against the same scans through the server, on the same data.
func TestFileScansMatchDriverScans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, Config{DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	at := time.Date(2026, 3, 4, 5, 6, 7, 891_000_000, time.UTC)
	for i := range 30 {
		rec := consent.SubjectState{MerchantID: "mer_a", SubjectID: fmt.Sprintf("s-%02d", i)}
		for seq := int64(1); seq <= int64(1+i%4); seq++ {
			e := consent.Event{MerchantID: rec.MerchantID, SubjectID: rec.SubjectID, Seq: seq, Purpose: []string{"newsletter", "ünïcode_ok", "recs"}[seq%3],
				State: consent.Granted, NoticeVersion: 2, Channel: consent.ChannelCenter, Actor: `quote " and \ backslash`, RecordedAt: at.Add(time.Duration(seq) * time.Hour), PrevHash: rec.HeadHash}
			e.Hash = e.ComputeHash()
			if _, err := s.AppendEvents(ctx, []consent.Event{e}); err != nil {
				t.Fatal(err)
			}
			rec = rec.Next(e)
		}
		if i%5 != 0 { // some subjects have events but no projection
			if err := s.SaveSubjectState(ctx, rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	collect := func() []consent.SubjectState {
		var recs []consent.SubjectState
		if err := s.EachSubjectState(ctx, func(r consent.SubjectState) error { recs = append(recs, r); return nil }); err != nil {
			t.Fatal(err)
		}
		sort.Slice(recs, func(i, j int) bool { return recs[i].SubjectID < recs[j].SubjectID })
		return recs
	}
	fileRecs := collect()
	s.scanViaDriver = true
	driverRecs := collect()
	if len(fileRecs) != 24 {
		t.Fatalf("file scan found %d records, want 24", len(fileRecs))
	}
	if diff := cmp.Diff(driverRecs, fileRecs); diff != "" {
		t.Errorf("records differ (-driver +file):\n%s", diff)
	}
}
