package consent

import (
	"context"
	"errors"
	"time"

	"github.com/fineline/fineline/apperr"
)

// Tx is one subject's state under the subject's lock: what a function run
// by Locked reads, decides on and appends to. Its state is re-read when the
// lock is taken, never carried over from an earlier read.
type Tx struct {
	l     *Ledger
	st    SubjectState
	terms Terms
	now   time.Time
	// appended collects every event appended under this lock, over retries.
	appended []Event
}

// State returns the subject's state as of now, with what this Tx appended.
func (tx *Tx) State() SubjectState { return tx.st }

// Terms returns the merchant's published notice versions, read under the lock.
func (tx *Tx) Terms() Terms { return tx.terms }

// Now is the time the Tx decides at.
func (tx *Tx) Now() time.Time { return tx.now }

// errChainMoved says another writer appended to the subject's chain between
// reading its state and appending: Locked runs the function again on the
// state as it now is.
var errChainMoved = errors.New("the subject's chain moved on")

// Append continues the subject's chain with events (their purpose, state,
// field, channel and actor set; Append numbers, times and hashes them). They
// are written in one store call: one transaction on the embedded store.
func (tx *Tx) Append(ctx context.Context, events ...Event) error {
	if tx.st.Erased() {
		return ErrSubjectErased()
	}
	if len(events) == 0 {
		return nil
	}
	l := tx.l
	at := l.now().UTC().Truncate(time.Millisecond)
	st := tx.st
	out := make([]Event, len(events))
	for i, e := range events {
		e.MerchantID, e.SubjectID, e.Seq = st.MerchantID, st.SubjectID, st.Seq+1
		e.RecordedAt, e.PrevHash = at, st.HeadHash
		if e.Field == "" && e.State.Valid() {
			e.Prev, e.PrevNotice = Undecided, 0
			if p, ok := st.Purposes[e.Purpose]; ok {
				e.Prev, e.PrevNotice = p.State, p.NoticeVersion
			}
		} else {
			e.Locale, e.Prev, e.PrevNotice = "", "", 0
		}
		if !e.GivenAt.IsZero() {
			e.GivenAt = e.GivenAt.UTC().Truncate(time.Millisecond) // as hashed and stored
		}
		e.Hash = e.ComputeHash()
		out[i] = e
		st = st.Next(e)
	}
	ticket := l.mem.beginAppend(l.store.JournalCommitted())
	defer l.mem.endAppend(ticket)
	began := time.Now()
	res, err := l.store.AppendEvents(ctx, out, st)
	if l.appended != nil && res.N > 0 {
		l.appended(res.N, time.Since(began))
	}
	for _, e := range out[:max(0, min(res.N, len(out)))] {
		tx.st = tx.st.Next(e)
		tx.appended = append(tx.appended, e)
	}
	if res.N > 0 {
		// Durable from here on: a failure to save the projection leaves it
		// behind the ledger, which the next read rolls forward.
		l.remember(tx.st)
		l.saveProjection(ctx, tx.st, res.Journal)
	}
	switch {
	case err == nil:
		return nil
	case apperr.Is(err, apperr.Conflict):
		return errChainMoved // another instance took the next number
	default:
		// The events may have landed all the same: the cache must not keep
		// answering from the head it had.
		l.forget(st.MerchantID, st.SubjectID)
		return err
	}
}

// ErrSubjectErased refuses anything recorded about an erased subject.
func ErrSubjectErased() error {
	return apperr.New(apperr.Conflict, "this subject was erased: nothing more is recorded about them").WithDetail(CodeSubjectErased)
}

// Locked runs fn with the subject's state under the subject's lock. When
// another instance appends to the same chain at the same moment, fn runs
// again on the state re-read from the store, so a decision is always taken
// on the newest state. It returns every event appended and the final state.
func (l *Ledger) Locked(ctx context.Context, merchantID, subjectID string, fn func(tx *Tx) error) ([]Event, SubjectState, error) {
	unlock := l.lock(merchantID, subjectID)
	defer unlock()
	tx := &Tx{l: l}
	for attempt := 0; ; attempt++ {
		if attempt == maxAppendAttempts {
			return tx.appended, tx.st, apperr.New(apperr.Conflict, "too many concurrent writes for this subject; retry").WithDetail(CodeWriteConflict)
		}
		// The cached state is a guess the unique key checks: if another
		// instance got there first, the append conflicts and we reload.
		var err error
		if attempt == 0 {
			tx.st, err = l.lookup(ctx, merchantID, subjectID)
		} else {
			tx.st, err = l.current(ctx, merchantID, subjectID)
		}
		if err != nil {
			return tx.appended, tx.st, err
		}
		if tx.terms, err = l.notices.Terms(ctx, merchantID); err != nil {
			return tx.appended, tx.st, err
		}
		tx.now = l.now()
		err = fn(tx)
		if errors.Is(err, errChainMoved) {
			continue
		}
		return tx.appended, tx.st, err
	}
}

// FieldChange is a volunteered value stored or erased, recorded in the
// subject's chain by field key and purpose, never by value.
type FieldChange struct {
	Field string
	// State is Provided or Erased.
	State State
	// Purpose is the purpose the value was given for, or whose withdrawal
	// erased it.
	Purpose string
	Channel Channel
	Actor   string
}

// AppendField records a field event in the subject's chain.
func (tx *Tx) AppendField(ctx context.Context, c FieldChange) error {
	if c.State != Provided && c.State != Erased {
		return apperr.New(apperr.Invalid, "a field event is provided or erased")
	}
	if c.Field == "" {
		return apperr.New(apperr.Invalid, "a field event names its field")
	}
	return tx.Append(ctx, Event{Purpose: c.Purpose, State: c.State, NoticeVersion: tx.st.Purposes[c.Purpose].NoticeVersion,
		Channel: c.Channel, Actor: c.Actor, Field: c.Field})
}
