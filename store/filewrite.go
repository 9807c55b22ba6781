package store

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"

	"golang.org/x/sync/errgroup"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fineline/fineline/apperr"
)

// Inserts on the hot paths of the embedded store (events with their
// journal, feed and snapshot entries; imported subjects) go straight into
// its SQLite file, in the server's own stored format (see sjson.go), one
// transaction per batch. Through the server each document costs a wire
// round trip, a decode of BSON into the server's types and an encode into
// that format (about 0.17 ms a document here). The file is in WAL mode and
// every write of this process is serialized (Store.writing), so these
// inserts and the server's own writes take turns; the server keeps no
// cache of table contents. Anything else (updates, deletes, other
// collections) still goes through the server.

func (e *embedded) writer() (*fileDB, error) {
	e.writerOnce.Do(func() {
		e.fileWriter, e.writerErr = e.openFileDB("_pragma=busy_timeout(10000)&_pragma=secure_delete(on)&_txlock=immediate", 1)
	})
	return e.fileWriter, e.writerErr
}

// insertFile inserts documents in the stored format (encodeStored) into
// collection in order, in one transaction, and says how many went in: all
// of them, or those before the first whose _id is taken (then a Conflict),
// or none (then why). The caller holds Store.writing.
func (e *embedded) insertFile(ctx context.Context, collection string, enc []string) (int, error) {
	w, err := e.writer()
	if err != nil {
		return 0, storeError(err, "open the store's file")
	}
	table, err := w.table(ctx, collection)
	if err != nil {
		return 0, storeError(err, "insert into %s", collection)
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, storeError(err, "insert into %s", collection)
	}
	// Many rows per statement (the driver compiles a statement on every
	// execution); if one _id is taken, the statement inserts nothing and
	// the rows go in one at a time, to stop at the taken one.
	n := 0
	var conflict error
	for lo := 0; lo < len(enc) && conflict == nil; lo += rowsPerInsert {
		part := enc[lo:min(lo+rowsPerInsert, len(enc))]
		_, err := tx.ExecContext(ctx, insertRows(table, len(part)), stringsAsArgs(part)...)
		if err == nil {
			n += len(part)
			continue
		}
		if !uniqueViolation(err) {
			_ = tx.Rollback()
			return 0, storeError(err, "insert into %s", collection)
		}
		for _, doc := range part {
			if _, err := tx.ExecContext(ctx, insertRows(table, 1), doc); err != nil {
				if uniqueViolation(err) {
					conflict = apperr.New(apperr.Conflict, "a document of %s with that _id exists already", collection)
					break
				}
				_ = tx.Rollback()
				return 0, storeError(err, "insert into %s", collection)
			}
			n++
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, storeError(err, "insert into %s", collection)
	}
	return n, conflict
}

// encodeAll encodes docs in the stored format, large sets on every core.
func encodeAll(docs []any) ([]string, error) {
	enc := make([]string, len(docs))
	workers := 1
	if len(docs) >= 512 {
		workers = runtime.GOMAXPROCS(0)
	}
	var g errgroup.Group
	for w := range workers {
		g.Go(func() error {
			for i := w; i < len(docs); i += workers {
				b, err := encodeStored(docs[i])
				if err != nil {
					return err
				}
				enc[i] = b
			}
			return nil
		})
	}
	return enc, g.Wait()
}

// rowsPerInsert bounds one INSERT statement's rows.
const rowsPerInsert = 500

func insertRows(table string, n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "INSERT INTO %q (_ferretdb_sjson) VALUES (?)", table)
	for range n - 1 {
		b.WriteString(",(?)")
	}
	return b.String()
}

func stringsAsArgs(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

func uniqueViolation(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}
