package store

import (
	"context"
	"testing"
	"time"

	"github.com/fineline/fineline/consent"
)

// TestCreateSubjectsSkipsThoseThatExist: the bulk create inserts the
// subjects that are new, leaves those that exist as they are (even one
// named twice), on the embedded store and on the MongoDB code path.
func TestCreateSubjectsSkipsThoseThatExist(t *testing.T) {
	for _, shared := range []bool{false, true} {
		t.Run(map[bool]string{false: "embedded", true: "mongodb"}[shared], func(t *testing.T) {
			ctx := context.Background()
			s, err := Open(ctx, Config{DataDir: t.TempDir(), Shared: shared})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close(ctx)
			at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
			if _, err := s.CreateSubject(ctx, consent.Subject{MerchantID: "mer_a", ID: "old", Email: "old@example.com", CreatedAt: at, UpdatedAt: at}); err != nil {
				t.Fatal(err)
			}
			later := at.Add(time.Hour)
			var subs []consent.Subject
			for _, id := range []string{"old", "new-1", "new-2", "new-2", "new-3"} {
				subs = append(subs, consent.Subject{MerchantID: "mer_a", ID: id, CreatedAt: later, UpdatedAt: later})
			}
			if err := s.CreateSubjects(ctx, subs); err != nil {
				t.Fatal(err)
			}
			if err := s.CreateSubjects(ctx, subs); err != nil {
				t.Fatalf("again: %v", err)
			}
			old, err := s.Subject(ctx, "mer_a", "old")
			if err != nil || old.Email != "old@example.com" || !old.CreatedAt.Equal(at) {
				t.Errorf("the subject that existed: %+v %v", old, err)
			}
			for _, id := range []string{"new-1", "new-2", "new-3"} {
				if sub, err := s.Subject(ctx, "mer_a", id); err != nil || !sub.CreatedAt.Equal(later) {
					t.Errorf("%s: %+v %v", id, sub, err)
				}
			}
			if _, err := s.Subject(ctx, "mer_b", "new-1"); err == nil {
				t.Error("a subject was created for another merchant")
			}
			if err := s.CreateSubjects(ctx, []consent.Subject{{MerchantID: "mer_a", ID: "mail", Email: "x@example.com"}}); err == nil {
				t.Error("a subject with an email was created in bulk")
			}
		})
	}
}
