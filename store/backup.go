package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
)

// The embedded store is one SQLite file, fineline.sqlite, in the data
// directory (beside it the keys, which are never part of a backup).

// FileName is the embedded store's file in its data directory.
const FileName = DatabaseName + ".sqlite"

// Backup writes a consistent copy of the embedded store in dataDir to the
// new file to, while a server may be writing to it: SQLite's VACUUM INTO
// reads one snapshot (every transaction committed before it began, so
// every write acknowledged before the backup started) through a read-only
// connection. It returns the size written.
func Backup(ctx context.Context, dataDir, to string) (int64, error) {
	src := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(src); err != nil {
		return 0, fmt.Errorf("no embedded store in %s: %w", dataDir, err)
	}
	if _, err := os.Stat(to); err == nil {
		return 0, fmt.Errorf("%s exists: choose a new file", to)
	}
	partial := to + ".partial"
	_ = os.Remove(partial)
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: src, RawQuery: "mode=ro&_pragma=busy_timeout(30000)"}).String())
	if err != nil {
		return 0, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, partial); err != nil {
		_ = os.Remove(partial)
		return 0, fmt.Errorf("copy the store: %w", err)
	}
	if err := syncAndSeal(partial); err != nil {
		return 0, err
	}
	if err := os.Rename(partial, to); err != nil {
		return 0, err
	}
	fi, err := os.Stat(to)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Restore puts the backup from into dataDir as its embedded store. dataDir
// must not hold a store already; the file is checked whole first.
func Restore(ctx context.Context, from, dataDir string) error {
	dst := filepath.Join(dataDir, FileName)
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("%s holds a store already: restore into a new directory", dataDir)
	}
	if err := checkFile(ctx, from); err != nil {
		return fmt.Errorf("%s is not a whole Fineline backup: %w", from, err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return err
	}
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	partial := dst + ".partial"
	out, err := os.OpenFile(partial, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		_ = os.Remove(partial)
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := syncAndSeal(partial); err != nil {
		return err
	}
	return os.Rename(partial, dst)
}

// checkFile runs SQLite's integrity check on a backup and looks for the
// store's collections in it.
func checkFile(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Opaque: path, RawQuery: "mode=ro"}).String())
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return errors.New(res)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM _ferretdb_collections WHERE name = ?`, collEvents).Scan(&n); err != nil || n != 1 {
		return fmt.Errorf("no ledger in it (%v)", err)
	}
	return nil
}

// syncAndSeal makes a written file private and durable.
func syncAndSeal(path string) error {
	if err := os.Chmod(path, 0o600); err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
