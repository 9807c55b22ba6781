// Package staff holds the people who run a merchant's consent center in
// its console: their roles, what each role may do, the rules of inviting
// and removing them, and the append-only log of what they changed.
//
// A member's id derives from the merchant and the address, so finding a
// member by address, and by the id a session names, is one point read.
package staff

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/consent"
)

// Role is what a staff member may do.
type Role string

// Roles, from most to least allowed.
const (
	// Owner may do everything, including API keys and staff.
	Owner Role = "owner"
	// Editor changes purposes, notices, fields, offers and the widget.
	Editor Role = "editor"
	// Viewer reads everything and changes nothing.
	Viewer Role = "viewer"
)

// Roles lists every role.
func Roles() []Role { return []Role{Owner, Editor, Viewer} }

// Valid reports whether r is a role.
func (r Role) Valid() bool { return r == Owner || r == Editor || r == Viewer }

// Action is a kind of thing done in the console.
type Action int

// Actions, each allowed to some roles.
const (
	// Read shows any page.
	Read Action = iota
	// Configure changes purposes, notices, fields, offers and the widget.
	Configure
	// Administer creates and revokes API keys and invites and removes staff.
	Administer
)

// May reports whether the role allows the action.
func (r Role) May(a Action) bool {
	switch r {
	case Owner:
		return true
	case Editor:
		return a <= Configure
	case Viewer:
		return a == Read
	}
	return false
}

// Details of refused staff actions.
const (
	CodeForbidden   = "role_forbidden"
	CodeNotStaff    = "not_staff"
	CodeLastOwner   = "last_owner"
	CodeStale       = "sign_in_again"
	CodeInvalidRole = "invalid_role"
	CodeBadEmail    = "invalid_email"
	CodeTooMany     = "too_many_staff"
)

// Allow refuses an action the member's role does not allow (Forbidden,
// role_forbidden).
func (m Member) Allow(a Action) error {
	if m.Role.May(a) {
		return nil
	}
	return apperr.New(apperr.Forbidden, "your role (%s) does not allow this", m.Role).WithDetail(CodeForbidden)
}

// Member is one staff member of a merchant.
type Member struct {
	MerchantID string
	ID         string
	Email      string
	Role       Role
	// InvitedBy names who invited the member: a member's address, or
	// "operator".
	InvitedBy string
	InvitedAt time.Time
	// SignedInAt is when the member last signed in; zero until the
	// invitation is first used.
	SignedInAt time.Time
	// RemovedAt is set when the member was removed; nothing they hold
	// (links, sessions) lets them in after it.
	RemovedAt time.Time
	// SessionsFrom refuses sessions signed before it: set when the member
	// is removed or invited again.
	SessionsFrom time.Time
}

// Active reports whether the member may sign in.
func (m Member) Active() bool { return m.RemovedAt.IsZero() }

// Entry is one line of the audit log: who changed what, when.
type Entry struct {
	MerchantID string
	ID         string
	At         time.Time
	// Actor is the staff member's address, or "operator".
	Actor string
	// Action names what was done ("purpose.created", "notice.published"…).
	Action string
	// Target is what it was done to (a purpose key, a version number…).
	Target string
	Detail string
}

// Roster is a merchant's whole staff, removed members included, at a
// version: every change replaces it whole, if no other came first.
type Roster struct {
	MerchantID string
	Version    int64
	Members    []Member
}

// find returns the index of the member with id, or -1.
func (r Roster) find(id string) int {
	for i, m := range r.Members {
		if m.ID == id {
			return i
		}
	}
	return -1
}

// Store persists staff and the audit log.
type Store interface {
	// Roster returns the merchant's staff (version 0, none, if it has none).
	Roster(ctx context.Context, merchantID string) (Roster, error)
	// SaveRoster stores r if the stored version is still r.Version-1 (none
	// for 1); false, and nothing written, if another change came first.
	SaveRoster(ctx context.Context, r Roster) (bool, error)
	// AppendAudit adds an entry; entries are never changed or deleted.
	AppendAudit(ctx context.Context, e Entry) error
	// Audit lists up to limit of the merchant's entries, newest first,
	// older than the entry before ("" from the newest).
	Audit(ctx context.Context, merchantID, before string, limit int) ([]Entry, error)
}

// Service applies the rules of staff and records the audit log.
type Service struct {
	Store Store
	Now   func() time.Time
	// seq orders the audit entries this process writes in one millisecond.
	seq atomic.Uint32
}

// MaxMembers bounds a merchant's active staff; the roster also keeps up to
// MaxMembers removed members (the oldest removal is forgotten first).
const MaxMembers = 200

// Fresh is how recent a sign-in must be to create API keys or invite staff.
const Fresh = 15 * time.Minute

// Operator is the actor of what the operator does.
const Operator = "operator"

// IDFor is the id of the member with the address at the merchant.
func IDFor(merchantID, email string) string {
	sum := sha256.Sum256([]byte(merchantID + "\x00" + strings.ToLower(strings.TrimSpace(email))))
	return "stf_" + hex.EncodeToString(sum[:12])
}

func (s *Service) now() time.Time { return s.Now().UTC().Truncate(time.Millisecond) }

// Invite makes email a member with the role, invited by inviter (a member's
// address or Operator), and returns the member. Inviting a current member
// again changes their role and ends their sessions and links; the caller
// sends the invitation. The last owner's role cannot be lowered.
func (s *Service) Invite(ctx context.Context, merchantID, email string, role Role, inviter string) (Member, error) {
	email, err := CheckEmail(email)
	if err != nil {
		return Member{}, err
	}
	if !role.Valid() {
		return Member{}, apperr.New(apperr.Invalid, "role must be owner, editor or viewer").WithDetail(CodeInvalidRole)
	}
	id := IDFor(merchantID, email)
	return s.edit(ctx, merchantID, func(r *Roster) (Member, error) {
		now := s.now()
		m := Member{MerchantID: merchantID, ID: id, Email: email, Role: role, InvitedBy: inviter, InvitedAt: now, SessionsFrom: now}
		i := r.find(id)
		if i < 0 {
			if active(r.Members) >= MaxMembers {
				return Member{}, apperr.New(apperr.Conflict, "a merchant has at most %d staff", MaxMembers).WithDetail(CodeTooMany)
			}
			r.Members = append(r.Members, m)
			forgetOldRemovals(r)
			return m, nil
		}
		old := r.Members[i]
		if old.Active() && old.Role == Owner && role != Owner && owners(r.Members) == 1 {
			return Member{}, lastOwner()
		}
		m.SignedInAt = old.SignedInAt
		r.Members[i] = m
		return m, nil
	})
}

// CheckEmail returns a staff member's address trimmed, or refuses one
// that is not an address (Invalid, invalid_email).
func CheckEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if !consent.ValidEmail(email) {
		return "", apperr.New(apperr.Invalid, "%q is not an email address", email).WithDetail(CodeBadEmail)
	}
	return email, nil
}

// edit applies change to the merchant's roster and saves it, again from a
// fresh read when another change came first; what change returns is
// what the edit returns.
func (s *Service) edit(ctx context.Context, merchantID string, change func(r *Roster) (Member, error)) (Member, error) {
	for range 20 {
		r, err := s.Store.Roster(ctx, merchantID)
		if err != nil {
			return Member{}, err
		}
		r.Members = slices.Clone(r.Members)
		m, err := change(&r)
		if err != nil {
			return Member{}, err
		}
		r.Version++
		ok, err := s.Store.SaveRoster(ctx, r)
		if err != nil || ok {
			return m, err
		}
	}
	return Member{}, apperr.New(apperr.Unavailable, "the staff list is changing too fast; retry")
}

func active(all []Member) int {
	n := 0
	for _, m := range all {
		if m.Active() {
			n++
		}
	}
	return n
}

// forgetOldRemovals keeps at most MaxMembers removed members, forgetting
// the oldest removals.
func forgetOldRemovals(r *Roster) {
	for len(r.Members)-active(r.Members) > MaxMembers {
		oldest := -1
		for i, m := range r.Members {
			if !m.Active() && (oldest < 0 || m.RemovedAt.Before(r.Members[oldest].RemovedAt)) {
				oldest = i
			}
		}
		r.Members = slices.Delete(r.Members, oldest, oldest+1)
	}
}

func owners(all []Member) int {
	n := 0
	for _, m := range all {
		if m.Active() && m.Role == Owner {
			n++
		}
	}
	return n
}

func lastOwner() error {
	return apperr.New(apperr.Conflict, "this is the last owner; make someone else an owner first").WithDetail(CodeLastOwner)
}

// Remove removes a member: their sessions and links stop working at once.
// The last owner cannot be removed.
func (s *Service) Remove(ctx context.Context, merchantID, id string) (Member, error) {
	return s.edit(ctx, merchantID, func(r *Roster) (Member, error) {
		i := r.find(id)
		if i < 0 || !r.Members[i].Active() {
			return Member{}, apperr.New(apperr.NotFound, "no such staff member")
		}
		m := r.Members[i]
		if m.Role == Owner && owners(r.Members) == 1 {
			return Member{}, lastOwner()
		}
		now := s.now()
		m.RemovedAt, m.SessionsFrom = now, now
		r.Members[i] = m
		return m, nil
	})
}

// Members lists the merchant's staff, removed members included.
func (s *Service) Members(ctx context.Context, merchantID string) ([]Member, error) {
	r, err := s.Store.Roster(ctx, merchantID)
	return r.Members, err
}

// ByEmail returns the active member with the address; NotFound otherwise.
func (s *Service) ByEmail(ctx context.Context, merchantID, email string) (Member, error) {
	if !consent.ValidEmail(email) {
		return Member{}, notStaff()
	}
	return s.active(ctx, merchantID, IDFor(merchantID, email))
}

func notStaff() error {
	return apperr.New(apperr.NotFound, "not a staff member of this merchant").WithDetail(CodeNotStaff)
}

func (s *Service) active(ctx context.Context, merchantID, id string) (Member, error) {
	r, err := s.Store.Roster(ctx, merchantID)
	if err != nil {
		return Member{}, err
	}
	if i := r.find(id); i >= 0 && r.Members[i].Active() {
		return r.Members[i], nil
	}
	return Member{}, notStaff()
}

// SignedIn records a sign-in of the member with a link made at linked and
// returns them: an active member only, and a link made before their latest
// invitation or removal is refused (link_invalid).
func (s *Service) SignedIn(ctx context.Context, merchantID, id string, linked time.Time) (Member, error) {
	return s.edit(ctx, merchantID, func(r *Roster) (Member, error) {
		i := r.find(id)
		if i < 0 || !r.Members[i].Active() {
			return Member{}, notStaff()
		}
		if linked.Before(r.Members[i].SessionsFrom) {
			return Member{}, apperr.New(apperr.Invalid, "this link was sent before the member was invited again or removed").WithDetail("link_invalid")
		}
		r.Members[i].SignedInAt = s.now()
		return r.Members[i], nil
	})
}

// Session returns the member a session signed at issued names, re-read
// now: removed members, and sessions older than the member's latest
// invitation or removal, are refused (Unauthorized, no_session).
func (s *Service) Session(ctx context.Context, merchantID, id string, issued time.Time) (Member, error) {
	m, err := s.active(ctx, merchantID, id)
	if apperr.Is(err, apperr.NotFound) || (err == nil && issued.Before(m.SessionsFrom)) {
		return Member{}, apperr.New(apperr.Unauthorized, "not signed in").WithDetail("no_session")
	}
	return m, err
}

// RequireFresh refuses, for what needs a recent sign-in, a session signed
// at issued more than Fresh ago (Forbidden, sign_in_again).
func (s *Service) RequireFresh(issued time.Time) error {
	if s.Now().Sub(issued) <= Fresh {
		return nil
	}
	return apperr.New(apperr.Forbidden, "sign in again to do this: your sign-in is older than %d minutes", int(Fresh/time.Minute)).WithDetail(CodeStale)
}

// maxDetail bounds an entry's detail.
const maxDetail = 500

// Record appends an entry to the merchant's audit log.
func (s *Service) Record(ctx context.Context, merchantID, actor, action, target, detail string) error {
	if len(detail) > maxDetail {
		detail = detail[:maxDetail]
	}
	now := s.now()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	// Milliseconds, then this process's sequence: entries one process
	// writes in one millisecond keep their order.
	e := Entry{MerchantID: merchantID, ID: fmt.Sprintf("%013d-%04x%s", now.UnixMilli(), uint16(s.seq.Add(1)), hex.EncodeToString(b)), At: now,
		Actor: actor, Action: action, Target: target, Detail: detail}
	return s.Store.AppendAudit(ctx, e)
}

// MaxAuditPage bounds a page of the audit log.
const MaxAuditPage = 100

// Audit returns a page of the merchant's audit log, newest first, older
// than the cursor before, and the cursor of the next page ("" at the end).
func (s *Service) Audit(ctx context.Context, merchantID, before string, limit int) ([]Entry, string, error) {
	if limit <= 0 || limit > MaxAuditPage {
		limit = MaxAuditPage
	}
	if before != "" && !validEntryID(before) {
		return nil, "", apperr.New(apperr.Invalid, "before must be a cursor from an earlier page").WithDetail("invalid_cursor")
	}
	es, err := s.Store.Audit(ctx, merchantID, before, limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(es) > limit {
		es = es[:limit]
		next = es[limit-1].ID
	}
	return es, next, nil
}

func validEntryID(id string) bool {
	if len(id) != 26 || id[13] != '-' {
		return false
	}
	for i, r := range id {
		if i == 13 {
			continue
		}
		if !(r >= '0' && r <= '9') && !(i > 13 && r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}
