package consent

import "time"

// PurposeState is the latest decision a subject made on one purpose.
type PurposeState struct {
	State         State
	Seq           int64
	NoticeVersion int
	Channel       Channel
	At            time.Time
	// GPCSeq is the event that recorded a Global Privacy Control signal for
	// this purpose, 0 if none: a grant after it is the shopper opting in again.
	GPCSeq int64
}

// SubjectState is a subject's current consent state, derived from the
// ledger: the effect of events 1..Seq. It is a projection, rebuilt or rolled
// forward from the events, never edited by hand.
type SubjectState struct {
	MerchantID string
	SubjectID  string
	Seq        int64
	HeadHash   string
	Purposes   map[string]PurposeState
	UpdatedAt  time.Time
	// Level is the privacy level the subject chose, "" if they never
	// chose one (see Effective); LevelSeq the event that recorded it.
	Level    Level
	LevelSeq int64
	// ErasedSeq is the event that erased the subject, 0 if none: the state
	// then holds no decisions and no level, and every decision is
	// ReasonSubjectErased.
	ErasedSeq int64
}

// Erased reports whether the subject was erased.
func (s SubjectState) Erased() bool { return s.ErasedSeq != 0 }

// PrivacyLevel is the level the subject's messages are held to: the one
// they chose, else DefaultLevel.
func (s SubjectState) PrivacyLevel() Level {
	if s.Level == "" {
		return DefaultLevel
	}
	return s.Level
}

// Next returns the state after event e, which must be the next in the chain.
func (s SubjectState) Next(e Event) SubjectState {
	n := SubjectState{
		MerchantID: e.MerchantID,
		SubjectID:  e.SubjectID,
		Seq:        e.Seq,
		HeadHash:   e.Hash,
		Purposes:   make(map[string]PurposeState, len(s.Purposes)+1),
		UpdatedAt:  e.RecordedAt,
		Level:      s.Level,
		LevelSeq:   s.LevelSeq,
		ErasedSeq:  s.ErasedSeq,
	}
	for k, v := range s.Purposes {
		n.Purposes[k] = v
	}
	if e.Field != "" {
		return n // a field event moves the head, not the decisions
	}
	if e.State == LevelChosen {
		n.Level, n.LevelSeq = e.Level, e.Seq
		return n
	}
	if e.State == SubjectErased {
		n.ErasedSeq, n.Level, n.LevelSeq = e.Seq, "", 0
		clear(n.Purposes)
		return n
	}
	gpc := s.Purposes[e.Purpose].GPCSeq
	if e.Channel == ChannelGPC {
		gpc = e.Seq
	}
	n.Purposes[e.Purpose] = PurposeState{State: e.State, Seq: e.Seq, NoticeVersion: e.NoticeVersion, Channel: e.Channel, At: e.RecordedAt, GPCSeq: gpc}
	return n
}

// Granted reports whether the subject's latest decision on purpose is a
// grant (counting or paused by changed terms).
func (s SubjectState) Granted(purpose string) bool { return s.Purposes[purpose].State == Granted }
