package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// storeServer serves a MongoDB-wire store on PostgreSQL (FerretDB's
// PostgreSQL backend) until ctx ends: a shared store for several Fineline
// instances where MongoDB cannot be had. It is not MongoDB: see the README
// ("Many instances") for what it lacks.
func storeServer(ctx context.Context, args []string, getenv environ, stderr io.Writer) int {
	fs := flag.NewFlagSet("fineline store-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:27017", "address to serve the MongoDB wire protocol on")
	pg := fs.String("postgresql", getenv.get("FINELINE_STORE_POSTGRESQL_URL"), "PostgreSQL connection URL, e.g. postgres://fineline@localhost:5432/fineline [FINELINE_STORE_POSTGRESQL_URL]")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *pg == "" {
		fmt.Fprintln(stderr, "fineline store-server: --postgresql is required")
		return 2
	}
	if _, _, err := net.SplitHostPort(*addr); err != nil {
		fmt.Fprintln(stderr, "fineline store-server: --addr:", err)
		return 2
	}
	log := newLogger(stderr, slog.LevelWarn)
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:      ferretdb.ListenerConfig{TCP: *addr},
		Handler:       "postgresql",
		PostgreSQLURL: *pg,
		Logger:        log,
	})
	if err != nil {
		fmt.Fprintln(stderr, "fineline store-server:", err)
		return 1
	}
	log.Warn("serving the MongoDB wire protocol on PostgreSQL", "addr", *addr)
	if err := f.Run(ctx); err != nil && ctx.Err() == nil {
		fmt.Fprintln(stderr, "fineline store-server:", err)
		return 1
	}
	return 0
}
