package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // database/sql driver for the embedded server's files
)

// embedded is a FerretDB server on SQLite, serving this process only over a
// Unix socket inside the data directory.
type embedded struct {
	dir    string
	uri    string
	lock   *os.File
	cancel context.CancelFunc
	done   chan struct{}
	// attached is true when another process serves the data directory and
	// this one only connects to its socket.
	attached bool

	readerOnce sync.Once
	fileReader *fileDB
	readerErr  error
	writerOnce sync.Once
	fileWriter *fileDB
	writerErr  error
	// scanner reads long ranges (an export) without mapping the file, so
	// that what it passes over does not stay in the process's memory.
	scannerOnce sync.Once
	fileScanner *fileDB
	scannerErr  error
	// reads counts documents read straight from the file.
	reads atomic.Int64
}

// socketName is the embedded server's socket inside the data directory.
const socketName = "fineline-store.sock"

func startEmbedded(ctx context.Context, dataDir string, attach bool, log *slog.Logger) (*embedded, error) {
	if dataDir == "" {
		return nil, errors.New("embedded store: no data directory")
	}
	dir, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("embedded store: create data directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, "fineline.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	sock := filepath.Join(dir, socketName)
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		if attach {
			return &embedded{dir: dir, uri: "mongodb://" + url.PathEscape(sock) + "/", attached: true}, nil
		}
		return nil, fmt.Errorf("embedded store: data directory %s is in use by another Fineline process", dir)
	}
	if len(sock) > 100 {
		lock.Close()
		return nil, fmt.Errorf("embedded store: data directory path too long for a socket (%d characters); use a shorter one", len(dir))
	}
	_ = os.Remove(sock) // left by a crash; we hold the lock, so nobody serves it
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{Unix: sock},
		Handler:  "sqlite",
		// secure_delete overwrites deleted records with zeros, so a value
		// erased from the store does not linger in the file's free pages.
		SQLiteURL: (&url.URL{Scheme: "file", Opaque: dir + "/", RawQuery: "_pragma=secure_delete(on)"}).String(),
		Logger:    slog.New(quietHandler{next: log.Handler()}),
	})
	if err != nil {
		lock.Close()
		return nil, fmt.Errorf("embedded store: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.Run(runCtx)
	}()
	return &embedded{
		dir:    dir,
		uri:    "mongodb://" + url.PathEscape(sock) + "/",
		lock:   lock,
		cancel: cancel,
		done:   done,
	}, nil
}

func (e *embedded) stop() {
	if e.attached {
		return
	}
	e.fileReader.close()
	e.fileScanner.close()
	e.fileWriter.close()
	e.cancel()
	<-e.done
	_ = os.Remove(filepath.Join(e.dir, socketName))
	e.lock.Close()
}

// indexIDs adds to every collection's table the SQLite expression index that
// the embedded server's {_id: v} lookups can use. The server queries
// `_ferretdb_sjson->'$._id'` but indexes `_ferretdb_sjson->"_id"`, and SQLite
// only uses an index whose expression matches the query's: without this,
// every point read is a full table scan.
func (e *embedded) indexIDs(ctx context.Context) error {
	path := filepath.Join(e.dir, DatabaseName+".sqlite")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: path, RawQuery: "_pragma=busy_timeout(10000)"}).String())
	if err != nil {
		return fmt.Errorf("embedded store: open %s: %w", path, err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		return fmt.Errorf("embedded store: list tables: %w", err)
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return fmt.Errorf("embedded store: list tables: %w", err)
		}
		tables = append(tables, t)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("embedded store: list tables: %w", err)
	}
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_fl_id_path", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("embedded store: index %s: %w", t, err)
		}
	}
	return nil
}
