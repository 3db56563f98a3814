package targeting

import (
	"cmp"
	"slices"

	"github.com/adserver/adserver/campaign"
)

// Build indexes cs from scratch. A later campaign with the same id as an
// earlier one replaces it. Campaigns must have passed Validate (values
// normalized, time zone resolved) and must not be modified afterwards.
// Only active campaigns are indexed; every campaign is kept for Get and All.
func Build(cs []*campaign.Campaign) *Index {
	ix := build(cs)
	inlineWork.Add(int64(ix.live))
	return ix
}

func build(cs []*campaign.Campaign) *Index {
	last := make(map[string]int, len(cs))
	for i, c := range cs {
		last[c.ID] = i
	}
	// Size the builder's slices up front: they hold millions of elements
	// for a large catalog, and regrowing them is most of the garbage.
	nconj, npost := 0, 0
	for i, c := range cs {
		if last[c.ID] != i || c.Status != campaign.StatusActive {
			continue
		}
		nconj += max(len(c.Targeting.Any), 1)
		npost += max(len(c.Targeting.Any), 1) // Z postings, at most one per conjunction
		for _, cj := range c.Targeting.Any {
			for _, p := range cj.All {
				npost += len(p.In) + len(p.NotIn)
			}
		}
	}
	b := builder{
		kt:     newKeyTable(len(cs) * 8),
		camps:  newSmap[*crec](len(last)),
		recs:   make([]crec, 0, len(last)),
		cinfo:  make([]conjInfo, 0, nconj),
		skeys:  make([]sortKey, 0, nconj),
		tuples: make([]tuple, 0, npost),
		toff:   append(make([]uint32, 0, nconj+1), 0),
		ids:    make([]uint32, 0, nconj),
	}
	for i, c := range cs {
		if last[c.ID] == i {
			b.add(c)
		}
	}
	return b.finish()
}

// builder collects the compiled conjunctions of a fresh index under
// provisional ids (in campaign order), then numbers and lays them out.
type builder struct {
	kt     keyTable
	camps  smap[*crec]
	recs   []crec
	cinfo  []conjInfo // by provisional id
	skeys  []sortKey  // by provisional id
	tuples []tuple    // the postings of provisional id i: tuples[toff[i]:toff[i+1]]
	toff   []uint32
	ids    []uint32 // slab of the campaign records' ids
	comp   compiler
	maxK   uint8
}

// tuple is one posting of a conjunction, without its id.
type tuple struct {
	key uint32
	in  bool
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
	if cap(b.ids)-len(b.ids) < len(cc) {
		b.ids = make([]uint32, 0, max(1024, len(cc)))
	}
	r.ids = b.ids[len(b.ids) : len(b.ids)+len(cc) : len(b.ids)+len(cc)]
	b.ids = b.ids[:len(b.ids)+len(cc)]
	for j, cj := range cc {
		r.ids[j] = uint32(len(b.cinfo))
		b.cinfo = append(b.cinfo, newConjInfo(c, cj, len(cc)))
		b.skeys = append(b.skeys, cj.sk)
		b.maxK = max(b.maxK, cj.k)
		for _, p := range b.comp.posts[cj.lo:cj.hi] {
			b.tuples = append(b.tuples, tuple{key: p.key, in: !p.neg})
		}
		b.toff = append(b.toff, uint32(len(b.tuples)))
	}
}

func (b *builder) finish() *Index {
	ix := new(Index)
	live := len(b.cinfo)
	order, final := b.number(ix)
	slab, off := b.layout(order, final)
	lists := b.lists(slab, off)
	conjs := newPvec[conjInfo](len(b.cinfo))
	for i := range b.cinfo {
		*conjs.get(uint32(i)) = b.cinfo[i]
	}
	ix.keys, ix.nkeys, ix.lists, ix.conjs = b.kt.freeze(), b.kt.n, lists, conjs
	ix.nconj, ix.clustered, ix.live = uint32(len(b.cinfo)), uint32(len(b.cinfo)), uint32(live)
	ix.camps, ix.zones, ix.zoneOf, ix.maxK = b.camps, b.kt.zones, b.kt.zoneOf, b.maxK
	return ix
}

// number gives the conjunctions their final ids in sortKey order, which
// clusters those of the same size, with the same attributes and the same
// common values into runs of ids: the walk of Query then skips whole runs
// the request cannot satisfy. After each run of one size and attribute
// set it leaves spare ids (an eighth, and 2), where updates put new
// conjunctions of that run (see editor.add). It returns order, the
// provisional ids by final id, and final, the final id of each provisional
// one; it renumbers cinfo and the campaign records and records the runs in
// ix.
func (b *builder) number(ix *Index) (order, final []uint32) {
	n := len(b.cinfo)
	type sorted struct {
		sk sortKey
		t  uint32
	}
	ss := make([]sorted, n)
	for t, sk := range b.skeys {
		ss[t] = sorted{sk, uint32(t)}
	}
	b.skeys = nil
	slices.SortFunc(ss, func(x, y sorted) int {
		return cmp.Or(cmp.Compare(x.sk.hi, y.sk.hi), cmp.Compare(x.sk.lo, y.sk.lo), cmp.Compare(x.t, y.t))
	})
	order = make([]uint32, n)
	final = make([]uint32, n)
	ix.runOf = map[uint64]uint32{}
	id := uint32(0)
	for i := 0; i < n; {
		run := ss[i].sk.run()
		j := i
		for ; j < n && ss[j].sk.run() == run; j++ {
			order[j] = ss[j].t
			final[ss[j].t] = id
			id++
		}
		ix.runOf[run] = uint32(len(ix.runNext))
		ix.runNext = append(ix.runNext, id)
		id += uint32(j-i)/8 + 2
		ix.runEnd = append(ix.runEnd, id)
		i = j
	}
	if id > maxConjID {
		panic("BUG: targeting: more than 2^31 conjunctions")
	}
	for i := range b.recs {
		r := &b.recs[i]
		for j, t := range r.ids {
			r.ids[j] = final[t]
		}
	}
	cinfo := make([]conjInfo, id)
	for t, f := range final {
		ci := b.cinfo[t]
		ci.first = b.camps.mustGet(ci.c.ID).ids[0]
		cinfo[f] = ci
	}
	b.cinfo = cinfo
	return order, final
}

// layout returns every posting in one slab, grouped by key (key i's are
// slab[off[i]:off[i+1]]), each key's in ascending id: a counting sort of
// the tuples by key, fed in final id order (order is provisional ids by
// final id, final the final id of each).
func (b *builder) layout(order, final []uint32) (slab, off []uint32) {
	nk := b.kt.n
	off = make([]uint32, nk+1)
	for _, t := range b.tuples {
		off[t.key+1]++
	}
	for i := 1; i < len(off); i++ {
		off[i] += off[i-1]
	}
	slab = make([]uint32, len(b.tuples))
	pos := slices.Clone(off[:nk])
	for _, t := range order {
		for _, tu := range b.tuples[b.toff[t]:b.toff[t+1]] {
			p := final[t] << 1
			if tu.in {
				p |= 1
			}
			slab[pos[tu.key]] = p
			pos[tu.key]++
		}
	}
	b.tuples, b.toff = nil, nil
	return slab, off
}

// span is the postings of one key and size: slab[lo:hi].
type span struct {
	k      uint8
	lo, hi uint32
}

// lists splits each key's postings by conjunction size (a stable counting
// sort in place) and turns each span into a plist: ∉ ids and sparse ∈ ids
// into two shared slabs, dense ∈ ids into bitmaps.
func (b *builder) lists(slab, off []uint32) pvec[[]plist] {
	nk := b.kt.n
	spans := make([]span, 0, nk)
	spanOff := make([]uint32, nk+1) // key i's spans: spans[spanOff[i]:spanOff[i+1]]
	var scratch []uint32
	for key := range nk {
		spans, scratch = b.splitBySize(slab, off[key], off[key+1], spans, scratch)
		spanOff[key+1] = uint32(len(spans))
	}

	nin, nneg := 0, 0
	isDense := make([]bool, len(spans))
	for i, sp := range spans {
		in, first, last := 0, eol, uint32(0)
		for _, p := range slab[sp.lo:sp.hi] {
			if p&1 == 1 {
				first, last = min(first, p>>1), p>>1
				in++
			}
		}
		nneg += int(sp.hi-sp.lo) - in
		if isDense[i] = dense(in, first, last); !isDense[i] {
			nin += in
		}
	}
	ids := make([]uint32, 0, nin)
	neg := make([]uint32, 0, nneg)
	pls := make([]plist, len(spans))
	for i, sp := range spans {
		i0, n0 := len(ids), len(neg)
		scratch = scratch[:0]
		for _, p := range slab[sp.lo:sp.hi] {
			switch {
			case p&1 == 0:
				neg = append(neg, p>>1)
			case isDense[i]:
				scratch = append(scratch, p>>1)
			default:
				ids = append(ids, p>>1)
			}
		}
		pl := &pls[i]
		pl.k = sp.k
		if isDense[i] {
			pl.setIn(scratch)
		} else if len(ids) > i0 {
			pl.ids = ids[i0:len(ids):len(ids)]
		}
		if len(neg) > n0 {
			pl.neg = neg[n0:len(neg):len(neg)]
		}
	}
	lists := newPvec[[]plist](int(nk))
	for key := range nk {
		if lo, hi := spanOff[key], spanOff[key+1]; hi > lo {
			*lists.get(key) = pls[lo:hi:hi]
		}
	}
	return lists
}

// splitBySize reorders slab[lo:hi], one key's postings, by conjunction
// size, keeping id order within a size, and appends a span per size.
func (b *builder) splitBySize(slab []uint32, lo, hi uint32, spans []span, scratch []uint32) ([]span, []uint32) {
	run := slab[lo:hi]
	var cnt [campaign.NumAttrs + 2]uint32
	for _, p := range run {
		cnt[b.cinfo[p>>1].k+1]++
	}
	first := len(spans)
	for k := 0; k+1 < len(cnt); k++ {
		if c := cnt[k+1]; c > 0 {
			spans = append(spans, span{k: uint8(k), lo: lo + cnt[k], hi: lo + cnt[k] + c})
		}
		cnt[k+1] += cnt[k]
	}
	if len(spans)-first > 1 {
		scratch = append(scratch[:0], run...)
		for _, p := range scratch {
			k := b.cinfo[p>>1].k
			run[cnt[k]] = p
			cnt[k]++
		}
	}
	return spans, scratch
}
