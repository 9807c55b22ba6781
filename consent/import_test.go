package consent_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/notices"
	"github.com/fineline/fineline/store/storetest"
)

func importOf(lines ...consent.ImportLine) consent.Import {
	for i := range lines {
		lines[i].Line = i + 1
	}
	return consent.Import{MerchantID: merchant, Actor: "test", Lines: lines}
}

// TestImportRacingInstancesAppendOnce: two instances import the same file
// at the same moment (their locks do not see each other, so they race on
// the unique key): each subject gets one event per line, every line is
// imported by one of them and a duplicate for the other, and every chain
// verifies.
func TestImportRacingInstancesAppendOnce(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other := consent.NewLedger(e.store, e.store, e.store, &notices.Service{Store: e.store, Now: time.Now}, time.Now, storetest.Logger(), consent.Options{})
	given := time.Date(2026, 4, 1, 8, 0, 0, 0, time.UTC)
	var lines []consent.ImportLine
	for i := range 40 {
		s := fmt.Sprintf("race-%02d", i%10)
		lines = append(lines, consent.ImportLine{SubjectID: s, Purpose: []string{"newsletter", "recommendations"}[i%2], State: []consent.State{consent.Granted, consent.Withdrawn}[i/10%2],
			GivenAt: given.Add(time.Duration(i) * time.Minute), Source: "crm"})
	}
	imp := importOf(lines...)
	var (
		wg      sync.WaitGroup
		reports [2]consent.ImportReport
		errs    [2]error
	)
	for i, l := range []*consent.Ledger{e.ledger, other} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = l.Import(ctx, imp)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	for i := range lines {
		a, b := reports[0].Lines[i], reports[1].Lines[i]
		got := map[consent.ImportResult]int{a.Result: 1}
		got[b.Result]++
		if got[consent.ResultImported] != 1 || got[consent.ResultDuplicate] != 1 || a.Seq != b.Seq {
			t.Errorf("line %d: %+v and %+v, want imported once and a duplicate of the same event", i+1, a, b)
		}
	}
	for i := range 10 {
		n, err := e.ledger.VerifySubject(ctx, merchant, fmt.Sprintf("race-%02d", i))
		if err != nil || n != 4 {
			t.Errorf("race-%02d: %d events, %v; want 4", i, n, err)
		}
	}
}

// TestImportRecordsTheNoticeInForceWhenGiven: an imported decision is
// recorded under the notice version in force when the subject decided,
// not the one in force now.
func TestImportRecordsTheNoticeInForceWhenGiven(t *testing.T) {
	e := newEnv(t) // notice v1 from e.now
	ctx := context.Background()
	published := e.now
	e.now = e.now.Add(30 * 24 * time.Hour)
	rep, err := e.ledger.Import(ctx, importOf(
		consent.ImportLine{SubjectID: "ann", Purpose: "newsletter", State: consent.Granted, GivenAt: published.Add(-time.Hour), Source: "crm"},
		consent.ImportLine{SubjectID: "bob", Purpose: "newsletter", State: consent.Granted, GivenAt: published.Add(time.Hour), Source: "crm"},
	))
	if err != nil || rep.Imported != 2 {
		t.Fatalf("%+v %v", rep, err)
	}
	for subject, want := range map[string]int{"ann": 0, "bob": 1} {
		ev, err := e.ledger.Event(ctx, merchant, subject, 1)
		if err != nil {
			t.Fatal(err)
		}
		if ev.NoticeVersion != want || ev.Channel != consent.ChannelImport || ev.Actor != "test" || ev.Source != "crm" || !ev.RecordedAt.Equal(e.now) {
			t.Errorf("%s: %+v, want notice version %d", subject, ev, want)
		}
	}
}

// TestImportIsValidatedWhole: one invalid line refuses the import and
// nothing is written; the problems name every invalid line.
func TestImportIsValidatedWhole(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	ok := consent.ImportLine{SubjectID: "val", Purpose: "newsletter", State: consent.Granted, GivenAt: e.now.Add(-time.Hour), Source: "crm"}
	future, noSource, wrongState := ok, ok, ok
	future.GivenAt = e.now.Add(time.Minute)
	noSource.Source = " "
	wrongState.State = consent.Provided
	_, err := e.ledger.Import(ctx, importOf(ok, future, noSource, wrongState))
	var le *consent.InvalidLinesError
	if !errors.As(err, &le) {
		t.Fatalf("got %v, want InvalidLinesError", err)
	}
	var got []string
	for _, p := range le.Problems {
		got = append(got, fmt.Sprintf("%d %s", p.Line, p.Code))
	}
	if fmt.Sprint(got) != "[2 given_at_in_future 3 invalid_source 4 invalid_state]" {
		t.Errorf("problems %v", got)
	}
	if st, err := e.store.SubjectState(ctx, merchant, "val"); err == nil {
		t.Errorf("a refused import wrote %+v", st)
	}
	if _, err := e.store.Subject(ctx, merchant, "val"); err == nil {
		t.Error("a refused import created the subject")
	}
}

// TestImportLongHistoryOfOneSubject: hundreds of lines for one subject
// (more than one append takes) land in order; the same lines again, in
// reverse order, are all duplicates.
func TestImportLongHistoryOfOneSubject(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	given := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	var lines []consent.ImportLine
	for i := range 300 {
		lines = append(lines, consent.ImportLine{SubjectID: "long", Purpose: "newsletter", State: []consent.State{consent.Granted, consent.Withdrawn}[i%2],
			GivenAt: given.Add(time.Duration(i) * time.Hour), Source: "crm"})
	}
	rep, err := e.ledger.Import(ctx, importOf(lines...))
	if err != nil || rep.Imported != 300 {
		t.Fatalf("first: %d imported, %v", rep.Imported, err)
	}
	reversed := make([]consent.ImportLine, len(lines))
	for i, ln := range lines {
		reversed[len(lines)-1-i] = ln
	}
	rep, err = e.ledger.Import(ctx, importOf(reversed...))
	if err != nil || rep.Duplicates != 300 {
		t.Fatalf("again, reversed: %d duplicates, %v", rep.Duplicates, err)
	}
	for i, r := range rep.Lines {
		if r.Seq != int64(300-i) {
			t.Fatalf("line %d: %+v, want a duplicate of event %d", r.Line, r, 300-i)
		}
	}
	if n, err := e.ledger.VerifySubject(ctx, merchant, "long"); err != nil || n != 300 {
		t.Fatalf("%d events, %v", n, err)
	}
}
