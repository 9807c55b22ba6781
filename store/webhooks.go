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
	"github.com/fineline/fineline/webhooks"
)

var _ webhooks.Store = (*Store)(nil)

// Webhook endpoints are few per merchant and listed by merchant; their
// delivery state (one document per endpoint, written only by the instance
// holding the endpoint's lease), the ring of attempt batches and the
// replays asked for are all read by _id.

type secretDoc struct {
	Sealed    []byte    `bson:"sealed"`
	ExpiresAt time.Time `bson:"expires_at,omitempty"`
}

type endpointDoc struct {
	ID           string      `bson:"_id"`
	MerchantID   string      `bson:"merchant_id"`
	EndpointID   string      `bson:"endpoint_id"`
	URL          string      `bson:"url"`
	Types        []string    `bson:"types"`
	Label        string      `bson:"label"`
	ContactEmail string      `bson:"contact_email,omitempty"`
	Secrets      []secretDoc `bson:"secrets"`
	Start        string      `bson:"start"`
	StartNote    int64       `bson:"start_note"`
	CreatedAt    time.Time   `bson:"created_at"`
	Version      int64       `bson:"version"`
}

func toEndpointDoc(e webhooks.Endpoint) endpointDoc {
	d := endpointDoc{ID: id(e.MerchantID, e.ID), MerchantID: e.MerchantID, EndpointID: e.ID, URL: e.URL, Types: e.Types, Label: e.Label,
		ContactEmail: e.ContactEmail, Start: e.Start, StartNote: e.StartNote, CreatedAt: e.CreatedAt, Version: e.Version}
	if d.Types == nil {
		d.Types = []string{}
	}
	for _, s := range e.Secrets {
		d.Secrets = append(d.Secrets, secretDoc(s))
	}
	return d
}

func (d endpointDoc) endpoint() webhooks.Endpoint {
	e := webhooks.Endpoint{MerchantID: d.MerchantID, ID: d.EndpointID, URL: d.URL, Types: d.Types, Label: d.Label, ContactEmail: d.ContactEmail,
		Start: d.Start, StartNote: d.StartNote, CreatedAt: d.CreatedAt.UTC(), Version: d.Version}
	if len(e.Types) == 0 {
		e.Types = nil
	}
	for _, s := range d.Secrets {
		e.Secrets = append(e.Secrets, webhooks.Secret{Sealed: s.Sealed, ExpiresAt: s.ExpiresAt.UTC()})
	}
	return e
}

// CreateEndpoint stores a new endpoint.
func (s *Store) CreateEndpoint(ctx context.Context, e webhooks.Endpoint) error {
	return storeError(s.insertOne(ctx, collEndpoints, toEndpointDoc(e)), "create webhook endpoint")
}

// Endpoint returns one of the merchant's endpoints.
func (s *Store) Endpoint(ctx context.Context, merchantID, endpointID string) (webhooks.Endpoint, error) {
	e, err := findOne(ctx, s, collEndpoints, id(merchantID, endpointID), "webhook endpoint", endpointDoc.endpoint)
	if apperr.Is(err, apperr.NotFound) {
		return e, apperr.New(apperr.NotFound, "no such webhook endpoint").WithDetail("endpoint_not_found")
	}
	return e, err
}

// Endpoints lists the merchant's endpoints, oldest first.
func (s *Store) Endpoints(ctx context.Context, merchantID string) ([]webhooks.Endpoint, error) {
	return listByMerchant(ctx, s, collEndpoints, merchantID, "created_at", endpointDoc.endpoint)
}

// AllEndpoints lists every endpoint.
func (s *Store) AllEndpoints(ctx context.Context) ([]webhooks.Endpoint, error) {
	return list(ctx, s, collEndpoints, bson.D{}, "_id", endpointDoc.endpoint)
}

// ReplaceEndpoint writes e if the stored version is still version.
func (s *Store) ReplaceEndpoint(ctx context.Context, e webhooks.Endpoint, version int64) (bool, error) {
	doc := toEndpointDoc(e)
	if s.local {
		defer s.casLock(doc.ID)()
	}
	defer s.writing()()
	res, err := s.db.Collection(collEndpoints).ReplaceOne(ctx, bson.D{{Key: "_id", Value: doc.ID}, {Key: "version", Value: version}}, doc)
	if err != nil {
		return false, storeError(err, "update webhook endpoint")
	}
	return res.MatchedCount == 1, nil
}

// DeleteEndpoint removes an endpoint and its delivery state.
func (s *Store) DeleteEndpoint(ctx context.Context, merchantID, endpointID string) (bool, error) {
	ok, err := s.deleteByID(ctx, collEndpoints, id(merchantID, endpointID))
	if err != nil {
		return false, storeError(err, "delete webhook endpoint")
	}
	if _, err := s.deleteByID(ctx, collDeliveries, id(merchantID, endpointID)); err != nil {
		return ok, storeError(err, "delete webhook delivery state")
	}
	return ok, nil
}

type retryDoc struct {
	Subject  string    `bson:"s"`
	Seq      int64     `bson:"q"`
	Note     int64     `bson:"o,omitempty"`
	Attempts int       `bson:"n"`
	NextAt   time.Time `bson:"at"`
	Replay   bool      `bson:"r,omitempty"`
}

type replayingDoc struct {
	N      int       `bson:"n"`
	Cursor string    `bson:"cursor"`
	Since  time.Time `bson:"since"`
	Until  time.Time `bson:"until"`
	// LedgerDone: the ledger's part is sent; notes from NotePos on.
	LedgerDone bool  `bson:"ledger_done,omitempty"`
	NotePos    int64 `bson:"note_pos,omitempty"`
}

type deliveryDoc struct {
	ID             string        `bson:"_id"`
	MerchantID     string        `bson:"merchant_id"`
	EndpointID     string        `bson:"endpoint_id"`
	Cursor         string        `bson:"cursor"`
	Pending        []retryDoc    `bson:"pending"`
	FailingSince   time.Time     `bson:"failing_since,omitempty"`
	LastSuccess    time.Time     `bson:"last_success,omitempty"`
	NotBefore      time.Time     `bson:"not_before,omitempty"`
	DisabledAt     time.Time     `bson:"disabled_at,omitempty"`
	DisabledReason string        `bson:"disabled_reason,omitempty"`
	NoteNext       int64         `bson:"note_next"`
	ReplayNext     int           `bson:"replay_next"`
	Replaying      *replayingDoc `bson:"replaying,omitempty"`
	AttemptBatches int64         `bson:"attempt_batches"`
	Delivered      int64         `bson:"delivered"`
	GivenUp        int64         `bson:"given_up"`
}

// DeliveryState returns an endpoint's delivery state.
func (s *Store) DeliveryState(ctx context.Context, merchantID, endpointID string) (webhooks.State, error) {
	return findOne(ctx, s, collDeliveries, id(merchantID, endpointID), "webhook delivery state", func(d deliveryDoc) webhooks.State {
		st := webhooks.State{MerchantID: d.MerchantID, EndpointID: d.EndpointID, Cursor: d.Cursor, FailingSince: utc(d.FailingSince),
			LastSuccess: utc(d.LastSuccess), NotBefore: utc(d.NotBefore), DisabledAt: utc(d.DisabledAt), DisabledReason: d.DisabledReason,
			NoteNext: d.NoteNext, ReplayNext: d.ReplayNext, AttemptBatches: d.AttemptBatches, Delivered: d.Delivered, GivenUp: d.GivenUp}
		for _, r := range d.Pending {
			st.Pending = append(st.Pending, webhooks.Retry{Subject: r.Subject, Seq: r.Seq, Note: r.Note, Attempts: r.Attempts, NextAt: r.NextAt.UTC(), Replay: r.Replay})
		}
		if d.Replaying != nil {
			st.Replaying = &webhooks.Replaying{N: d.Replaying.N, Cursor: d.Replaying.Cursor, Since: d.Replaying.Since.UTC(), Until: d.Replaying.Until.UTC(),
				LedgerDone: d.Replaying.LedgerDone, NotePos: d.Replaying.NotePos}
		}
		return st
	})
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

// SaveDeliveryState writes an endpoint's delivery state.
func (s *Store) SaveDeliveryState(ctx context.Context, st webhooks.State) error {
	d := deliveryDoc{ID: id(st.MerchantID, st.EndpointID), MerchantID: st.MerchantID, EndpointID: st.EndpointID, Cursor: st.Cursor,
		Pending: []retryDoc{}, FailingSince: st.FailingSince, LastSuccess: st.LastSuccess, NotBefore: st.NotBefore, DisabledAt: st.DisabledAt,
		DisabledReason: st.DisabledReason, NoteNext: st.NoteNext, ReplayNext: st.ReplayNext, AttemptBatches: st.AttemptBatches, Delivered: st.Delivered, GivenUp: st.GivenUp}
	for _, r := range st.Pending {
		d.Pending = append(d.Pending, retryDoc{Subject: r.Subject, Seq: r.Seq, Note: r.Note, Attempts: r.Attempts, NextAt: r.NextAt, Replay: r.Replay})
	}
	if r := st.Replaying; r != nil {
		d.Replaying = &replayingDoc{N: r.N, Cursor: r.Cursor, Since: r.Since, Until: r.Until, LedgerDone: r.LedgerDone, NotePos: r.NotePos}
	}
	return storeError(s.replaceByID(ctx, collDeliveries, d.ID, d), "save webhook delivery state")
}

type attemptDoc struct {
	MessageID string    `bson:"id"`
	Type      string    `bson:"type"`
	Subject   string    `bson:"s"`
	Seq       int64     `bson:"q"`
	N         int       `bson:"n"`
	At        time.Time `bson:"at"`
	Status    int       `bson:"status"`
	Error     string    `bson:"error,omitempty"`
	LatencyUS int64     `bson:"us"`
	NextRetry time.Time `bson:"next,omitempty"`
	Replay    bool      `bson:"r,omitempty"`
}

type attemptBatchDoc struct {
	ID       string       `bson:"_id"`
	N        int64        `bson:"n"`
	Attempts []attemptDoc `bson:"attempts"`
}

func attemptBatchID(merchantID, endpointID string, n int64) string {
	return id(merchantID, endpointID, strconv.FormatInt(n%webhooks.AttemptBatches, 10))
}

// SaveAttempts stores batch n of an endpoint's attempts in its ring.
func (s *Store) SaveAttempts(ctx context.Context, merchantID, endpointID string, n int64, batch []webhooks.Attempt) error {
	d := attemptBatchDoc{ID: attemptBatchID(merchantID, endpointID, n), N: n, Attempts: make([]attemptDoc, 0, len(batch))}
	for _, a := range batch {
		d.Attempts = append(d.Attempts, attemptDoc{MessageID: a.MessageID, Type: a.Type, Subject: a.Subject, Seq: a.Seq, N: a.N, At: a.At,
			Status: a.Status, Error: a.Error, LatencyUS: a.Latency.Microseconds(), NextRetry: a.NextRetry, Replay: a.Replay})
	}
	return storeError(s.replaceByID(ctx, collAttempts, d.ID, d), "save webhook attempts")
}

// Attempts returns batch n of an endpoint's attempts.
func (s *Store) Attempts(ctx context.Context, merchantID, endpointID string, n int64) ([]webhooks.Attempt, error) {
	d, err := findOne(ctx, s, collAttempts, attemptBatchID(merchantID, endpointID, n), "webhook attempts", func(d attemptBatchDoc) attemptBatchDoc { return d })
	if err != nil {
		return nil, err
	}
	if d.N != n {
		return nil, apperr.New(apperr.NotFound, "webhook attempts not found")
	}
	out := make([]webhooks.Attempt, 0, len(d.Attempts))
	for _, a := range d.Attempts {
		out = append(out, webhooks.Attempt{MessageID: a.MessageID, Type: a.Type, Subject: a.Subject, Seq: a.Seq, N: a.N, At: a.At.UTC(),
			Status: a.Status, Error: a.Error, Latency: time.Duration(a.LatencyUS) * time.Microsecond, NextRetry: utc(a.NextRetry), Replay: a.Replay})
	}
	return out, nil
}

type replayDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	EndpointID string    `bson:"endpoint_id"`
	N          int       `bson:"n"`
	Since      time.Time `bson:"since"`
	Until      time.Time `bson:"until"`
	From       string    `bson:"from"`
	FromNote   int64     `bson:"from_note"`
	CreatedAt  time.Time `bson:"created_at"`
}

func replayID(merchantID, endpointID string, n int) string {
	return id(merchantID, endpointID, strconv.Itoa(n))
}

// CreateReplay stores a replay request; Conflict if its number is taken.
func (s *Store) CreateReplay(ctx context.Context, r webhooks.Replay) error {
	err := s.insertOne(ctx, collReplays, replayDoc{ID: replayID(r.MerchantID, r.EndpointID, r.N), MerchantID: r.MerchantID, EndpointID: r.EndpointID,
		N: r.N, Since: r.Since, Until: r.Until, From: r.From, FromNote: r.FromNote, CreatedAt: r.CreatedAt})
	if mongo.IsDuplicateKeyError(err) {
		return apperr.New(apperr.Conflict, "replay %d exists", r.N)
	}
	return storeError(err, "create webhook replay")
}

// Replay returns replay n of an endpoint.
func (s *Store) Replay(ctx context.Context, merchantID, endpointID string, n int) (webhooks.Replay, error) {
	return findOne(ctx, s, collReplays, replayID(merchantID, endpointID, n), "webhook replay", func(d replayDoc) webhooks.Replay {
		return webhooks.Replay{MerchantID: d.MerchantID, EndpointID: d.EndpointID, N: d.N, Since: d.Since.UTC(), Until: d.Until.UTC(), From: d.From, FromNote: d.FromNote, CreatedAt: d.CreatedAt.UTC()}
	})
}

type heldLeaseDoc struct {
	ID    string    `bson:"_id"`
	Name  string    `bson:"name"`
	Epoch int64     `bson:"epoch"`
	Owner string    `bson:"owner"`
	Until time.Time `bson:"until"`
}

func heldLeaseID(name string, epoch int64) string { return fmt.Sprintf("%s#%012d", name, epoch) }

// HoldLease takes or renews a long-held lease (a webhook endpoint's
// delivery) for ttl. Each holder in turn inserts the next epoch's
// document, which only one instance can do; the holder renews its own
// epoch's document, which only it writes.
func (s *Store) HoldLease(ctx context.Context, name, owner string, ttl time.Duration) (bool, error) {
	now := time.Now().UTC()
	var last heldLeaseDoc
	err := s.db.Collection(collLeases).FindOne(ctx,
		bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: name + "#"}, {Key: "$lt", Value: name + "$"}}}},
		options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&last)
	switch {
	case errors.Is(err, mongo.ErrNoDocuments):
	case err != nil:
		return false, storeError(err, "read a lease")
	case last.Owner == owner && last.Until.After(now):
		ok, err := s.updateByID(ctx, collLeases, last.ID, bson.D{{Key: "$set", Value: bson.D{{Key: "until", Value: now.Add(ttl)}}}})
		return ok, storeError(err, "renew a lease")
	case last.Until.After(now):
		return false, nil
	}
	next := last.Epoch + 1
	err = s.insertOne(ctx, collLeases, heldLeaseDoc{ID: heldLeaseID(name, next), Name: name, Epoch: next, Owner: owner, Until: now.Add(ttl)})
	if mongo.IsDuplicateKeyError(err) {
		return false, nil
	}
	if err != nil {
		return false, storeError(err, "take a lease")
	}
	if next > 1 {
		_, _ = s.deleteByID(ctx, collLeases, heldLeaseID(name, next-1))
	}
	return true, nil
}

type noteDoc struct {
	ID         string    `bson:"_id"`
	MerchantID string    `bson:"merchant_id"`
	Pos        int64     `bson:"pos"`
	Type       string    `bson:"type"`
	At         time.Time `bson:"at"`
	// Data is kept as the JSON it is sent as.
	Data string `bson:"data"`
}

func noteID(merchantID string, pos int64) string { return fmt.Sprintf("%s/%012d", merchantID, pos) }

// AppendNote stores a note at the merchant's next position: found from
// the last one known here, and taken by a unique insert (another instance
// that took it first moves this one on).
func (s *Store) AppendNote(ctx context.Context, n webhooks.Note) (webhooks.Note, error) {
	tail, err := s.NotesTail(ctx, n.MerchantID)
	if err != nil {
		return n, err
	}
	data, err := json.Marshal(n.Data)
	if err != nil {
		return n, apperr.Wrap(err, "encode a webhook note")
	}
	for pos := tail + 1; pos < tail+1000; pos++ {
		n.Pos = pos
		err := s.insertOne(ctx, collNotes, noteDoc{ID: noteID(n.MerchantID, pos), MerchantID: n.MerchantID, Pos: pos, Type: n.Type, At: n.At, Data: string(data)})
		if err == nil {
			return n, nil
		}
		if !mongo.IsDuplicateKeyError(err) {
			return n, storeError(err, "record a webhook note")
		}
	}
	return n, apperr.New(apperr.Unavailable, "no note position was free").WithDetail(apperr.CodeStoreUnavailable)
}

// Note returns the merchant's note at pos.
func (s *Store) Note(ctx context.Context, merchantID string, pos int64) (webhooks.Note, error) {
	d, err := findOne(ctx, s, collNotes, noteID(merchantID, pos), "webhook note", func(d noteDoc) noteDoc { return d })
	if err != nil {
		return webhooks.Note{}, err
	}
	n := webhooks.Note{MerchantID: d.MerchantID, Pos: d.Pos, Type: d.Type, At: d.At.UTC()}
	if err := json.Unmarshal([]byte(d.Data), &n.Data); err != nil {
		return n, apperr.Wrap(err, "decode a webhook note")
	}
	return n, nil
}

// NotesTail returns the merchant's last note position (2·log2 n point reads).
func (s *Store) NotesTail(ctx context.Context, merchantID string) (int64, error) {
	return denseTail(func(n int64) (bool, error) {
		err := s.db.Collection(collNotes).FindOne(ctx, bson.D{{Key: "_id", Value: noteID(merchantID, n)}}).Err()
		if errors.Is(err, mongo.ErrNoDocuments) {
			return false, nil
		}
		return err == nil, storeError(err, "read webhook notes")
	})
}
