package targeting

import (
	"hash/maphash"
	"maps"
	"slices"
)

// This file holds the two persistent containers the index is made of. Both
// are immutable once published; an edit copies only what it touches, so a
// new snapshot shares everything else with the one it was derived from.

const (
	chunkBits = 8
	chunkSize = 1 << chunkBits
	chunkMask = chunkSize - 1
)

// pvec is a persistent array indexed by a dense uint32 id: a directory of
// fixed-size chunks. Reading is two loads. An edit copies the directory
// (len/256 pointers) once and each chunk it writes to once.
type pvec[T any] struct {
	dir []*[chunkSize]T
}

// get returns element i. i must be below len(dir)*chunkSize.
func (v *pvec[T]) get(i uint32) *T {
	return &v.dir[i>>chunkBits][i&chunkMask]
}

// has reports whether i is inside the allocated range.
func (v *pvec[T]) has(i uint32) bool { return int(i>>chunkBits) < len(v.dir) }

// pvecEdit derives a new pvec from a published one.
type pvecEdit[T any] struct {
	v        pvec[T]
	dirOwned bool
	owned    map[uint32]bool // chunks already copied by this edit
}

func (e *pvecEdit[T]) set(i uint32, x T) {
	ci := i >> chunkBits
	if !e.dirOwned {
		e.v.dir = slices.Clip(slices.Clone(e.v.dir))
		e.dirOwned = true
	}
	if e.owned == nil {
		e.owned = make(map[uint32]bool)
	}
	for int(ci) >= len(e.v.dir) {
		e.owned[uint32(len(e.v.dir))] = true
		e.v.dir = append(e.v.dir, new([chunkSize]T))
	}
	if !e.owned[ci] {
		c := *e.v.dir[ci]
		e.v.dir[ci] = &c
		e.owned[ci] = true
	}
	e.v.dir[ci][i&chunkMask] = x
}

// newPvec allocates a pvec able to hold n elements, chunks from one slab.
func newPvec[T any](n int) pvec[T] {
	nc := (n + chunkSize - 1) / chunkSize
	slab := make([][chunkSize]T, nc)
	v := pvec[T]{dir: make([]*[chunkSize]T, nc)}
	for i := range slab {
		v.dir[i] = &slab[i]
	}
	return v
}

const nShards = 256

// smap is a persistent string-keyed hash map: 256 Go maps chosen by a
// seeded hash. An edit copies the shard array once and each shard it writes
// to once, so an edit costs about len/256 per touched shard.
type smap[V any] struct {
	seed   maphash.Seed
	shards *[nShards]map[string]V
	n      int
}

func newSmap[V any](hint int) smap[V] {
	m := smap[V]{seed: maphash.MakeSeed(), shards: new([nShards]map[string]V)}
	for i := range m.shards {
		m.shards[i] = make(map[string]V, hint/nShards)
	}
	return m
}

func (m *smap[V]) get(k string) (V, bool) {
	v, ok := m.shards[maphash.String(m.seed, k)&(nShards-1)][k]
	return v, ok
}

func (m *smap[V]) getBytes(k []byte) (V, bool) {
	v, ok := m.shards[maphash.Bytes(m.seed, k)&(nShards-1)][string(k)]
	return v, ok
}

func (m *smap[V]) mustGet(k string) V {
	v, ok := m.get(k)
	if !ok {
		panic("BUG: targeting: " + k + " missing from its map")
	}
	return v
}

// all calls f for each pair in no particular order until f returns false.
func (m *smap[V]) all(f func(string, V) bool) bool {
	for _, sh := range m.shards {
		for k, v := range sh {
			if !f(k, v) {
				return false
			}
		}
	}
	return true
}

// setFresh inserts into a map that no snapshot has published yet.
func (m *smap[V]) setFresh(k string, v V) {
	sh := m.shards[maphash.String(m.seed, k)&(nShards-1)]
	if _, ok := sh[k]; !ok {
		m.n++
	}
	sh[k] = v
}

type smapEdit[V any] struct {
	m        smap[V]
	arrOwned bool
	owned    [nShards]bool
}

func (e *smapEdit[V]) shard(k string) map[string]V {
	si := maphash.String(e.m.seed, k) & (nShards - 1)
	if !e.arrOwned {
		arr := *e.m.shards
		e.m.shards = &arr
		e.arrOwned = true
	}
	if !e.owned[si] {
		e.m.shards[si] = maps.Clone(e.m.shards[si])
		if e.m.shards[si] == nil {
			e.m.shards[si] = map[string]V{}
		}
		e.owned[si] = true
	}
	return e.m.shards[si]
}

func (e *smapEdit[V]) set(k string, v V) {
	sh := e.shard(k)
	if _, ok := sh[k]; !ok {
		e.m.n++
	}
	sh[k] = v
}

func (e *smapEdit[V]) del(k string) {
	if _, ok := e.m.get(k); !ok {
		return
	}
	delete(e.shard(k), k)
	e.m.n--
}
