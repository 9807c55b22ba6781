package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/fineline/fineline/store"
)

// keysNote says where the keys are and why they are not in a backup.
const keysNote = `The keys are not in the backup, on purpose: %s holds master.key, which
unwraps every shopper's data key (without it the volunteered values in the
backup cannot be read; with it, anyone holding the backup could read them),
and signing.key, which signs receipts and sessions. Keep copies of both apart
from the backups (a secrets manager, an offline medium), or set
FINELINE_MASTER_KEY and FINELINE_SIGNING_KEY.
`

// backup copies the embedded store while the server runs.
func backup(ctx context.Context, args []string, getenv environ, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fineline backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	to := fs.String("to", "", "the backup file to write (must not exist)")
	dir := fs.String("data-dir", getenvOr(getenv, "FINELINE_DATA_DIR", "./data"), "the data directory of the embedded store [FINELINE_DATA_DIR]")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if getenv.get("MONGODB_URI") != "" {
		fmt.Fprintln(stderr, "fineline backup copies the embedded store; with MongoDB back up the database with mongodump or volume snapshots (see the README)")
		return 2
	}
	if *to == "" {
		fmt.Fprintln(stderr, "usage: fineline backup --to FILE [--data-dir DIR]")
		return 2
	}
	began := time.Now().UTC()
	n, err := store.Backup(ctx, *dir, *to)
	if err != nil {
		fmt.Fprintln(stderr, "fineline backup:", err)
		return 1
	}
	abs, _ := filepath.Abs(*dir)
	fmt.Fprintf(stdout, "Backed up the store in %s to %s (%d bytes), as it was at %s.\n\n", abs, *to, n, began.Format(time.RFC3339))
	fmt.Fprintf(stdout, keysNote, abs)
	return 0
}

// restore puts a backup into a new data directory.
func restore(ctx context.Context, args []string, getenv environ, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fineline restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "the backup file to restore")
	dir := fs.String("data-dir", "", "the new data directory to restore into (must hold no store)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *from == "" || *dir == "" {
		fmt.Fprintln(stderr, "usage: fineline restore --from FILE --data-dir DIR")
		return 2
	}
	if err := store.Restore(ctx, *from, *dir); err != nil {
		fmt.Fprintln(stderr, "fineline restore:", err)
		return 1
	}
	abs, _ := filepath.Abs(*dir)
	fmt.Fprintf(stdout, "Restored %s into %s.\n\n", *from, abs)
	fmt.Fprintf(stdout, "Before starting Fineline on it, put the keys of the store it was taken from\n"+
		"into %s (master.key, signing.key; mode 0600) or set FINELINE_MASTER_KEY and\nFINELINE_SIGNING_KEY. ", abs)
	fmt.Fprintf(stdout, keysNote, "the old data directory")
	return 0
}

// getenvOr is a variable's value, def when unset or empty.
func getenvOr(getenv environ, key, def string) string {
	if v := getenv.get(key); v != "" {
		return v
	}
	return def
}
