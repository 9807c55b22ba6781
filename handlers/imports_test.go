package handlers_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/merchants"
)

type importLineResult struct {
	Line   int    `json:"line"`
	Result string `json:"result"`
	Reason string `json:"reason"`
	Seq    int64  `json:"seq"`
}

type importAnswer struct {
	Totals struct {
		Lines     int `json:"lines"`
		Imported  int `json:"imported"`
		Duplicate int `json:"duplicate"`
		Unchanged int `json:"unchanged"`
		Refused   int `json:"refused"`
	} `json:"totals"`
	Lines []importLineResult `json:"lines"`
}

type importRefusal struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Lines   []struct {
			Line    int    `json:"line"`
			Reason  string `json:"reason"`
			Message string `json:"message"`
		} `json:"lines"`
	} `json:"error"`
}

// importLine is one NDJSON line of an import.
func importLine(subject, purpose, state string, givenAt time.Time, source string, proof ...string) string {
	m := map[string]string{"subject": subject, "purpose": purpose, "state": state, "given_at": givenAt.Format(time.RFC3339Nano), "source": source}
	if len(proof) > 0 {
		m["proof"] = proof[0]
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// postImport sends lines as one NDJSON body with key.
func (e *testEnv) postImport(key string, lines ...string) response {
	e.t.Helper()
	return e.do("POST", "/v1/imports", key, strings.Join(lines, "\n")+"\n", "Content-Type", "application/x-ndjson")
}

func (e *testEnv) mustImport(key string, lines ...string) importAnswer {
	e.t.Helper()
	var a importAnswer
	e.mustStatus(e.postImport(key, lines...), 200).json(e.t, &a)
	return a
}

func results(a importAnswer) []string {
	out := make([]string, len(a.Lines))
	for i, l := range a.Lines {
		out[i] = fmt.Sprintf("%d %s %s", l.Line, l.Result, l.Reason)
	}
	return out
}

func (e *testEnv) verifyChain(t *testing.T, subject string) int64 {
	t.Helper()
	n, err := e.srv.Ledger.VerifySubject(context.Background(), e.merchA.ID, subject)
	if err != nil {
		t.Fatalf("chain of %s: %v", subject, err)
	}
	return n
}

func TestImportTwiceGivesOneSetOfEvents(t *testing.T) {
	e := newTestEnv(t)
	t0 := time.Now().Add(-400 * 24 * time.Hour).UTC().Truncate(time.Second)
	lines := []string{
		importLine("imp-1", "newsletter", "granted", t0, "crm"),
		importLine("imp-1", "recommendations", "denied", t0, "crm"),
		importLine("imp-1", "newsletter", "withdrawn", t0.Add(time.Hour), "crm"),
		importLine("imp-2", "newsletter", "granted", t0.Add(90*time.Millisecond), "shopify"),
		importLine("imp-3", "partner_sharing", "granted", t0, "crm"),
		importLine("imp-3", "newsletter", "granted", t0, "crm"),
		importLine("imp-1", "newsletter", "granted", t0, "crm"), // line 1 again
	}
	first := e.mustImport(e.keyA, lines...)
	want := []string{"1 imported ", "2 imported ", "3 imported ", "4 imported ", "5 imported ", "6 imported ", "7 duplicate already_imported"}
	if d := cmp.Diff(want, results(first)); d != "" {
		t.Fatalf("first import (-want +got):\n%s", d)
	}
	if first.Totals.Lines != 7 || first.Totals.Imported != 6 || first.Totals.Duplicate != 1 {
		t.Errorf("totals %+v", first.Totals)
	}
	if first.Lines[2].Seq != 3 || first.Lines[3].Seq != 1 || first.Lines[6].Seq != 1 {
		t.Errorf("seqs: %+v", first.Lines)
	}
	second := e.mustImport(e.keyA, lines...)
	for i, l := range second.Lines {
		if l.Result != "duplicate" || l.Seq != first.Lines[i].Seq {
			t.Errorf("second import, line %d: %+v, want duplicate of seq %d", l.Line, l, first.Lines[i].Seq)
		}
	}
	if second.Totals.Duplicate != 7 || second.Totals.Imported != 0 {
		t.Errorf("second totals %+v", second.Totals)
	}
	for subject, n := range map[string]int64{"imp-1": 3, "imp-2": 1, "imp-3": 2} {
		if got := e.verifyChain(t, subject); got != n {
			t.Errorf("%s has %d events, want %d", subject, got, n)
		}
	}
	if r := e.reason(t, "imp-1", "newsletter"); r != "withdrawn" {
		t.Errorf("imp-1 newsletter: %s, want withdrawn (the later line)", r)
	}
	if r := e.reason(t, "imp-2", "newsletter"); r != "granted" {
		t.Errorf("imp-2 newsletter: %s, want granted", r)
	}
	// A grant of what is already granted and counting changes nothing.
	again := e.mustImport(e.keyA, importLine("imp-2", "newsletter", "granted", t0.Add(time.Hour), "pos"))
	if d := cmp.Diff([]string{"1 unchanged same_state"}, results(again)); d != "" {
		t.Errorf("grant of a granted purpose (-want +got):\n%s", d)
	}
}

func TestImportBadLineRefusesTheWholeRequest(t *testing.T) {
	e := newTestEnv(t)
	past := time.Now().Add(-24 * time.Hour).UTC()
	r := e.mustStatus(e.postImport(e.keyA,
		importLine("fine-1", "newsletter", "granted", past, "crm"),
		importLine("fine-2", "never_made", "granted", past, "crm"),
		importLine("-bad", "newsletter", "granted", past, "crm"),
		importLine("fine-3", "newsletter", "maybe", past, "crm"),
		importLine("fine-4", "newsletter", "granted", time.Now().Add(time.Hour), "crm"),
		importLine("fine-5", "newsletter", "granted", past, ""),
		importLine("fine-6", "newsletter", "granted", past, strings.Repeat("s", 101)),
		`{"subject":"fine-7","purpose":"newsletter","state":"granted","given_at":"yesterday","source":"crm"}`,
		`{"subject":"fine-8",`,
		"",
		importLine("fine-9", "newsletter", "granted", past, "crm"),
		`{"subject":"fine-10","purpose":"newsletter","state":"granted","source":"crm"}`,
		`["not an object"]`,
	), 400)
	var b importRefusal
	r.json(t, &b)
	if b.Error.Code != "invalid_lines" || !strings.Contains(b.Error.Message, "nothing was imported") {
		t.Errorf("error: %+v", b.Error)
	}
	var got []string
	for _, l := range b.Error.Lines {
		if l.Message == "" {
			t.Errorf("line %d without a message", l.Line)
		}
		got = append(got, fmt.Sprintf("%d %s", l.Line, l.Reason))
	}
	want := []string{"2 unknown_purpose", "3 invalid_subject", "4 invalid_state", "5 given_at_in_future", "6 invalid_source", "7 invalid_source",
		"8 invalid_given_at", "9 malformed_json", "12 invalid_given_at", "13 invalid_field"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("lines refused (-want +got):\n%s", d)
	}
	// Nothing was written: not the valid lines' subjects, not a change.
	for _, s := range []string{"fine-1", "fine-9"} {
		e.mustStatus(e.do("GET", "/v1/subjects/"+s, e.keyA, ""), 404)
	}
	if all, _ := readChanges(e, e.keyA, "", 100); len(all) != 0 {
		t.Errorf("the feed has %d changes after a refused import", len(all))
	}
}

func TestImportStrictJSONPerLine(t *testing.T) {
	e := newTestEnv(t)
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	r := e.mustStatus(e.postImport(e.keyA,
		`{"subject":"s1","purpose":"newsletter","state":"granted","given_at":"`+past+`","source":"crm","channel":"api"}`,
		`{"subject":"s2","purpose":"newsletter","state":"withdrawn","state":"granted","given_at":"`+past+`","source":"crm"}`,
		`{"Subject":"s3","purpose":"newsletter","state":"granted","given_at":"`+past+`","source":"crm"}`,
		`{"subject":"s4","purpose":"newsletter","state":"granted","given_at":"`+past+`","source":"crm"} {}`,
		`{"subject":"s5","purpose":"newsletter","state":"granted","given_at":"`+past+`","source":"crm"}`,
	), 400)
	var b importRefusal
	r.json(t, &b)
	var got []string
	for _, l := range b.Error.Lines {
		got = append(got, fmt.Sprintf("%d %s", l.Line, l.Reason))
	}
	if d := cmp.Diff([]string{"1 unknown_field", "2 duplicate_field", "3 unknown_field", "4 malformed_json"}, got); d != "" {
		t.Errorf("lines refused (-want +got):\n%s", d)
	}
	e.mustStatus(e.do("GET", "/v1/subjects/s5", e.keyA, ""), 404)
}

func TestImportSensitivePurposeNeedsProof(t *testing.T) {
	e := newTestEnv(t)
	past := time.Now().Add(-30 * 24 * time.Hour).UTC()
	a := e.mustImport(e.keyA,
		importLine("pat-1", "wellness_tips", "granted", past, "clinic"),
		importLine("pat-1", "newsletter", "granted", past, "clinic"),
		importLine("pat-2", "wellness_tips", "granted", past, "clinic", "   "),
		importLine("pat-3", "wellness_tips", "granted", past, "clinic", "signed form v3, ref 8812"),
		importLine("pat-4", "wellness_tips", "withdrawn", past, "clinic"),
	)
	want := []string{"1 refused proof_required", "2 imported ", "3 refused proof_required", "4 imported ", "5 imported "}
	if d := cmp.Diff(want, results(a)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if a.Totals.Refused != 2 || a.Totals.Imported != 3 {
		t.Errorf("totals %+v", a.Totals)
	}
	if r := e.reason(t, "pat-1", "wellness_tips"); r != "no_record" {
		t.Errorf("pat-1 wellness_tips: %s, want no_record", r)
	}
	if r := e.reason(t, "pat-3", "wellness_tips"); r != "granted" {
		t.Errorf("pat-3 wellness_tips: %s, want granted", r)
	}
	evs := e.eventsAfter(t, "pat-3", 0)
	if len(evs) != 1 || evs[0].Proof != "signed form v3, ref 8812" || evs[0].Source != "clinic" {
		t.Errorf("pat-3 events: %+v", evs)
	}
	e.mustStatus(e.do("GET", "/v1/subjects/pat-2", e.keyA, ""), 404) // only a refused line: not created
	e.verifyChain(t, "pat-3")
}

func TestImportOlderDecisionDoesNotOverwriteNewer(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("PUT", "/v1/subjects/ola/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	t1 := time.Now().Add(-10 * 24 * time.Hour).UTC()
	a := e.mustImport(e.keyA,
		importLine("ola", "newsletter", "withdrawn", t1, "crm"),
		importLine("ola", "recommendations", "granted", t1, "crm"),
		importLine("ola", "recommendations", "denied", t1.Add(-time.Hour), "crm"),
		importLine("ola", "recommendations", "denied", t1.Add(time.Hour), "crm"),
	)
	want := []string{"1 refused newer_decision_exists", "2 imported ", "3 refused newer_decision_exists", "4 imported "}
	if d := cmp.Diff(want, results(a)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if a.Lines[0].Seq != 1 || a.Lines[2].Seq != 2 {
		t.Errorf("a refused line names the newer decision: %+v", a.Lines)
	}
	if r := e.reason(t, "ola", "newsletter"); r != "granted" {
		t.Errorf("newsletter: %s, want granted (the API's newer grant stands)", r)
	}
	if r := e.reason(t, "ola", "recommendations"); r != "not_granted" {
		t.Errorf("recommendations: %s, want not_granted", r)
	}
	// The same file again: the imported lines are duplicates (even the
	// first grant, older than the denial after it), the older ones still refused.
	again := e.mustImport(e.keyA,
		importLine("ola", "newsletter", "withdrawn", t1, "crm"),
		importLine("ola", "recommendations", "granted", t1, "crm"),
		importLine("ola", "recommendations", "denied", t1.Add(-time.Hour), "crm"),
		importLine("ola", "recommendations", "denied", t1.Add(time.Hour), "crm"),
	)
	want = []string{"1 refused newer_decision_exists", "2 duplicate already_imported", "3 refused newer_decision_exists", "4 duplicate already_imported"}
	if d := cmp.Diff(want, results(again)); d != "" {
		t.Errorf("again (-want +got):\n%s", d)
	}
	if n := e.verifyChain(t, "ola"); n != 3 {
		t.Errorf("%d events, want 3", n)
	}
	// A decision newer than every imported one applies.
	later := e.mustImport(e.keyA, importLine("ola", "recommendations", "granted", t1.Add(2*time.Hour), "crm"))
	if d := cmp.Diff([]string{"1 imported "}, results(later)); d != "" {
		t.Errorf("newer line (-want +got):\n%s", d)
	}
}

func TestImportTouchesOnlyTheKeysMerchant(t *testing.T) {
	e := newTestEnv(t)
	e.mustStatus(e.do("POST", "/v1/purposes", e.keyA, `{"key":"a_only","texts":{"en":{"name":"A only","statement":"Something only shop A does."}}}`), 201)
	e.mustStatus(e.do("PUT", "/v1/subjects/shared-id/consents/newsletter", e.keyA, `{"state":"granted"}`), 201)
	past := time.Now().Add(-time.Hour).UTC()
	var b importRefusal
	e.mustStatus(e.postImport(e.keyB, importLine("shared-id", "a_only", "granted", past, "crm")), 400).json(t, &b)
	if len(b.Error.Lines) != 1 || b.Error.Lines[0].Reason != "unknown_purpose" {
		t.Errorf("B importing A's purpose: %+v", b.Error)
	}
	a := e.mustImport(e.keyB, importLine("shared-id", "newsletter", "withdrawn", past, "crm"))
	if d := cmp.Diff([]string{"1 imported "}, results(a)); d != "" {
		t.Errorf("B's own subject (-want +got):\n%s", d)
	}
	if r := e.reason(t, "shared-id", "newsletter"); r != "granted" {
		t.Errorf("A's subject: %s, want granted (untouched by B)", r)
	}
	if n := e.eventCount(t, "shared-id"); n != 1 {
		t.Errorf("A's subject has %d events, want 1", n)
	}
	for _, ch := range func() []eventJSON { all, _ := readChanges(e, e.keyA, "", 100); return all }() {
		if ch.Channel == "import" {
			t.Errorf("A's feed has B's import: %+v", ch)
		}
	}
}

func TestImportLimitsAndScope(t *testing.T) {
	e := newTestEnv(t)
	past := time.Now().Add(-time.Hour).UTC()
	line := importLine("x", "newsletter", "granted", past, "crm")
	// More lines than one request takes: 413 before anything is decided.
	many := make([]string, 100_001)
	for i := range many {
		many[i] = line
	}
	r := e.mustStatus(e.postImport(e.keyA, many...), 413)
	if code := r.errorCode(t); code != "too_many_lines" || !strings.Contains(string(r.body), "split") {
		t.Errorf("over the line limit: %s", r.body)
	}
	e.mustStatus(e.do("GET", "/v1/subjects/x", e.keyA, ""), 404)
	// A line over 16 KiB is that line's problem.
	var b importRefusal
	e.mustStatus(e.postImport(e.keyA, importLine("x", "newsletter", "granted", past, "crm", strings.Repeat("p", 17<<10))), 400).json(t, &b)
	if len(b.Error.Lines) != 1 || b.Error.Lines[0].Reason != "line_too_long" {
		t.Errorf("long line: %+v", b.Error)
	}
	if code := e.mustStatus(e.postImport(e.keyA, importLine("x", "newsletter", "granted", past, "crm", strings.Repeat("p", 1001))), 400).errorCode(t); code != "invalid_lines" {
		t.Errorf("long proof: %s", code)
	}
	if code := e.mustStatus(e.do("POST", "/v1/imports", e.keyA, line), 415).errorCode(t); code != "unsupported_media_type" {
		t.Errorf("JSON content type: %s", code)
	}
	if code := e.mustStatus(e.do("POST", "/v1/imports", e.keyA, "\n\n", "Content-Type", "application/x-ndjson"), 400).errorCode(t); code != "empty_import" {
		t.Errorf("no lines: %s", code)
	}
	_, readOnly, err := e.srv.Merchants.CreateKey(context.Background(), e.merchA.ID, "reader", []merchants.Scope{merchants.ScopeConsentRead})
	if err != nil {
		t.Fatal(err)
	}
	e.mustStatus(e.postImport(readOnly, line), 403)
	e.mustStatus(e.postImport("", line), 401)
}

func TestImportKeepsGivenAtBesideRecordedAt(t *testing.T) {
	e := newTestEnv(t)
	before := time.Now().UTC().Add(-time.Second)
	given := time.Date(2023, 3, 14, 15, 9, 26, 535_000_000, time.FixedZone("CET", 3600))
	e.mustImport(e.keyA, importLine("gus", "newsletter", "granted", given, "newsletter-signup-2023", "double opt-in 2023-03-14"))
	e.mustStatus(e.do("PUT", "/v1/subjects/gus/consents/recommendations", e.keyA, `{"state":"granted"}`), 201)
	check := func(where string, evs []eventJSON) {
		t.Helper()
		if len(evs) != 2 {
			t.Fatalf("%s: %d events, want 2", where, len(evs))
		}
		imp, api := evs[0], evs[1]
		if !imp.GivenAt.Equal(given) || imp.RecordedAt.Before(before) || imp.Channel != "import" || imp.Source != "newsletter-signup-2023" ||
			imp.Proof != "double opt-in 2023-03-14" || !strings.HasPrefix(imp.Actor, "api_key:") || imp.NoticeVersion != 0 {
			t.Errorf("%s: imported event %+v", where, imp)
		}
		if !api.GivenAt.IsZero() || api.Source != "" || api.Channel != "api" {
			t.Errorf("%s: API event %+v", where, api)
		}
	}
	check("events", e.eventsAfter(t, "gus", 0))
	all, _ := readChanges(e, e.keyA, "", 100)
	check("changes", all)
	raw := e.mustStatus(e.do("GET", "/v1/subjects/gus/events", e.keyA, ""), 200).body
	if !strings.Contains(string(raw), `"given_at":"2023-03-14T14:09:26.535Z"`) || strings.Count(string(raw), `"given_at"`) != 1 {
		t.Errorf("given_at as sent: %s", raw)
	}
	if n := e.verifyChain(t, "gus"); n != 2 {
		t.Errorf("%d events", n)
	}
}

func TestImportedWithdrawalErasesVolunteeredData(t *testing.T) {
	e := newTestEnv(t)
	e.addValueExchange(t)
	ctx := context.Background()
	if _, err := e.srv.Ledger.Apply(ctx, consent.Choices{MerchantID: e.merchA.ID, SubjectID: "vic", Channel: consent.ChannelAPI, Actor: "test",
		Requests: []consent.Request{{Purpose: "birthday_reward", State: consent.Granted}}, Values: map[string]string{"birthday": "--07-19"}}); err != nil {
		t.Fatal(err)
	}
	if a := e.subjectFields(t, "vic", "birthday_reward"); len(a.Fields) != 1 {
		t.Fatalf("before: %+v", a)
	}
	a := e.mustImport(e.keyA, importLine("vic", "birthday_reward", "withdrawn", time.Now(), "crm"))
	if d := cmp.Diff([]string{"1 imported "}, results(a)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	if a := e.subjectFields(t, "vic", "birthday_reward"); a.Allowed || len(a.Fields) != 0 {
		t.Errorf("after an imported withdrawal the merchant reads %+v", a)
	}
	if _, err := e.store.Value(ctx, e.merchA.ID, "vic", "birthday"); err == nil {
		t.Error("the birthday is still stored")
	}
	evs := e.eventsAfter(t, "vic", 0)
	if last := evs[len(evs)-1]; last.State != "erased" || last.Field != "birthday" || last.Channel != "import" {
		t.Errorf("last event %+v, want the birthday erased through the import", last)
	}
	e.verifyChain(t, "vic")
}

// TestImportBesideConcurrentWrites: withdrawals through the API while an
// import grants the same purposes an hour back: whichever lands first, the
// withdrawal (the newer decision) stands, and every chain verifies.
func TestImportBesideConcurrentWrites(t *testing.T) {
	e := newTestEnv(t)
	given := time.Now().Add(-time.Hour).UTC()
	var lines []string
	for i := range 60 {
		lines = append(lines, importLine(fmt.Sprintf("cc-%02d", i), "newsletter", "granted", given, "crm"))
	}
	done := make(chan importAnswer)
	go func() {
		var a importAnswer
		r := e.postImport(e.keyA, lines...)
		if r.status != 200 {
			t.Errorf("import: %d %s", r.status, r.body)
		} else {
			r.json(t, &a)
		}
		done <- a
	}()
	for i := range 60 {
		e.mustStatus(e.do("PUT", fmt.Sprintf("/v1/subjects/cc-%02d/consents/newsletter", i), e.keyA, `{"state":"withdrawn"}`), 201)
	}
	a := <-done
	if a.Totals.Imported+a.Totals.Refused != 60 {
		t.Errorf("totals %+v", a.Totals)
	}
	for i, l := range a.Lines {
		s := fmt.Sprintf("cc-%02d", i)
		if l.Result == "refused" && l.Reason != "newer_decision_exists" {
			t.Errorf("%s: %+v", s, l)
		}
		if r := e.reason(t, s, "newsletter"); r != "withdrawn" {
			t.Errorf("%s: %s, want withdrawn", s, r)
		}
		e.verifyChain(t, s)
	}
}
