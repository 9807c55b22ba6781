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

// OpenShared starts the embedded store as one of several instances (see
// store.Config.Shared); other instances connect with Join.
func OpenShared(tb testing.TB) *store.Store {
	tb.Helper()
	s, err := store.Open(context.Background(), store.Config{DataDir: tb.TempDir(), Shared: true, Logger: Logger()})
	if err != nil {
		tb.Fatalf("open embedded store: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

// Join connects another instance to a shared store, closed when the test ends.
func Join(tb testing.TB, s *store.Store) *store.Store {
	tb.Helper()
	j, err := s.Join(context.Background(), Logger())
	if err != nil {
		tb.Fatalf("join the shared store: %v", err)
	}
	tb.Cleanup(func() { _ = j.Close(context.Background()) })
	return j
}
