package handlers_test

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/fineline/fineline/consent"
)

type changesPage struct {
	Changes []eventJSON `json:"changes"`
	Next    string      `json:"next"`
	HasMore bool        `json:"has_more"`
}

// readChanges pages through the feed from after with pages of limit and
// returns every event and the last cursor.
func readChanges(e *testEnv, key, after string, limit int) ([]eventJSON, string) {
	e.t.Helper()
	var all []eventJSON
	for range 10_000 {
		var p changesPage
		e.mustStatus(e.do("GET", fmt.Sprintf("/v1/changes?after=%s&limit=%d", url.QueryEscape(after), limit), key, ""), 200).json(e.t, &p)
		if p.Next == "" {
			e.t.Fatal("a page without next")
		}
		all = append(all, p.Changes...)
		after = p.Next
		if len(p.Changes) == 0 {
			if p.HasMore {
				e.t.Fatal("an empty page says there is more")
			}
			return all, after
		}
	}
	e.t.Fatal("the feed does not end")
	return nil, ""
}

func TestChangeFeedPagesEveryEventOnceInOrder(t *testing.T) {
	e := newTestEnv(t)
	ctx := context.Background()
	// Some batches of several events (one subject, three purposes at once),
	// written concurrently so that batches group several subjects, and one
	// write of merchant B in between.
	var wg sync.WaitGroup
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := e.srv.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merchA.ID, SubjectID: fmt.Sprintf("s%02d", i), Channel: consent.ChannelAPI, Actor: "test",
				Requests: []consent.Request{{Purpose: "newsletter", State: consent.Granted}, {Purpose: "recommendations", State: consent.Granted}, {Purpose: "partner_sharing", State: consent.Denied}}})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	e.mustStatus(e.do("PUT", "/v1/subjects/b1/consents/newsletter", e.keyB, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/s03/consents/newsletter", e.keyA, `{"state":"withdrawn"}`), 201)

	whole, end := readChanges(e, e.keyA, "", 1000)
	if len(whole) != 37 {
		t.Fatalf("the feed has %d events of A, want 37", len(whole))
	}
	seen := map[string]bool{}
	last := map[string]int64{}
	for _, ev := range whole {
		k := fmt.Sprintf("%s/%d", ev.Subject, ev.Seq)
		if seen[k] || ev.Merchant != e.merchA.ID {
			t.Fatalf("event %s repeated or not A's: %+v", k, ev)
		}
		seen[k] = true
		if ev.Seq != last[ev.Subject]+1 {
			t.Fatalf("%s's events out of order: %d after %d", ev.Subject, ev.Seq, last[ev.Subject])
		}
		last[ev.Subject] = ev.Seq
		if ev.Hash == "" || ev.Purpose == "" || ev.State == "" || ev.Channel != "api" || ev.NoticeVersion != 1 || ev.RecordedAt.IsZero() {
			t.Fatalf("an item lacks what a receiver needs: %+v", ev)
		}
	}
	if w := whole[len(whole)-1]; w.Subject != "s03" || w.State != "withdrawn" {
		t.Fatalf("the last change is %+v, want s03's withdrawal", w)
	}
	// Any page size gives the same sequence, pages ending inside batches.
	for _, limit := range []int{1, 2, 5, 7} {
		got, _ := readChanges(e, e.keyA, "", limit)
		if len(got) != len(whole) {
			t.Fatalf("pages of %d give %d events, want %d", limit, len(got), len(whole))
		}
		for i := range got {
			if got[i].Hash != whole[i].Hash {
				t.Fatalf("pages of %d: event %d differs", limit, i)
			}
		}
	}
	// Resuming from the end gives only what came after.
	more, _ := readChanges(e, e.keyA, end, 3)
	if len(more) != 0 {
		t.Fatalf("the end cursor gives %d events again", len(more))
	}
	e.mustStatus(e.do("PUT", "/v1/subjects/s05/consents/recommendations", e.keyA, `{"state":"withdrawn"}`), 201)
	more, _ = readChanges(e, e.keyA, end, 3)
	if len(more) != 1 || more[0].Subject != "s05" || more[0].State != "withdrawn" {
		t.Fatalf("after the end: %+v, want s05's withdrawal alone", more)
	}
	// B's feed is B's alone.
	bs, _ := readChanges(e, e.keyB, "", 10)
	if len(bs) != 1 || bs[0].Subject != "b1" {
		t.Fatalf("B's feed: %+v", bs)
	}
}

func TestChangeFeedRefusesBadCursorsAndLimits(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/x/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	var p changesPage
	e.mustStatus(e.do("GET", "/v1/changes?limit=1", e.keyA, ""), 200).json(t, &p)
	if len(p.Changes) != 1 {
		t.Fatalf("want A's one change: %+v", p)
	}
	// A's cursor is not B's: refused, not silently applied to B's feed.
	if code := e.mustStatus(e.do("GET", "/v1/changes?after="+url.QueryEscape(p.Next), e.keyB, ""), 400).errorCode(t); code != "invalid_cursor" {
		t.Fatalf("another merchant's cursor: %s", code)
	}
	for _, q := range []string{"after=not-a-cursor", "after=AQ", "after=" + url.QueryEscape(p.Next+"AA"), "after=%00"} {
		if code := e.mustStatus(e.do("GET", "/v1/changes?"+q, e.keyA, ""), 400).errorCode(t); code != "invalid_cursor" {
			t.Fatalf("%s: %s", q, code)
		}
	}
	for _, q := range []string{"limit=0", "limit=1001", "limit=x", "limit=1&limit=2", "types=consent.granted,nope", "types=granted", "After=x"} {
		if code := e.mustStatus(e.do("GET", "/v1/changes?"+q, e.keyA, ""), 400).errorCode(t); code != "invalid_query" {
			t.Fatalf("%s: %s", q, code)
		}
	}
	e.mustStatus(e.do("GET", "/v1/changes", "", ""), 401)
}

func TestChangeFeedFiltersByType(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/x/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/y/consents/newsletter", e.keyA, `{"state":"denied"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/x/consents/newsletter", e.keyA, `{"state":"withdrawn"}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/z/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	var p struct {
		Changes []struct {
			Type    string `json:"type"`
			Subject string `json:"subject"`
		} `json:"changes"`
		Next string `json:"next"`
	}
	e.mustStatus(e.do("GET", "/v1/changes?types=consent.withdrawn,consent.denied&limit=1", e.keyA, ""), 200).json(t, &p)
	if len(p.Changes) != 1 || p.Changes[0].Subject != "y" || p.Changes[0].Type != "consent.denied" {
		t.Fatalf("first filtered page: %+v", p.Changes)
	}
	first := p.Next
	e.mustStatus(e.do("GET", "/v1/changes?types=consent.withdrawn,consent.denied&after="+url.QueryEscape(first), e.keyA, ""), 200).json(t, &p)
	if len(p.Changes) != 1 || p.Changes[0].Subject != "x" || p.Changes[0].Type != "consent.withdrawn" {
		t.Fatalf("second filtered page: %+v", p.Changes)
	}
	// The filtered page passed over z's grant and its cursor is past it;
	// the first page's cursor stood right after y's denial.
	e.mustStatus(e.do("GET", "/v1/changes?after="+url.QueryEscape(p.Next), e.keyA, ""), 200).json(t, &p)
	if len(p.Changes) != 0 {
		t.Fatalf("after the filtered pages: %+v", p.Changes)
	}
	e.mustStatus(e.do("GET", "/v1/changes?after="+url.QueryEscape(first), e.keyA, ""), 200).json(t, &p)
	if len(p.Changes) != 2 || p.Changes[0].Subject != "x" || p.Changes[1].Subject != "z" || p.Changes[1].Type != "consent.granted" {
		t.Fatalf("unfiltered after the first page: %+v", p.Changes)
	}
}
