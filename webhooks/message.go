package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"strings"
	"time"

	"github.com/fineline/fineline/consent"
)

// MaxPayload bounds a message body. Payloads are thin (ids, states, seq;
// never an email or a field value), so they stay far below it.
const MaxPayload = 20 << 10

// Data is what a message says about one event: enough for a receiver to
// act and to drop anything older than what it has (Seq), nothing personal
// beyond the merchant's own subject id.
type Data struct {
	Subject       string    `json:"subject"`
	Purpose       string    `json:"purpose"`
	State         string    `json:"state"`
	Channel       string    `json:"channel"`
	NoticeVersion int       `json:"notice_version"`
	Seq           int64     `json:"seq"`
	Hash          string    `json:"hash"`
	RecordedAt    time.Time `json:"recorded_at"`
	// Field names the erased field of a field.erased event.
	Field string `json:"field,omitempty"`
	// Level is the privacy level chosen, on a privacy_level.changed event.
	Level string `json:"level,omitempty"`
}

// Payload is a message body, shaped as Standard Webhooks suggests.
type Payload struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// MessageID is the webhook-id of the message telling of e: derived from
// the event, so it is the same on every attempt and replay, on every
// instance.
func MessageID(e consent.Event) string {
	h := sha256.Sum256([]byte("fineline webhook v1\x00" + e.MerchantID + "\x00" + e.SubjectID + "\x00" + strconv.FormatInt(e.Seq, 10) + "\x00" + e.Hash))
	return "msg_" + hex.EncodeToString(h[:16])
}

// message is one event ready to send.
type message struct {
	id    string
	typ   string
	event consent.Event
	// note is the position of the note told of; 0 for a ledger event.
	note int64
	body []byte
	// attempts made before this one
	attempts int
	replay   bool
}

func newMessage(e consent.Event, attempts int, replay bool) (message, error) {
	body, err := json.Marshal(Payload{Type: e.Type(), Timestamp: e.RecordedAt.UTC(), Data: Data{
		Subject: e.SubjectID, Purpose: e.Purpose, State: string(e.State), Channel: string(e.Channel), NoticeVersion: e.NoticeVersion,
		Seq: e.Seq, Hash: e.Hash, RecordedAt: e.RecordedAt.UTC(), Field: e.Field, Level: string(e.Level),
	}})
	if err != nil {
		return message{}, err
	}
	return message{id: MessageID(e), typ: e.Type(), event: e, body: body, attempts: attempts, replay: replay}, nil
}

// Sign returns the webhook-signature header of a message: one v1
// signature (base64 HMAC-SHA256 of id.timestamp.body) per key, space
// separated, as Standard Webhooks defines it.
func Sign(keys [][]byte, id string, timestamp int64, body []byte) string {
	sigs := make([]string, 0, len(keys))
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(strconv.FormatInt(timestamp, 10)))
		m.Write([]byte{'.'})
		m.Write(body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(sigs, " ")
}
