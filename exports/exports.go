// Package exports lists a merchant's audience for one purpose as of one
// point of its ledger, with the change-feed cursor of that point: a
// platform that loads the export and then follows the feed from the cursor
// sees every later change and never re-subscribes anyone. An export is a
// job: it reads every subject's projection in _id order, a page at a time,
// and writes the rows in compressed chunks the API streams back.
package exports

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Format is how rows are written.
type Format string

// Formats.
const (
	NDJSON Format = "ndjson"
	CSV    Format = "csv"
)

// Include says which subjects are listed.
type Include string

// What to include.
const (
	// Allowed lists the subjects the purpose is allowed for.
	Allowed Include = "allowed"
	// All lists every subject with a ledger record, with the decision.
	All Include = "all"
)

// Status of an export job.
type Status string

// Statuses.
const (
	Pending Status = "pending"
	Running Status = "running"
	Ready   Status = "ready"
	Failed  Status = "failed"
)

// Keep is how long a finished export stays downloadable.
const Keep = 7 * 24 * time.Hour

// Export is one export job.
type Export struct {
	MerchantID string
	ID         string
	Purpose    string
	Format     Format
	Include    Include
	Status     Status
	// Rows and Chunks count what was written; Cursor is the change-feed
	// cursor the export is consistent with.
	Rows       int64
	Chunks     int
	Cursor     string
	Error      string
	CreatedAt  time.Time
	FinishedAt time.Time
	// Actor is the API key that asked for it ("api_key:<id>").
	Actor string
}

// Row is one subject's line.
type Row struct {
	Subject       string     `json:"subject"`
	Allowed       bool       `json:"allowed"`
	Reason        string     `json:"reason"`
	Since         *time.Time `json:"since"`
	NoticeVersion int        `json:"notice_version"`
	Seq           int64      `json:"seq"`
	GPC           bool       `json:"gpc"`
}

// Store persists export jobs and their chunks, and reads projections.
type Store interface {
	CreateExport(ctx context.Context, e Export) error
	// Export returns one; NotFound if none (or another merchant's).
	Export(ctx context.Context, merchantID, id string) (Export, error)
	SaveExport(ctx context.Context, e Export) error
	// UnfinishedExports lists every pending or running export.
	UnfinishedExports(ctx context.Context) ([]Export, error)
	// FinishedBefore lists exports finished before t.
	FinishedBefore(ctx context.Context, t time.Time) ([]Export, error)
	// NoteExport adds an export to the merchant's list of the day it was
	// asked for (kept after the export itself expires).
	NoteExport(ctx context.Context, e Export) error
	// ExportsOn lists the exports the merchant asked for on the days named
	// (UTC, 2006-01-02), as noted.
	ExportsOn(ctx context.Context, merchantID string, days []string) ([]Export, error)
	// DeleteExport removes an export and its chunks.
	DeleteExport(ctx context.Context, e Export) error
	SaveChunk(ctx context.Context, merchantID, id string, n int, data []byte) error
	Chunk(ctx context.Context, merchantID, id string, n int) ([]byte, error)
	// MerchantStates returns up to limit of the merchant's projections
	// whose subject id sorts after after, in order: a range of the _id
	// index.
	// With purpose set, each state holds that purpose alone.
	MerchantStates(ctx context.Context, merchantID, purpose, after string, limit int) ([]consent.SubjectState, error)
}

// Ledger is what an export reads of the ledger.
type Ledger interface {
	Changes(ctx context.Context, merchantID string, after consent.ChangesCursor, limit int, keep func(consent.Event) bool) (consent.ChangesPage, error)
	ChangesEnd(ctx context.Context, merchantID string) (consent.ChangesCursor, error)
	ChangesFrom(ctx context.Context, merchantID string, t time.Time) (consent.ChangesCursor, error)
	Event(ctx context.Context, merchantID, subjectID string, seq int64) (consent.Event, error)
}

// Purposes finds a merchant's purpose.
type Purposes interface {
	Get(ctx context.Context, merchantID, key string) (consent.Purpose, error)
}

// Terms tells a merchant's published notices.
type Terms interface {
	Terms(ctx context.Context, merchantID string) (consent.Terms, error)
}

// Leaser shares jobs among instances.
type Leaser interface {
	HoldLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error)
}

// Service creates, runs and serves exports.
type Service struct {
	Store    Store
	Ledger   Ledger
	Purposes Purposes
	Terms    Terms
	// InStep says projections are written with their events (the
	// embedded store); otherwise they are written behind, within
	// consent.SettleAfter, and an export stands that long in the past.
	InStep bool
	// Leases, when set, makes one instance run each job.
	Leases Leaser
	Owner  string
	Now    func() time.Time
	Log    *slog.Logger
	// Page is how many projections one read returns.
	Page int

	kickOnce sync.Once
	kick     chan struct{}
}

// kicked is what wakes Run when an export is asked for.
func (s *Service) kicked() chan struct{} {
	s.kickOnce.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// Request is what a merchant asks to export.
type Request struct {
	Purpose string
	Format  Format
	Include Include
	// Actor is who asks, for the shoppers' "who asked about me".
	Actor string
}

// Create queues an export.
func (s *Service) Create(ctx context.Context, merchantID string, r Request) (Export, error) {
	if r.Format == "" {
		r.Format = NDJSON
	}
	if r.Include == "" {
		r.Include = Allowed
	}
	if r.Format != NDJSON && r.Format != CSV {
		return Export{}, apperr.New(apperr.Invalid, "format must be ndjson or csv").WithDetail("invalid_export")
	}
	if r.Include != Allowed && r.Include != All {
		return Export{}, apperr.New(apperr.Invalid, "include must be allowed or all").WithDetail("invalid_export")
	}
	if _, err := s.Purposes.Get(ctx, merchantID, r.Purpose); err != nil {
		return Export{}, err
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	e := Export{MerchantID: merchantID, ID: "exp_" + base64.RawURLEncoding.EncodeToString(b), Purpose: r.Purpose, Format: r.Format, Include: r.Include,
		Status: Pending, CreatedAt: s.Now().UTC().Truncate(time.Millisecond), Actor: r.Actor}
	// Noted first, by day: a shopper's data page finds the exports that
	// listed them without a row per subject.
	if err := s.Store.NoteExport(ctx, e); err != nil {
		return Export{}, err
	}
	if err := s.Store.CreateExport(ctx, e); err != nil {
		return Export{}, err
	}
	s.wake()
	return e, nil
}

// Listed reports whether an export listed the subject whose events (in
// chain order) are given: an export of every subject lists one that had a
// decision on its purpose when it was asked for; an export of those
// allowed, one whose latest decision on it then was a grant.
func Listed(e Export, events []consent.Event) bool {
	var last consent.State
	for _, ev := range events {
		if ev.RecordedAt.After(e.CreatedAt) {
			break
		}
		if ev.Purpose == e.Purpose && ev.Field == "" && ev.State.Valid() {
			last = ev.State
		}
	}
	if e.Include == All {
		return last != ""
	}
	return last == consent.Granted
}

// On returns the exports the merchant asked for on the days named.
func (s *Service) On(ctx context.Context, merchantID string, days []string) ([]Export, error) {
	return s.Store.ExportsOn(ctx, merchantID, days)
}

func (s *Service) wake() {
	select {
	case s.kicked() <- struct{}{}:
	default:
	}
}

// Get returns one of the merchant's exports.
func (s *Service) Get(ctx context.Context, merchantID, id string) (Export, error) {
	e, err := s.Store.Export(ctx, merchantID, id)
	if err != nil {
		return e, err
	}
	if e.Status == Ready && s.Now().Sub(e.FinishedAt) > Keep {
		return Export{}, apperr.New(apperr.NotFound, "the export expired %s after it was made; make another", Keep).WithDetail("export_not_found")
	}
	return e, nil
}

// WriteData streams a ready export's rows (with a header row for CSV).
func (s *Service) WriteData(ctx context.Context, e Export, w io.Writer) error {
	if e.Status != Ready {
		return apperr.New(apperr.Conflict, "the export is %s, not ready", e.Status).WithDetail("export_not_ready")
	}
	for n := range e.Chunks {
		data, err := s.Store.Chunk(ctx, e.MerchantID, e.ID, n)
		if err != nil {
			return err
		}
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			return apperr.Wrap(err, "read export chunk %d", n)
		}
		if _, err := io.Copy(w, zr); err != nil {
			return err
		}
	}
	return nil
}

// Run runs queued exports until ctx ends, and takes over those an
// instance that stopped left unfinished.
func (s *Service) Run(ctx context.Context) {
	kick := s.kicked()
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	var swept time.Time
	for {
		if time.Since(swept) > time.Hour {
			s.sweep(ctx)
			swept = time.Now()
		}
		es, err := s.Store.UnfinishedExports(ctx)
		if err != nil && ctx.Err() == nil {
			s.Log.Warn("exports not listed", "err", err)
		}
		for _, e := range es {
			if ctx.Err() != nil {
				return
			}
			if !s.hold(ctx, e) {
				continue
			}
			s.run(ctx, e)
		}
		select {
		case <-ctx.Done():
			return
		case <-kick:
		case <-tick.C:
		}
	}
}

// sweep deletes the exports finished more than Keep ago.
func (s *Service) sweep(ctx context.Context) {
	old, err := s.Store.FinishedBefore(ctx, s.Now().Add(-Keep))
	if err != nil {
		s.Log.Warn("expired exports not listed", "err", err)
		return
	}
	for _, e := range old {
		if err := s.Store.DeleteExport(ctx, e); err != nil {
			s.Log.Warn("expired export not deleted", "export", e.ID, "err", err)
		}
	}
}

// errTakenOver says another instance builds the export now.
var errTakenOver = errors.New("another instance took the export over")

// exportLease is how long an instance holds an export it builds without
// renewing; it renews every page.
const exportLease = 2 * time.Minute

// hold takes or renews the export's lease (always true with one process).
func (s *Service) hold(ctx context.Context, e Export) bool {
	if s.Leases == nil {
		return true
	}
	ok, err := s.Leases.HoldLease(ctx, "export/"+e.MerchantID+"/"+e.ID, s.Owner, exportLease)
	return err == nil && ok
}

func (s *Service) run(ctx context.Context, e Export) {
	e.Status, e.Rows, e.Chunks, e.Error = Running, 0, 0, ""
	if err := s.Store.SaveExport(ctx, e); err != nil {
		s.Log.Warn("export not started", "export", e.ID, "err", err)
		return
	}
	began := time.Now()
	err := s.build(ctx, &e)
	if ctx.Err() != nil || errors.Is(err, errTakenOver) {
		return // stopping (the next start takes it over), or taken over
	}
	e.FinishedAt = s.Now().UTC().Truncate(time.Millisecond)
	e.Status = Ready
	if err != nil {
		e.Status, e.Error = Failed, "the export could not be made; make another"
		var ae *apperr.Error
		if errors.As(err, &ae) && ae.Code != apperr.Internal {
			e.Error = ae.Message
		}
		s.Log.Warn("export failed", "export", e.ID, "err", err)
	} else {
		s.Log.Info("export ready", "export", e.ID, "rows", e.Rows, "ms", time.Since(began).Milliseconds())
	}
	if err := s.Store.SaveExport(ctx, e); err != nil {
		s.Log.Warn("export not saved", "export", e.ID, "err", err)
	}
}

// chunkBytes is how many bytes of rows go in one chunk, before compression.
const chunkBytes = 4 << 20

// writer gathers rows into compressed chunks.
type writer struct {
	s       *Service
	ctx     context.Context
	e       *Export
	raw     bytes.Buffer
	csv     *csv.Writer
	scratch []byte
}

// appendNDJSON appends r as one JSON line, as encoding/json would write
// it (TestRowsAreTheirJSON), without reflection: an export writes
// millions.
func appendNDJSON(b []byte, r Row) []byte {
	b = append(b, `{"subject":`...)
	b, _ = jsontext.AppendQuote(b, r.Subject)
	b = append(b, `,"allowed":`...)
	b = strconv.AppendBool(b, r.Allowed)
	b = append(b, `,"reason":`...)
	b, _ = jsontext.AppendQuote(b, r.Reason)
	b = append(b, `,"since":`...)
	if r.Since == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = r.Since.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = append(b, `,"notice_version":`...)
	b = strconv.AppendInt(b, int64(r.NoticeVersion), 10)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, r.Seq, 10)
	b = append(b, `,"gpc":`...)
	b = strconv.AppendBool(b, r.GPC)
	return append(b, "}\n"...)
}

// csvHeader names the columns of a CSV export.
func csvHeader() []string {
	return []string{"subject", "allowed", "reason", "since", "notice_version", "seq", "gpc"}
}

func (w *writer) row(r Row) error {
	if w.e.Format == CSV {
		since := ""
		if r.Since != nil {
			since = r.Since.UTC().Format(time.RFC3339Nano)
		}
		if err := w.csv.Write([]string{r.Subject, strconv.FormatBool(r.Allowed), r.Reason, since, strconv.Itoa(r.NoticeVersion),
			strconv.FormatInt(r.Seq, 10), strconv.FormatBool(r.GPC)}); err != nil {
			return err
		}
		w.csv.Flush()
	} else {
		w.scratch = appendNDJSON(w.scratch[:0], r)
		w.raw.Write(w.scratch)
	}
	w.e.Rows++
	if w.raw.Len() >= chunkBytes {
		return w.flush()
	}
	return nil
}

func (w *writer) flush() error {
	if w.raw.Len() == 0 {
		return nil
	}
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestSpeed)
	if _, err := zw.Write(w.raw.Bytes()); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := w.s.Store.SaveChunk(w.ctx, w.e.MerchantID, w.e.ID, w.e.Chunks, z.Bytes()); err != nil {
		return err
	}
	w.e.Chunks++
	w.raw.Reset()
	return nil
}

// build writes the export. The point it is consistent with is the feed's
// end when it starts (with projections written behind, SettleAfter
// before). Projections are read a page at a time while writes continue;
// after each page the feed is read up to where it ended then, so every
// subject whose projection may hold a later event is known, with the
// first such event: its row is its state before that event, folded from
// its chain.
func (s *Service) build(ctx context.Context, e *Export) error {
	p, err := s.Purposes.Get(ctx, e.MerchantID, e.Purpose)
	if err != nil {
		return err
	}
	terms, err := s.Terms.Terms(ctx, e.MerchantID)
	if err != nil {
		return err
	}
	now := s.Now()
	var at consent.ChangesCursor
	if s.InStep {
		at, err = s.Ledger.ChangesEnd(ctx, e.MerchantID)
	} else {
		at, err = s.Ledger.ChangesFrom(ctx, e.MerchantID, now.Add(-consent.SettleAfter))
	}
	if err != nil {
		return err
	}
	e.Cursor = at.String()
	f := follower{l: s.Ledger, merchantID: e.MerchantID, at: at, first: map[string]int64{}}
	w := &writer{s: s, ctx: ctx, e: e}
	w.csv = csv.NewWriter(&w.raw)
	if e.Format == CSV {
		if err := w.csv.Write(csvHeader()); err != nil {
			return err
		}
		w.csv.Flush()
	}
	page := s.Page
	if page <= 0 {
		page = 2000
	}
	// Pages are read ahead, one at a time, while the last is written out.
	type result struct {
		sts []consent.SubjectState
		err error
	}
	pages := make(chan result, 1)
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		defer close(pages)
		after := ""
		for {
			sts, err := s.Store.MerchantStates(readCtx, e.MerchantID, e.Purpose, after, page)
			select {
			case pages <- result{sts, err}:
			case <-readCtx.Done():
				return
			}
			if err != nil || len(sts) == 0 {
				return
			}
			after = sts[len(sts)-1].SubjectID
		}
	}()
	renewed := time.Now()
	for res := range pages {
		if res.err != nil {
			return res.err
		}
		if time.Since(renewed) > exportLease/4 {
			if !s.hold(ctx, *e) {
				return errTakenOver
			}
			renewed = time.Now()
		}
		if len(res.sts) == 0 {
			break
		}
		if err := f.catchUp(ctx); err != nil {
			return err
		}
		for _, st := range res.sts {
			if first, ok := f.first[st.SubjectID]; ok {
				if first == 1 {
					continue // not a subject yet at the export's point
				}
				if st, err = s.stateAt(ctx, e.MerchantID, st.SubjectID, first-1); err != nil {
					return err
				}
			}
			d := consent.Decide(st, p, terms, now)
			if e.Include == Allowed && !d.Allowed {
				continue
			}
			r := Row{Subject: st.SubjectID, Allowed: d.Allowed, Reason: string(d.Reason), NoticeVersion: d.NoticeVersion, Seq: st.Seq,
				GPC: st.Purposes[p.Key].GPCSeq > 0}
			if !d.Since.IsZero() {
				since := d.Since.UTC()
				r.Since = &since
			}
			if err := w.row(r); err != nil {
				return err
			}
		}
	}
	return w.flush()
}

// stateAt folds a subject's events 1..seq.
func (s *Service) stateAt(ctx context.Context, merchantID, subjectID string, seq int64) (consent.SubjectState, error) {
	st := consent.SubjectState{MerchantID: merchantID, SubjectID: subjectID}
	for n := int64(1); n <= seq; n++ {
		ev, err := s.Ledger.Event(ctx, merchantID, subjectID, n)
		if err != nil {
			return st, err
		}
		st = st.Next(ev)
	}
	return st, nil
}

// follower reads the merchant's feed after the export's point and keeps,
// per subject touched since, the first event after it.
type follower struct {
	l          Ledger
	merchantID string
	at         consent.ChangesCursor
	first      map[string]int64
}

// catchUp reads the feed up to where it ends now (waiting, on a store
// whose batches land piecewise, for the last ones to settle).
func (f *follower) catchUp(ctx context.Context) error {
	end, err := f.l.ChangesEnd(ctx, f.merchantID)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(consent.SettleAfter + 5*time.Second)
	for !f.at.Covers(end) {
		page, err := f.l.Changes(ctx, f.merchantID, f.at, consent.MaxChangesPage, nil)
		if err != nil {
			return err
		}
		for _, e := range page.Events {
			if _, ok := f.first[e.SubjectID]; !ok {
				f.first[e.SubjectID] = e.Seq
			}
		}
		f.at = page.Next
		if len(page.Events) == 0 && !page.More {
			if time.Now().After(deadline) {
				return apperr.New(apperr.Unavailable, "the change feed did not settle").WithDetail(apperr.CodeStoreUnavailable)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}
