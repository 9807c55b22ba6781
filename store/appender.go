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
	doc  eventDoc
	done chan error
}

// appender group-commits event inserts on the embedded store. SQLite pays
// for each transaction's commit; events that arrive while one commit runs
// are written together in the next, each still checked against its unique
// key. Every caller waits for its own event's answer.
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

// append writes one event and returns its insert's own error.
func (a *appender) append(ctx context.Context, d eventDoc) error {
	req := appendRequest{ctx: ctx, doc: d, done: make(chan error, 1)}
	a.mu.RLock()
	if a.closed {
		a.mu.RUnlock()
		return apperr.New(apperr.Unavailable, "store closed").WithDetail("store_unavailable")
	}
	select {
	case a.queue <- req:
	case <-ctx.Done():
		a.mu.RUnlock()
		return ctx.Err()
	}
	a.mu.RUnlock()
	// Once queued, the insert happens whatever the caller's context does:
	// wait for its answer rather than leave the caller unsure.
	return <-req.done
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
	for first := range a.queue {
		batch := []appendRequest{first}
	fill:
		for len(batch) < appendBatch {
			select {
			case r, ok := <-a.queue:
				if !ok {
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

// write inserts the batch in one unordered insertMany and hands each caller
// the error of its own document.
func (a *appender) write(batch []appendRequest) {
	live := batch[:0:0]
	docs := make([]any, 0, len(batch))
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.done <- err // the caller gave up before anything was written
			continue
		}
		live = append(live, r)
		docs = append(docs, r.doc)
	}
	if len(docs) == 0 {
		return
	}
	unlock := a.s.writing()
	_, err := a.s.db.Collection(collEvents).InsertMany(context.Background(), docs, options.InsertMany().SetOrdered(false))
	unlock()
	errs := make([]error, len(live))
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
				errs[we.Index] = apperr.Wrap(we, "append event")
			}
		}
	default:
		for i := range errs {
			errs[i] = apperr.Wrap(err, "append event")
		}
	}
	for i, r := range live {
		r.done <- errs[i]
	}
}
