package consent

import (
	"context"
	"errors"
	"fmt"

	"github.com/fineline/fineline/apperr"
)

// BrokenLink describes the first event at which a subject's chain fails to verify.
type BrokenLink struct {
	MerchantID string
	SubjectID  string
	Seq        int64
	Problem    string
}

// Error implements error.
func (b *BrokenLink) Error() string {
	return fmt.Sprintf("merchant %s subject %s event %d: %s", b.MerchantID, b.SubjectID, b.Seq, b.Problem)
}

// Unwrap makes errors.Is(err, ErrChainBroken) true.
func (b *BrokenLink) Unwrap() error { return ErrChainBroken }

// VerifySubject walks the subject's chain from its first event and returns
// a *BrokenLink at the first event whose fields, sequence or hash links are
// wrong, or a projection that claims more events than the ledger holds.
func (l *Ledger) VerifySubject(ctx context.Context, merchantID, subjectID string) (events int64, err error) {
	prev, erased := "", false
	var seq int64
	for seq = 1; ; seq++ {
		e, err := l.store.Event(ctx, merchantID, subjectID, seq)
		if apperr.Is(err, apperr.NotFound) {
			break
		}
		if err != nil {
			return seq - 1, err
		}
		broken := func(problem string) (int64, error) {
			return seq - 1, &BrokenLink{MerchantID: merchantID, SubjectID: subjectID, Seq: seq, Problem: problem}
		}
		switch {
		case e.MerchantID != merchantID || e.SubjectID != subjectID || e.Seq != seq:
			return broken("event is filed under another key than its fields say")
		case e.PrevHash != prev:
			return broken("prev_hash does not match the previous event's hash")
		case e.Hash != e.ComputeHash():
			return broken("hash does not match the event's contents (edited)")
		case !e.known():
			return broken("unknown state " + string(e.State))
		case erased:
			return broken("event after the subject's erasure")
		}
		erased = e.State == SubjectErased
		prev = e.Hash
	}
	n := seq - 1
	st, err := l.store.SubjectState(ctx, merchantID, subjectID)
	if err == nil && (st.Seq > n || (st.Seq > 0 && st.Seq == n && st.HeadHash != prev)) {
		return n, &BrokenLink{MerchantID: merchantID, SubjectID: subjectID, Seq: st.Seq, Problem: "state projection does not match the ledger (events missing)"}
	}
	if err != nil && !apperr.Is(err, apperr.NotFound) {
		return n, err
	}
	return n, nil
}

// VerifyReport summarizes a walk over every chain.
type VerifyReport struct {
	Subjects int
	Events   int64
	// Broken is the first broken link found, nil when every chain verifies.
	Broken *BrokenLink
}

// VerifyAll walks every subject's chain and stops at the first broken link.
func (l *Ledger) VerifyAll(ctx context.Context) (VerifyReport, error) {
	var rep VerifyReport
	errStop := errors.New("stop")
	err := l.store.EachSubject(ctx, func(merchantID, subjectID string) error {
		n, err := l.VerifySubject(ctx, merchantID, subjectID)
		rep.Subjects++
		rep.Events += n
		var b *BrokenLink
		if errors.As(err, &b) {
			rep.Broken = b
			return errStop
		}
		return err
	})
	if err != nil && !errors.Is(err, errStop) {
		return rep, err
	}
	return rep, nil
}
