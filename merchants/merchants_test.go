package merchants_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fineline/fineline/apperr"
	"github.com/fineline/fineline/merchants"
	"github.com/fineline/fineline/store"
	"github.com/fineline/fineline/store/storetest"
)

// keyless is the real store, except that creating a key fails once.
type keyless struct {
	*store.Store
	failed bool
}

func (k *keyless) CreateKey(ctx context.Context, key merchants.APIKey) error {
	if !k.failed {
		k.failed = true
		return errors.New("store went away")
	}
	return k.Store.CreateKey(ctx, key)
}

func TestOnboardingThatFailsHalfWayCanBeRetried(t *testing.T) {
	st := &keyless{Store: storetest.Open(t)}
	s := &merchants.Service{Store: st, Now: time.Now}
	ctx := context.Background()
	if _, _, _, err := s.Create(ctx, merchants.NewMerchant{Slug: "retry-shop", Name: "Retry Shop"}); err == nil {
		t.Fatal("creation with a failing key store succeeded")
	}
	if _, err := st.MerchantBySlug(ctx, "retry-shop"); !apperr.Is(err, apperr.NotFound) {
		t.Fatalf("the slug stayed taken by a merchant without a key: %v", err)
	}
	m, _, secret, err := s.Create(ctx, merchants.NewMerchant{Slug: "retry-shop", Name: "Retry Shop"})
	if err != nil {
		t.Fatalf("retry: %v", err)
	}
	k, err := s.Authenticate(ctx, secret)
	if err != nil || k.MerchantID != m.ID {
		t.Fatalf("the retried merchant's key: %+v %v", k, err)
	}
}

// TestSuspendOnAStaleInstance: two instances share a store; one's cache
// still holds the merchant as suspended after the other resumed it.
// Suspending there again must still suspend it in the store.
func TestSuspendOnAStaleInstance(t *testing.T) {
	st := storetest.Open(t)
	ctx := context.Background()
	a := &merchants.Service{Store: merchants.NewCachedStore(st, time.Hour, time.Now), Now: time.Now}
	b := &merchants.Service{Store: merchants.NewCachedStore(st, time.Hour, time.Now), Now: time.Now}
	m, _, _, err := a.Create(ctx, merchants.NewMerchant{Slug: "stale", Name: "Stale"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Suspend(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	if cached, err := b.Store.Merchant(ctx, m.ID); err != nil || cached.SuspendedAt.IsZero() {
		t.Fatalf("b caches %+v, %v", cached, err)
	}
	if _, err := a.Resume(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	// b's cache says suspended; the store says active.
	if _, err := b.Suspend(ctx, m.ID); err != nil {
		t.Fatal(err)
	}
	got, err := st.Merchant(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.SuspendedAt.IsZero() {
		t.Fatal("a suspension on an instance with a stale cache wrote nothing")
	}
	if err := got.Active(); !apperr.Is(err, apperr.Forbidden) {
		t.Fatalf("Active on a suspended merchant: %v", err)
	}
}
