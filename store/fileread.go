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
// an event, a subject, journal and feed entries) go straight to its SQLite file, read-only, through
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
	e.readerOnce.Do(func() {
		e.fileReader, e.readerErr = e.openFileDB("mode=ro&_pragma=busy_timeout(10000)&_pragma=mmap_size(268435456)", 16)
	})
	return e.fileReader, e.readerErr
}

// scanner returns the connections that read long ranges: no memory map and
// a small page cache, so a pass over a whole table leaves the process's
// memory as it was.
func (e *embedded) scanner(ctx context.Context) (*fileDB, error) {
	e.scannerOnce.Do(func() {
		e.fileScanner, e.scannerErr = e.openFileDB("mode=ro&_pragma=busy_timeout(10000)&_pragma=mmap_size(0)&_pragma=cache_size(-2048)", 2)
	})
	return e.fileScanner, e.scannerErr
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

// rowQuerier is a pool or a transaction.
type rowQuerier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// table returns the table that holds collection, looked up through q (a
// transaction of the pool holds its connection).
func (r *fileDB) table(ctx context.Context, q rowQuerier, collection string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t, ok := r.tables[collection]; ok {
		return t, nil
	}
	var table string
	if err := q.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, collection).Scan(&table); err != nil {
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
	st, ok := r.stmts[k]
	r.mu.Unlock()
	if ok {
		return st, nil
	}
	table, err := r.table(ctx, r.db, collection)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if st, ok := r.stmts[k]; ok {
		return st, nil
	}
	st, err = r.db.PrepareContext(ctx, fmt.Sprintf(query, table))
	if err != nil {
		return nil, err
	}
	r.stmts[k] = st
	return st, nil
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

type rowScanner interface{ Scan(dest ...any) error }

// stateColumns are a projection's fields as the file holds them.
const stateColumns = `_ferretdb_sjson->>'$.merchant_id', _ferretdb_sjson->>'$.subject_id', _ferretdb_sjson->>'$.seq',
		_ferretdb_sjson->>'$.head_hash', json(_ferretdb_sjson->'$.purposes'), _ferretdb_sjson->>'$.updated_at',
		coalesce(_ferretdb_sjson->>'$.level', ''), coalesce(_ferretdb_sjson->>'$.level_seq', 0),
		coalesce(_ferretdb_sjson->>'$.erased_seq', 0)`

func scanState(r rowScanner) (consent.SubjectState, error) {
	var (
		st        consent.SubjectState
		purposes  []byte
		updatedAt int64
	)
	var level string
	if err := r.Scan(&st.MerchantID, &st.SubjectID, &st.Seq, &st.HeadHash, &purposes, &updatedAt, &level, &st.LevelSeq, &st.ErasedSeq); err != nil {
		return consent.SubjectState{}, err
	}
	var ps map[string]filePurposeState
	if err := json.Unmarshal(purposes, &ps); err != nil {
		return consent.SubjectState{}, err
	}
	st.UpdatedAt = fromMillis(updatedAt)
	st.Level = consent.Level(level)
	st.Purposes = make(map[string]consent.PurposeState, len(ps))
	for k, v := range ps {
		st.Purposes[k] = consent.PurposeState{State: consent.State(v.State), Seq: v.Seq, NoticeVersion: v.NoticeVersion, Channel: consent.Channel(v.Channel), At: fromMillis(v.At), GPCSeq: v.GPCSeq}
	}
	return st, nil
}

// stateFromFile reads a subject's projection on the embedded store, which
// writes it in the same transaction as the events (see appender.insert).
func (s *Store) stateFromFile(ctx context.Context, merchantID, subjectID string) (consent.SubjectState, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	q, err := r.stmt(ctx, collRecords, `SELECT `+stateColumns+` FROM %q WHERE _ferretdb_sjson->'$._id' = ?`)
	if err != nil {
		return consent.SubjectState{}, storeError(err, "read consent state")
	}
	s.embedded.reads.Add(1)
	st, err := scanState(q.QueryRowContext(ctx, quotedID(id(merchantID, subjectID))))
	if errors.Is(err, sql.ErrNoRows) {
		return consent.SubjectState{}, apperr.New(apperr.NotFound, "consent state not found")
	}
	return st, storeError(err, "read consent state")
}

// statesFromFile reads many subjects' projections, those that exist.
func (s *Store) statesFromFile(ctx context.Context, merchantID string, subjectIDs []string) (map[string]consent.SubjectState, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return nil, storeError(err, "read consent states")
	}
	out := make(map[string]consent.SubjectState, len(subjectIDs))
	const per = 250
	for lo := 0; lo < len(subjectIDs); lo += per {
		part := subjectIDs[lo:min(lo+per, len(subjectIDs))]
		// Always per parameters (the rest repeat the first), so that one
		// prepared statement serves every call.
		q, err := r.stmt(ctx, collRecords, `SELECT `+stateColumns+` FROM %q WHERE _ferretdb_sjson->'$._id' IN (?`+strings.Repeat(",?", per-1)+`)`)
		if err != nil {
			return nil, storeError(err, "read consent states")
		}
		args := make([]any, per)
		for i := range args {
			args[i] = quotedID(id(merchantID, part[min(i, len(part)-1)]))
		}
		rows, err := q.QueryContext(ctx, args...)
		if err != nil {
			return nil, storeError(err, "read consent states")
		}
		for rows.Next() {
			st, err := scanState(rows)
			if err != nil {
				rows.Close()
				return nil, storeError(err, "read consent states")
			}
			s.embedded.reads.Add(1)
			out[st.SubjectID] = st
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, storeError(err, "read consent states")
		}
	}
	return out, nil
}

// idsInFile reports which of ids are the _id of a document of collection.
func (s *Store) idsInFile(ctx context.Context, collection string, ids []string) (map[string]bool, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ids))
	const per = 250
	q, err := r.stmt(ctx, collection, `SELECT _ferretdb_sjson->>'$._id' FROM %q WHERE _ferretdb_sjson->'$._id' IN (?`+strings.Repeat(",?", per-1)+`)`)
	if err != nil {
		return nil, err
	}
	for lo := 0; lo < len(ids); lo += per {
		part := ids[lo:min(lo+per, len(ids))]
		args := make([]any, per)
		for i := range args {
			args[i] = quotedID(part[min(i, len(part)-1)]) // the rest repeat the last: one statement serves every call
		}
		rows, err := q.QueryContext(ctx, args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var found string
			if err := rows.Scan(&found); err != nil {
				rows.Close()
				return nil, err
			}
			s.embedded.reads.Add(1)
			out[found] = true
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// eachStateInFile reads every projection from the file.
func (e *embedded) eachStateInFile(ctx context.Context, fn func(consent.SubjectState) error) error {
	db, table, err := e.openFile(ctx, collRecords)
	if err != nil {
		return storeError(err, "scan consent states")
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT `+stateColumns+` FROM %q`, table))
	if err != nil {
		return storeError(err, "scan consent states")
	}
	defer rows.Close()
	for rows.Next() {
		st, err := scanState(rows)
		if err != nil {
			return storeError(err, "scan consent states")
		}
		e.reads.Add(1)
		if err := fn(st); err != nil {
			return err
		}
	}
	return storeError(rows.Err(), "scan consent states")
}

// eventRangeFromFile reads the subject's events from..to, in order: one
// range read of the _id index.
func (s *Store) eventRangeFromFile(ctx context.Context, merchantID, subjectID string, from, to int64) ([]eventDoc, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return nil, storeError(err, "read events")
	}
	st, err := r.stmt(ctx, collEvents, `SELECT _ferretdb_sjson FROM %q
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
	var dd docDecoder
	for rows.Next() {
		var raw []byte
		if err := rows.Scan(&raw); err != nil {
			return nil, storeError(err, "read events")
		}
		e, err := dd.event(raw)
		if err != nil {
			return nil, storeError(err, "read events")
		}
		s.embedded.reads.Add(1)
		out = append(out, toEventDoc(e))
	}
	return out, storeError(rows.Err(), "read events")
}

func (s *Store) eventFromFile(ctx context.Context, id string) (consent.Event, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return consent.Event{}, storeError(err, "read event")
	}
	st, err := r.stmt(ctx, collEvents, `SELECT _ferretdb_sjson FROM %q WHERE _ferretdb_sjson->'$._id' = ?`)
	if err != nil {
		return consent.Event{}, storeError(err, "read event")
	}
	s.embedded.reads.Add(1)
	var raw []byte
	err = st.QueryRowContext(ctx, quotedID(id)).Scan(&raw)
	if errors.Is(err, sql.ErrNoRows) {
		return consent.Event{}, apperr.New(apperr.NotFound, "event not found")
	}
	if err != nil {
		return consent.Event{}, storeError(err, "read event")
	}
	var dd docDecoder
	e, err := dd.event(raw)
	return e, storeError(err, "read event")
}

func (s *Store) subjectFromFile(ctx context.Context, id string) (consent.Subject, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return consent.Subject{}, storeError(err, "read subject")
	}
	st, err := r.stmt(ctx, collSubjects, `SELECT `+subjectColumns+` FROM %q WHERE _ferretdb_sjson->'$._id' = ?`)
	if err != nil {
		return consent.Subject{}, storeError(err, "read subject")
	}
	s.embedded.reads.Add(1)
	sub, err := scanSubject(st.QueryRowContext(ctx, quotedID(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return consent.Subject{}, apperr.New(apperr.NotFound, "subject not found")
	}
	return sub, storeError(err, "read subject")
}

// subjectColumns are a subject's fields as the file holds them.
const subjectColumns = `_ferretdb_sjson->>'$.merchant_id', _ferretdb_sjson->>'$.subject_id', _ferretdb_sjson->>'$.email',
		_ferretdb_sjson->>'$.locale', _ferretdb_sjson->>'$.time_zone', _ferretdb_sjson->>'$.created_at', _ferretdb_sjson->>'$.updated_at',
		_ferretdb_sjson->>'$.relationship', coalesce(_ferretdb_sjson->>'$.erased_at', 0)`

func scanSubject(r rowScanner) (consent.Subject, error) {
	var (
		sub                    consent.Subject
		email, locale, tz, rel sql.NullString
		created, updated       int64
		erased                 int64
	)
	if err := r.Scan(&sub.MerchantID, &sub.ID, &email, &locale, &tz, &created, &updated, &rel, &erased); err != nil {
		return consent.Subject{}, err
	}
	if erased != 0 {
		sub.ErasedAt = fromMillis(erased)
	}
	sub.Email, sub.Locale, sub.TimeZone, sub.Relationship = email.String, locale.String, tz.String, consent.Relationship(rel.String)
	sub.CreatedAt, sub.UpdatedAt = fromMillis(created), fromMillis(updated)
	return sub, nil
}

// subjectsFromFile reads many subjects on the embedded store, 250 to a
// statement (see statesFromFile).
func (s *Store) subjectsFromFile(ctx context.Context, merchantID string, subjectIDs []string) (map[string]consent.Subject, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return nil, storeError(err, "read subjects")
	}
	out := make(map[string]consent.Subject, len(subjectIDs))
	const per = 250
	for lo := 0; lo < len(subjectIDs); lo += per {
		part := subjectIDs[lo:min(lo+per, len(subjectIDs))]
		q, err := r.stmt(ctx, collSubjects, `SELECT `+subjectColumns+` FROM %q WHERE _ferretdb_sjson->'$._id' IN (?`+strings.Repeat(",?", per-1)+`)`)
		if err != nil {
			return nil, storeError(err, "read subjects")
		}
		args := make([]any, per)
		for i := range args {
			args[i] = quotedID(id(merchantID, part[min(i, len(part)-1)]))
		}
		rows, err := q.QueryContext(ctx, args...)
		if err != nil {
			return nil, storeError(err, "read subjects")
		}
		for rows.Next() {
			sub, err := scanSubject(rows)
			if err != nil {
				rows.Close()
				return nil, storeError(err, "read subjects")
			}
			s.embedded.reads.Add(1)
			out[sub.ID] = sub
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return nil, storeError(err, "read subjects")
		}
	}
	return out, nil
}

// fieldsFromFile reads fields of the document with _id id in collection
// into dest, one per path (SQLite JSON paths such as '$.pos'; a path
// ending in "[]" reads the JSON text of an array or object), and says
// whether the document exists.
func (s *Store) fieldsFromFile(ctx context.Context, collection, id string, paths []string, dest ...any) (bool, error) {
	r, err := s.embedded.reader(ctx)
	if err != nil {
		return false, err
	}
	cols := make([]string, len(paths))
	for i, p := range paths {
		if j, ok := strings.CutSuffix(p, "[]"); ok {
			cols[i] = "json(_ferretdb_sjson->'" + j + "')"
		} else {
			cols[i] = "_ferretdb_sjson->>'" + p + "'"
		}
	}
	sel := "1"
	if len(cols) > 0 {
		sel = strings.Join(cols, ", ")
	}
	st, err := r.stmt(ctx, collection, `SELECT `+sel+` FROM %q WHERE _ferretdb_sjson->'$._id' = ?`)
	if err != nil {
		return false, err
	}
	if len(dest) == 0 {
		var one int
		dest = []any{&one}
	}
	s.embedded.reads.Add(1)
	err = st.QueryRowContext(ctx, quotedID(id)).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}
