package consent

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"runtime"
	"testing"
	"time"
)

// TestCacheEntriesCostWhatTheyWeigh fills the state cache with subjects of
// three decided purposes, measures the heap they take, and checks that the
// budget's weighing is not an underestimate (the budget is what memory the
// cache may take) nor far above it. It logs bytes per subject.
func TestCacheEntriesCostWhatTheyWeigh(t *testing.T) {
	const n = 100_000
	states := make([]SubjectState, n)
	now := time.Now().UTC()
	for i := range states {
		h := sha256.Sum256([]byte(fmt.Sprint(i)))
		states[i] = SubjectState{MerchantID: "mer_3kD9sQ2vX1", SubjectID: fmt.Sprintf("cust-%07d", i), Seq: 3, HeadHash: hex.EncodeToString(h[:]), UpdatedAt: now,
			Purposes: map[string]PurposeState{
				"newsletter":      {State: Granted, Seq: 1, NoticeVersion: 1, Channel: ChannelCenter, At: now},
				"recommendations": {State: Denied, Seq: 2, NoticeVersion: 1, Channel: ChannelWidget, At: now},
				"birthday_reward": {State: Withdrawn, Seq: 3, NoticeVersion: 1, Channel: ChannelAPI, At: now},
			}}
	}
	keys := make([]string, n)
	for i, st := range states {
		keys[i] = cacheKey(st.MerchantID, st.SubjectID)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newStateCache(1 << 30)
	for i, st := range states {
		c.put(keys[i], st, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	stats := c.stats()
	if stats.Entries != n {
		t.Fatalf("%d entries, want %d", stats.Entries, n)
	}
	// The keys were allocated before; an entry in a real cache owns its key.
	measured := float64(after.HeapAlloc-before.HeapAlloc)/n + float64(len(keys[0])+16)
	weighed := float64(stats.Bytes) / n
	t.Logf("a subject of three purposes takes %.0f bytes in the cache (weighed %.0f)", measured, weighed)
	if weighed < 0.8*measured || weighed > 2*measured {
		t.Fatalf("entries weigh %.0f bytes but take %.0f: the budget does not bound memory", weighed, measured)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(states)
}
