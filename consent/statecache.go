package consent

import (
	"encoding/hex"
	"sync"
	"time"
	"unsafe"

	"github.com/maypok86/otter/v2"
	"github.com/maypok86/otter/v2/stats"
)

// stateCache holds subjects' states in memory within a budget of bytes:
// written through by every write of this instance, invalidated by what the
// journal says other instances wrote, loaded on demand. Entries are packed
// (about 240 bytes and 72 per decided purpose) and weighed; eviction is
// otter's W-TinyLFU, which keeps what is asked for often. A miss is read
// from the store, so correctness never depends on what fits.
type stateCache struct {
	c *otter.Cache[string, *packed]
	// counter records hits, misses and evictions, for metrics.
	counter *stats.Counter

	// gone remembers when a key was last invalidated, so a read that began
	// before the invalidation cannot put back what it read.
	goneMu sync.Mutex
	gone   map[string]time.Time

	// names interns purpose keys, so that a million entries share them.
	namesMu sync.RWMutex
	names   map[string]string
}

// packedPurpose is one decided purpose, as held in memory.
type packedPurpose struct {
	key     string // interned
	seq     uint32
	gpcSeq  uint32
	at      int64 // Unix milliseconds
	version uint32
	state   State   // interned constant
	channel Channel // interned constant
}

// packed is a subject's state as held in memory.
type packed struct {
	seq       int64
	updatedAt int64
	head      [32]byte
	// hexHead is set instead of head when the stored hash is not 64 hex digits.
	hexHead  string
	purposes []packedPurpose
	// levelSeq and level are the subject's privacy level (level "" if
	// never chosen).
	levelSeq uint32
	level    Level // interned constant
	// erasedSeq is the event that erased the subject, 0 if none.
	erasedSeq uint32
}

// entryOverhead approximates what an entry costs beyond its key and
// purposes: the packed struct, its pointer, otter's node and its share of
// the hash table (measured by TestCacheEntriesCostWhatTheyWeigh).
const entryOverhead = 208

var purposeSize = int(unsafe.Sizeof(packedPurpose{}))

func weigh(k string, p *packed) uint32 {
	return uint32(entryOverhead + len(k) + len(p.hexHead) + purposeSize*len(p.purposes))
}

// newStateCache makes a cache of at most budget bytes.
func newStateCache(budget int64) *stateCache {
	counter := stats.NewCounter()
	c := otter.Must(&otter.Options[string, *packed]{
		MaximumWeight: uint64(budget),
		Weigher:       weigh,
		StatsRecorder: counter,
	})
	return &stateCache{c: c, counter: counter, gone: make(map[string]time.Time), names: make(map[string]string)}
}

func cacheKey(merchantID, subjectID string) string { return merchantID + "/" + subjectID }

func splitKey(k string) (string, string) {
	for i := 0; i < len(k); i++ {
		if k[i] == '/' {
			return k[:i], k[i+1:]
		}
	}
	return k, ""
}

func (c *stateCache) intern(s string) string {
	c.namesMu.RLock()
	v, ok := c.names[s]
	c.namesMu.RUnlock()
	if ok {
		return v
	}
	c.namesMu.Lock()
	defer c.namesMu.Unlock()
	if v, ok := c.names[s]; ok {
		return v
	}
	c.names[s] = s
	return s
}

// internState returns the constant for a known state, so that packed
// entries share its bytes.
func internState(s State) State {
	for _, k := range []State{Granted, Denied, Withdrawn} {
		if k == s {
			return k
		}
	}
	return s
}

// internLevel returns the constant for a known level.
func internLevel(l Level) Level {
	for _, k := range Levels() {
		if k == l {
			return k
		}
	}
	return l
}

var knownChannels = []Channel{ChannelAPI, ChannelCenter, ChannelWidget, ChannelGPC, ChannelUnsubscribe, ChannelImport, ChannelSystem}

func internChannel(ch Channel) Channel {
	for _, k := range knownChannels {
		if k == ch {
			return k
		}
	}
	return ch
}

func (c *stateCache) pack(st SubjectState) *packed {
	p := &packed{seq: st.Seq, updatedAt: st.UpdatedAt.UnixMilli(), purposes: make([]packedPurpose, 0, len(st.Purposes)),
		levelSeq: uint32(st.LevelSeq), level: internLevel(st.Level), erasedSeq: uint32(st.ErasedSeq)}
	if b, err := hex.DecodeString(st.HeadHash); err == nil && len(b) == 32 {
		copy(p.head[:], b)
	} else {
		p.hexHead = st.HeadHash
	}
	for k, ps := range st.Purposes {
		p.purposes = append(p.purposes, packedPurpose{key: c.intern(k), seq: uint32(ps.Seq), gpcSeq: uint32(ps.GPCSeq), at: ps.At.UnixMilli(),
			version: uint32(ps.NoticeVersion), state: internState(ps.State), channel: internChannel(ps.Channel)})
	}
	return p
}

func (p *packed) headHash() string {
	if p.hexHead != "" || p.seq == 0 {
		return p.hexHead
	}
	return hex.EncodeToString(p.head[:])
}

func (pp packedPurpose) unpack() PurposeState {
	return PurposeState{State: pp.state, Seq: int64(pp.seq), NoticeVersion: int(pp.version), Channel: pp.channel, At: time.UnixMilli(pp.at).UTC(), GPCSeq: int64(pp.gpcSeq)}
}

// unpack gives the state back in full.
func (p *packed) unpack(k string) SubjectState {
	m, s := splitKey(k)
	st := SubjectState{MerchantID: m, SubjectID: s, Seq: p.seq, HeadHash: p.headHash(), Purposes: make(map[string]PurposeState, len(p.purposes)),
		Level: p.level, LevelSeq: int64(p.levelSeq), ErasedSeq: int64(p.erasedSeq)}
	if p.updatedAt != 0 || p.seq != 0 {
		st.UpdatedAt = time.UnixMilli(p.updatedAt).UTC()
	}
	for _, pp := range p.purposes {
		st.Purposes[pp.key] = pp.unpack()
	}
	return st
}

// purpose gives one purpose's state without unpacking the rest: the check path.
func (p *packed) purpose(key string) (PurposeState, bool) {
	for _, pp := range p.purposes {
		if pp.key == key {
			return pp.unpack(), true
		}
	}
	return PurposeState{}, false
}

func (c *stateCache) get(k string) (SubjectState, bool) {
	p, ok := c.c.GetIfPresent(k)
	if !ok {
		return SubjectState{}, false
	}
	return p.unpack(k), true
}

// getPacked returns the packed entry, for reading one purpose.
func (c *stateCache) getPacked(k string) (*packed, bool) { return c.c.GetIfPresent(k) }

// put stores st, read from the store at loadedAt, unless the key was
// invalidated since or a newer state is cached.
func (c *stateCache) put(k string, st SubjectState, loadedAt time.Time) {
	c.goneMu.Lock()
	g, ok := c.gone[k]
	c.goneMu.Unlock()
	if ok && g.After(loadedAt) {
		return
	}
	p := c.pack(st)
	c.c.Compute(k, func(old *packed, found bool) (*packed, otter.ComputeOp) {
		if found && old.seq > st.Seq {
			return old, otter.CancelOp
		}
		return p, otter.WriteOp
	})
}

// invalidate drops the entry unless it already holds seq or later.
func (c *stateCache) invalidate(k string, seq int64, at time.Time) {
	c.goneMu.Lock()
	c.gone[k] = at
	c.goneMu.Unlock()
	c.c.Compute(k, func(old *packed, found bool) (*packed, otter.ComputeOp) {
		if found && old.seq >= seq {
			return old, otter.CancelOp
		}
		return nil, otter.InvalidateOp
	})
}

// prune forgets invalidation times older than before.
func (c *stateCache) prune(before time.Time) {
	c.goneMu.Lock()
	defer c.goneMu.Unlock()
	for k, at := range c.gone {
		if at.Before(before) {
			delete(c.gone, k)
		}
	}
}

// CacheStats are the state cache's figures, for metrics.
type CacheStats struct {
	Entries, Bytes, Budget  uint64
	Hits, Misses, Evictions uint64
}

func (c *stateCache) stats() CacheStats {
	s := c.counter.Snapshot()
	return CacheStats{Entries: uint64(c.c.EstimatedSize()), Bytes: c.c.WeightedSize(), Budget: c.c.GetMaximum(),
		Hits: s.Hits, Misses: s.Misses, Evictions: s.Evictions}
}
