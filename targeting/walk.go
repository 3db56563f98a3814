package targeting

import (
	"math/bits"
	"slices"

	"github.com/adserver/adserver/campaign"
)

// cursor walks one posting list. Its current id lives apart, in the
// walk's cur slice at the same index, so that scanning the current ids of
// a group touches little memory.
type cursor struct {
	ids  []uint32 // conjunction ids, ascending; or
	bits []uint64 // a bitmap of them from base (see plist)
	base uint32
	pos  int   // index of the current id in ids
	attr uint8 // the key's attribute; zAttr for the Z list
}

// first returns the first id, the cursor's start.
func (c *cursor) first() uint32 {
	c.pos = 0
	if c.bits == nil {
		return c.ids[0]
	}
	return c.nextBit(c.base)
}

// nextBit returns the first id of the bitmap at or after target, or eol.
func (c *cursor) nextBit(target uint32) uint32 {
	off := target - c.base
	w := int(off / 64)
	if w >= len(c.bits) {
		return eol
	}
	if word := c.bits[w] >> (off % 64); word != 0 {
		return target + uint32(bits.TrailingZeros64(word))
	}
	for w++; w < len(c.bits); w++ {
		if word := c.bits[w]; word != 0 {
			return c.base + uint32(w)*64 + uint32(bits.TrailingZeros64(word))
		}
	}
	return eol
}

// zAttr stands for the Z list's attribute.
const zAttr = uint8(campaign.NumAttrs)

// skipTo moves to the first id at or after target and returns it, or eol.
// The current id must be below target. Most skips are short: it scans a
// few ids first, then gallops and binary searches.
func (c *cursor) skipTo(target uint32) uint32 {
	if c.bits != nil {
		return c.nextBit(target)
	}
	ids := c.ids
	i := c.pos + 1
	for end := min(i+8, len(ids)); i < end; i++ {
		if ids[i] >= target {
			c.pos = i
			return ids[i]
		}
	}
	lo, step := i, 8
	hi := lo
	for hi < len(ids) && ids[hi] < target {
		lo = hi + 1
		hi += step
		step <<= 1
	}
	hi = min(hi, len(ids))
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ids[m] < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	c.pos = lo
	if lo < len(ids) {
		return ids[lo]
	}
	return eol
}

// group is the union of the lists of one attribute: a request may have
// many values of one attribute (segments, keywords, the hour in every
// zone), but they count once towards a conjunction's size. Its cursors
// are ls[lo:hi]; min is the smallest of their current ids.
type group struct {
	min    uint32
	lo, hi int32
}

// skip advances the cursors of g that are below target to target and
// updates g.min.
func (g *group) skip(ls []cursor, cur []uint32, target uint32) {
	if g.hi-g.lo == 1 {
		c := &ls[g.lo]
		if p := c.pos + 1; p < len(c.ids) && c.ids[p] >= target { // never for a bitmap
			c.pos = p // the next id: the most common skip
			g.min = c.ids[p]
		} else {
			g.min = c.skipTo(target)
		}
		cur[g.lo] = g.min
		return
	}
	m := eol
	cs := cur[g.lo:g.hi]
	for j, x := range cs {
		if x < target {
			x = ls[int(g.lo)+j].skipTo(target)
			cs[j] = x
		}
		m = min(m, x)
	}
	g.min = m
}

// sortGroups restores the order by min after the first m groups
// advanced; the rest is still sorted. There are at most NumAttrs+1 groups.
func sortGroups(gs []group, m int) {
	for i := m - 1; i >= 0; i-- {
		x := gs[i]
		j := i
		for j+1 < len(gs) && gs[j+1].min < x.min {
			gs[j] = gs[j+1]
			j++
		}
		gs[j] = x
	}
}

// walk runs the Conjunction algorithm over the posting lists of the size-k
// partition: the ∈ lists ls, which come grouped by attribute, and the ∉
// lists negs; cur and ncur are their current ids (scratch of the same
// lengths), gs scratch for len(ls) groups. It appends the ids of the
// conjunctions that hold (or, for those marked verify, may hold).
//
// It follows the paper over attribute groups rather than single lists: a
// size-k conjunction needs ∈ entries from k distinct attributes, so with
// the groups sorted by their smallest current id, no conjunction below the
// max(k,1)-th group's id can hold and the groups before it skip there.
// When the first max(k,1) groups reach that id, the conjunction has one of
// the request's values for each of its IN predicates' attributes; it holds
// unless an ∉ list has it. (The paper counts lists, with the ∉ entries in
// them; counting attributes is the same rule when each list has its own
// attribute, and skips much further for requests with many segments or
// keywords, and keeping ∉ entries apart keeps block lists from stopping
// the skips.) A group of three lists or more is first merged into one
// bitmap when that is cheap (see union).
func (ix *Index) walk(ls, negs []cursor, cur, ncur []uint32, k int, gs []group, ub *[]uint64, hits []uint32) []uint32 {
	kk := max(k, 1)
	*ub = (*ub)[:0]
	for i := 0; i < len(ls); {
		g := group{min: eol, lo: int32(i)}
		for i < len(ls) && ls[i].attr == ls[g.lo].attr {
			i++
		}
		g.hi = int32(i)
		if g.hi-g.lo >= 3 {
			union(&g, ls, ub)
		}
		for j := g.lo; j < g.hi; j++ {
			cur[j] = ls[j].first()
			g.min = min(g.min, cur[j])
		}
		gs = append(gs, g)
	}
	if len(gs) < kk {
		return hits
	}
	for i := range negs {
		ncur[i] = negs[i].first()
	}
	sortGroups(gs, len(gs))
	n := len(gs)
	for n >= kk && gs[kk-1].min != eol {
		id := gs[kk-1].min
		if gs[0].min != id {
			m := 0
			for ; m < kk-1 && gs[m].min < id; m++ {
				gs[m].skip(ls, cur, id)
			}
			sortGroups(gs[:n], m)
			if gs[kk-1].min != id {
				continue
			}
			// The groups that skipped landed on id: a candidate.
		}
		if !excluded(negs, ncur, id) {
			hits = append(hits, id)
		}
		j := kk
		for j < n && gs[j].min == id {
			j++
		}
		for g := range j {
			gs[g].skip(ls, cur, id+1)
		}
		sortGroups(gs[:n], j)
		for n > 0 && gs[n-1].min == eol {
			n--
		}
	}
	return hits
}

// excluded reports whether an ∉ list has conjunction id, advancing the
// lists behind it.
func excluded(negs []cursor, ncur []uint32, id uint32) bool {
	for i, x := range ncur {
		if x < id {
			x = negs[i].skipTo(id)
			ncur[i] = x
		}
		if x == id {
			return true
		}
	}
	return false
}

// union replaces the cursors of a group of many lists (a request's
// segments, keywords, or the hour in every zone) by one cursor over a
// bitmap of their union, cut from the scratch *ub, when that bitmap is
// small next to the lists: then each skip of the group costs a few word
// operations instead of a pass over every list.
func union(g *group, ls []cursor, ub *[]uint64) {
	members := ls[g.lo:g.hi]
	lo, hi, n := eol, uint32(0), 0
	for i := range members {
		c := &members[i]
		if c.bits != nil {
			lo = min(lo, c.base)
			hi = max(hi, c.base+uint32(len(c.bits))*64-1)
			n += len(c.bits) * 8 // a guess at its entries, for the cost test
		} else {
			lo = min(lo, c.ids[0])
			hi = max(hi, c.ids[len(c.ids)-1])
			n += len(c.ids)
		}
	}
	base := lo &^ 63
	words := int((hi-base)/64 + 1)
	if words > 4*n {
		return // sparse: skipping through the lists is cheaper
	}
	start := len(*ub)
	*ub = slices.Grow(*ub, words)[:start+words]
	bm := (*ub)[start : start+words : start+words]
	clear(bm)
	for i := range members {
		c := &members[i]
		if c.bits != nil {
			off := (c.base - base) / 64
			for w, word := range c.bits {
				bm[int(off)+w] |= word
			}
			continue
		}
		for _, id := range c.ids {
			o := id - base
			bm[o/64] |= 1 << (o % 64)
		}
	}
	ls[g.lo] = cursor{bits: bm, base: base, attr: members[0].attr}
	g.hi = g.lo + 1
}
