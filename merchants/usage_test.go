package merchants_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/store/storetest"
)

// A key's use is written once per resolution, never moves back, and a
// key never used has no last use.
func TestKeyUsageIsWrittenBehindAndNeverMovesBack(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	u := &merchants.Usage{Store: st, Resolution: time.Minute, Interval: time.Minute, Log: slog.New(slog.DiscardHandler)}
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	now := t0
	s := &merchants.Service{Store: st, Now: func() time.Time { return now }, Usage: u}
	m, k, secret, err := s.Create(ctx, merchants.NewMerchant{Slug: "usage-shop", Name: "Usage Shop"})
	if err != nil {
		t.Fatal(err)
	}
	idle, _, err := s.CreateKey(ctx, m.ID, "idle", []merchants.Scope{merchants.ScopeConsentRead})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		now = t0.Add(time.Duration(i) * 10 * time.Second)
		if _, err := s.Authenticate(ctx, secret); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := st.Key(ctx, k.ID); !got.LastUsedAt.IsZero() {
		t.Fatalf("a use was written before the flush: %v", got.LastUsedAt)
	}
	u.Flush(ctx)
	if got, _ := st.Key(ctx, k.ID); !got.LastUsedAt.Equal(t0) {
		t.Fatalf("last use %v, want the first of the minute %v", got.LastUsedAt, t0)
	}
	now = t0.Add(2 * time.Minute)
	if _, err := s.Authenticate(ctx, secret); err != nil {
		t.Fatal(err)
	}
	u.Flush(ctx)
	// Another instance writing an older use later does not move it back.
	if err := st.TouchKey(ctx, k.ID, t0); err != nil {
		t.Fatal(err)
	}
	if got, _ := st.Key(ctx, k.ID); !got.LastUsedAt.Equal(now) {
		t.Fatalf("last use %v, want %v", got.LastUsedAt, now)
	}
	if got, _ := st.Key(ctx, idle.ID); !got.LastUsedAt.IsZero() {
		t.Fatalf("an unused key has a last use: %v", got.LastUsedAt)
	}
}
