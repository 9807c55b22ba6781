// Package requests keeps the requests a shopper makes about data the
// merchant holds outside Fineline (in its shop, CRM or mail platform):
// access to it, or its deletion. Fineline answers for what it holds itself
// at once (the "Your data" page, the download, the erasure); these the
// merchant fulfils, by the legal deadline, and marks complete.
package requests

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Kind is what the shopper asks for.
type Kind string

// Kinds of request.
const (
	Access   Kind = "access"
	Deletion Kind = "deletion"
)

// Status is where a request stands.
type Status string

// Statuses.
const (
	Open      Status = "open"
	Completed Status = "completed"
)

// Request is one shopper's request.
type Request struct {
	ID         string
	MerchantID string
	SubjectID  string
	Kind       Kind
	ReceivedAt time.Time
	// DueAt is the legal deadline: a month under the GDPR, 45 days under
	// the CCPA, from the jurisdiction.
	DueAt       time.Time
	Status      Status
	CompletedAt time.Time
	// Note is what the merchant says on completing it, shown to the shopper.
	Note string
}

// Store keeps requests: by merchant in the order received, and by subject.
type Store interface {
	// CreateRequest stores a new request.
	CreateRequest(ctx context.Context, r Request) error
	// Request returns one request; NotFound if absent.
	Request(ctx context.Context, merchantID, id string) (Request, error)
	// Requests lists up to limit of the merchant's requests received after
	// the cursor (an id; "" from the first), oldest first.
	Requests(ctx context.Context, merchantID, after string, limit int) ([]Request, error)
	// SubjectRequests lists the subject's requests, oldest first.
	SubjectRequests(ctx context.Context, merchantID, subjectID string) ([]Request, error)
	// CompleteRequest marks an open request completed; Conflict if it is not open.
	CompleteRequest(ctx context.Context, merchantID, id, note string, at time.Time) (Request, error)
}

// Error details.
const (
	CodeInvalidKind      = "invalid_request_kind"
	CodeAlreadyCompleted = "request_completed"
	CodeTooManyOpen      = "too_many_open_requests"
	CodeInvalidNote      = "invalid_note"
	CodeInvalidRequestID = "invalid_request_id"
)

const (
	maxOpenPerSubject = 10
	maxNote           = 1000
	requestIDLen      = 22
	// defaultDeadlineInDays is the deadline where no law named applies.
	defaultDeadlineInDays = 30
)

// Service records and completes requests.
type Service struct {
	Store Store
	// Jurisdiction decides the deadline: "US-CA" (CCPA, 45 days), else a
	// calendar month (GDPR Art. 12(3)).
	Jurisdiction string
	Now          func() time.Time
}

// DueAt is the deadline of a request received at t.
func (s *Service) DueAt(t time.Time) time.Time {
	switch strings.ToUpper(s.Jurisdiction) {
	case "US-CA", "CCPA":
		return t.AddDate(0, 0, 45)
	case "", "EU", "EEA", "UK", "GDPR":
		return t.AddDate(0, 1, 0)
	}
	return t.AddDate(0, 0, defaultDeadlineInDays)
}

// ParseKind checks a kind given by a client.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(s); k {
	case Access, Deletion:
		return k, nil
	}
	return "", apperr.New(apperr.Invalid, "a request is for access or deletion").WithDetail(CodeInvalidKind)
}

// Create records the subject's request. A subject may have at most ten
// open at once (a form sent again is not a new request).
func (s *Service) Create(ctx context.Context, merchantID, subjectID string, kind Kind) (Request, error) {
	if !consent.ValidSubjectID(subjectID) {
		return Request{}, apperr.New(apperr.Invalid, "invalid subject id").WithDetail(consent.CodeInvalidSubject)
	}
	if _, err := ParseKind(string(kind)); err != nil {
		return Request{}, err
	}
	mine, err := s.Store.SubjectRequests(ctx, merchantID, subjectID)
	if err != nil {
		return Request{}, err
	}
	open := 0
	for _, r := range mine {
		if r.Status == Open {
			if r.Kind == kind {
				return r, nil // asked already: the same request stands
			}
			open++
		}
	}
	if open >= maxOpenPerSubject {
		return Request{}, apperr.New(apperr.TooManyRequests, "too many open requests").WithDetail(CodeTooManyOpen)
	}
	now := s.Now().UTC().Truncate(time.Millisecond)
	r := Request{ID: newID(now), MerchantID: merchantID, SubjectID: subjectID, Kind: kind, ReceivedAt: now, DueAt: s.DueAt(now), Status: Open}
	if err := s.Store.CreateRequest(ctx, r); err != nil {
		return Request{}, err
	}
	return r, nil
}

// List returns a page of the merchant's requests after the cursor.
func (s *Service) List(ctx context.Context, merchantID, after string, limit int) ([]Request, error) {
	if after != "" && !validID(after) {
		return nil, apperr.New(apperr.Invalid, "after must be a request id").WithDetail(CodeInvalidRequestID)
	}
	if limit <= 0 || limit > 200 {
		return nil, apperr.New(apperr.Invalid, "limit must be between 1 and 200")
	}
	return s.Store.Requests(ctx, merchantID, after, limit)
}

// Of returns the subject's requests.
func (s *Service) Of(ctx context.Context, merchantID, subjectID string) ([]Request, error) {
	return s.Store.SubjectRequests(ctx, merchantID, subjectID)
}

// Complete marks a request fulfilled, with a note for the shopper.
func (s *Service) Complete(ctx context.Context, merchantID, id, note string) (Request, error) {
	if !validID(id) {
		return Request{}, apperr.New(apperr.NotFound, "no such request")
	}
	note = strings.TrimSpace(note)
	if len(note) > maxNote || strings.ContainsFunc(note, func(r rune) bool { return r < 0x20 && r != '\n' }) {
		return Request{}, apperr.New(apperr.Invalid, "note must be at most %d characters of text", maxNote).WithDetail(CodeInvalidNote)
	}
	return s.Store.CompleteRequest(ctx, merchantID, id, note, s.Now().UTC().Truncate(time.Millisecond))
}

// newID is time-ordered (so the merchant's requests list in the order
// received by _id alone) and unguessable: "r", 8 base-62 digits of
// milliseconds (ASCII order is time order), then 13 random characters.
func newID(t time.Time) string {
	const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	ms := t.UnixMilli()
	head := make([]byte, 8)
	for i := len(head) - 1; i >= 0; i-- {
		head[i] = digits[ms%62]
		ms /= 62
	}
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return "r" + string(head) + base64.RawURLEncoding.EncodeToString(b)[:requestIDLen-9]
}

// validID reports whether id has the form newID gives.
func validID(id string) bool {
	if len(id) != requestIDLen || id[0] != 'r' {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
