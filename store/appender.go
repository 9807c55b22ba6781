package store

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

type appendRequest struct {
	ctx  context.Context
	docs []eventDoc
	// state is the subject's projection after the events, written with
	// them in one transaction on the embedded store; nil elsewhere.
	state *recordDoc
	// enc is docs and then state in the stored format, encoded by the
	// caller, on the embedded store (which writes into its file).
	enc []string
	// bulk requests (imports) are written alone, whatever their size.
	bulk bool
	done chan appendResult
}

// appendResult is how many of a request's events were inserted (a prefix),
// the journal position of their batch, and why the rest were not.
type appendResult struct {
	n   int
	pos int64
	err error
}

// appender writes every event of this process, group-committed: events
// that arrive while one batch is written go together in the next, with
// their journal and feed entries (see journal.go), in one ordered insert.
// It runs on one goroutine, so the slot's positions are dense and a batch
// is finished (in or failed) before the next one starts. Every caller waits
// for its own events' answer.
type appender struct {
	s       *Store
	slot    int
	queue   chan appendRequest
	stopped chan struct{}
	mu      sync.RWMutex // held for reading while sending, for writing to close

	closed bool
	// next is the position the next batch takes; 0 until the tail is read.
	next int64
	// mpos is the last feed position of each merchant in this slot, read
	// from the store on the merchant's first batch.
	mpos map[string]int64
	// committed is the last position whose batch is settled (in or failed).
	committedMu sync.Mutex
	committed   int64
}

func newAppender(s *Store, slot int) *appender {
	a := &appender{s: s, slot: slot, queue: make(chan appendRequest, 4*maxBatchDocs), stopped: make(chan struct{}), mpos: map[string]int64{}}
	go a.run()
	return a
}

// append writes the events and returns how many it inserted, their
// journal position, and why not the rest.
func (a *appender) append(ctx context.Context, docs []eventDoc, state *recordDoc) (int, int64, error) {
	if len(docs) > maxBatchDocs-2 {
		return 0, 0, apperr.New(apperr.Invalid, "at most %d events are appended at once", maxBatchDocs-2)
	}
	req := appendRequest{ctx: ctx, docs: docs, state: state}
	if err := a.encode(&req); err != nil {
		return 0, 0, err
	}
	return a.send(req)
}

// encode encodes the request's documents on the caller's goroutine (so
// that callers encode in parallel), when they go straight into the file.
func (a *appender) encode(req *appendRequest) error {
	if a == nil || !a.s.local {
		return nil
	}
	docs := make([]any, 0, len(req.docs)+1)
	for _, d := range req.docs {
		docs = append(docs, d)
	}
	if req.state != nil {
		docs = append(docs, *req.state)
	}
	enc, err := encodeAll(docs)
	if err != nil {
		return apperr.Wrap(err, "encode events")
	}
	req.enc = enc
	return nil
}

// appendBulk writes any number of events (an import) as one batch: one
// journal entry, one feed entry per merchant.
func (a *appender) appendBulk(ctx context.Context, docs []eventDoc) (int, int64, error) {
	req := appendRequest{ctx: ctx, docs: docs, bulk: true}
	if err := a.encode(&req); err != nil {
		return 0, 0, err
	}
	return a.send(req)
}

func (a *appender) send(req appendRequest) (int, int64, error) {
	if a == nil {
		return 0, 0, apperr.New(apperr.Unavailable, "this store is attached read-only").WithDetail(apperr.CodeStoreUnavailable)
	}
	ctx := req.ctx
	req.done = make(chan appendResult, 1)
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return 0, 0, apperr.New(apperr.Unavailable, "store closed").WithDetail(apperr.CodeStoreUnavailable)
	}
	select {
	case a.queue <- req:
	case <-ctx.Done():
		a.mu.RUnlock()
		return 0, 0, storeError(ctx.Err(), "append events")
	}
	a.mu.RUnlock()
	// Once queued, the insert happens whatever the caller's context does:
	// wait for its answer rather than leave the caller unsure.
	res := <-req.done
	return res.n, res.pos, res.err
}

func (a *appender) stop() {
	a.mu.Lock()
	if !a.closed {
		a.closed = true
		close(a.queue)
	}
	a.mu.Unlock()
	<-a.stopped
}

// docsOf is what a batch of requests inserts beside its events: the
// journal entry and at most one feed entry per merchant.
func docsOf(batch []appendRequest) int {
	n := 1
	merchants := map[string]bool{}
	for _, r := range batch {
		n += len(r.docs)
		if r.state != nil {
			n++
		}
		for _, d := range r.docs {
			if !merchants[d.MerchantID] {
				merchants[d.MerchantID] = true
				n++
			}
		}
	}
	return n
}

func (a *appender) run() {
	defer close(a.stopped)
	var held *appendRequest // the request that did not fit the last batch
	for {
		var first appendRequest
		if held != nil {
			first, held = *held, nil
		} else {
			r, ok := <-a.queue
			if !ok {
				return
			}
			first = r
		}
		batch := []appendRequest{first}
	fill:
		for !first.bulk {
			select {
			case r, ok := <-a.queue:
				if !ok {
					break fill
				}
				if r.bulk || docsOf(append(batch, r)) > maxBatchDocs {
					held = &r
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		began := time.Now()
		a.write(batch)
		if f := a.s.committed.Load(); f != nil {
			(*f)(len(batch), docsOf(batch), time.Since(began))
		}
	}
}

// committedPos returns the last position whose batch is settled.
func (a *appender) committedPos() int64 {
	a.committedMu.Lock()
	defer a.committedMu.Unlock()
	return a.committed
}

// position makes sure the next position is known: the journal's tail + 1.
func (a *appender) position(ctx context.Context) error {
	if a.next > 0 {
		return nil
	}
	tail, err := a.s.JournalTail(ctx, a.slot)
	if err != nil {
		return err
	}
	a.next = tail + 1
	a.committedMu.Lock()
	a.committed = tail
	a.committedMu.Unlock()
	return nil
}

// merchantPos returns the merchant's next feed position in this slot.
func (a *appender) merchantPos(ctx context.Context, merchantID string) (int64, error) {
	if p, ok := a.mpos[merchantID]; ok {
		return p + 1, nil
	}
	tail, err := a.s.FeedTail(ctx, merchantID, a.slot)
	if err != nil {
		return 0, err
	}
	a.mpos[merchantID] = tail
	return tail + 1, nil
}

// write inserts one batch: its entries, then every request's events in
// order, ordered (so no event of a request goes in after one of its own
// failed), and hands each caller its share of the answer.
func (a *appender) write(batch []appendRequest) {
	ctx := context.Background()
	live := batch[:0:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendResult{err: storeError(err, "append events")} // the caller gave up before anything was written
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	fail := func(err error) {
		for _, r := range live {
			r.done <- appendResult{err: err}
		}
	}
	if a.s.slotLost() {
		fail(errSlotLost)
		return
	}
	if err := a.position(ctx); err != nil {
		fail(err)
		return
	}
	var events []eventDoc
	for _, r := range live {
		events = append(events, r.docs...)
	}
	mpos := map[string]int64{}
	for _, e := range events {
		if _, ok := mpos[e.MerchantID]; ok {
			continue
		}
		p, err := a.merchantPos(ctx, e.MerchantID)
		if err != nil {
			fail(err)
			return
		}
		mpos[e.MerchantID] = p
	}
	pos := a.next
	entryDocs, merchants := batchEntries(a.slot, pos, func(m string) int64 { return mpos[m] }, events, time.Now().UTC().Truncate(time.Millisecond))
	inserted, ferr := a.insert(ctx, entryDocs, live)
	entries := 1 + len(merchants)
	if inserted == 0 && apperr.Is(ferr, apperr.Conflict) {
		a.next = 0 // the position is taken (by an instance that held this slot): read the tail again
	}
	if inserted >= 1 {
		a.next = pos + 1
		for i, m := range merchants {
			if inserted > 1+i {
				a.mpos[m] = mpos[m]
			}
		}
		a.committedMu.Lock()
		a.committed = pos
		a.committedMu.Unlock()
	}
	if inserted < entries {
		// A merchant's feed entry did not land: its position may be taken
		// by another writer of this slot (a zombie instance); read it again.
		for i, m := range merchants {
			if inserted <= 1+i {
				delete(a.mpos, m)
			}
		}
	}
	off := entries
	for _, r := range live {
		n := max(0, min(len(r.docs), inserted-off))
		res := appendResult{n: n, pos: pos}
		if n < len(r.docs) {
			res.err = ferr
			if inserted < off+len(r.docs) && inserted >= off && apperr.Is(ferr, apperr.Conflict) {
				res.err = apperr.New(apperr.Conflict, "event exists")
			} else if inserted < off && apperr.Is(ferr, apperr.Conflict) {
				// Another request's event, or an entry, conflicted before
				// this one's: it may be written again.
				res.err = apperr.New(apperr.Conflict, "batch stopped before this event")
			}
			if inserted == 0 {
				res.pos = 0
			}
		}
		off += len(r.docs)
		r.done <- res
	}
}

// insert inserts the batch's entries, then every request's events in
// order, and says how many documents went in (a prefix) and why not the
// rest: on the embedded store straight into the file, with the projection
// of each request whose events all went in, in one transaction; else one
// ordered insertMany.
func (a *appender) insert(ctx context.Context, entries []any, live []appendRequest) (int, error) {
	if a.s.local {
		enc, err := encodeAll(entries)
		if err != nil {
			return 0, apperr.Wrap(err, "encode journal entries")
		}
		for _, r := range live {
			enc = append(enc, r.enc[:len(r.docs)]...)
		}
		unlock := a.s.writing()
		n, err := a.s.embedded.inFileTx(ctx, func(tx *fileTx) (int, error) {
			n, err := tx.insert(collEvents, enc)
			if err != nil && !apperr.Is(err, apperr.Conflict) {
				return 0, err
			}
			off := len(entries)
			for _, r := range live {
				off += len(r.docs)
				if r.state == nil || off > n {
					continue
				}
				if uerr := tx.upsert(collRecords, r.state.ID, r.enc[len(r.docs)]); uerr != nil {
					return 0, uerr
				}
			}
			return n, err
		})
		unlock()
		if !apperr.Is(err, apperr.Conflict) {
			a.s.noteWrite(err)
		}
		return n, err
	}
	docs := entries
	for _, r := range live {
		for _, d := range r.docs {
			docs = append(docs, d)
		}
	}
	unlock := a.s.writing()
	_, err := a.s.db.Collection(collEvents).InsertMany(ctx, docs, options.InsertMany().SetOrdered(true))
	unlock()
	a.s.noteWrite(err)
	inserted, ferr := insertedPrefix(err, len(docs))
	if err != nil && !isWriteError(err) {
		// The outcome is unknown (a timeout, a lost connection): read back
		// what landed, so that no position is used twice or skipped.
		inserted = a.landed(ctx, docs)
	}
	return inserted, ferr
}

// landed counts how many of docs are in the store, in order, after an
// insert whose outcome is unknown.
func (a *appender) landed(ctx context.Context, docs []any) int {
	for i, d := range docs {
		var id string
		switch v := d.(type) {
		case journalEntryDoc:
			id = v.ID
		case feedEntryDoc:
			id = v.ID
		case eventDoc:
			id = v.ID
		}
		ok, err := a.s.exists(ctx, id)
		if err != nil || !ok {
			return i
		}
	}
	return len(docs)
}

// isWriteError reports whether err says exactly which document of an
// insert failed, so that the ones before it are known to be in.
func isWriteError(err error) bool {
	var bwe mongo.BulkWriteException
	return errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0
}

// insertedPrefix reads an ordered insertMany's error: how many documents
// went in before the first that failed, and that failure (a duplicate key
// is a Conflict).
func insertedPrefix(err error, total int) (int, error) {
	if err == nil {
		return total, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 {
		we := bwe.WriteErrors[0]
		if we.Code == 11000 {
			return we.Index, apperr.New(apperr.Conflict, "event exists")
		}
		return we.Index, storeError(we, "append events")
	}
	return 0, storeError(err, "append events")
}

var _ consent.LedgerStore = (*Store)(nil)
