package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// The ledger in the order it was written. Every group of events one writer
// commits together (a batch of the appender) is listed, before the events
// themselves and in the same insert, by
//
//   - a journal entry "~j/<slot>/<pos>": the writer's slot, a position
//     dense within the slot, and every subject the batch touched with its
//     new head; other instances follow it to drop stale cache entries, and
//     a start after a crash replays it from the last checkpoint;
//   - one feed entry per merchant, "<merchant>/~f/<slot>/<pos>": which of
//     that merchant's subjects the batch advanced and from which sequence
//     number, at a position dense within (merchant, slot): the merchant's
//     change feed, read in O(new events). A reference holds the start of
//     each event's hash, so that a reader keeps only the events the entry
//     wrote, never another writer's that took the same number.
//
// All three live in the consent_events collection, keyed by _id, so that on
// the embedded store a batch (at most 100 documents, the server's own insert
// batch) is one SQLite transaction: entries and events land together or not
// at all. On MongoDB the insert is ordered, entries first: an entry may list
// an event that did not land (a conflict with another instance, a crash),
// and readers check the events (see consent.JournalEntry.Settled). Subject
// ids cannot begin with "~" and merchant ids begin with "mer_", so no entry
// can collide with an event.

// journalEntryDoc is one batch as the journal lists it.
type journalEntryDoc struct {
	ID      string       `bson:"_id"`
	Slot    int          `bson:"j_slot"`
	Pos     int64        `bson:"j_pos"`
	At      time.Time    `bson:"at"`
	Touched []touchedDoc `bson:"touched"`
}

// touchedDoc and feedRefDoc also carry JSON names: the embedded store's
// file holds them as JSON (see fileread.go).
type touchedDoc struct {
	MerchantID string `bson:"m" json:"m"`
	SubjectID  string `bson:"s" json:"s"`
	Seq        int64  `bson:"q" json:"q"`
	// From is the first sequence number of the batch for the subject.
	From int64 `bson:"f" json:"f"`
}

// feedEntryDoc is one merchant's share of one batch.
type feedEntryDoc struct {
	ID         string       `bson:"_id"`
	MerchantID string       `bson:"f_merchant"`
	Slot       int          `bson:"f_slot"`
	Pos        int64        `bson:"f_pos"`
	Journal    int64        `bson:"f_journal"`
	At         time.Time    `bson:"at"`
	Refs       []feedRefDoc `bson:"refs"`
}

// feedRefDoc names one subject's events From..Seq of a batch, with the
// start of each one's hash.
type feedRefDoc struct {
	SubjectID string   `bson:"s" json:"s"`
	From      int64    `bson:"f" json:"f"`
	Seq       int64    `bson:"q" json:"q"`
	Hashes    []string `bson:"h" json:"h"`
}

// refHashLen is how much of an event's hash a feed reference holds: enough
// to tell two writers' events apart, not to prove anything (the chain does).
const refHashLen = 12

func refHash(h string) string { return h[:min(len(h), refHashLen)] }

func journalID(slot int, pos int64) string {
	return fmt.Sprintf("~j/%d/%012d", slot, pos)
}

func feedID(merchantID string, slot int, pos int64) string {
	return fmt.Sprintf("%s/~f/%d/%012d", merchantID, slot, pos)
}

func (d eventDoc) event() consent.Event {
	e := consent.Event{MerchantID: d.MerchantID, SubjectID: d.SubjectID, Seq: d.Seq, Purpose: d.Purpose, State: consent.State(d.State),
		NoticeVersion: d.NoticeVersion, Channel: consent.Channel(d.Channel), Actor: d.Actor, RecordedAt: d.RecordedAt.UTC(),
		IdempotencyKey: d.IdempotencyKey, PrevHash: d.PrevHash, Hash: d.Hash, Field: d.Field, Source: d.Source, Proof: d.Proof,
		Level: consent.Level(d.Level), Prev: consent.State(d.Prev), Locale: d.Locale, PrevNotice: d.PrevNotice}
	if d.GivenAt != nil {
		e.GivenAt = d.GivenAt.UTC()
	}
	return e
}

// exists reports whether a document with _id id is in consent_events.
func (s *Store) exists(ctx context.Context, id string) (bool, error) {
	if s.fileReads() {
		ok, err := s.fieldsFromFile(ctx, collEvents, id, nil)
		return ok, storeError(err, "read the ledger journal")
	}
	err := s.db.Collection(collEvents).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Err()
	if errors.Is(err, mongo.ErrNoDocuments) {
		return false, nil
	}
	return err == nil, storeError(err, "read the ledger journal")
}

// denseTail finds the highest n ≥ 1 for which has(n) holds, 0 if none, for
// positions written densely from 1: an exponential then a binary search,
// 2·log2(n) point reads.
func denseTail(has func(int64) (bool, error)) (int64, error) {
	lo, hi := int64(0), int64(1) // has(lo) holds (lo 0: trivially); find hi with !has(hi)
	for {
		ok, err := has(hi)
		if err != nil {
			return 0, err
		}
		if !ok {
			break
		}
		lo, hi = hi, hi*2
	}
	for hi-lo > 1 {
		mid := lo + (hi-lo)/2
		ok, err := has(mid)
		if err != nil {
			return 0, err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo, nil
}

// JournalTail returns the last position of the slot's journal, 0 if empty.
func (s *Store) JournalTail(ctx context.Context, slot int) (int64, error) {
	return denseTail(func(n int64) (bool, error) { return s.exists(ctx, journalID(slot, n)) })
}

// FeedTail returns the last feed position of the merchant in the slot.
func (s *Store) FeedTail(ctx context.Context, merchantID string, slot int) (int64, error) {
	return denseTail(func(n int64) (bool, error) { return s.exists(ctx, feedID(merchantID, slot, n)) })
}

// JournalEntry returns the slot's journal entry at pos; NotFound if none
// (yet).
func (s *Store) JournalEntry(ctx context.Context, slot int, pos int64) (consent.JournalEntry, error) {
	var d journalEntryDoc
	if s.fileReads() {
		var (
			at      int64
			touched []byte
		)
		ok, err := s.fieldsFromFile(ctx, collEvents, journalID(slot, pos), []string{"$.at", "$.touched[]"}, &at, &touched)
		if err == nil && ok {
			err = json.Unmarshal(touched, &d.Touched)
		}
		if err != nil {
			return consent.JournalEntry{}, storeError(err, "read journal entry")
		}
		if !ok {
			return consent.JournalEntry{}, apperr.New(apperr.NotFound, "journal entry not found")
		}
		d.Slot, d.Pos, d.At = slot, pos, fromMillis(at)
	} else if err := s.db.Collection(collEvents).FindOne(ctx, bson.D{{Key: "_id", Value: journalID(slot, pos)}}).Decode(&d); err != nil {
		return consent.JournalEntry{}, notFound(err, "journal entry")
	}
	out := consent.JournalEntry{Slot: d.Slot, Pos: d.Pos, At: d.At.UTC(), Touched: make([]consent.Touched, len(d.Touched))}
	for i, t := range d.Touched {
		out.Touched[i] = consent.Touched{MerchantID: t.MerchantID, SubjectID: t.SubjectID, Seq: t.Seq, From: t.From}
	}
	return out, nil
}

// FeedEntry returns one merchant's events of one batch, those that landed;
// NotFound if there is no such entry (yet).
func (s *Store) FeedEntry(ctx context.Context, merchantID string, slot int, pos int64) (consent.FeedEntry, error) {
	var d feedEntryDoc
	if s.fileReads() {
		var (
			journal, at int64
			refs        []byte
		)
		ok, err := s.fieldsFromFile(ctx, collEvents, feedID(merchantID, slot, pos), []string{"$.f_journal", "$.at", "$.refs[]"}, &journal, &at, &refs)
		if err == nil && ok {
			err = json.Unmarshal(refs, &d.Refs)
		}
		if err != nil {
			return consent.FeedEntry{}, storeError(err, "read feed entry")
		}
		if !ok {
			return consent.FeedEntry{}, apperr.New(apperr.NotFound, "feed entry not found")
		}
		d.MerchantID, d.Slot, d.Pos, d.Journal, d.At = merchantID, slot, pos, journal, fromMillis(at)
	} else if err := s.db.Collection(collEvents).FindOne(ctx, bson.D{{Key: "_id", Value: feedID(merchantID, slot, pos)}}).Decode(&d); err != nil {
		return consent.FeedEntry{}, notFound(err, "feed entry")
	}
	out := consent.FeedEntry{MerchantID: d.MerchantID, Slot: d.Slot, Pos: d.Pos, Journal: d.Journal, At: d.At.UTC()}
	for _, r := range d.Refs {
		evs, err := s.eventRange(ctx, merchantID, r.SubjectID, r.From, r.Seq)
		if err != nil {
			return consent.FeedEntry{}, err
		}
		for _, e := range evs {
			if i := e.Seq - r.From; i >= 0 && i < int64(len(r.Hashes)) && refHash(e.Hash) == r.Hashes[i] {
				out.Events = append(out.Events, e.event())
			}
		}
	}
	return out, nil
}

// eventRange returns the subject's events from..to that exist, in order.
func (s *Store) eventRange(ctx context.Context, merchantID, subjectID string, from, to int64) ([]eventDoc, error) {
	if s.fileReads() {
		return s.eventRangeFromFile(ctx, merchantID, subjectID, from, to)
	}
	if to-from < 8 {
		// A few point reads: FerretDB answers an _id range by reading the
		// whole collection, an _id equality from its index.
		var out []eventDoc
		for seq := from; seq <= to; seq++ {
			var d eventDoc
			err := s.db.Collection(collEvents).FindOne(ctx, bson.D{{Key: "_id", Value: eventID(merchantID, subjectID, seq)}}).Decode(&d)
			if errors.Is(err, mongo.ErrNoDocuments) {
				continue
			}
			if err != nil {
				return nil, storeError(err, "read events")
			}
			out = append(out, d)
		}
		return out, nil
	}
	cur, err := s.db.Collection(collEvents).Find(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gte", Value: eventID(merchantID, subjectID, from)}, {Key: "$lte", Value: eventID(merchantID, subjectID, to)}}}},
		options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, storeError(err, "read events")
	}
	var out []eventDoc
	if err := cur.All(ctx, &out); err != nil {
		return nil, storeError(err, "read events")
	}
	return out, nil
}

// checkpointID names the mark of how far a slot's journal is reflected in
// the stored projections.
func checkpointID(slot int) string { return "ledger-checkpoint/" + strconv.Itoa(slot) }

type checkpointDoc struct {
	ID  string    `bson:"_id"`
	Pos int64     `bson:"pos"`
	At  time.Time `bson:"at"`
}

// Checkpoint returns the journal position up to which every listed event of
// the slot is in the stored projections, 0 if none was saved.
func (s *Store) Checkpoint(ctx context.Context, slot int) (int64, error) {
	var d checkpointDoc
	err := s.db.Collection(collSeeds).FindOne(ctx, bson.D{{Key: "_id", Value: checkpointID(slot)}}).Decode(&d)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	return d.Pos, storeError(err, "read the ledger checkpoint")
}

// SaveCheckpoint records that the slot's journal up to pos is in the stored
// projections.
func (s *Store) SaveCheckpoint(ctx context.Context, slot int, pos int64) error {
	return storeError(s.replaceByID(ctx, collSeeds, checkpointID(slot), checkpointDoc{ID: checkpointID(slot), Pos: pos, At: time.Now().UTC()}), "save the ledger checkpoint")
}

// batchEntries builds the entries of one batch, which go before its
// events: the journal entry, then one feed entry per merchant (positions
// from mpos). It returns the entries and the merchants in feed order.
func batchEntries(slot int, pos int64, mpos func(merchantID string) int64, events []eventDoc, at time.Time) ([]any, []string) {
	j := journalEntryDoc{ID: journalID(slot, pos), Slot: slot, Pos: pos, At: at}
	seen := map[string]int{}
	var merchantsInOrder []string
	feeds := map[string]*feedEntryDoc{}
	for _, e := range events {
		k := e.MerchantID + "/" + e.SubjectID
		if i, ok := seen[k]; ok {
			j.Touched[i].Seq = e.Seq
		} else {
			seen[k] = len(j.Touched)
			j.Touched = append(j.Touched, touchedDoc{MerchantID: e.MerchantID, SubjectID: e.SubjectID, Seq: e.Seq, From: e.Seq})
		}
		f, ok := feeds[e.MerchantID]
		if !ok {
			p := mpos(e.MerchantID)
			f = &feedEntryDoc{ID: feedID(e.MerchantID, slot, p), MerchantID: e.MerchantID, Slot: slot, Pos: p, Journal: pos, At: at}
			feeds[e.MerchantID] = f
			merchantsInOrder = append(merchantsInOrder, e.MerchantID)
		}
		if n := len(f.Refs); n > 0 && f.Refs[n-1].SubjectID == e.SubjectID && f.Refs[n-1].Seq+1 == e.Seq {
			f.Refs[n-1].Seq = e.Seq
			f.Refs[n-1].Hashes = append(f.Refs[n-1].Hashes, refHash(e.Hash))
		} else {
			f.Refs = append(f.Refs, feedRefDoc{SubjectID: e.SubjectID, From: e.Seq, Seq: e.Seq, Hashes: []string{refHash(e.Hash)}})
		}
	}
	docs := make([]any, 0, 1+len(feeds))
	docs = append(docs, j)
	for _, m := range merchantsInOrder {
		docs = append(docs, *feeds[m])
	}
	return docs, merchantsInOrder
}

// maxBatchDocs is the most documents one batch inserts: the embedded
// server's own insert batch, so that a batch is one transaction.
const maxBatchDocs = 100

// errSlotLost says this instance no longer owns its slot: another took it.
var errSlotLost = apperr.New(apperr.Unavailable, "this instance lost its ledger slot to another; restart it").WithDetail(apperr.CodeStoreUnavailable)

// JournalCommitted is the last position of this process's slot whose batch
// is settled.
func (s *Store) JournalCommitted() int64 {
	if s.appender == nil {
		return 0
	}
	return s.appender.committedPos()
}

var _ consent.Journal = (*Store)(nil)
