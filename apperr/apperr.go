// Package apperr defines the one error type Fineline's packages return to
// each other: a stable code, a message safe to show, and the cause kept for
// the logs. The HTTP layer maps codes to statuses in one place.
package apperr

import (
	"errors"
	"fmt"
)

// Code is a stable, machine-readable error class.
type Code string

// Error codes. Each maps to one HTTP status in handlers.
const (
	Invalid          Code = "invalid_request"        // malformed or unacceptable input (400)
	Unauthorized     Code = "unauthorized"           // missing or unknown credentials (401)
	Forbidden        Code = "forbidden"              // authenticated but not allowed (403)
	NotFound         Code = "not_found"              // absent, or not the caller's (404)
	NotAllowed       Code = "method_not_allowed"     // the route exists, the method does not (405)
	Conflict         Code = "conflict"               // state does not allow it (409)
	TooLarge         Code = "payload_too_large"      // body over its limit (413)
	UnsupportedMedia Code = "unsupported_media_type" // body not in a type we take (415)
	Unprocessable    Code = "unprocessable"          // well-formed but semantically refused (422)
	TooManyRequests  Code = "too_many_requests"      // rate limited (429)
	Internal         Code = "internal_error"         // our fault; details only in logs (500)
	Unavailable      Code = "service_unavailable"    // a dependency is down (503)
)

// CodeStoreUnavailable is the detail of an Unavailable error from a store
// that is down, unreachable or full: the request may be retried as it is.
const CodeStoreUnavailable = "store_unavailable"

// Error is an error with a code and a message that is safe to show a caller.
type Error struct {
	Code    Code
	Message string
	// Detail refines Code for callers that branch on it, e.g. "unknown_purpose".
	Detail string
	Err    error
}

// Error implements error.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an *Error with a code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// WithDetail returns a copy of e whose Detail is d; the detail becomes the
// public code in JSON errors (e.g. "unknown_purpose" instead of "invalid_request").
func (e *Error) WithDetail(d string) *Error {
	c := *e
	c.Detail = d
	return &c
}

// Wrap returns an internal error that keeps err for the logs.
func Wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	var ae *Error
	if errors.As(err, &ae) {
		return err
	}
	return &Error{Code: Internal, Message: fmt.Sprintf(format, args...), Err: err}
}

// CodeOf returns the code of err, Internal for foreign errors and "" for nil.
func CodeOf(err error) Code {
	if err == nil {
		return ""
	}
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Code
	}
	return Internal
}

// DetailOf returns the detail of err ("" for foreign errors and nil).
func DetailOf(err error) string {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Detail
	}
	return ""
}

// Is reports whether err carries code c.
func Is(err error, c Code) bool { return CodeOf(err) == c }
