package store

import (
	"context"
	"errors"
	"strings"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/fineline/fineline/apperr"
)

// unavailableMarks are what the embedded server and MongoDB say when they
// cannot take a write for want of room or access, rather than because of
// what was asked: the request can be retried later as it is.
var unavailableMarks = []string{
	"database or disk is full", "disk is full", "no space left on device", "sqlite_full",
	"disk i/o error", "database is locked", "quota exceeded", "outofdiskspace",
	"not primary", "not writable primary", "node is recovering", "interrupted at shutdown",
	"server selection", "connection refused", "connection reset", "broken pipe",
	"client is disconnected", "store closed",
}

// storeError classifies an error from the store: a store that is down,
// unreachable, full or too slow is Unavailable (the HTTP layer answers 503
// store_unavailable with Retry-After, never a guess); an error already
// classified keeps its code; anything else is Internal. The cause is kept
// for the logs.
func storeError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	if unavailable(err) {
		return &apperr.Error{Code: apperr.Unavailable, Message: "the consent store cannot be reached or is full; nothing was changed by the failed step, retry later",
			Detail: apperr.CodeStoreUnavailable, Err: err}
	}
	return apperr.Wrap(err, format, args...)
}

func unavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || errors.Is(err, mongo.ErrClientDisconnected) ||
		mongo.IsNetworkError(err) || mongo.IsTimeout(err) {
		return true
	}
	msg := strings.ToLower(err.Error())
	for _, m := range unavailableMarks {
		if strings.Contains(msg, m) {
			return true
		}
	}
	return false
}
