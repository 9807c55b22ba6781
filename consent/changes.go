package consent

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/fineline/fineline/apperr"
)

// The change feed: a merchant's events in the order they were written,
// read from its feed entries (see Journal) in O(events returned + writers).
// A cursor holds, for every writer (slot), the next feed position and how
// many events of that entry were already given, so a page may end inside
// an entry (an import writes one large entry) and resuming from any cursor
// never skips or repeats an event. Entries of different writers are merged
// by the time they were written, then by slot.

// MaxChangesPage is the largest page of changes one call returns.
const MaxChangesPage = 1000

// SettleAfter is how long an entry whose writer has not moved on waits
// before it is passed as it is (its writer died half-way; see Follow).
const SettleAfter = 30 * time.Second

// ChangesCursor is where a reader of a merchant's change feed stands.
// Its zero value is the beginning.
type ChangesCursor struct {
	merchant [8]byte
	at       map[int]cursorPos
}

type cursorPos struct {
	pos  int64 // the next feed position to read
	skip int   // events of that entry already given
}

const cursorVersion = 1

// String encodes the cursor as an opaque URL-safe token.
func (c ChangesCursor) String() string {
	slots := make([]int, 0, len(c.at))
	for s := range c.at {
		slots = append(slots, s)
	}
	slices.Sort(slots)
	b := []byte{cursorVersion}
	b = append(b, c.merchant[:]...)
	for _, s := range slots {
		p := c.at[s]
		b = binary.AppendUvarint(b, uint64(s))
		b = binary.AppendUvarint(b, uint64(p.pos))
		b = binary.AppendUvarint(b, uint64(p.skip))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func merchantTag(merchantID string) [8]byte {
	h := sha256.Sum256([]byte("changes\x00" + merchantID))
	return [8]byte(h[:8])
}

// ParseChangesCursor decodes a cursor given out for the merchant; empty is
// the beginning. A cursor of another merchant, or not one at all, is
// Invalid.
func ParseChangesCursor(merchantID, s string) (ChangesCursor, error) {
	c := ChangesCursor{merchant: merchantTag(merchantID), at: map[int]cursorPos{}}
	if s == "" {
		return c, nil
	}
	bad := apperr.New(apperr.Invalid, "after is not a cursor this feed gave out").WithDetail("invalid_cursor")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) < 9 || b[0] != cursorVersion || [8]byte(b[1:9]) != c.merchant {
		return c, bad
	}
	b = b[9:]
	for len(b) > 0 {
		var v [3]uint64
		for i := range v {
			n, k := binary.Uvarint(b)
			if k <= 0 || n > 1<<62 {
				return c, bad
			}
			v[i], b = n, b[k:]
		}
		if _, dup := c.at[int(v[0])]; dup || v[0] > 1<<30 || v[1] < 1 || v[2] > 1<<31 {
			return c, bad
		}
		c.at[int(v[0])] = cursorPos{pos: int64(v[1]), skip: int(v[2])}
	}
	return c, nil
}

// ChangesPage is one page of the feed.
type ChangesPage struct {
	Events []Event
	// Next is where the following page starts; pass it back even when the
	// page is empty, to wait for what comes next.
	Next ChangesCursor
	// More says the feed holds more events after this page right now.
	More bool
}

// Change types: what an event means to a merchant's systems, as the change
// feed filters it and webhooks name it. Types without a ledger event of
// their own (a notice published, a reward) are not in the feed.
const (
	TypeGranted      = "consent.granted"
	TypeDenied       = "consent.denied"
	TypeWithdrawn    = "consent.withdrawn"
	TypeFieldErased  = "field.erased"
	TypeFieldGiven   = "field.provided"
	TypePrivacyLevel = "privacy_level.changed"
	TypeSubjectErase = "subject.erased"
)

// Type is the change type of the event.
func (e Event) Type() string {
	switch e.State {
	case Granted:
		return TypeGranted
	case Denied:
		return TypeDenied
	case Withdrawn:
		return TypeWithdrawn
	case Erased:
		return TypeFieldErased
	case Provided:
		return TypeFieldGiven
	case LevelChosen:
		return TypePrivacyLevel
	case SubjectErased:
		return TypeSubjectErase
	}
	return string(e.State)
}

// FeedTypes returns the change types the feed can filter on.
func FeedTypes() []string {
	return []string{TypeGranted, TypeDenied, TypeWithdrawn, TypeFieldGiven, TypeFieldErased, TypePrivacyLevel, TypeSubjectErase}
}

// maxScan bounds the events one call looks at when a filter passes few of
// them: the page then ends early, with More set and a cursor past them.
const maxScan = 20 * MaxChangesPage

// Changes returns up to limit of the merchant's events after cursor, in
// the order they were written; keep, when not nil, picks the events
// returned (the others are passed over, and the cursor moves past them).
// An entry whose events may still be on their way (its writer is
// inserting it) ends the page before it.
func (l *Ledger) Changes(ctx context.Context, merchantID string, after ChangesCursor, limit int, keep func(Event) bool) (ChangesPage, error) {
	if limit <= 0 || limit > MaxChangesPage {
		return ChangesPage{}, apperr.New(apperr.Invalid, "limit must be between 1 and %d", MaxChangesPage)
	}
	if after.merchant != merchantTag(merchantID) {
		return ChangesPage{}, apperr.New(apperr.Invalid, "after is not a cursor this feed gave out").WithDetail("invalid_cursor")
	}
	next := ChangesCursor{merchant: after.merchant, at: map[int]cursorPos{}}
	for s, p := range after.at {
		next.at[s] = p
	}
	slots, err := l.store.Slots(ctx)
	if err != nil {
		return ChangesPage{}, err
	}
	heads := map[int]*FeedEntry{} // the next unread entry of each slot, nil at its end
	head := func(slot int) (*FeedEntry, error) {
		if e, ok := heads[slot]; ok {
			return e, nil
		}
		p, ok := next.at[slot]
		if !ok {
			p = cursorPos{pos: 1}
		}
		key := fmt.Sprintf("%s/%d/%d", merchantID, slot, p.pos)
		if e, ok := l.bigEntries.Get(key); ok {
			heads[slot] = &e
			return &e, nil
		}
		e, err := l.store.FeedEntry(ctx, merchantID, slot, p.pos)
		if apperr.Is(err, apperr.NotFound) {
			heads[slot] = nil
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if ok, err := l.feedSettled(ctx, e); err != nil || !ok {
			heads[slot] = nil
			return nil, err
		}
		if len(e.Events) > limit {
			l.bigEntries.Put(key, e) // settled: it stays as it is
		}
		heads[slot] = &e
		return &e, nil
	}
	var page ChangesPage
	scanned := 0
	for {
		var pick *FeedEntry
		for _, s := range slots {
			e, err := head(s)
			if err != nil {
				return ChangesPage{}, err
			}
			if e != nil && (pick == nil || e.At.Before(pick.At) || (e.At.Equal(pick.At) && e.Slot < pick.Slot)) {
				pick = e
			}
		}
		if pick == nil {
			break
		}
		p := next.at[pick.Slot]
		if p.pos == 0 {
			p = cursorPos{pos: 1}
		}
		if len(page.Events) == limit || scanned >= maxScan {
			page.More = p.skip < len(pick.Events) || len(pick.Events) == 0
			break
		}
		rest := pick.Events[min(p.skip, len(pick.Events)):]
		n := 0
		for _, e := range rest {
			if len(page.Events) == limit || scanned >= maxScan {
				break
			}
			n++
			scanned++
			if keep == nil || keep(e) {
				page.Events = append(page.Events, e)
			}
		}
		p.skip += n
		if p.skip >= len(pick.Events) {
			p = cursorPos{pos: p.pos + 1}
			delete(heads, pick.Slot)
		}
		next.at[pick.Slot] = p
	}
	page.Next = next
	return page, nil
}

// feedSettled reports whether a feed entry's events are where they will
// stay (see settled): its batch is one transaction, or its writer is this
// process and has finished it, or its writer has moved on, or it is older
// than SettleAfter.
func (l *Ledger) feedSettled(ctx context.Context, e FeedEntry) (bool, error) {
	if l.store.AtomicBatches() || time.Since(e.At) > SettleAfter {
		return true, nil
	}
	if e.Slot == l.store.Slot() {
		return e.Journal <= l.store.JournalCommitted(), nil
	}
	_, err := l.store.JournalEntry(ctx, e.Slot, e.Journal+1)
	if apperr.Is(err, apperr.NotFound) {
		return false, nil
	}
	return err == nil, err
}

// ChangesEnd returns the cursor after everything the merchant's feed holds
// now: what a new reader that wants only what comes next starts from.
// It costs a few point reads per writer.
func (l *Ledger) ChangesEnd(ctx context.Context, merchantID string) (ChangesCursor, error) {
	return l.cursorAt(ctx, merchantID, func(_ int, tail int64) (int64, error) { return tail + 1, nil })
}

// ChangesFrom returns the cursor before the first entry each writer wrote
// at or after t: reading from it gives the events written since t, however
// long ago (a binary search of each writer's entries by time, which their
// positions follow).
func (l *Ledger) ChangesFrom(ctx context.Context, merchantID string, t time.Time) (ChangesCursor, error) {
	return l.cursorAt(ctx, merchantID, func(slot int, tail int64) (int64, error) {
		lo, hi := int64(1), tail+1 // the answer is in [lo, hi]
		for lo < hi {
			mid := lo + (hi-lo)/2
			e, err := l.store.FeedEntry(ctx, merchantID, slot, mid)
			if err != nil {
				return 0, err
			}
			if e.At.Before(t) {
				lo = mid + 1
			} else {
				hi = mid
			}
		}
		return lo, nil
	})
}

// cursorAt builds a cursor standing, for each writer, at the position pos
// gives from the writer's last one.
func (l *Ledger) cursorAt(ctx context.Context, merchantID string, pos func(slot int, tail int64) (int64, error)) (ChangesCursor, error) {
	c := ChangesCursor{merchant: merchantTag(merchantID), at: map[int]cursorPos{}}
	slots, err := l.store.Slots(ctx)
	if err != nil {
		return c, err
	}
	for _, s := range slots {
		tail, err := l.store.FeedTail(ctx, merchantID, s)
		if err != nil {
			return c, err
		}
		p, err := pos(s, tail)
		if err != nil {
			return c, err
		}
		c.at[s] = cursorPos{pos: p}
	}
	return c, nil
}

// Covers reports whether the cursor stands at or past other on every
// writer: reading from it gives nothing other's reader has not read.
func (c ChangesCursor) Covers(other ChangesCursor) bool {
	for s, o := range other.at {
		p, ok := c.at[s]
		if !ok {
			p = cursorPos{pos: 1}
		}
		if p.pos < o.pos || (p.pos == o.pos && p.skip < o.skip) {
			return false
		}
	}
	return true
}
