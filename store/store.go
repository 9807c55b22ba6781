// Package store is the MongoDB implementation of the domain's store
// interfaces. With no URI it starts an embedded MongoDB-compatible server
// (FerretDB on SQLite) in a data directory and reaches it over the wire.
//
// Documents read on hot paths are keyed by _id ("<merchant>/<subject>"...):
// the one filter the embedded server answers from an index, the fastest read
// on MongoDB and a natural shard key. Secondary indexes are declared for
// MongoDB; no hot path on the embedded server depends on them.
package store

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"
	"go.mongodb.org/mongo-driver/v2/mongo/writeconcern"

	"github.com/fineline/fineline/apperr"
)

// DatabaseName is the database Fineline keeps its collections in.
const DatabaseName = "fineline"

// Config says which store to open.
type Config struct {
	// URI of a MongoDB deployment; empty starts the embedded store in DataDir.
	URI string
	// DataDir holds the embedded store's files.
	DataDir string
	// Attach connects to the embedded store of a Fineline process already
	// serving DataDir, instead of failing, for admin commands.
	Attach bool
	// Logger receives the embedded server's warnings and errors.
	Logger *slog.Logger
	// Shared makes the embedded store behave as MongoDB does for Fineline:
	// one of several instances on one store (no single-process shortcuts,
	// a claimed journal slot), so tests can run those code paths; see Join.
	Shared bool
	// join is the URI of an embedded store another Store serves (Join).
	join string
}

// countReads counts the documents the driver's reads returned.
func (s *Store) countReads(_ context.Context, e *event.CommandSucceededEvent) {
	switch e.CommandName {
	case "find", "getMore", "aggregate":
		for _, batch := range []string{"firstBatch", "nextBatch"} {
			if v, err := e.Reply.LookupErr("cursor", batch); err == nil {
				if arr, ok := v.ArrayOK(); ok {
					vals, _ := arr.Values()
					s.driverReads.Add(int64(len(vals)))
				}
			}
		}
	case "findAndModify", "count", "distinct":
		s.driverReads.Add(1)
	}
}

// DocumentsRead counts the documents this Store has read, through the
// server and straight from the embedded store's file: what tests bound.
func (s *Store) DocumentsRead() int64 {
	n := s.driverReads.Load()
	if s.embedded != nil {
		n += s.embedded.reads.Load()
	}
	return n
}

// Store is an open connection to the database and, for the embedded store,
// the server behind it.
type Store struct {
	// committed, when set, is told of every group commit: how many
	// appends, how many documents, how long (see ObserveCommits).
	committed atomic.Pointer[func(appends, docs int, took time.Duration)]
	client    *mongo.Client
	db        *mongo.Database
	embedded  *embedded // nil with MONGODB_URI
	// local is true on the embedded store, which one process owns: writes
	// are queued in-process, events group-committed, scans read its file,
	// compare-and-set is a read and a replace under an in-process lock.
	local bool
	log   *slog.Logger
	// driverReads counts documents the driver's reads returned.
	driverReads atomic.Int64
	// casLocks serialize compare-and-set writes on the embedded server, which
	// answers a filter other than {_id} by scanning, and does not update
	// atomically. The data directory is locked to this process, so an
	// in-process lock makes those writes atomic.
	casLocks [256]sync.Mutex
	writeMu  sync.Mutex
	// appender group-commits events with their journal and feed entries.
	appender *appender
	// joined is set on a Store that Join connected to another's server.
	joined bool
	// slot is the journal this process writes; owner its claim on MongoDB
	// (nil on the embedded store, which owns slot 0).
	slot  int
	owner *slotOwner
	// scanViaDriver makes whole-collection scans go through the server even
	// on the embedded store (tests compare both ways).
	scanViaDriver bool
	// writeTaken and writeRefused are when (UnixNano) a write last went in,
	// and was last refused by a store that is full or unreachable.
	writeTaken, writeRefused atomic.Int64
}

// Open connects to the configured store, starting the embedded one if no
// URI is given, and ensures every collection and index exists.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Store{log: cfg.Logger}
	uri := cfg.URI
	if cfg.join != "" {
		uri = cfg.join
	} else if uri == "" {
		e, err := startEmbedded(ctx, cfg.DataDir, cfg.Attach, cfg.Logger)
		if err != nil {
			return nil, err
		}
		s.embedded = e
		s.local = !cfg.Shared
		uri = e.uri
	}
	opts := options.Client().ApplyURI(uri).SetAppName("fineline").SetTimeout(30 * time.Second).SetMonitor(&event.CommandMonitor{Succeeded: s.countReads})
	if s.embedded == nil && cfg.join == "" && !strings.Contains(uri, "w=") {
		opts.SetWriteConcern(writeconcern.Majority())
	}
	client, err := mongo.Connect(opts)
	if err != nil {
		s.closeEmbedded()
		return nil, fmt.Errorf("connect to store: %w", err)
	}
	s.client = client
	s.db = client.Database(DatabaseName)
	pingCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := client.Ping(pingCtx, readpref.Primary()); err != nil {
		_ = s.Close(context.Background())
		return nil, fmt.Errorf("reach store: %w", err)
	}
	if s.embedded == nil || !s.embedded.attached {
		if err := s.ensureIndexes(ctx); err != nil {
			_ = s.Close(context.Background())
			return nil, err
		}
	}
	if s.embedded != nil && !s.embedded.attached {
		if err := s.embedded.indexIDs(ctx); err != nil {
			_ = s.Close(context.Background())
			return nil, err
		}
	}
	if s.embedded == nil || !s.embedded.attached {
		if !s.local {
			o, err := s.claimSlot(ctx, cfg.Logger)
			if err != nil {
				_ = s.Close(context.Background())
				return nil, err
			}
			s.owner, s.slot = o, o.slot
		}
		s.appender = newAppender(s, s.slot)
	}
	return s, nil
}

// Join connects another instance to the embedded store s serves, as a
// second Fineline process on a shared MongoDB would: it claims its own
// journal slot and takes no single-process shortcut. s must be Shared. It is
// for tests of several instances; closing the joined Store leaves s running.
func (s *Store) Join(ctx context.Context, log *slog.Logger) (*Store, error) {
	if s.embedded == nil || s.local {
		return nil, errors.New("store: Join needs an embedded store opened Shared")
	}
	j, err := Open(ctx, Config{join: s.embedded.uri, Shared: true, Logger: log})
	if err != nil {
		return nil, err
	}
	j.joined = true
	return j, nil
}

// ObserveCommits has fn told of every group commit of events.
func (s *Store) ObserveCommits(fn func(appends, docs int, took time.Duration)) {
	s.committed.Store(&fn)
}

// Embedded reports whether this is the embedded store.
func (s *Store) Embedded() bool { return s.embedded != nil }

// Database returns the database handle, for tests and admin commands.
func (s *Store) Database() *mongo.Database { return s.db }

// Ping reports whether the store answers.
// Ping reports whether the store answers and takes writes: a store that
// refused a write for want of room (or access) in the last refusalMemory,
// with none taken since, is not ready either.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.client.Ping(ctx, readpref.Primary()); err != nil {
		return &apperr.Error{Code: apperr.Unavailable, Message: "the consent store cannot be reached", Detail: apperr.CodeStoreUnavailable, Err: err}
	}
	refused, took := s.writeRefused.Load(), s.writeTaken.Load()
	if refused > took && time.Since(time.Unix(0, refused)) < refusalMemory {
		return apperr.New(apperr.Unavailable, "the consent store refuses writes (full, or read-only)").WithDetail(apperr.CodeStoreUnavailable)
	}
	return nil
}

// refusalMemory is how long a refused write keeps the store not ready,
// unless a write is taken meanwhile.
const refusalMemory = 30 * time.Second

// noteWrite remembers how a write went, for Ping.
func (s *Store) noteWrite(err error) {
	switch {
	case err == nil:
		s.writeTaken.Store(time.Now().UnixNano())
	case unavailable(err) || apperr.Is(err, apperr.Unavailable):
		s.writeRefused.Store(time.Now().UnixNano())
	}
}

// Close disconnects and stops the embedded server.
func (s *Store) Close(ctx context.Context) error {
	var err error
	if s.appender != nil {
		s.appender.stop()
		s.appender = nil
	}
	if s.owner != nil {
		s.releaseSlot(ctx, s.owner)
		s.owner = nil
	}
	if s.client != nil {
		err = s.client.Disconnect(ctx)
	}
	s.closeEmbedded()
	return err
}

func (s *Store) closeEmbedded() {
	if s.embedded != nil {
		s.embedded.stop()
	}
}

func (s *Store) casLock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &s.casLocks[h.Sum32()%uint32(len(s.casLocks))]
	m.Lock()
	return m.Unlock
}

// ensureIndexes creates missing collections and indexes. It only asks for
// what is missing: the embedded server logs every "already exists" answer
// and panics on a createIndexes that names existing indexes.
func (s *Store) ensureIndexes(ctx context.Context) error {
	existing, err := s.db.ListCollectionNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("list collections: %w", err)
	}
	for name, models := range collectionIndexes() {
		if !slices.Contains(existing, name) {
			if err := s.db.CreateCollection(ctx, name); err != nil {
				return fmt.Errorf("create collection %s: %w", name, err)
			}
		}
		if s.local {
			// The embedded server answers only {_id} from an index: a
			// secondary index there would cost every write and serve no read.
			continue
		}
		specs, err := s.db.Collection(name).Indexes().ListSpecifications(ctx)
		if err != nil {
			return fmt.Errorf("list indexes on %s: %w", name, err)
		}
		for _, old := range obsoleteIndexes()[name] {
			if slices.ContainsFunc(specs, func(sp mongo.IndexSpecification) bool { return sp.Name == old }) {
				if err := s.db.Collection(name).Indexes().DropOne(ctx, old); err != nil {
					return fmt.Errorf("drop index %s on %s: %w", old, name, err)
				}
			}
		}
		var missing []mongo.IndexModel
		for _, m := range models {
			if !slices.ContainsFunc(specs, func(sp mongo.IndexSpecification) bool { return sp.Name == indexName(m) }) {
				missing = append(missing, m)
			}
		}
		if len(missing) == 0 {
			continue
		}
		if _, err := s.db.Collection(name).Indexes().CreateMany(ctx, missing); err != nil {
			return fmt.Errorf("ensure indexes on %s: %w", name, err)
		}
	}
	return nil
}

// indexName is the name the driver gives an index: field_direction pairs.
func indexName(m mongo.IndexModel) string {
	var parts []string
	for _, e := range m.Keys.(bson.D) {
		parts = append(parts, fmt.Sprintf("%s_%v", e.Key, e.Value))
	}
	return strings.Join(parts, "_")
}

// writing takes the embedded store's writer lock and returns its release.
// SQLite lets one writer in at a time and makes the others sleep and retry;
// queueing them here instead keeps writes from stalling each other. Reads
// are not affected. On MongoDB it does nothing.
func (s *Store) writing() func() {
	if !s.local {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// insertOne inserts doc into coll.
func (s *Store) insertOne(ctx context.Context, coll string, doc any) error {
	defer s.writing()()
	_, err := s.db.Collection(coll).InsertOne(ctx, doc)
	if !mongo.IsDuplicateKeyError(err) {
		s.noteWrite(err)
	}
	return err
}

// updateByID applies update to the document with _id id and reports
// whether one matched.
func (s *Store) updateByID(ctx context.Context, coll, id string, update bson.D) (bool, error) {
	defer s.writing()()
	res, err := s.db.Collection(coll).UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, update)
	if err != nil {
		return false, err
	}
	return res.MatchedCount == 1, nil
}

// deleteByID deletes the document with _id id and reports whether there was one.
func (s *Store) deleteByID(ctx context.Context, coll, id string) (bool, error) {
	defer s.writing()()
	res, err := s.db.Collection(coll).DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return false, err
	}
	return res.DeletedCount == 1, nil
}

// replaceByID stores doc under _id, inserting it if absent. The embedded
// server's upsert is a read then an insert, so two at once can meet a
// duplicate key: then the document exists and a plain replace finishes.
func (s *Store) replaceByID(ctx context.Context, coll, id string, doc any) error {
	defer s.writing()()
	c := s.db.Collection(coll)
	filter := bson.D{{Key: "_id", Value: id}}
	_, err := c.ReplaceOne(ctx, filter, doc, options.Replace().SetUpsert(true))
	if mongo.IsDuplicateKeyError(err) {
		_, err = c.ReplaceOne(ctx, filter, doc)
	}
	s.noteWrite(err)
	return err
}

// findOne reads the document with _id id into a D (a point read) and maps
// it with conv; NotFound names what.
func findOne[D, T any](ctx context.Context, s *Store, coll, id, what string, conv func(D) T) (T, error) {
	var d D
	if err := s.db.Collection(coll).FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&d); err != nil {
		var zero T
		return zero, notFound(err, what)
	}
	return conv(d), nil
}

// listByMerchant reads a merchant's documents of coll, sorted by the field
// sortBy, and maps each with conv.
func listByMerchant[D, T any](ctx context.Context, s *Store, coll, merchantID, sortBy string, conv func(D) T) ([]T, error) {
	return list(ctx, s, coll, bson.D{{Key: "merchant_id", Value: merchantID}}, sortBy, conv)
}

// list reads the documents of coll matching filter, sorted by the field
// sortBy, and maps each with conv.
func list[D, T any](ctx context.Context, s *Store, coll string, filter bson.D, sortBy string, conv func(D) T) ([]T, error) {
	return find(ctx, s, coll, filter, options.Find().SetSort(bson.D{{Key: sortBy, Value: 1}}), "list "+coll, conv)
}

// find reads the documents of coll matching filter, as opts orders and
// bounds them, and maps each with conv; what names the read in errors.
func find[D, T any](ctx context.Context, s *Store, coll string, filter bson.D, opts *options.FindOptionsBuilder, what string, conv func(D) T) ([]T, error) {
	cur, err := s.db.Collection(coll).Find(ctx, filter, opts)
	if err != nil {
		return nil, storeError(err, "%s", what)
	}
	var docs []D
	if err := cur.All(ctx, &docs); err != nil {
		return nil, storeError(err, "%s", what)
	}
	out := make([]T, 0, len(docs))
	for _, d := range docs {
		out = append(out, conv(d))
	}
	return out, nil
}

func id(parts ...string) string { return strings.Join(parts, "/") }

func notFound(err error, what string) error {
	if errors.Is(err, mongo.ErrNoDocuments) {
		return apperr.New(apperr.NotFound, "%s not found", what)
	}
	return storeError(err, "read %s", what)
}
