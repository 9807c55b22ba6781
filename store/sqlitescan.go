package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/fineline/fineline/consent"
)

// Whole-collection scans on the embedded store read its SQLite file
// directly, read-only: through the server, every document is decoded from
// its stored JSON into the server's types and re-encoded as BSON, which
// makes loading 100,000 projections take tens of seconds. The server keeps
// each document as JSON with a "$s" schema member beside the fields; dates
// are milliseconds since the epoch. Writes always go through the server.

// openFile opens the embedded store's database file read-only and returns
// the table that holds collection.
func (e *embedded) openFile(ctx context.Context, collection string) (*sql.DB, string, error) {
	path := filepath.Join(e.dir, DatabaseName+".sqlite")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: path, RawQuery: "mode=ro&_pragma=busy_timeout(10000)"}).String())
	if err != nil {
		return nil, "", err
	}
	var table string
	if err := db.QueryRowContext(ctx, `SELECT table_name FROM _ferretdb_collections WHERE name = ?`, collection).Scan(&table); err != nil {
		db.Close()
		return nil, "", fmt.Errorf("find table of %s: %w", collection, err)
	}
	return db, table, nil
}

type filePurposeState struct {
	State         string `json:"state"`
	Seq           int64  `json:"seq"`
	NoticeVersion int    `json:"notice_version"`
	Channel       string `json:"channel"`
	At            int64  `json:"at"`
	GPCSeq        int64  `json:"gpc_seq"`
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// eachRecordInFile reads every projection from the database file.
func (e *embedded) eachRecordInFile(ctx context.Context, fn func(consent.SubjectState) error) error {
	db, table, err := e.openFile(ctx, collRecords)
	if err != nil {
		return storeError(err, "scan consent states")
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT _ferretdb_sjson->>'$.merchant_id', _ferretdb_sjson->>'$.subject_id', _ferretdb_sjson->>'$.seq',
		_ferretdb_sjson->>'$.head_hash', _ferretdb_sjson->'$.purposes', _ferretdb_sjson->>'$.updated_at' FROM %q`, table))
	if err != nil {
		return storeError(err, "scan consent states")
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rec       consent.SubjectState
			purposes  []byte
			updatedAt int64
		)
		if err := rows.Scan(&rec.MerchantID, &rec.SubjectID, &rec.Seq, &rec.HeadHash, &purposes, &updatedAt); err != nil {
			return storeError(err, "scan consent states")
		}
		var ps map[string]filePurposeState
		if err := json.Unmarshal(purposes, &ps); err != nil {
			return storeError(err, "scan consent states: %s", rec.SubjectID)
		}
		rec.UpdatedAt = fromMillis(updatedAt)
		rec.Purposes = make(map[string]consent.PurposeState, len(ps))
		for k, v := range ps {
			rec.Purposes[k] = consent.PurposeState{State: consent.State(v.State), Seq: v.Seq, NoticeVersion: v.NoticeVersion, Channel: consent.Channel(v.Channel), At: fromMillis(v.At), GPCSeq: v.GPCSeq}
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return storeError(rows.Err(), "scan consent states")
}

// eachChainHeadInFile reads the highest event number of every subject. It
// walks the _id expression index in order, without decoding documents:
// event ids are "<merchant>/<subject>/<seq, zero-padded>", so each subject's
// events are adjacent and the last of a run is its head.
func (e *embedded) eachChainHeadInFile(ctx context.Context, fn func(merchantID, subjectID string, seq int64) error) error {
	db, table, err := e.openFile(ctx, collEvents)
	if err != nil {
		return storeError(err, "scan consent events")
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf(`SELECT _ferretdb_sjson->>'$._id' FROM %q INDEXED BY %q ORDER BY _ferretdb_sjson->'$._id'`, table, table+"_fl_id_path"))
	if err != nil {
		return storeError(err, "scan consent events")
	}
	defer rows.Close()
	var (
		prefix string
		head   int64
	)
	flush := func() error {
		if prefix == "" {
			return nil
		}
		m, s, _ := strings.Cut(prefix, "/")
		return fn(m, s, head)
	}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return storeError(err, "scan consent events")
		}
		i := strings.LastIndexByte(id, '/')
		if i < 0 {
			return storeError(fmt.Errorf("event id %q", id), "scan consent events")
		}
		seq, err := strconv.ParseInt(id[i+1:], 10, 64)
		if err != nil {
			return storeError(err, "scan consent events")
		}
		if id[:i] != prefix {
			if err := flush(); err != nil {
				return err
			}
			prefix = id[:i]
		}
		head = seq
	}
	if err := rows.Err(); err != nil {
		return storeError(err, "scan consent events")
	}
	return flush()
}
