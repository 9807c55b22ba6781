package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/url"
	"path/filepath"
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
