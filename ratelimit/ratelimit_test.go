package ratelimit

import (
	"testing"
	"time"
)

func TestBurstThenRefill(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(time.Minute, 3, 100, func() time.Time { return now })
	for i := range 3 {
		if !l.Allow("a@example.com") {
			t.Fatalf("event %d refused within the burst", i)
		}
	}
	if l.Allow("a@example.com") {
		t.Fatal("fourth event allowed")
	}
	if !l.Allow("b@example.com") {
		t.Fatal("another key shares the bucket")
	}
	now = now.Add(time.Minute)
	if !l.Allow("a@example.com") {
		t.Fatal("no refill after the interval")
	}
	if l.Allow("a@example.com") {
		t.Fatal("refilled more than one")
	}
}

func TestKeysAreBounded(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := New(time.Minute, 1, 10, func() time.Time { return now })
	for i := range 100 {
		now = now.Add(time.Second)
		l.Allow(string(rune('a' + i)))
	}
	if len(l.keys) > 10 {
		t.Fatalf("%d keys held, want at most 10", len(l.keys))
	}
}
