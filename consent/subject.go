package consent

import (
	"context"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
)

// Subject is a shopper inside one merchant, known by the merchant's own id.
type Subject struct {
	MerchantID string
	ID         string
	Email      string
	Locale     string
	TimeZone   string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// SubjectStore persists subjects.
type SubjectStore interface {
	// Subject returns one subject; NotFound if absent.
	Subject(ctx context.Context, merchantID, id string) (Subject, error)
	// PutSubject creates or replaces a subject.
	PutSubject(ctx context.Context, s Subject) error
	// CreateSubject inserts s unless the merchant has that subject already;
	// it reports whether it inserted.
	CreateSubject(ctx context.Context, s Subject) (bool, error)
	// CreateSubjects inserts, in bulk, those of subs (which carry no
	// email) the merchant does not have yet.
	CreateSubjects(ctx context.Context, subs []Subject) error
	// SubjectsByEmail returns the merchant's subjects with this email
	// (compared case-insensitively), oldest first: several may share one
	// address (a customer and a guest checkout). None is not an error.
	SubjectsByEmail(ctx context.Context, merchantID, email string) ([]Subject, error)
}

// SubjectUpdate is what a merchant may set on a subject. Nil fields keep
// their value; an empty string clears it.
type SubjectUpdate struct {
	Email    *string
	Locale   *string
	TimeZone *string
}

// Subjects manages subjects.
type Subjects struct {
	Store SubjectStore
	Now   func() time.Time
}

// Put creates the subject or applies u to it. It reports whether it was created.
func (s *Subjects) Put(ctx context.Context, merchantID, id string, u SubjectUpdate) (Subject, bool, error) {
	if err := checkSubjectID(id); err != nil {
		return Subject{}, false, err
	}
	now := s.Now().UTC().Truncate(time.Millisecond)
	cur, err := s.Store.Subject(ctx, merchantID, id)
	created := false
	switch {
	case apperr.Is(err, apperr.NotFound):
		created = true
		cur = Subject{MerchantID: merchantID, ID: id, CreatedAt: now}
	case err != nil:
		return Subject{}, false, err
	}
	if u.Email != nil {
		e := strings.TrimSpace(*u.Email)
		if e != "" && !ValidEmail(e) {
			return Subject{}, false, apperr.New(apperr.Invalid, "email is not a valid address")
		}
		cur.Email = strings.ToLower(e)
	}
	if u.Locale != nil {
		if *u.Locale != "" && !SupportedLocale(*u.Locale) {
			return Subject{}, false, apperr.New(apperr.Invalid, "locale must be one of %s", strings.Join(Locales(), ", "))
		}
		cur.Locale = *u.Locale
	}
	if u.TimeZone != nil {
		if *u.TimeZone != "" {
			if _, err := time.LoadLocation(*u.TimeZone); err != nil || len(*u.TimeZone) > 64 || strings.EqualFold(*u.TimeZone, "local") {
				return Subject{}, false, apperr.New(apperr.Invalid, "time_zone must be an IANA time zone such as Europe/Berlin")
			}
		}
		cur.TimeZone = *u.TimeZone
	}
	cur.UpdatedAt = now
	if err := s.Store.PutSubject(ctx, cur); err != nil {
		return Subject{}, false, err
	}
	return cur, created, nil
}

// ByEmail returns the merchant's subjects with this email, oldest first;
// NotFound if none.
func (s *Subjects) ByEmail(ctx context.Context, merchantID, email string) ([]Subject, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	if !ValidEmail(email) {
		return nil, apperr.New(apperr.Invalid, "email is not a valid address").WithDetail("invalid_email")
	}
	subs, err := s.Store.SubjectsByEmail(ctx, merchantID, email)
	if err == nil && len(subs) == 0 {
		err = apperr.New(apperr.NotFound, "no subject with this email")
	}
	return subs, err
}

// Get returns one subject of the merchant.
func (s *Subjects) Get(ctx context.Context, merchantID, id string) (Subject, error) {
	if err := checkSubjectID(id); err != nil {
		return Subject{}, err
	}
	return s.Store.Subject(ctx, merchantID, id)
}
