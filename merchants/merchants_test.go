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
