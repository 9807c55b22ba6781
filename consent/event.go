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
}

// ComputeHash returns the hex SHA-256 of the event's canonical form
// (every field but Hash, time in UTC at millisecond precision).
func (e Event) ComputeHash() string {
	b, err := json.Marshal(hashInput{
		MerchantID: e.MerchantID, SubjectID: e.SubjectID, Seq: e.Seq, Purpose: e.Purpose,
		State: e.State, NoticeVersion: e.NoticeVersion, Channel: e.Channel, Actor: e.Actor,
		RecordedAt:     e.RecordedAt.UTC().Format("2006-01-02T15:04:05.000Z"),
		IdempotencyKey: e.IdempotencyKey, PrevHash: e.PrevHash, Field: e.Field,
	})
	if err != nil {
		// Marshalling a struct of strings and numbers cannot fail.
		panic(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
