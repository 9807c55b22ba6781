package consent

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/sync/errgroup"

	"github.com/fineline/fineline/apperr"
)

// Limits of an import.
const (
	// MaxImportLines is the most lines one import may hold.
	MaxImportLines = 100_000
	// MaxImportSource is the longest source name, in characters.
	MaxImportSource = 100
	// MaxImportProof is the longest proof, in characters.
	MaxImportProof = 1000
)

// importWorkers is how many subjects an import applies at once. The
// ledger groups appends made at the same moment into one commit, so
// subjects applied side by side share commits; each subject's lines are
// applied in order under its lock.
const importWorkers = 96

// importChunk is how many subjects an import prepares at once, in bulk,
// before applying them.
const importChunk = 1000

// maxImportAppend is the most events one append of an import writes: a
// store writes an append in one transaction, together with other writers'.
const maxImportAppend = 64

// ImportLine is one decision a subject made before the merchant used
// Fineline, as the merchant collected it.
type ImportLine struct {
	// Line is the line's number in the request, from 1.
	Line      int
	SubjectID string
	Purpose   string
	State     State
	// GivenAt is when the subject decided.
	GivenAt time.Time
	// Source names where the merchant collected the decision.
	Source string
	// Proof is the merchant's evidence of the decision; a sensitive purpose
	// is imported as granted only with one.
	Proof string
}

// Import is a set of past decisions a merchant brings in at once.
type Import struct {
	MerchantID string
	// Actor names who imports them ("api_key:<id>").
	Actor string
	Lines []ImportLine
}

// LineProblem is why one line makes a whole import invalid.
type LineProblem struct {
	Line int
	// Code is a stable reason, such as unknown_purpose or invalid_given_at.
	Code    string
	Message string
}

// InvalidLinesError refuses an import some of whose lines are invalid:
// nothing of it is written.
type InvalidLinesError struct {
	// Problems are in line order.
	Problems []LineProblem
}

// Error implements error.
func (e *InvalidLinesError) Error() string {
	if len(e.Problems) == 1 {
		return fmt.Sprintf("line %d is invalid (%s); nothing was imported", e.Problems[0].Line, e.Problems[0].Code)
	}
	return fmt.Sprintf("%d lines are invalid (the first is line %d: %s); nothing was imported", len(e.Problems), e.Problems[0].Line, e.Problems[0].Code)
}

// AppErr is the error as the HTTP layer shows it.
func (e *InvalidLinesError) AppErr() *apperr.Error {
	return &apperr.Error{Code: apperr.Invalid, Message: e.Error() + "; fix the lines listed and send the whole file again", Detail: CodeInvalidLines, Err: e}
}

// ImportResult is what an import did with one line.
type ImportResult string

// Results of an import line.
const (
	// ResultImported: the line was appended to the subject's chain.
	ResultImported ImportResult = "imported"
	// ResultDuplicate: the same decision (subject, purpose, given_at,
	// source) was imported before; nothing was appended.
	ResultDuplicate ImportResult = "duplicate"
	// ResultUnchanged: the subject's state already said so (a grant of a
	// purpose granted and counting, a refusal of a purpose that is off).
	ResultUnchanged ImportResult = "unchanged"
	// ResultRefused: the line was not applied; Reason says why.
	ResultRefused ImportResult = "refused"
)

// Reasons given with an import line's result.
const (
	// ReasonAlreadyImported comes with ResultDuplicate.
	ReasonAlreadyImported = "already_imported"
	// ReasonSameState comes with ResultUnchanged.
	ReasonSameState = "same_state"
	// ReasonProofRequired refuses a grant of a sensitive purpose without proof.
	ReasonProofRequired = "proof_required"
	// CodePurposeRetired (purpose_retired) refuses a grant of a retired purpose.
	// ReasonNewerDecisionExists refuses a decision older than the
	// subject's latest decision on the purpose.
	ReasonNewerDecisionExists = "newer_decision_exists"
)

// LineResult is what an import did with one line.
type LineResult struct {
	Line   int
	Result ImportResult
	Reason string
	// Seq is the event the line appended (imported), the one it repeats
	// (duplicate), or the one that decides the purpose (unchanged, and
	// refused as newer_decision_exists); 0 otherwise.
	Seq int64
}

// ImportReport is what an import did, line by line.
type ImportReport struct {
	// Lines are in line order.
	Lines []LineResult
	// Counts by result.
	Imported, Duplicates, Unchanged, Refused int
}

// ValidateImport checks every line of imp as Import does, writes nothing,
// and returns the problems of the invalid lines, in line order.
func (l *Ledger) ValidateImport(ctx context.Context, imp Import) ([]LineProblem, error) {
	_, problems, err := l.checkImport(ctx, imp)
	return problems, err
}

// Import brings in decisions subjects made before, through channel import,
// with the rules every channel follows (see Apply and plan). It checks the
// whole import first and writes nothing if any line is invalid (an
// *InvalidLinesError). Then, per subject, under the subject's lock and
// against the chain as it is there, each line in order is:
//
//   - refused (proof_required) when it grants a sensitive purpose without
//     proof: only explicit consent grants one, and the proof says it was;
//   - a duplicate when an event imported with the same purpose, given_at
//     and source is in the chain: importing a file twice appends once;
//   - refused (newer_decision_exists) when given_at is before the moment
//     of the subject's latest decision on the purpose: an old decision
//     never overwrites a newer one;
//   - unchanged when the state already says so (plan's rule);
//   - otherwise appended, under the notice version in force at given_at,
//     with given_at beside recorded_at.
//
// Subjects are applied side by side, each one's lines in one append. A
// store failure stops the import part way; importing the same lines again
// completes it, since what landed answers as duplicate.
func (l *Ledger) Import(ctx context.Context, imp Import) (ImportReport, error) {
	purposes, problems, err := l.checkImport(ctx, imp)
	if err != nil {
		return ImportReport{}, err
	}
	if len(problems) > 0 {
		return ImportReport{}, (&InvalidLinesError{Problems: problems}).AppErr()
	}
	lines := make([]ImportLine, len(imp.Lines))
	for i, ln := range imp.Lines {
		ln.GivenAt = ln.GivenAt.UTC().Truncate(time.Millisecond) // as hashed and stored
		ln.Proof = strings.TrimSpace(ln.Proof)
		lines[i] = ln
	}
	rep := ImportReport{Lines: make([]LineResult, len(lines))}
	// Each subject's lines, in order; subjects in order of first appearance.
	var order []string
	bySubject := map[string][]int{}
	for i, ln := range lines {
		rep.Lines[i].Line = ln.Line
		if purposes[ln.Purpose].Sensitive && ln.State == Granted && ln.Proof == "" {
			rep.Lines[i].Result, rep.Lines[i].Reason = ResultRefused, ReasonProofRequired
			continue
		}
		if purposes[ln.Purpose].Retired() && ln.State == Granted {
			rep.Lines[i].Result, rep.Lines[i].Reason = ResultRefused, CodePurposeRetired
			continue
		}
		if _, ok := bySubject[ln.SubjectID]; !ok {
			order = append(order, ln.SubjectID)
		}
		bySubject[ln.SubjectID] = append(bySubject[ln.SubjectID], i)
	}
	now := l.now().UTC().Truncate(time.Millisecond)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(importWorkers)
	// Chunks are prepared one ahead of the workers, which apply each
	// chunk's subjects once it is ready.
	ready := make(chan []string, 1)
	prepared := make(chan error, 1)
	go func() {
		defer close(ready)
		for lo := 0; lo < len(order); lo += importChunk {
			chunk := order[lo:min(lo+importChunk, len(order))]
			if err := l.prepareImport(gctx, imp.MerchantID, chunk, now); err != nil {
				prepared <- err
				cancel()
				return
			}
			select {
			case ready <- chunk:
			case <-gctx.Done():
				prepared <- gctx.Err()
				return
			}
		}
		prepared <- nil
	}()
	for chunk := range ready {
		for _, id := range chunk {
			g.Go(func() error {
				return l.importSubject(gctx, imp.MerchantID, id, imp.Actor, lines, bySubject[id], purposes, rep.Lines)
			})
		}
	}
	if err := g.Wait(); err != nil {
		return ImportReport{}, err
	}
	if err := <-prepared; err != nil {
		return ImportReport{}, err
	}
	for _, r := range rep.Lines {
		switch r.Result {
		case ResultImported:
			rep.Imported++
		case ResultDuplicate:
			rep.Duplicates++
		case ResultUnchanged:
			rep.Unchanged++
		default:
			rep.Refused++
		}
	}
	return rep, nil
}

// prepareImport readies a chunk of subjects, in bulk, before their lines
// are applied (while the chunk before is): it creates those that do not
// exist yet (Apply creates one under the lock; a subject with events
// exists) and puts their states in the cache, where Locked finds them, as
// a batch check does. Under the lock, the unique (subject, seq) key checks
// the state as it does for every write.
func (l *Ledger) prepareImport(ctx context.Context, merchantID string, ids []string, now time.Time) error {
	subs := make([]Subject, len(ids))
	for i, id := range ids {
		subs[i] = Subject{MerchantID: merchantID, ID: id, CreatedAt: now, UpdatedAt: now}
	}
	if err := l.subjects.CreateSubjects(ctx, subs); err != nil {
		return err
	}
	if l.mem.cache == nil {
		return nil
	}
	_, err := l.lookupMany(ctx, merchantID, ids)
	return err
}

// importSubject applies one subject's lines (idx into lines, in order)
// under the subject's lock, and writes their results into out.
func (l *Ledger) importSubject(ctx context.Context, merchantID, subjectID, actor string, lines []ImportLine, idx []int, purposes map[string]Purpose, out []LineResult) error {
	results := make([]LineResult, len(idx))
	var base int64 // the head the last attempt started from
	appended, _, err := l.Locked(ctx, merchantID, subjectID, func(tx *Tx) error {
		base = tx.st.Seq
		if tx.st.Erased() {
			for i, k := range idx {
				results[i] = LineResult{Line: lines[k].Line, Result: ResultRefused, Reason: CodeSubjectErased}
			}
			return nil
		}
		c := newChainReader(ctx, l, tx.st)
		next := tx.st
		var planned []Event
		for i, k := range idx {
			ln := lines[k]
			res, e, err := decideImport(c, next, ln, purposes[ln.Purpose], tx.terms, tx.now)
			if err != nil {
				return err
			}
			if e != nil {
				e.MerchantID, e.SubjectID, e.Seq = merchantID, subjectID, next.Seq+1
				e.Channel, e.Actor = ChannelImport, actor
				next = next.Next(*e)
				planned = append(planned, *e)
				c.plan(*e)
				res.Seq = e.Seq
			}
			res.Line = ln.Line
			results[i] = res
		}
		for lo := 0; lo < len(planned); lo += maxImportAppend {
			if err := tx.Append(ctx, planned[lo:min(lo+maxImportAppend, len(planned))]...); err != nil {
				return err
			}
		}
		var off []string
		for _, e := range planned {
			if e.State != Granted {
				off = append(off, e.Purpose)
			}
		}
		if l.keeper == nil || len(off) == 0 {
			return nil
		}
		// Data kept for a purpose goes with it, as on every channel.
		_, err := l.keeper.Keep(ctx, tx, nil, off, ChannelImport, actor)
		return err
	})
	if err != nil {
		return err
	}
	// A line whose event landed on an attempt that then had to be retried
	// (another instance wrote to the chain) finds it in the chain as a
	// duplicate: it is this import's all the same. (A line repeating an
	// earlier line of the same import stays a duplicate.)
	mine := map[int64]bool{}
	for _, e := range appended {
		mine[e.Seq] = true
	}
	for i, k := range idx {
		if r := results[i]; r.Result == ResultDuplicate && r.Seq <= base && mine[r.Seq] {
			results[i].Result, results[i].Reason = ResultImported, ""
		}
		out[k] = results[i]
	}
	return nil
}

// decideImport decides one import line against the subject's state next
// (the chain read through c, with what the import planned before it): the
// result, and the event to append if any (purpose, state, notice version,
// given_at, source and proof set).
func decideImport(c *chainReader, next SubjectState, ln ImportLine, p Purpose, terms Terms, now time.Time) (LineResult, *Event, error) {
	cur, decided := next.Purposes[ln.Purpose]
	if decided {
		latest, err := c.event(cur.Seq)
		if err != nil {
			return LineResult{}, nil, err
		}
		if sameImport(latest, ln) {
			return LineResult{Result: ResultDuplicate, Reason: ReasonAlreadyImported, Seq: cur.Seq}, nil, nil
		}
		if !ln.GivenAt.After(latest.DecidedAt()) {
			seq, err := c.findImported(ln)
			if err != nil {
				return LineResult{}, nil, err
			}
			if seq > 0 {
				return LineResult{Result: ResultDuplicate, Reason: ReasonAlreadyImported, Seq: seq}, nil, nil
			}
			if ln.GivenAt.Before(latest.DecidedAt()) {
				return LineResult{Result: ResultRefused, Reason: ReasonNewerDecisionExists, Seq: cur.Seq}, nil, nil
			}
		}
	}
	// The decision was taken under the notice in force when it was given;
	// plan decides, as for every channel, whether it changes anything.
	version := terms.InForce(ln.GivenAt)
	req := resolved{Request: Request{Purpose: ln.Purpose, State: ln.State, Explicit: ln.Proof != "", NoticeVersion: version}, p: p}
	events, _ := plan(next, []resolved{req}, terms, now, version)
	if len(events) == 0 {
		return LineResult{Result: ResultUnchanged, Reason: ReasonSameState, Seq: cur.Seq}, nil, nil
	}
	e := events[0]
	e.GivenAt, e.Source, e.Proof = ln.GivenAt, ln.Source, ln.Proof
	return LineResult{Result: ResultImported}, &e, nil
}

// importKey identifies an imported decision: its purpose, given_at (in
// milliseconds) and source, within one subject's chain.
type importKey struct {
	purpose, source string
	givenAt         int64
}

func keyOf(purpose string, givenAt time.Time, source string) importKey {
	return importKey{purpose: purpose, source: source, givenAt: givenAt.UnixMilli()}
}

// sameImport reports whether e imported ln's decision.
func sameImport(e Event, ln ImportLine) bool {
	return e.Field == "" && e.Channel == ChannelImport && !e.GivenAt.IsZero() && keyOf(e.Purpose, e.GivenAt, e.Source) == keyOf(ln.Purpose, ln.GivenAt, ln.Source)
}

// chainReader reads a subject's chain under its lock: the events in the
// store up to base.Seq, each read at most once, then those planned after
// them. It indexes the imported decisions it has seen by key, walking back
// from the head only as far as a lookup needs, so that a subject's lines
// cost one pass over its chain however many there are.
type chainReader struct {
	l    *Ledger
	ctx  context.Context
	base SubjectState
	read map[int64]Event
	// planned are the events decided after base.Seq.
	planned []Event
	// imported indexes the imported decisions of events low..base.Seq and
	// of the planned ones.
	imported map[importKey]int64
	// low is the lowest stored event indexed (base.Seq+1: none yet), and
	// lowAt when it was recorded.
	low   int64
	lowAt time.Time
}

func newChainReader(ctx context.Context, l *Ledger, base SubjectState) *chainReader {
	return &chainReader{l: l, ctx: ctx, base: base, read: map[int64]Event{}, imported: map[importKey]int64{}, low: base.Seq + 1}
}

// event returns event seq of the chain.
func (c *chainReader) event(seq int64) (Event, error) {
	if seq > c.base.Seq {
		return c.planned[seq-c.base.Seq-1], nil
	}
	if e, ok := c.read[seq]; ok {
		return e, nil
	}
	e, err := c.l.store.Event(c.ctx, c.base.MerchantID, c.base.SubjectID, seq)
	if err != nil {
		return Event{}, err
	}
	c.read[seq] = e
	return e, nil
}

// plan adds e, the next event, to the chain as read.
func (c *chainReader) plan(e Event) {
	c.planned = append(c.planned, e)
	c.index(e)
}

func (c *chainReader) index(e Event) {
	if e.Field == "" && e.Channel == ChannelImport && !e.GivenAt.IsZero() {
		k := keyOf(e.Purpose, e.GivenAt, e.Source)
		if _, ok := c.imported[k]; !ok {
			c.imported[k] = e.Seq
		}
	}
}

// findImported returns the event of the chain that imported ln's decision
// (same purpose, given_at and source), 0 if none. The stored chain is
// walked back from the head until an event recorded before given_at: an
// import is recorded after the decision it brings in, and so is every
// event after it.
func (c *chainReader) findImported(ln ImportLine) (int64, error) {
	k := keyOf(ln.Purpose, ln.GivenAt, ln.Source)
	for {
		if seq, ok := c.imported[k]; ok {
			return seq, nil
		}
		if c.low == 1 || (c.low <= c.base.Seq && c.lowAt.Before(ln.GivenAt)) {
			return 0, nil
		}
		e, err := c.event(c.low - 1)
		if err != nil {
			return 0, err
		}
		c.low, c.lowAt = e.Seq, e.RecordedAt
		c.index(e)
	}
}

// checkImport checks every line before anything is written, and returns
// the merchant's purposes the lines name and the problems found.
func (l *Ledger) checkImport(ctx context.Context, imp Import) (map[string]Purpose, []LineProblem, error) {
	if len(imp.Lines) == 0 {
		return nil, nil, apperr.New(apperr.Invalid, "an import needs at least one line").WithDetail(CodeEmptyImport)
	}
	if len(imp.Lines) > MaxImportLines {
		return nil, nil, apperr.New(apperr.TooLarge, "an import takes at most %d lines; got %d: split the file and send the parts one after another", MaxImportLines, len(imp.Lines)).WithDetail(CodeTooManyLines)
	}
	now := l.now()
	purposes := map[string]Purpose{}
	unknown := map[string]bool{}
	var problems []LineProblem
	for _, ln := range imp.Lines {
		bad := func(code, format string, args ...any) {
			problems = append(problems, LineProblem{Line: ln.Line, Code: code, Message: fmt.Sprintf(format, args...)})
		}
		switch {
		case !ValidSubjectID(ln.SubjectID):
			bad(CodeInvalidSubject, "subject must be 1-128 characters of letters, digits and . _ @ + : - (starting with a letter or digit)")
			continue
		case !ValidPurposeKey(ln.Purpose):
			bad(CodeInvalidPurpose, "purpose must be a purpose key (lower-case letters, digits and underscores)")
			continue
		}
		if _, ok := purposes[ln.Purpose]; !ok && !unknown[ln.Purpose] {
			p, err := l.purpose(ctx, imp.MerchantID, ln.Purpose)
			switch {
			case apperr.Is(err, apperr.Invalid):
				unknown[ln.Purpose] = true
			case err != nil:
				return nil, nil, err
			default:
				purposes[ln.Purpose] = p
			}
		}
		switch {
		case unknown[ln.Purpose]:
			bad(CodeUnknownPurpose, "unknown purpose %q", ln.Purpose)
		case !ln.State.Valid():
			bad(CodeInvalidState, "state must be granted, denied or withdrawn")
		case ln.GivenAt.IsZero():
			bad(CodeInvalidGivenAt, "given_at is required: when the subject decided, in RFC 3339 (2024-05-01T09:30:00Z)")
		case ln.GivenAt.Year() < 1970:
			bad(CodeInvalidGivenAt, "given_at must be after 1970")
		case ln.GivenAt.After(now):
			bad(CodeGivenAtInFuture, "given_at is in the future")
		case !validText(ln.Source, MaxImportSource) || strings.TrimSpace(ln.Source) == "":
			bad(CodeInvalidSource, "source must name where the decision was collected: 1-%d characters, no control characters", MaxImportSource)
		case utf8.RuneCountInString(ln.Proof) > MaxImportProof:
			bad(CodeInvalidProof, "proof must be at most %d characters", MaxImportProof)
		}
	}
	return purposes, problems, nil
}

// validText reports whether s is at most limit characters without control
// characters.
func validText(s string, limit int) bool {
	if utf8.RuneCountInString(s) > limit {
		return false
	}
	return strings.IndexFunc(s, unicode.IsControl) < 0
}
