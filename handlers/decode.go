package handlers

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/fineline/fineline/apperr"
)

// Body limits.
const (
	maxBody      = 64 << 10 // most JSON requests
	maxBatchBody = 2 << 20  // POST /v1/check: 10,000 ids of up to 128 characters
)

// decodeJSON reads exactly one JSON object into dst, refusing unknown
// fields, trailing data, and bodies past the route's limit. A value of the
// wrong type (an object such as {"$ne": ...} where a string belongs) is
// refused by the typed destination, so no input becomes a query operator.
func decodeJSON(c *gin.Context, dst any) error {
	if ct := c.ContentType(); ct != "application/json" {
		return apperr.New(apperr.UnsupportedMedia, "send a JSON body with Content-Type: application/json")
	}
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return jsonError(err)
		}
		return apperr.New(apperr.Invalid, "the body must hold a single JSON object").WithDetail("malformed_json")
	}
	return nil
}

func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &mbe):
		return apperr.New(apperr.TooLarge, "the body is larger than %d bytes", mbe.Limit).WithDetail("payload_too_large")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, "the body is not valid JSON").WithDetail("malformed_json")
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.Invalid, "the body is empty; send a JSON object").WithDetail("malformed_json")
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			field = "body"
		}
		return apperr.New(apperr.Invalid, "%s must be %s", field, describe(te.Type)).WithDetail("invalid_field")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return apperr.New(apperr.Invalid, "unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field ")).WithDetail("unknown_field")
	default:
		return apperr.New(apperr.Invalid, "the body is not valid JSON").WithDetail("malformed_json")
	}
}

func describe(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

// limitBody caps the request body at n bytes.
func limitBody(n int64) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, n)
		c.Next()
	}
}
