package consent

import (
	"context"
	"strings"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/ttlcache"
)

// Subject is a shopper inside one merchant, known by the merchant's own id.
type Subject struct {
	MerchantID string
	ID         string
	Email      string
	Locale     string
	TimeZone   string
	// Relationship is what the subject is to the merchant, customer or
	// prospect; "" if the merchant never said (the guard then takes them
	// for a prospect).
	Relationship Relationship
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// ErasedAt is when everything the merchant held about the subject was
	// erased (zero if never): the record then keeps only the id, and
	// nothing more is recorded about the subject.
	ErasedAt time.Time
}

// Relationship is what a subject is to the merchant: the guard is more
// careful with people who have not bought (prospects).
type Relationship string

// Relationships.
const (
	Customer Relationship = "customer"
	Prospect Relationship = "prospect"
)

// ParseRelationship checks a relationship given by a client ("" is none).
func ParseRelationship(s string) (Relationship, error) {
	switch r := Relationship(s); r {
	case "", Customer, Prospect:
		return r, nil
	}
	return "", apperr.New(apperr.Invalid, "relationship must be customer or prospect").WithDetail(CodeInvalidRelationship)
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
	// SubjectsByID returns those of the named subjects that exist, by id.
	SubjectsByID(ctx context.Context, merchantID string, ids []string) (map[string]Subject, error)
	// EraseSubject keeps of the subject only its id and when it was
	// erased: the email (and its lookup), language, time zone and
	// relationship go.
	EraseSubject(ctx context.Context, merchantID, id string, at time.Time) error
}

// SubjectUpdate is what a merchant may set on a subject. Nil fields keep
// their value; an empty string clears it.
type SubjectUpdate struct {
	Email    *string
	Locale   *string
	TimeZone *string
	// Relationship is customer, prospect or "" (unknown).
	Relationship *string
}

// Subjects manages subjects.
type Subjects struct {
	Store SubjectStore
	Now   func() time.Time
	// Profiles, when set, caches what the guard reads of each subject on
	// every message (see Profiles): a change through this instance is seen
	// at once, one made on another within the cache's TTL.
	Profiles *ProfileCache
}

// ProfileCache holds subjects' profiles for the guard, and when each was
// last changed here, so that a read that began before a change cannot put
// back what it read.
type ProfileCache struct {
	entries *ttlcache.Cache[string, Profile]
	changed *ttlcache.Cache[string, time.Time]
	now     func() time.Time
}

// NewProfileCache holds at most max profiles, each for ttl.
func NewProfileCache(ttl time.Duration, max int, now func() time.Time) *ProfileCache {
	return &ProfileCache{entries: ttlcache.New[string, Profile](ttl, max, now), changed: ttlcache.New[string, time.Time](time.Minute, max, now), now: now}
}

// forget drops k, and remembers that it changed now.
func (c *ProfileCache) forget(k string) {
	c.changed.Put(k, c.now())
	c.entries.Delete(k)
}

// put caches p for k unless k changed since readAt.
func (c *ProfileCache) put(k string, p Profile, readAt time.Time) {
	if at, ok := c.changed.Get(k); ok && !at.Before(readAt) {
		return
	}
	c.entries.Put(k, p)
}

// Profile is what the personalization guard needs of a subject besides
// their consent state: their language and their relationship.
type Profile struct {
	// Known is false for a subject the merchant never recorded.
	Known        bool
	Locale       string
	Relationship Relationship
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
	case !cur.ErasedAt.IsZero():
		return Subject{}, false, ErrSubjectErased()
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
	if u.Relationship != nil {
		r, err := ParseRelationship(*u.Relationship)
		if err != nil {
			return Subject{}, false, err
		}
		cur.Relationship = r
	}
	cur.UpdatedAt = now
	err = s.Store.PutSubject(ctx, cur)
	if s.Profiles != nil {
		s.Profiles.forget(cacheKey(merchantID, id))
	}
	if err != nil {
		return Subject{}, false, err
	}
	return cur, created, nil
}

// Erase keeps of the subject's record only its id and the time of the
// erasure, and drops it from the profile cache. The erasure package calls
// it after the ledger recorded the erasure.
func (s *Subjects) Erase(ctx context.Context, merchantID, id string, at time.Time) error {
	err := s.Store.EraseSubject(ctx, merchantID, id, at.UTC().Truncate(time.Millisecond))
	if s.Profiles != nil {
		s.Profiles.forget(cacheKey(merchantID, id))
	}
	return err
}

// ProfilesOf returns the profile of each subject named (Known false for an
// unknown one), from the cache where it can and the rest read in bulk.
func (s *Subjects) ProfilesOf(ctx context.Context, merchantID string, ids []string) (map[string]Profile, error) {
	out := make(map[string]Profile, len(ids))
	var missing []string
	for _, id := range ids {
		if _, done := out[id]; done {
			continue
		}
		if s.Profiles != nil {
			if p, ok := s.Profiles.entries.Get(cacheKey(merchantID, id)); ok {
				out[id] = p
				continue
			}
		}
		out[id] = Profile{}
		missing = append(missing, id)
	}
	if len(missing) == 0 {
		return out, nil
	}
	readAt := time.Now()
	if s.Profiles != nil {
		readAt = s.Profiles.now()
	}
	subs, err := s.Store.SubjectsByID(ctx, merchantID, missing)
	if err != nil {
		return nil, err
	}
	for _, id := range missing {
		var p Profile
		if sub, ok := subs[id]; ok {
			p = Profile{Known: true, Locale: sub.Locale, Relationship: sub.Relationship}
		}
		out[id] = p
		if s.Profiles != nil {
			s.Profiles.put(cacheKey(merchantID, id), p, readAt)
		}
	}
	return out, nil
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

// Live returns a subject something is about to be done for (a link, a
// widget token, an unsubscribe header): NotFound if the merchant never had
// them, Conflict subject_erased if they were erased.
func (s *Subjects) Live(ctx context.Context, merchantID, id string) (Subject, error) {
	sub, err := s.Get(ctx, merchantID, id)
	if err == nil && !sub.ErasedAt.IsZero() {
		return Subject{}, ErrSubjectErased()
	}
	return sub, err
}
