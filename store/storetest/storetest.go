// Package storetest starts a real embedded store for tests.
package storetest

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/fineline/fineline/store"
)

// Open starts the embedded store in a temporary directory and closes it when
// the test ends.
func Open(tb testing.TB) *store.Store {
	tb.Helper()
	return OpenDir(tb, tb.TempDir())
}

// OpenDir starts the embedded store in dir (for restart tests) and closes it
// when the test ends unless the caller closed it first.
func OpenDir(tb testing.TB, dir string) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), store.Config{DataDir: dir, Logger: Logger()})
	if err != nil {
		tb.Fatalf("open embedded store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// Logger discards everything below errors.
func Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelError}))
}
