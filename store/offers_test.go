package store_test

import (
	"context"
	"slices"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/fineline/fineline/offers"
	"github.com/fineline/fineline/store/storetest"
)

// A merchant's offer purposes are a point read: kept as offers are made,
// and listed once (then kept) for offers made before the list existed.
func TestOfferPurposesAreKept(t *testing.T) {
	s := storetest.Open(t)
	ctx := context.Background()
	// An offer stored as before the list was kept.
	if _, err := s.Database().Collection("offers").InsertOne(ctx, bson.D{{Key: "_id", Value: "m1/old"}, {Key: "merchant_id", Value: "m1"},
		{Key: "key", Value: "old"}, {Key: "purpose", Value: "birthday_reward"}}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.OfferPurposes(ctx, "m1"); err != nil || !slices.Equal(got, []string{"birthday_reward"}) {
		t.Fatalf("before the list: %v %v", got, err)
	}
	if err := s.CreateOffer(ctx, offers.Offer{MerchantID: "m1", Key: "shoes", Purpose: "recommendations"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOffer(ctx, offers.Offer{MerchantID: "m2", Key: "shoes", Purpose: "newsletter"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.OfferPurposes(ctx, "m1")
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"birthday_reward", "recommendations"}) {
		t.Fatalf("m1: %v %v", got, err)
	}
	if got, err := s.OfferPurposes(ctx, "m3"); err != nil || len(got) != 0 {
		t.Fatalf("a merchant without offers: %v %v", got, err)
	}
	var doc bson.M
	if err := s.Database().Collection("offer_purposes").FindOne(ctx, bson.D{{Key: "_id", Value: "m3"}}).Decode(&doc); err != nil {
		t.Fatalf("the empty list is not kept: %v", err)
	}
}
