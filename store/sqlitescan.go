package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"time"
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
