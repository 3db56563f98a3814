package guard

import (
	"hash/maphash"
	"math"
)

const (
	// ways is the number of slots per bucket. A lookup scans one bucket:
	// 8 keys fill one 64-byte cache line.
	ways = 8
	// maxShards bounds the number of shard mutexes. On a 2-core box a
	// collision between two concurrent callers is then rare; more shards
	// would only cost cache.
	maxShards = 128
	// pad keeps neighbouring shards' mutexes off the same cache line.
	pad = 64
)

// empty is the value of an unused slot: smaller than any time, so an
// unused slot is always the first to be taken.
const empty = math.MinInt64

// table is a fixed-size set-associative map from a nonzero 64-bit key hash
// to an int64. It never allocates after newTable and never grows: a new key
// takes the slot with the smallest value in its bucket (the owner chooses
// values so that the smallest is the cheapest to lose). Slot i is entry
// i%ways of bucket i/ways. It is not safe for concurrent use; its shard's
// mutex guards it.
type table struct {
	b []bucket // fewer than 2^32
}

// bucket keeps its keys and values together: 128 bytes, two adjacent cache
// lines.
type bucket struct {
	keys [ways]uint64 // 0 marks an unused slot
	vals [ways]int64  // empty in unused slots
}

func newTable(buckets int) table {
	t := table{b: make([]bucket, buckets)}
	for i := range t.b {
		for j := range ways {
			t.b[i].vals[j] = empty
		}
	}
	return t
}

func (t *table) size() int             { return len(t.b) * ways }
func (t *table) key(i int) uint64      { return t.b[i/ways].keys[i%ways] }
func (t *table) val(i int) int64       { return t.b[i/ways].vals[i%ways] }
func (t *table) setVal(i int, v int64) { t.b[i/ways].vals[i%ways] = v }
func (t *table) set(i int, k uint64, v int64) {
	b := &t.b[i/ways]
	b.keys[i%ways], b.vals[i%ways] = k, v
}

// lookup returns the slot holding h and true, or, when h is absent, the
// slot a new key should take (an unused one, or the one with the smallest
// value in h's bucket) and false.
func (t *table) lookup(h uint64) (int, bool) {
	// The shard is chosen by the low bits of h; the bucket by the high 32
	// bits, mapped onto [0, buckets) by a multiply-shift.
	bi := int(((h >> 32) * uint64(len(t.b))) >> 32)
	b := &t.b[bi]
	v := 0
	for j, k := range b.keys {
		if k == h {
			return bi*ways + j, true
		}
		if b.vals[j] < b.vals[v] {
			v = j
		}
	}
	return bi*ways + v, false
}

// layout splits capacity slots over shards: as many shards as possible up
// to maxShards while keeping at least two buckets per shard, and enough
// buckets per shard to hold capacity in total (rounded up to a multiple of
// shards*ways).
func layout(capacity int) (shards, buckets int) {
	shards = maxShards
	for shards > 1 && shards*ways*2 > capacity {
		shards /= 2
	}
	return shards, bucketsFor(capacity, shards)
}

// bucketsFor returns the buckets per shard that hold capacity slots over
// shards shards.
func bucketsFor(capacity, shards int) int {
	per := shards * ways
	return max(1, (capacity+per-1)/per)
}

// hashKey hashes a key to a nonzero uint64 (0 marks an unused slot).
func hashKey(seed maphash.Seed, s string) uint64 {
	h := maphash.String(seed, s)
	if h == 0 {
		h = 1
	}
	return h
}

func hashKeyBytes(seed maphash.Seed, b []byte) uint64 {
	h := maphash.Bytes(seed, b)
	if h == 0 {
		h = 1
	}
	return h
}
