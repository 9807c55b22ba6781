package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// State is what a subject decided about a purpose.
type State string

// Consent states an event can record.
const (
	Granted   State = "granted"
	Denied    State = "denied"
	Withdrawn State = "withdrawn"
)

// States of a field event: a value the subject volunteered was stored, or
// erased. The event names the field, never the value.
const (
	Provided State = "provided"
	Erased   State = "erased"
)

// LevelChosen is the state of a privacy-level event: the subject chose how
// personal the merchant's messages may be (Event.Level). It names no
// purpose and leaves consent state unchanged.
const LevelChosen State = "level_chosen"

// SubjectErased is the state of the event that closes a subject's chain:
// everything the merchant held about the subject was erased. It names no
// purpose and no field; after it the chain takes no event, and every
// decision on the subject is ReasonSubjectErased.
const SubjectErased State = "subject_erased"

// Undecided is the Prev of a subject's first decision on a purpose.
const Undecided State = "undecided"

// known reports whether e's state is one the ledger records: a consent
// decision, a field event, a privacy level or the subject's erasure.
func (e Event) known() bool {
	switch {
	case e.Field != "":
		return e.State == Provided || e.State == Erased
	case e.State == LevelChosen:
		return e.Purpose == "" && e.Level.Valid()
	case e.State == SubjectErased:
		return e.Purpose == ""
	}
	return e.State.Valid()
}

// Valid reports whether s is one of the states a consent decision records.
func (s State) Valid() bool { return s == Granted || s == Denied || s == Withdrawn }

// Channel is where a decision was collected.
type Channel string

// Channels a consent event can come through.
const (
	ChannelAPI         Channel = "api"
	ChannelCenter      Channel = "center"
	ChannelWidget      Channel = "widget"
	ChannelGPC         Channel = "gpc"
	ChannelUnsubscribe Channel = "unsubscribe"
	ChannelImport      Channel = "import"
	// ChannelSystem is Fineline acting on its own: erasing a value no
	// granted purpose needs, found by a sweep.
	ChannelSystem Channel = "system"
)

// Event is one decision by one subject on one purpose. Events are appended to
// the subject's chain and never changed: Seq numbers them from 1 without gaps,
// PrevHash is the Hash of the previous event ("" for the first), and Hash
// covers every other field, so an edit anywhere breaks the chain.
type Event struct {
	MerchantID     string
	SubjectID      string
	Seq            int64
	Purpose        string
	State          State
	NoticeVersion  int
	Channel        Channel
	Actor          string
	RecordedAt     time.Time
	IdempotencyKey string
	PrevHash       string
	Hash           string
	// Field is set on field events (Provided, Erased): the key of the
	// volunteered field, with Purpose the purpose it was given for or whose
	// withdrawal erased it. Field events leave consent state unchanged.
	Field string
	// GivenAt is, on an imported decision, the moment the subject made it
	// (RecordedAt is when Fineline recorded it); zero on every other event.
	GivenAt time.Time
	// Source names, on an imported decision, the system the merchant
	// collected it in ("shopify", "crm-2019").
	Source string
	// Proof is, on an imported decision, the merchant's evidence of it (a
	// form version, a double opt-in reference): a sensitive purpose is
	// imported as granted only with one.
	Proof string
	// Level is set on privacy-level events (State LevelChosen): the level
	// the subject chose.
	Level Level
	// Prev is, on a consent decision, the subject's state for the purpose
	// just before it (Undecided when there was none): what analytics need
	// to count stocks from the feed alone. Empty on other events and on
	// decisions recorded before it was kept.
	Prev State
	// PrevNotice is, on a decision replacing an earlier one, the notice
	// version that one was recorded under (0 otherwise, and on decisions
	// recorded before it was kept): whether a decision answers a change
	// of terms, from the feed alone.
	PrevNotice int
	// Locale is, on a consent decision, the language the subject was asked
	// in (a BCP 47 tag, "en", "de-CH"), "" when the channel has none.
	Locale string
}

// DecidedAt is when the subject made the decision: GivenAt for an imported
// one, RecordedAt for every other.
func (e Event) DecidedAt() time.Time {
	if !e.GivenAt.IsZero() {
		return e.GivenAt
	}
	return e.RecordedAt
}

// hashInput fixes the field order of the hashed form.
type hashInput struct {
	MerchantID     string  `json:"merchant_id"`
	SubjectID      string  `json:"subject_id"`
	Seq            int64   `json:"seq"`
	Purpose        string  `json:"purpose"`
	State          State   `json:"state"`
	NoticeVersion  int     `json:"notice_version"`
	Channel        Channel `json:"channel"`
	Actor          string  `json:"actor"`
	RecordedAt     string  `json:"recorded_at"`
	IdempotencyKey string  `json:"idempotency_key"`
	PrevHash       string  `json:"prev_hash"`
	// Field is omitted when empty, so consent events hash as they always did.
	Field string `json:"field,omitempty"`
	// GivenAt, Source and Proof are omitted when empty (every event but an
	// imported one), so chains written before them verify unchanged.
	GivenAt string `json:"given_at,omitempty"`
	Source  string `json:"source,omitempty"`
	Proof   string `json:"proof,omitempty"`
	// Level is omitted when empty (every event but a privacy-level one).
	Level string `json:"level,omitempty"`
	// Prev and Locale are omitted when empty (every event but a decision,
	// and decisions recorded before they were kept).
	Prev   string `json:"prev,omitempty"`
	Locale string `json:"locale,omitempty"`
	// PrevNotice is omitted when 0.
	PrevNotice int `json:"prev_notice,omitempty"`
}

// HashTime is a time as an event's hash covers it: UTC, milliseconds, a Z.
func HashTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

// ComputeHash returns the hex SHA-256 of the event's canonical form
// (every field but Hash, times in UTC at millisecond precision).
func (e Event) ComputeHash() string {
	in := hashInput{
		MerchantID: e.MerchantID, SubjectID: e.SubjectID, Seq: e.Seq, Purpose: e.Purpose,
		State: e.State, NoticeVersion: e.NoticeVersion, Channel: e.Channel, Actor: e.Actor,
		RecordedAt:     HashTime(e.RecordedAt),
		IdempotencyKey: e.IdempotencyKey, PrevHash: e.PrevHash, Field: e.Field,
		Source: e.Source, Proof: e.Proof, Level: string(e.Level), Prev: string(e.Prev), Locale: e.Locale,
		PrevNotice: e.PrevNotice,
	}
	if !e.GivenAt.IsZero() {
		in.GivenAt = HashTime(e.GivenAt)
	}
	b, err := json.Marshal(in)
	if err != nil {
		// Marshalling a struct of strings and numbers cannot fail.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
