// Package erasure erases everything a merchant holds about one subject:
// the one place the preference center and the merchant API call. The
// erasure is recorded first (so that it finishes after a crash), then the
// ledger closes the subject's chain with a subject_erased event (from then
// on every check and guard answer is subject_erased and nothing more is
// recorded), then the subject's data key goes (the values become
// unreadable at once, in backups too), then the values, the access counts
// and the record's email, language and time zone; last the shopper is
// told by email. The chain keeps the merchant's id for the subject and
// what was decided when, never an email or a value, so it still verifies.
package erasure

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
	"github.com/fineline/fineline/fields"
)

// Pending is an erasure under way. Email and Locale are kept only so that
// the shopper can be told once it is done; they go with the record.
type Pending struct {
	MerchantID  string
	SubjectID   string
	Email       string
	Locale      string
	Channel     consent.Channel
	Actor       string
	RequestedAt time.Time
}

// Store keeps erasures under way and deletes what the other stores do not.
type Store interface {
	// PutErasure records an erasure under way.
	PutErasure(ctx context.Context, p Pending) error
	// Erasure returns the subject's erasure under way; NotFound if none.
	Erasure(ctx context.Context, merchantID, subjectID string) (Pending, error)
	// Erasures lists up to limit erasures under way, of any merchant.
	Erasures(ctx context.Context, limit int) ([]Pending, error)
	// DeleteErasure marks the subject's erasure done.
	DeleteErasure(ctx context.Context, merchantID, subjectID string) error
	// DeleteAccessCounts removes the subject's "who asked" counters.
	DeleteAccessCounts(ctx context.Context, merchantID, subjectID string) error
	// DeleteSubjectReceipts removes the subject's receipts (the ledger
	// keeps what they said).
	DeleteSubjectReceipts(ctx context.Context, merchantID, subjectID string) error
	// Scrub makes what was deleted leave the store's files (the embedded
	// store's free pages and write-ahead log).
	Scrub(ctx context.Context) error
}

// Notifier tells the shopper that their data was erased. It is given the
// address and language kept for that alone.
type Notifier interface {
	Erased(ctx context.Context, p Pending) error
}

// Result is a finished erasure.
type Result struct {
	SubjectID string
	ErasedAt  time.Time
	// Seq is the subject_erased event's place in the chain.
	Seq int64
	// Already is true when the subject had been erased before.
	Already bool
}

// Service erases subjects.
type Service struct {
	Store    Store
	Ledger   *consent.Ledger
	Subjects *consent.Subjects
	Fields   *fields.Service
	// Notify, when set, emails the shopper after the erasure.
	Notify Notifier
	Now    func() time.Time
	Log    *slog.Logger
	// Resume is how long an erasure may stay under way before Run takes
	// it for one a crash interrupted and finishes it.
	Resume time.Duration
}

// Erase erases everything the merchant holds about the subject and
// answers once it is done; channel and actor are recorded in the chain
// (the center and "shopper", the API and the key's id). A subject the
// merchant never had is NotFound; one erased before answers as done.
func (s *Service) Erase(ctx context.Context, merchantID, subjectID string, channel consent.Channel, actor string) (Result, error) {
	if !consent.ValidSubjectID(subjectID) {
		return Result{}, apperr.New(apperr.Invalid, "invalid subject id").WithDetail(consent.CodeInvalidSubject)
	}
	sub, err := s.Subjects.Get(ctx, merchantID, subjectID)
	if err != nil {
		return Result{}, err
	}
	if !sub.ErasedAt.IsZero() {
		st, err := s.Ledger.StateOf(ctx, merchantID, subjectID)
		if err != nil {
			return Result{}, err
		}
		if p, err := s.Store.Erasure(ctx, merchantID, subjectID); err == nil {
			// Interrupted after the record went: finish it now.
			return s.finish(context.WithoutCancel(ctx), p)
		}
		return Result{SubjectID: subjectID, ErasedAt: sub.ErasedAt, Seq: st.ErasedSeq, Already: true}, nil
	}
	p := Pending{MerchantID: merchantID, SubjectID: subjectID, Email: sub.Email, Locale: sub.Locale, Channel: channel, Actor: actor,
		RequestedAt: s.Now().UTC().Truncate(time.Millisecond)}
	if err := s.Store.PutErasure(ctx, p); err != nil {
		return Result{}, err
	}
	// Once recorded, the erasure finishes even if the caller goes away.
	return s.finish(context.WithoutCancel(ctx), p)
}

// finish does (or redoes) every step of an erasure; each may run again
// after a crash and does nothing twice.
func (s *Service) finish(ctx context.Context, p Pending) (Result, error) {
	var seq int64
	var at time.Time
	_, st, err := s.Ledger.Locked(ctx, p.MerchantID, p.SubjectID, func(tx *consent.Tx) error {
		if tx.State().Erased() {
			return nil
		}
		return tx.Append(ctx, consent.Event{State: consent.SubjectErased, Channel: p.Channel, Actor: p.Actor,
			NoticeVersion: tx.Terms().InForce(tx.Now())})
	})
	if err != nil {
		return Result{}, err
	}
	seq, at = st.ErasedSeq, st.UpdatedAt
	if err := s.Fields.Forget(ctx, p.MerchantID, p.SubjectID); err != nil {
		return Result{}, err
	}
	if err := s.Store.DeleteAccessCounts(ctx, p.MerchantID, p.SubjectID); err != nil {
		return Result{}, err
	}
	if err := s.Store.DeleteSubjectReceipts(ctx, p.MerchantID, p.SubjectID); err != nil {
		return Result{}, err
	}
	if err := s.Subjects.Erase(ctx, p.MerchantID, p.SubjectID, at); err != nil {
		return Result{}, err
	}
	if s.Notify != nil && p.Email != "" {
		if err := s.Notify.Erased(ctx, p); err != nil {
			// Everything is erased; Run retries the email while the record
			// (the only place the address still is) stays.
			s.Log.WarnContext(ctx, "erasure done; its confirmation email is retried later", "err", err)
			return Result{SubjectID: p.SubjectID, ErasedAt: at, Seq: seq}, nil
		}
	}
	if err := s.Store.DeleteErasure(ctx, p.MerchantID, p.SubjectID); err != nil {
		return Result{}, err
	}
	// Last, with the record of the erasure (which held the address) gone.
	if err := s.Store.Scrub(ctx); err != nil {
		s.Log.WarnContext(ctx, "erased documents may stay in the store's log until its next checkpoint", "err", err)
	}
	return Result{SubjectID: p.SubjectID, ErasedAt: at, Seq: seq}, nil
}

// Run finishes, every interval, the erasures a crash or a failed email
// left under way for longer than Resume, until ctx ends.
func (s *Service) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := s.ResumeAll(ctx); err != nil && ctx.Err() == nil {
			s.Log.WarnContext(ctx, "erasures under way not finished yet", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ResumeAll finishes the erasures under way for longer than Resume.
func (s *Service) ResumeAll(ctx context.Context) error {
	ps, err := s.Store.Erasures(ctx, 100)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		if s.Now().Sub(p.RequestedAt) < s.Resume {
			continue
		}
		if _, err := s.finish(ctx, p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
