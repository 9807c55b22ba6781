package store

import (
	"context"
	"errors"
	"sync"

	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
)

// appendBatch is the most events one group commit writes: the embedded
// server's own insert batch size, so a batch is one SQLite transaction.
const appendBatch = 100

type appendRequest struct {
	ctx  context.Context
	docs []eventDoc
	done chan appendResult
}

// appendResult is how many of a request's events were inserted (a prefix)
// and why the rest were not.
type appendResult struct {
	n   int
	err error
}

// appender group-commits event inserts on the embedded store. SQLite pays
// for each transaction's commit; events that arrive while one commit runs
// are written together in the next, each still checked against its unique
// key. Every caller waits for its own events' answer. A request of several
// events (one subject's choices on several purposes) is written alone, in
// order, in one transaction.
type appender struct {
	s       *Store
	queue   chan appendRequest
	stopped chan struct{}
	mu      sync.RWMutex // held for reading while sending, for writing to close
	closed  bool
}

func newAppender(s *Store) *appender {
	a := &appender{s: s, queue: make(chan appendRequest, 4*appendBatch), stopped: make(chan struct{})}
	go a.run()
	return a
}

// append writes the events and returns how many it inserted and why not the rest.
func (a *appender) append(ctx context.Context, docs []eventDoc) (int, error) {
	req := appendRequest{ctx: ctx, docs: docs, done: make(chan appendResult, 1)}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return 0, apperr.New(apperr.Unavailable, "store closed").WithDetail(apperr.CodeStoreUnavailable)
	}
	select {
	case a.queue <- req:
	case <-ctx.Done():
		a.mu.RUnlock()
		return 0, storeError(ctx.Err(), "append events")
	}
	a.mu.RUnlock()
	// Once queued, the insert happens whatever the caller's context does:
	// wait for its answer rather than leave the caller unsure.
	res := <-req.done
	return res.n, res.err
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

func (a *appender) run() {
	defer close(a.stopped)
	var held *appendRequest // a request of several events, written alone
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
		if len(first.docs) > 1 {
			a.writeAlone(first)
			continue
		}
		batch := []appendRequest{first}
	fill:
		for len(batch) < appendBatch {
			select {
			case r, ok := <-a.queue:
				if !ok {
					break fill
				}
				if len(r.docs) > 1 {
					held = &r
					break fill
				}
				batch = append(batch, r)
			default:
				break fill
			}
		}
		a.write(batch)
	}
}

// writeAlone inserts one request's events in order in one insertMany: one
// transaction on the embedded server, and on a duplicate key the events
// before it are in and none after.
func (a *appender) writeAlone(r appendRequest) {
	if err := r.ctx.Err(); err != nil {
		r.done <- appendResult{err: storeError(err, "append events")}
		return
	}
	docs := make([]any, len(r.docs))
	for i, d := range r.docs {
		docs[i] = d
	}
	unlock := a.s.writing()
	_, err := a.s.db.Collection(collEvents).InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(true))
	unlock()
	n, err := insertedPrefix(err, len(docs))
	a.s.noteWrite(err)
	r.done <- appendResult{n: n, err: err}
}

// write inserts the batch in one unordered insertMany and hands each caller
// the error of its own document.
func (a *appender) write(batch []appendRequest) {
	live := batch[:0:0]
	docs := make([]any, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- appendResult{err: storeError(err, "append event")} // the caller gave up before anything was written
			continue
		}
		live = append(live, r)
		docs = append(docs, r.docs[0])
	}
	if len(docs) == 0 {
		return
	}
	unlock := a.s.writing()
	_, err := a.s.db.Collection(collEvents).InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false))
	unlock()
	errs := make([]error, len(live))
	a.s.noteWrite(err)
	var bwe mongo.BulkWriteException
	switch {
	case err == nil:
	case errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0:
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(errs) {
				continue
			}
			if we.Code == 11000 {
				errs[we.Index] = apperr.New(apperr.Conflict, "event exists")
			} else {
				errs[we.Index] = storeError(we, "append event")
			}
		}
	default:
		for i := range errs {
			errs[i] = storeError(err, "append event")
		}
	}
	for i, r := range live {
		n := 0
		if errs[i] == nil {
			n = 1
		}
		r.done <- appendResult{n: n, err: errs[i]}
	}
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
