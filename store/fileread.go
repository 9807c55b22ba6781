package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Point reads on the hot path of the embedded store (a subject's projection,
// an event, a subject) go straight to its SQLite file, read-only, through
// the same _id expression index the server would use: through the server
// each read costs a wire round trip, a query plan and a decode of the
// stored JSON into the server's types and back to BSON (about 0.7 ms here);
// straight from the file it is a prepared statement. The file is in WAL
// mode, so these readers see every committed write and never block one.
// Writes always go through the server.

// fileDB is a connection pool to the embedded store's file with its
// prepared statements.
type fileDB struct {
	db     *sql.DB
	mu     sync.Mutex
	stmts  map[string]*sql.Stmt
	tables map[string]string
}

func (e *embedded) reader(ctx context.Context) (*fileDB, error) {
	e.readerOnce.Do(func() { e.fileReader, e.readerErr = e.openFileDB("mode=ro&_pragma=busy_timeout(10000)", 16) })
	return e.fileReader, e.readerErr
}

// openFileDB opens a pool of conns connections to the store's file.
func (e *embedded) openFileDB(query string, conns int) (*fileDB, error) {
	path := filepath.Join(e.dir, DatabaseName+".sqlite")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: path, RawQuery: query}).String())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(conns)
	db.SetMaxIdleConns(conns)
	return &fileDB{db: db, stmts: map[string]*sql.Stmt{}}, nil
}

// table returns the table that holds collection.
func (r *fileDB) table(ctx context.Context, collection string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tables[collection]; ok {
		return t, nil
	}
	var table string
	if err := r.db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, collection).Scan(&table); err != nil {
		return "", fmt.Errorf("find table of %s: %w", collection, err)
	}
	if r.tables == nil {
		r.tables = map[string]string{}
	}
	r.tables[collection] = table
	return table, nil
}

// stmt prepares (once) a query of the table that holds collection; the
// query is a format string with one %q for the table.
func (r *fileDB) stmt(ctx context.Context, collection, query string) (*sql.Stmt, error) {
	k := collection + "\x00" + query
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.stmts[k]; ok {
		return s, nil
	}
	var table string
	if err := r.db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, collection).Scan(&table); err != nil {
		return nil, fmt.Errorf("find table of %s: %w", collection, err)
	}
	s, err := r.db.PrepareContext(ctx, fmt.Sprintf(query, table))
	if err != nil {
		return nil, err
	}
	r.stmts[k] = s
	return s, nil
}

func (r *fileDB) close() {
	if r != nil {
		_ = r.db.Close()
	}
}

// quotedID is an _id as the index holds it: a JSON string.
func quotedID(id string) string {
	b, _ := json.Marshal(id)
	return string(b)
}

// fileReads reports whether point reads may go to the file.
func (s *Store) fileReads() bool { return s.local && !s.scanViaDriver }

// eventColumns are an event's fields as the file holds them.
const eventColumns = `_ferretdb_sjson->>'$.merchant_id', _ferretdb_sjson->>'$.subject_id', _ferretdb_sjson->>'$.seq',
		_ferretdb_sjson->>'$.purpose', _ferretdb_sjson->>'$.state', _ferretdb_sjson->>'$.notice_version', _ferretdb_sjson->>'$.channel',
		_ferretdb_sjson->>'$.actor', _ferretdb_sjson->>'$.recorded_at', _ferretdb_sjson->>'$.idempotency_key', _ferretdb_sjson->>'$.prev_hash',
		_ferretdb_sjson->>'$.hash', _ferretdb_sjson->>'$.field'`

type rowScanner interface{ Scan(dest ...any) error }

func scanEvent(r rowScanner) (consent.Event, error) {
	var (
		state, channel           string
		recorded                 int64
		idem, field              sql.NullString
		merchant, subject, actor string
		purpose, prevHash, hash  string
		seq                      int64
		notice                   int
	)
	if err := r.Scan(&merchant, &subject, &seq, &purpose, &state, &notice, &channel, &actor, &recorded, &idem, &prevHash, &hash, &field); err != nil {
		return consent.Event{}, err
	}
	return consent.Event{MerchantID: merchant, SubjectID: subject, Seq: seq, Purpose: purpose, State: consent.State(state), NoticeVersion: notice,
		Channel: consent.Channel(channel), Actor: actor, RecordedAt: fromMillis(recorded), IdempotencyKey: idem.String, PrevHash: prevHash, Hash: hash, Field: field.String}, nil
}

// snapshotEvery is how many events apart the embedded store keeps a
// snapshot of a subject's state (in the same insert as the events), so
// that deriving the state reads at most that many events.
const snapshotEvery = 32

func snapshotID(merchantID, subjectID string, seq int64) string {
	return fmt.Sprintf("%s/%s/~s%08d", merchantID, subjectID, seq/snapshotEvery)
}

// stateFromFile derives a subject's state on the embedded store: its
// latest snapshot, then the events after it, two range reads of the _id
// index (events sort before snapshots: "~" follows the digits).
func (s *Store) stateFromFile(ctx context.Context, merchantID, subjectID string) (consent.SubjectState, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	snap, err := r.stmt(ctx, collEvents, `SELECT _ferretdb_sjson->>'$.seq', _ferretdb_sjson->>'$.head_hash', _ferretdb_sjson->'$.purposes', _ferretdb_sjson->>'$.updated_at'
		FROM %q WHERE _ferretdb_sjson->'$._id' > ? AND _ferretdb_sjson->'$._id' < ? ORDER BY _ferretdb_sjson->'$._id' DESC LIMIT 1`)
	if err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	prefix := `"` + merchantID + "/" + subjectID + "/"
	st := consent.SubjectState{MerchantID: merchantID, SubjectID: subjectID, Purposes: map[string]consent.PurposeState{}}
	var (
		purposes  []byte
		updatedAt int64
	)
	err = snap.QueryRowContext(ctx, prefix+"~s", prefix+"~t").Scan(&st.Seq, &st.HeadHash, &purposes, &updatedAt)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return consent.SubjectState{}, storeError(err, "read consent state")
	default:
		var ps map[string]filePurposeState
		if err := json.Unmarshal(purposes, &ps); err != nil {
			return consent.SubjectState{}, storeError(err, "read consent state")
		}
		st.UpdatedAt = fromMillis(updatedAt)
		for k, v := range ps {
			st.Purposes[k] = consent.PurposeState{State: consent.State(v.State), Seq: v.Seq, NoticeVersion: v.NoticeVersion, Channel: consent.Channel(v.Channel), At: fromMillis(v.At), GPCSeq: v.GPCSeq}
		}
	}
	evs, err := r.stmt(ctx, collEvents, `SELECT `+eventColumns+` FROM %q WHERE _ferretdb_sjson->'$._id' > ? AND _ferretdb_sjson->'$._id' < ? ORDER BY _ferretdb_sjson->'$._id'`)
	if err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	rows, err := evs.QueryContext(ctx, quotedID(eventID(merchantID, subjectID, st.Seq)), prefix+"~")
	if err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	defer rows.Close()
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return consent.SubjectState{}, storeError(err, "read consent state")
		}
		if e.Seq != st.Seq+1 || e.PrevHash != st.HeadHash {
			return consent.SubjectState{}, apperr.Wrap(fmt.Errorf("%w at seq %d", consent.ErrChainBroken, e.Seq), "consent state unavailable")
		}
		st = st.Next(e)
	}
	if err := rows.Err(); err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	if st.Seq == 0 {
		return consent.SubjectState{}, apperr.New(apperr.NotFound, "consent state not found")
	}
	return st, nil
}

// eachStateInFile derives every subject's state from the events file, in
// _id order (a subject's events are adjacent).
func (e *embedded) eachStateInFile(ctx context.Context, fn func(consent.SubjectState) error) error {
	db, table, err := e.openFile(ctx, collEvents)
	if err != nil {
		return storeError(err, "scan consent events")
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT _ferretdb_sjson->>'$._id', `+eventColumns+` FROM %q INDEXED BY %q ORDER BY _ferretdb_sjson->'$._id'`, table, table+"_fl_id_path"))
	if err != nil {
		return storeError(err, "scan consent events")
	}
	defer rows.Close()
	var cur consent.SubjectState
	flush := func() error {
		if cur.Seq == 0 {
			return nil
		}
		return fn(cur)
	}
	for rows.Next() {
		var (
			docID string
			ev    struct {
				merchant, subject, purpose, state, channel, actor, prevHash, hash sql.NullString
				seq, notice, recorded                                             sql.NullInt64
				idem, field                                                       sql.NullString
			}
		)
		if err := rows.Scan(&docID, &ev.merchant, &ev.subject, &ev.seq, &ev.purpose, &ev.state, &ev.notice, &ev.channel, &ev.actor, &ev.recorded,
			&ev.idem, &ev.prevHash, &ev.hash, &ev.field); err != nil {
			return storeError(err, "scan consent events")
		}
		if strings.HasPrefix(docID, "~") || strings.Contains(docID, "/~") {
			continue // a journal, feed or snapshot entry
		}
		e := consent.Event{MerchantID: ev.merchant.String, SubjectID: ev.subject.String, Seq: ev.seq.Int64, Purpose: ev.purpose.String,
			State: consent.State(ev.state.String), NoticeVersion: int(ev.notice.Int64), Channel: consent.Channel(ev.channel.String), Actor: ev.actor.String,
			RecordedAt: fromMillis(ev.recorded.Int64), IdempotencyKey: ev.idem.String, PrevHash: ev.prevHash.String, Hash: ev.hash.String, Field: ev.field.String}
		if e.MerchantID != cur.MerchantID || e.SubjectID != cur.SubjectID {
			if err := flush(); err != nil {
				return err
			}
			cur = consent.SubjectState{MerchantID: e.MerchantID, SubjectID: e.SubjectID, Purposes: map[string]consent.PurposeState{}}
		}
		if e.Seq == cur.Seq+1 {
			cur = cur.Next(e)
		}
	}
	if err := rows.Err(); err != nil {
		return storeError(err, "scan consent events")
	}
	return flush()
}

// eventRangeFromFile reads the subject's events from..to, in order: one
// range read of the _id index.
func (s *Store) eventRangeFromFile(ctx context.Context, merchantID, subjectID string, from, to int64) ([]eventDoc, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return nil, storeError(err, "read events")
	}
	st, err := r.stmt(ctx, collEvents, `SELECT `+eventColumns+` FROM %q
		WHERE _ferretdb_sjson->'$._id' >= ? AND _ferretdb_sjson->'$._id' <= ? ORDER BY _ferretdb_sjson->'$._id'`)
	if err != nil {
		return nil, storeError(err, "read events")
	}
	rows, err := st.QueryContext(ctx, quotedID(eventID(merchantID, subjectID, from)), quotedID(eventID(merchantID, subjectID, to)))
	if err != nil {
		return nil, storeError(err, "read events")
	}
	defer rows.Close()
	var out []eventDoc
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, storeError(err, "read events")
		}
		out = append(out, toEventDoc(e))
	}
	return out, storeError(rows.Err(), "read events")
}

func (s *Store) eventFromFile(ctx context.Context, id string) (consent.Event, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return consent.Event{}, storeError(err, "read event")
	}
	st, err := r.stmt(ctx, collEvents, `SELECT `+eventColumns+` FROM %q WHERE _ferretdb_sjson->'$._id' = ?`)
	if err != nil {
		return consent.Event{}, storeError(err, "read event")
	}
	e, err := scanEvent(st.QueryRowContext(ctx, quotedID(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return consent.Event{}, apperr.New(apperr.NotFound, "event not found")
	}
	if err != nil {
		return consent.Event{}, storeError(err, "read event")
	}
	return e, nil
}

func (s *Store) subjectFromFile(ctx context.Context, id string) (consent.Subject, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return consent.Subject{}, storeError(err, "read subject")
	}
	st, err := r.stmt(ctx, collSubjects, `SELECT _ferretdb_sjson->>'$.merchant_id', _ferretdb_sjson->>'$.subject_id', _ferretdb_sjson->>'$.email',
		_ferretdb_sjson->>'$.locale', _ferretdb_sjson->>'$.time_zone', _ferretdb_sjson->>'$.created_at', _ferretdb_sjson->>'$.updated_at'
		FROM %q WHERE _ferretdb_sjson->'$._id' = ?`)
	if err != nil {
		return consent.Subject{}, storeError(err, "read subject")
	}
	var (
		sub               consent.Subject
		email, locale, tz sql.NullString
		created, updated  int64
	)
	err = st.QueryRowContext(ctx, quotedID(id)).Scan(&sub.MerchantID, &sub.ID, &email, &locale, &tz, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return consent.Subject{}, apperr.New(apperr.NotFound, "subject not found")
	}
	if err != nil {
		return consent.Subject{}, storeError(err, "read subject")
	}
	sub.Email, sub.Locale, sub.TimeZone = email.String, locale.String, tz.String
	sub.CreatedAt, sub.UpdatedAt = fromMillis(created), fromMillis(updated)
	return sub, nil
}
