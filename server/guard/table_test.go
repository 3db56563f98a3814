package guard

import (
	"hash/maphash"
	"strconv"
	"testing"
)

// TestTableSpreadsKeys fills a table to half its capacity: with keys spread
// over all buckets, hardly any bucket of 8 overflows.
func TestTableSpreadsKeys(t *testing.T) {
	tab := newTable(128)
	seed := maphash.MakeSeed()
	overflows := 0
	for i := range 512 {
		h := hashKey(seed, "key-"+strconv.Itoa(i))
		j, found := tab.lookup(h)
		if found {
			t.Fatalf("key %d found before insertion", i)
		}
		if tab.key(j) != 0 {
			overflows++
		}
		tab.set(j, h, int64(i))
		if k, found := tab.lookup(h); !found || k != j {
			t.Fatalf("key %d not found where it was put", i)
		}
	}
	// Poisson(4) per bucket of 8: about 4 overflows expected; one bucket
	// for all keys would make 504.
	if overflows > 32 {
		t.Fatalf("%d of 512 keys overflowed a half-empty table", overflows)
	}
}

func TestLayout(t *testing.T) {
	for _, c := range []struct{ capacity, shards int }{
		{1, 1}, {8, 1}, {16, 1}, {17, 1}, {32, 2}, {1000, 32}, {1024, 64}, {1 << 17, maxShards}, {1 << 20, maxShards},
	} {
		shards, buckets := layout(c.capacity)
		if shards != c.shards {
			t.Errorf("layout(%d): %d shards, want %d", c.capacity, shards, c.shards)
		}
		if got := shards * buckets * ways; got < c.capacity || got >= max(c.capacity+shards*ways, 8+1) {
			t.Errorf("layout(%d): %d slots", c.capacity, got)
		}
	}
}
