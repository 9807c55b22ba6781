package store

import (
	"context"
	"database/sql"
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
		e.fileWriter, e.writerErr = e.openFileDB("_pragma=busy_timeout(10000)&_pragma=secure_delete(on)&_pragma=cache_size(-65536)&_txlock=immediate", 1)
	})
	return e.fileWriter, e.writerErr
}

// insertFile inserts documents in the stored format (encodeStored) into
// collection in order, in one transaction, and says how many went in: all
// of them, or those before the first whose _id is taken (then a Conflict),
// or none (then why). The caller holds Store.writing.
func (e *embedded) insertFile(ctx context.Context, collection string, enc []string) (int, error) {
	return e.inFileTx(ctx, func(tx *fileTx) (int, error) { return tx.insert(collection, enc) })
}

// fileTx is one write transaction on the store's file.
type fileTx struct {
	ctx context.Context
	w   *fileDB
	tx  *sql.Tx
	// stmts are the statements prepared in this transaction, by text: a
	// batch runs the same few many times (one upsert per subject), and
	// parsing them again each time costs more than running them.
	stmts map[string]*sql.Stmt
}

// exec runs query in the transaction, prepared once per transaction.
func (t *fileTx) exec(query string, args ...any) (sql.Result, error) {
	st, ok := t.stmts[query]
	if !ok {
		var err error
		if st, err = t.tx.PrepareContext(t.ctx, query); err != nil {
			return nil, err
		}
		if t.stmts == nil {
			t.stmts = map[string]*sql.Stmt{}
		}
		t.stmts[query] = st // closed with the transaction
	}
	return st.ExecContext(t.ctx, args...)
}

// inFileTx runs fn in one transaction and commits what it did unless it
// failed for a reason other than a Conflict (which it reports after the
// commit). The caller holds Store.writing.
func (e *embedded) inFileTx(ctx context.Context, fn func(*fileTx) (int, error)) (int, error) {
	w, err := e.writer()
	if err != nil {
		return 0, storeError(err, "open the store's file")
	}
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, storeError(err, "write to the store's file")
	}
	n, ferr := fn(&fileTx{ctx: ctx, w: w, tx: tx})
	if ferr != nil && !apperr.Is(ferr, apperr.Conflict) {
		_ = tx.Rollback()
		return 0, ferr
	}
	if err := tx.Commit(); err != nil {
		return 0, storeError(err, "write to the store's file")
	}
	return n, ferr
}

// insert inserts documents in order and says how many went in: all, or
// those before the first whose _id is taken (then a Conflict).
func (t *fileTx) insert(collection string, enc []string) (int, error) {
	table, err := t.w.table(t.ctx, t.tx, collection)
	if err != nil {
		return 0, storeError(err, "insert into %s", collection)
	}
	// Many rows per statement; if one _id is taken, the statement inserts
	// nothing and the rows go in one at a time, to stop at the taken one.
	n := 0
	for lo := 0; lo < len(enc); lo += rowsPerInsert {
		part := enc[lo:min(lo+rowsPerInsert, len(enc))]
		_, err := t.exec(insertRows(table, len(part)), stringsAsArgs(part)...)
		if err == nil {
			n += len(part)
			continue
		}
		if !uniqueViolation(err) {
			return 0, storeError(err, "insert into %s", collection)
		}
		for _, doc := range part {
			if _, err := t.exec(insertRows(table, 1), doc); err != nil {
				if uniqueViolation(err) {
					return n, apperr.New(apperr.Conflict, "a document of %s with that _id exists already", collection)
				}
				return 0, storeError(err, "insert into %s", collection)
			}
			n++
		}
	}
	return n, nil
}

// upsert replaces the document with _id id, or inserts it.
func (t *fileTx) upsert(collection, id, doc string) error {
	table, err := t.w.table(t.ctx, t.tx, collection)
	if err != nil {
		return storeError(err, "write %s", collection)
	}
	res, err := t.exec(fmt.Sprintf(`UPDATE %q SET _ferretdb_sjson = ? WHERE _ferretdb_sjson->'$._id' = ?`, table), doc, quotedID(id))
	if err != nil {
		return storeError(err, "write %s", collection)
	}
	if n, err := res.RowsAffected(); err != nil || n > 0 {
		return storeError(err, "write %s", collection)
	}
	_, err = t.exec(insertRows(table, 1), doc)
	return storeError(err, "write %s", collection)
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
