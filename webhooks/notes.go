package webhooks

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"strconv"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Notes are what merchants' systems hear about beside the ledger: a notice
// published, an offer joined, a reward issued or redeemed. Each merchant's
// notes sit at dense positions (1, 2, 3, ...), allocated by a unique
// insert, so an endpoint follows them with a position as it follows the
// change feed with a cursor, and a window of them is found by a binary
// search of their times. A note is written after what it tells of, so a
// crash between the two loses the note, never the change.

// Note is one such event.
type Note struct {
	MerchantID string
	Pos        int64
	Type       string
	At         time.Time
	// Data is what the message says: ids, states, times; never an email,
	// a field value or a reward code.
	Data map[string]any
}

// NoteStore keeps notes.
type NoteStore interface {
	// AppendNote stores n at the position after the merchant's last and
	// returns it with that position.
	AppendNote(ctx context.Context, n Note) (Note, error)
	// Note returns the merchant's note at pos; NotFound if none (yet).
	Note(ctx context.Context, merchantID string, pos int64) (Note, error)
	// NotesTail returns the merchant's last position, 0 if none.
	NotesTail(ctx context.Context, merchantID string) (int64, error)
}

// Notes records notes for the domain services.
type Notes struct {
	Store NoteStore
	Now   func() time.Time
	Log   *slog.Logger
}

// Record stores a note of type typ. A note that cannot be stored is logged
// and dropped: what it tells of is done already.
func (n *Notes) Record(ctx context.Context, merchantID, typ string, data map[string]any) {
	if n == nil {
		return
	}
	_, err := n.Store.AppendNote(ctx, Note{MerchantID: merchantID, Type: typ, At: n.Now().UTC().Truncate(time.Millisecond), Data: data})
	if err != nil {
		n.Log.Warn("webhook note not recorded", "merchant", merchantID, "type", typ, "err", err)
	}
}

// noteMessageID is the webhook-id of a note's message.
func noteMessageID(n Note) string {
	h := sha256.Sum256([]byte("fineline webhook note v1\x00" + n.MerchantID + "\x00" + strconv.FormatInt(n.Pos, 10)))
	return "msg_" + hex.EncodeToString(h[:16])
}

type notePayload struct {
	Type      string         `json:"type"`
	Timestamp time.Time      `json:"timestamp"`
	Data      map[string]any `json:"data"`
}

func newNoteMessage(n Note, attempts int, replay bool) (message, error) {
	body, err := json.Marshal(notePayload{Type: n.Type, Timestamp: n.At, Data: n.Data})
	if err != nil {
		return message{}, err
	}
	var about consent.Event // for the attempt log: whom the note is about
	if sub, ok := n.Data["subject"].(string); ok {
		about.SubjectID = sub
	}
	return message{id: noteMessageID(n), typ: n.Type, event: about, note: n.Pos, body: body, attempts: attempts, replay: replay}, nil
}

// notesFrom returns the first position of a note at or after t.
func notesFrom(ctx context.Context, s NoteStore, merchantID string, t time.Time) (int64, error) {
	tail, err := s.NotesTail(ctx, merchantID)
	if err != nil {
		return 0, err
	}
	lo, hi := int64(1), tail+1
	for lo < hi {
		mid := lo + (hi-lo)/2
		n, err := s.Note(ctx, merchantID, mid)
		if err != nil {
			return 0, err
		}
		if n.At.Before(t) {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// readNotes reads up to limit notes from pos on, those that exist, and
// returns them with the next position to read.
func readNotes(ctx context.Context, s NoteStore, merchantID string, pos int64, limit int) ([]Note, int64, error) {
	var out []Note
	for len(out) < limit {
		n, err := s.Note(ctx, merchantID, pos)
		if apperr.Is(err, apperr.NotFound) {
			break
		}
		if err != nil {
			return nil, pos, err
		}
		out = append(out, n)
		pos++
	}
	return out, pos, nil
}
