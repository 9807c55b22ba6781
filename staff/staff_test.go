package staff_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/staff"
	"github.com/fineline/fineline/store/storetest"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newService(t *testing.T) (*staff.Service, *clock) {
	c := &clock{t: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	return &staff.Service{Store: storetest.Open(t), Now: c.Now}, c
}

func TestRolesAllow(t *testing.T) {
	for _, tc := range []struct {
		role                        staff.Role
		read, configure, administer bool
	}{
		{staff.Owner, true, true, true},
		{staff.Editor, true, true, false},
		{staff.Viewer, true, false, false},
		{staff.Role("admin"), false, false, false},
	} {
		got := [3]bool{tc.role.May(staff.Read), tc.role.May(staff.Configure), tc.role.May(staff.Administer)}
		if got != [3]bool{tc.read, tc.configure, tc.administer} {
			t.Errorf("%s may read, configure, administer: %v", tc.role, got)
		}
		err := staff.Member{Role: tc.role}.Allow(staff.Administer)
		if tc.administer != (err == nil) {
			t.Errorf("%s administer: %v", tc.role, err)
		}
	}
}

func TestInviteRemoveAndTheLastOwner(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	const m = "mer_staff"
	if _, err := s.Invite(ctx, m, "not an address", staff.Editor, staff.Operator); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("a bad address: %v", err)
	}
	if _, err := s.Invite(ctx, m, "a@example.com", staff.Role("root"), staff.Operator); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("a bad role: %v", err)
	}
	owner, err := s.Invite(ctx, m, "Owner@Example.com", staff.Owner, staff.Operator)
	if err != nil {
		t.Fatal(err)
	}
	if owner.ID != staff.IDFor(m, "owner@example.com") || owner.ID == staff.IDFor("mer_other", "owner@example.com") {
		t.Fatalf("member id %q: not one per merchant and address", owner.ID)
	}
	if got, err := s.ByEmail(ctx, m, "OWNER@example.com"); err != nil || got.ID != owner.ID {
		t.Fatalf("by email: %+v %v", got, err)
	}
	if _, err := s.ByEmail(ctx, "mer_other", "owner@example.com"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("another merchant's staff: %v", err)
	}
	if _, err := s.Remove(ctx, m, owner.ID); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("removing the last owner: %v", err)
	}
	if _, err := s.Invite(ctx, m, "owner@example.com", staff.Viewer, "owner@example.com"); apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("lowering the last owner: %v", err)
	}
	ed, err := s.Invite(ctx, m, "ed@example.com", staff.Editor, owner.Email)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.Remove(ctx, m, ed.ID)
	if err != nil || removed.Active() {
		t.Fatalf("remove: %+v %v", removed, err)
	}
	if _, err := s.ByEmail(ctx, m, "ed@example.com"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("a removed member signs in: %v", err)
	}
	if _, err := s.Remove(ctx, m, ed.ID); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("removing twice: %v", err)
	}
	// A second owner makes the first removable.
	if _, err := s.Invite(ctx, m, "co@example.com", staff.Owner, owner.Email); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Remove(ctx, m, owner.ID); err != nil {
		t.Fatalf("removing one of two owners: %v", err)
	}
	all, err := s.Members(ctx, m)
	if err != nil || len(all) != 3 {
		t.Fatalf("members: %d %v", len(all), err)
	}
}

func TestSessionsEndWithRemovalAndReinvitation(t *testing.T) {
	s, c := newService(t)
	ctx := context.Background()
	const m = "mer_sessions"
	ed, err := s.Invite(ctx, m, "ed@example.com", staff.Editor, staff.Operator)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute)
	issued := c.Now()
	if _, err := s.Session(ctx, m, ed.ID, issued); err != nil {
		t.Fatalf("a session after the invitation: %v", err)
	}
	if _, err := s.Session(ctx, m, ed.ID, issued.Add(-2*time.Minute)); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Fatalf("a session signed before the invitation: %v", err)
	}
	c.Add(time.Minute)
	if _, err := s.Invite(ctx, m, "ed@example.com", staff.Viewer, staff.Operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, m, ed.ID, issued); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Fatalf("a session from before a new role: %v", err)
	}
	if _, err := s.Session(ctx, "mer_other", ed.ID, c.Now()); apperr.CodeOf(err) != apperr.Unauthorized {
		t.Fatalf("a session on another merchant: %v", err)
	}
	if err := s.RequireFresh(c.Now().Add(-staff.Fresh)); err != nil {
		t.Fatalf("a sign-in just 15 minutes old: %v", err)
	}
	if err := s.RequireFresh(c.Now().Add(-staff.Fresh - time.Second)); apperr.CodeOf(err) != apperr.Forbidden {
		t.Fatalf("a stale sign-in: %v", err)
	}
}

func TestAuditLogPagesNewestFirstPerMerchant(t *testing.T) {
	s, c := newService(t)
	ctx := context.Background()
	for i := range 7 {
		c.Add(time.Millisecond)
		if err := s.Record(ctx, "mer_a", "a@example.com", "purpose.created", fmt.Sprint(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Record(ctx, "mer_b", "b@example.com", "purpose.created", "b", ""); err != nil {
		t.Fatal(err)
	}
	var got []string
	before := ""
	for range 10 {
		es, next, err := s.Audit(ctx, "mer_a", before, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got = append(got, e.Target)
		}
		if next == "" {
			break
		}
		before = next
	}
	if fmt.Sprint(got) != "[6 5 4 3 2 1 0]" {
		t.Fatalf("pages of mer_a's log: %v", got)
	}
	if _, _, err := s.Audit(ctx, "mer_a", "x\"; drop", 3); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("a bad cursor: %v", err)
	}
}

// Two owners acting on each other at once (on any instances) never leave
// the merchant without an owner, and a sign-in racing a removal never
// brings the member back.
func TestConcurrentChangesKeepTheRules(t *testing.T) {
	s, c := newService(t)
	ctx := context.Background()
	for round := range 10 {
		m := fmt.Sprintf("mer_race%d", round)
		a, err := s.Invite(ctx, m, "a@example.com", staff.Owner, staff.Operator)
		if err != nil {
			t.Fatal(err)
		}
		b, err := s.Invite(ctx, m, "b@example.com", staff.Owner, staff.Operator)
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = s.Invite(ctx, m, b.Email, staff.Viewer, a.Email) }()
		go func() { defer wg.Done(); _, _ = s.Remove(ctx, m, a.ID) }()
		wg.Wait()
		all, err := s.Members(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		owners := 0
		for _, x := range all {
			if x.Active() && x.Role == staff.Owner {
				owners++
			}
		}
		if owners != 1 {
			t.Fatalf("round %d: %d owners left: %+v", round, owners, all)
		}

		ed, err := s.Invite(ctx, m, "ed@example.com", staff.Editor, staff.Operator)
		if err != nil {
			t.Fatal(err)
		}
		c.Add(time.Millisecond)
		link := c.Now()
		wg.Add(2)
		go func() { defer wg.Done(); _, _ = s.SignedIn(ctx, m, ed.ID, link) }()
		go func() { defer wg.Done(); _, _ = s.Remove(ctx, m, ed.ID) }()
		wg.Wait()
		if _, err := s.ByEmail(ctx, m, ed.Email); !apperr.Is(err, apperr.NotFound) {
			t.Fatalf("round %d: a sign-in racing a removal kept the member: %v", round, err)
		}
	}
}

// A link made before the member's latest invitation or removal does not
// sign them in, even once they are invited again.
func TestOldLinksDieWithAReinvitation(t *testing.T) {
	s, c := newService(t)
	ctx := context.Background()
	const m = "mer_links"
	ed, err := s.Invite(ctx, m, "ed@example.com", staff.Editor, staff.Operator)
	if err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	old := c.Now()
	c.Add(time.Second)
	if _, err := s.Remove(ctx, m, ed.ID); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if _, err := s.Invite(ctx, m, ed.Email, staff.Editor, staff.Operator); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SignedIn(ctx, m, ed.ID, old); apperr.CodeOf(err) != apperr.Invalid {
		t.Fatalf("a link from before the removal: %v", err)
	}
	if got, err := s.SignedIn(ctx, m, ed.ID, c.Now()); err != nil || got.SignedInAt.IsZero() {
		t.Fatalf("a new link: %+v %v", got, err)
	}
}

// Entries one process writes in one millisecond keep their order.
func TestAuditOrderWithinAMillisecond(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	for i := range 20 {
		if err := s.Record(ctx, "mer_ms", staff.Operator, "merchant.created", fmt.Sprint(i), ""); err != nil {
			t.Fatal(err)
		}
	}
	es, _, err := s.Audit(ctx, "mer_ms", "", 100)
	if err != nil || len(es) != 20 {
		t.Fatalf("%d entries, %v", len(es), err)
	}
	for i, e := range es {
		if e.Target != fmt.Sprint(19-i) {
			t.Fatalf("entry %d is %s, newest first wants %d", i, e.Target, 19-i)
		}
	}
}
