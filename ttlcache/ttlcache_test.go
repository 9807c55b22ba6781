package ttlcache

import (
	"testing"
	"time"
)

func TestEntriesExpireAndDelete(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := New[string, int](time.Second, 2, func() time.Time { return now })
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("fresh entry: %v %v", v, ok)
	}
	now = now.Add(999 * time.Millisecond)
	if _, ok := c.Get("a"); !ok {
		t.Fatal("entry expired early")
	}
	now = now.Add(time.Millisecond)
	if _, ok := c.Get("a"); ok {
		t.Fatal("entry outlived its TTL")
	}
	c.Put("a", 2)
	c.Delete("a")
	if _, ok := c.Get("a"); ok {
		t.Fatal("deleted entry still served")
	}
	c.Put("a", 1)
	c.Put("b", 2)
	c.Put("c", 3)
	n := 0
	for _, k := range []string{"a", "b", "c"} {
		if _, ok := c.Get(k); ok {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d entries held, want the maximum of 2", n)
	}
}
