package targeting

import (
	"sync/atomic"

	"github.com/adserver/adserver/campaign"
)

// Index is an immutable snapshot of the campaign catalog with a
// boolean-expression index over the targeting of its active campaigns.
// A nil *Index is a valid empty index. All methods are safe for concurrent
// use; nothing reachable from an Index is ever modified.
type Index struct {
	// keys interns a key's bytes (see appendKey) to its id.
	keys smap[uint32]
	// nkeys is the next key id.
	nkeys uint32
	// lists maps a key id to its posting lists, one per conjunction size,
	// in ascending size. Key ids at or past the allocated range have none.
	lists pvec[[]plist]
	// conjs maps a conjunction id to what it belongs to.
	conjs pvec[conjInfo]
	// nconj is the next conjunction id; ids are never reused before a
	// compaction renumbers them.
	nconj uint32
	// live counts indexed conjunctions; dead counts deleted ids below nconj.
	live, dead uint32
	// camps maps a campaign id to its record, for every stored campaign
	// whatever its status.
	camps smap[*crec]
	// zones are the time zones named by hour and weekday predicates, in
	// the order of their numbers; append-only until a compaction.
	zones  []zone
	zoneOf map[string]uint16
	// maxK is the largest conjunction size ever indexed (an upper bound).
	maxK uint8
	// updates counts Update calls since the last full build.
	updates int
}

// empty is the index Live.Load returns before the first Store.
var empty = Build(nil)

// Build indexes cs from scratch. A later campaign with the same id as an
// earlier one replaces it. Campaigns must have passed Validate (values
// normalized, time zone resolved) and must not be modified afterwards.
// Only active campaigns are indexed; every campaign is kept for Get and All.
func Build(cs []*campaign.Campaign) *Index {
	last := make(map[string]int, len(cs))
	for i, c := range cs {
		last[c.ID] = i
	}
	b := builder{
		kt:    newKeyTable(len(cs) * 8),
		camps: newSmap[*crec](len(cs)),
		recs:  make([]crec, 0, len(last)),
	}
	for i, c := range cs {
		if last[c.ID] == i {
			b.add(c)
		}
	}
	return b.finish()
}

type builder struct {
	kt     keyTable
	camps  smap[*crec]
	recs   []crec
	cinfo  []conjInfo
	tuples []tuple
	comp   compiler
	maxK   uint8
}

type tuple struct {
	key uint32
	e   entry
}

func (b *builder) add(c *campaign.Campaign) {
	b.recs = append(b.recs, crec{c: c})
	r := &b.recs[len(b.recs)-1]
	b.camps.setFresh(c.ID, r)
	if c.Status != campaign.StatusActive {
		return
	}
	cc := b.comp.campaign(c, &b.kt)
	if len(b.cinfo)+len(cc) > maxConjID {
		panic("BUG: targeting: more than 2^31 conjunctions")
	}
	r.first, r.n = uint32(len(b.cinfo)), uint32(len(cc))
	for _, cj := range cc {
		id := uint32(len(b.cinfo))
		b.cinfo = append(b.cinfo, conjInfo{c: c, need: cj.need, first: r.first, k: cj.k, multi: len(cc) > 1})
		b.maxK = max(b.maxK, cj.k)
		for _, p := range b.comp.posts[cj.lo:cj.hi] {
			b.tuples = append(b.tuples, tuple{key: p.key, e: p.entry(id)})
		}
	}
}

// finish lays every posting list out in one slab: a counting sort of the
// tuples by key (conjunction ids arrive ascending, so each key's run is
// already sorted), then a stable counting sort of each run by size.
func (b *builder) finish() *Index {
	nk := b.kt.n
	off := make([]uint32, nk+1)
	for _, t := range b.tuples {
		off[t.key+1]++
	}
	for i := 1; i < len(off); i++ {
		off[i] += off[i-1]
	}
	slab := make([]entry, len(b.tuples))
	pos := make([]uint32, nk)
	copy(pos, off[:nk])
	for _, t := range b.tuples {
		slab[pos[t.key]] = t.e
		pos[t.key]++
	}
	b.tuples, pos = nil, nil

	lists := newPvec[[]plist](int(nk))
	single := make([]plist, nk)
	var scratch []entry
	var cnt [campaign.NumAttrs + 2]int
	for key := range nk {
		run := slab[off[key]:off[key+1]:off[key+1]]
		if len(run) == 0 {
			continue
		}
		k0 := b.cinfo[run[0].id>>1].k
		mixed := false
		for _, e := range run {
			if b.cinfo[e.id>>1].k != k0 {
				mixed = true
				break
			}
		}
		if !mixed {
			single[key] = plist{k: k0, ents: run}
			*lists.get(key) = single[key : key+1 : key+1]
			continue
		}
		cnt = [len(cnt)]int{}
		for _, e := range run {
			cnt[b.cinfo[e.id>>1].k+1]++
		}
		var pls []plist
		for k := 0; k+1 < len(cnt); k++ {
			if n := cnt[k+1]; n > 0 {
				pls = append(pls, plist{k: uint8(k), ents: run[cnt[k] : cnt[k]+n : cnt[k]+n]})
			}
			cnt[k+1] += cnt[k]
		}
		scratch = append(scratch[:0], run...)
		for _, e := range scratch {
			k := b.cinfo[e.id>>1].k
			run[cnt[k]] = e
			cnt[k]++
		}
		*lists.get(key) = pls
	}

	conjs := newPvec[conjInfo](len(b.cinfo))
	for i := range b.cinfo {
		*conjs.get(uint32(i)) = b.cinfo[i]
	}
	ix := &Index{
		keys:   b.kt.dict.m,
		nkeys:  nk,
		lists:  lists,
		conjs:  conjs,
		nconj:  uint32(len(b.cinfo)),
		live:   uint32(len(b.cinfo)),
		camps:  b.camps,
		zones:  b.kt.zones,
		zoneOf: b.kt.zoneOf,
		maxK:   b.maxK,
	}
	return ix
}

// Len returns the number of campaigns in the snapshot, whatever their status.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.camps.n
}

// Get returns the campaign with the given id, or nil.
func (ix *Index) Get(id string) *campaign.Campaign {
	if ix == nil {
		return nil
	}
	if r, ok := ix.camps.get(id); ok {
		return r.c
	}
	return nil
}

// All calls yield for every campaign in the snapshot, in no particular
// order, until yield returns false. It fits range-over-func:
// for c := range ix.All { ... }.
func (ix *Index) All(yield func(*campaign.Campaign) bool) {
	if ix == nil {
		return
	}
	ix.camps.all(func(_ string, r *crec) bool { return yield(r.c) })
}

// Stats describes the size of an index, for metrics and logs.
type Stats struct {
	Campaigns    int // stored campaigns, whatever their status
	Conjunctions int // indexed conjunctions (of active campaigns)
	Dead         int // conjunction ids freed by updates, reclaimed by the next compaction
	Keys         int // interned attribute-value keys
	Zones        int // time zones used by hour/weekday predicates
	Updates      int // incremental updates since the last full build
}

// Stats returns the index's size figures.
func (ix *Index) Stats() Stats {
	if ix == nil {
		return Stats{}
	}
	return Stats{
		Campaigns: ix.camps.n, Conjunctions: int(ix.live), Dead: int(ix.dead),
		Keys: int(ix.nkeys), Zones: len(ix.zones), Updates: ix.updates,
	}
}

// plists returns the posting lists of a key, or nil.
func (ix *Index) plists(b []byte) []plist {
	id, ok := ix.keys.getBytes(b)
	if !ok || !ix.lists.has(id) {
		return nil
	}
	return *ix.lists.get(id)
}

// Live holds the current snapshot for readers that never lock. The zero
// value is ready to use and holds an empty index. Store is typically
// called by one goroutine (the feed); Load from any number.
type Live struct {
	_ noCopy
	p atomic.Pointer[Index]
}

// Load returns the current snapshot, never nil.
func (l *Live) Load() *Index {
	if ix := l.p.Load(); ix != nil {
		return ix
	}
	return empty
}

// Store makes ix the current snapshot. A nil ix stores an empty index.
func (l *Live) Store(ix *Index) {
	if ix == nil {
		ix = empty
	}
	l.p.Store(ix)
}

// noCopy makes go vet's copylocks check flag copies of the struct that
// embeds it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
