// Command fineline runs the Fineline preference and consent center.
//
//	fineline [serve] [flags]   run the server (the default)
//	fineline ledger verify     walk every consent chain; exit 1 at the first broken link
//	fineline store-server      serve a shared MongoDB-wire store on PostgreSQL (FerretDB)
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	_ "time/tzdata" // subjects' time zones resolve on machines without zoneinfo
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
