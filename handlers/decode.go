package handlers

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"reflect"
	"strings"
	"unicode/utf8"

	"github.com/gin-gonic/gin"
	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/fineline/fineline/apperr"
)

// Body limits.
const (
	maxBody      = 64 << 10 // most JSON requests
	maxBatchBody = 2 << 20  // POST /v1/check: 10,000 ids of up to 128 characters
)

// Error codes of a refused JSON body.
const (
	codeMalformedJSON  = "malformed_json"
	codeDuplicateField = "duplicate_field"
	codeUnknownField   = "unknown_field"
	codeInvalidField   = "invalid_field"
	codeInvalidUTF8    = "invalid_utf8"
	codeTooLarge       = "payload_too_large"
)

// decodeJSON reads exactly one JSON object into dst, strictly: a member
// name must match a field exactly (case-sensitive, no Unicode folding), may
// appear once, and nothing may follow the object; the text must be valid
// UTF-8 and within the route's size limit. Ambiguous input never becomes a
// value: {"state":"withdrawn","state":"granted"} is refused, not read as a
// grant. A value of the wrong type (an object such as {"$ne": ...} where a
// string belongs) is refused by the typed destination, so no input becomes
// a query operator.
//
// encoding/json cannot do this (it folds case, keeps the last duplicate and
// replaces invalid UTF-8); github.com/go-json-experiment/json, the
// encoding/json/v2 design, refuses all three by default.
func decodeJSON(c *gin.Context, dst any) error {
	if ct := c.ContentType(); ct != "application/json" {
		return apperr.New(apperr.UnsupportedMedia, "send a JSON body with Content-Type: application/json")
	}
	return decodeStrict(c.Request.Body, dst)
}

// decodeStrict is decodeJSON without the request: one object from r into dst.
func decodeStrict(r io.Reader, dst any) error {
	body, err := io.ReadAll(r)
	if err != nil {
		return jsonError(err)
	}
	if !utf8.Valid(body) {
		return apperr.New(apperr.Invalid, "the body is not valid UTF-8").WithDetail(codeInvalidUTF8)
	}
	dec := jsontext.NewDecoder(bytes.NewReader(body))
	v, err := dec.ReadValue()
	if err != nil {
		return jsonError(err)
	}
	v = v.Clone() // the decoder reuses its buffer on the next read
	if v.Kind() != '{' {
		return apperr.New(apperr.Invalid, "body must be an object").WithDetail(codeInvalidField)
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Invalid, "the body must hold a single JSON object").WithDetail(codeMalformedJSON)
	}
	// Decode into a fresh value, so a refused body leaves dst untouched.
	fresh := reflect.New(reflect.TypeOf(dst).Elem())
	if err := json.Unmarshal(v, fresh.Interface(), json.RejectUnknownMembers(true)); err != nil {
		return jsonError(err)
	}
	reflect.ValueOf(dst).Elem().Set(fresh.Elem())
	return nil
}

func jsonError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SemanticError
		ye  *jsontext.SyntacticError
	)
	switch {
	case errors.As(err, &mbe):
		return apperr.New(apperr.TooLarge, "the body is larger than %d bytes", mbe.Limit).WithDetail(codeTooLarge)
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.Invalid, "the body is empty; send a JSON object").WithDetail(codeMalformedJSON)
	case errors.Is(err, jsontext.ErrDuplicateName):
		return apperr.New(apperr.Invalid, "member %s appears more than once", pointerName(err)).WithDetail(codeDuplicateField)
	case errors.As(err, &se) && errors.Is(se.Err, json.ErrUnknownName):
		return apperr.New(apperr.Invalid, "unknown field %q (member names are case-sensitive)", lastToken(se.JSONPointer)).WithDetail(codeUnknownField)
	case errors.As(err, &se) && se.GoType != nil:
		field := strings.TrimPrefix(string(se.JSONPointer), "/")
		if field == "" {
			field = "body"
		}
		return apperr.New(apperr.Invalid, "%s must be %s", strings.ReplaceAll(field, "/", "."), describe(se.GoType)).WithDetail(codeInvalidField)
	case errors.As(err, &ye), errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.Invalid, "the body is not valid JSON").WithDetail(codeMalformedJSON)
	default:
		return apperr.New(apperr.Invalid, "the body is not valid JSON").WithDetail(codeMalformedJSON)
	}
}

// pointerName names the member a syntactic error points at.
func pointerName(err error) string {
	var ye *jsontext.SyntacticError
	if errors.As(err, &ye) {
		if name := lastToken(ye.JSONPointer); name != "" {
			return `"` + name + `"`
		}
	}
	return "a member"
}

func lastToken(p jsontext.Pointer) string {
	s := string(p)
	if i := strings.LastIndexByte(s, '/'); i >= 0 {
		s = s[i+1:]
	}
	return strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
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
	case reflect.Float32, reflect.Float64:
		return "a number"
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
