package targeting

import (
	"math/bits"
	"slices"

	"github.com/adserver/adserver/campaign"
)

// count selects the same conjunctions as walk, in the same (ascending)
// order, by counting instead of skipping: over the id span of the size-k
// ∈ lists it keeps one bitmap per level j = 1..max(k,1), the ids found in
// the lists of at least j of the attribute groups seen so far, and adds
// the groups one by one (a group's lists first merged into one bitmap, so
// that an id counts once per attribute). The top level, less the ∉ ids, is
// the answer. acc is scratch for the bitmaps.
//
// Its cost is the number of entries in the lists plus a few word
// operations per 64 ids of the span and level, whatever the request's
// values have in common; walk's is a few times more per entry it visits,
// but it visits only those it cannot skip. count wins when the lists are
// dense in their span: broad catalogs where a request's values are in the
// lists of many conjunctions of each size (see countCheaper).
func count(ls, negs []cursor, k int, acc *[]uint64, hits []uint32) []uint32 {
	kk := max(k, 1)
	lo, hi, groups := eol, uint32(0), 0
	for i := range ls {
		f, l := ls[i].span()
		lo, hi = min(lo, f), max(hi, l)
		if i == 0 || ls[i].attr != ls[i-1].attr {
			groups++
		}
	}
	if groups < kk {
		return hits
	}
	base := lo &^ 63
	w := int((hi-base)/64 + 1)
	n := (kk + 1) * w
	buf := slices.Grow((*acc)[:0], n)[:n]
	*acc = buf
	clear(buf)
	// lv[(j-1)*w : j*w] is level j; m is the merge bitmap of a group.
	lv, m := buf[:kk*w:kk*w], buf[kk*w:]
	for i := 0; i < len(ls); {
		j := i + 1
		for j < len(ls) && ls[j].attr == ls[i].attr {
			j++
		}
		switch c := &ls[i]; {
		case j-i == 1 && c.bits == nil:
			addIDs(lv, w, kk, base, c.ids)
		case j-i == 1:
			addWords(lv, w, kk, c.bits, int((c.base-base)/64))
		default:
			wlo, whi := merge(m, base, ls[i:j])
			addWords(lv, w, kk, m[wlo:whi], wlo)
			clear(m[wlo:whi])
		}
		i = j
	}
	top := lv[(kk-1)*w:]
	end := base + uint32(w)*64
	for i := range negs {
		ids := negs[i].ids
		p, _ := slices.BinarySearch(ids, base)
		for _, id := range ids[p:] {
			if id >= end {
				break
			}
			o := id - base
			top[o/64] &^= 1 << (o % 64)
		}
	}
	for i, word := range top {
		for word != 0 {
			hits = append(hits, base+uint32(i)*64+uint32(bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return hits
}

// span returns the first and last id of the cursor's list, which must not
// be empty. For a bitmap they are bounds: the first and last bit of its
// words.
func (c *cursor) span() (first, last uint32) {
	if c.bits == nil {
		return c.ids[0], c.ids[len(c.ids)-1]
	}
	return c.base, c.base + uint32(len(c.bits))*64 - 1
}

// addWords adds a group's bitmap src, whose word 0 is word off of the
// levels, to the levels lv (kk of w words each).
func addWords(lv []uint64, w, kk int, src []uint64, off int) {
	switch kk {
	case 1:
		dst := lv[off : off+len(src)]
		for i, x := range src {
			dst[i] |= x
		}
	case 2:
		l1, l2 := lv[off:off+len(src)], lv[w+off:w+off+len(src)]
		for i, x := range src {
			l2[i] |= l1[i] & x
			l1[i] |= x
		}
	case 3:
		l1, l2, l3 := lv[off:off+len(src)], lv[w+off:w+off+len(src)], lv[2*w+off:2*w+off+len(src)]
		for i, x := range src {
			l3[i] |= l2[i] & x
			l2[i] |= l1[i] & x
			l1[i] |= x
		}
	default:
		for i, x := range src {
			if x == 0 {
				continue
			}
			p := off + i
			for j := kk - 1; j > 0; j-- {
				lv[j*w+p] |= lv[(j-1)*w+p] & x
			}
			lv[p] |= x
		}
	}
}

// addIDs adds a group of one sparse list to the levels lv (kk of w words
// each, from base).
func addIDs(lv []uint64, w, kk int, base uint32, ids []uint32) {
	switch kk {
	case 1:
		l1 := lv[:w]
		for _, id := range ids {
			o := id - base
			l1[o/64] |= 1 << (o % 64)
		}
	case 2:
		l1, l2 := lv[:w], lv[w:2*w]
		for _, id := range ids {
			o := id - base
			p, x := o/64, uint64(1)<<(o%64)
			l2[p] |= l1[p] & x
			l1[p] |= x
		}
	case 3:
		l1, l2, l3 := lv[:w], lv[w:2*w], lv[2*w:3*w]
		for _, id := range ids {
			o := id - base
			p, x := o/64, uint64(1)<<(o%64)
			l3[p] |= l2[p] & x
			l2[p] |= l1[p] & x
			l1[p] |= x
		}
	case 4:
		l1, l2, l3, l4 := lv[:w], lv[w:2*w], lv[2*w:3*w], lv[3*w:4*w]
		for _, id := range ids {
			o := id - base
			p, x := o/64, uint64(1)<<(o%64)
			l4[p] |= l3[p] & x
			l3[p] |= l2[p] & x
			l2[p] |= l1[p] & x
			l1[p] |= x
		}
	default:
		for _, id := range ids {
			o := id - base
			p, x := int(o/64), uint64(1)<<(o%64)
			for j := kk - 1; j > 0; j-- {
				lv[j*w+p] |= lv[(j-1)*w+p] & x
			}
			lv[p] |= x
		}
	}
}

// merge ORs the lists of one group into m (zero, words from base) and
// returns the span of words it wrote.
func merge(m []uint64, base uint32, ls []cursor) (wlo, whi int) {
	wlo, whi = len(m), 0
	for i := range ls {
		c := &ls[i]
		if c.bits != nil {
			off := int((c.base - base) / 64)
			dst := m[off : off+len(c.bits)]
			for j, x := range c.bits {
				dst[j] |= x
			}
			wlo, whi = min(wlo, off), max(whi, off+len(c.bits))
			continue
		}
		for _, id := range c.ids {
			o := id - base
			m[o/64] |= 1 << (o % 64)
		}
		wlo = min(wlo, int((c.ids[0]-base)/64))
		whi = max(whi, int((c.ids[len(c.ids)-1]-base)/64)+1)
	}
	return wlo, whi
}

// Query strategies a test can force (see Attrs.strategy).
const (
	strategyWalk  = 1
	strategyCount = 2
)

// countCheaper reports whether count is likely cheaper than walk for the
// size-k ∈ lists ls, which come grouped by attribute.
//
// count costs about a word operation per level for each id of a sparse
// list and each word of a bitmap, and a few per word of the lists' span
// and level. walk costs tens of times more per step, and takes about a
// step per entry of the lists, except those of the max(k,1)-1 largest
// groups, which it mostly skips (for k = 2, the smaller group's entries
// lead and the larger one's catch up); it wins when the lists are sparse
// in a wide span: a large catalog and a selective request.
func countCheaper(ls []cursor, k int) bool {
	kk := max(k, 1)
	if len(ls) == 0 {
		return false
	}
	var sizes [campaign.NumAttrs + 1]int // entries per group
	lo, hi, groups, work := eol, uint32(0), 0, 0
	for i := range ls {
		if i == 0 || ls[i].attr != ls[i-1].attr {
			groups++
		}
		c := &ls[i]
		f, l := c.span()
		lo, hi = min(lo, f), max(hi, l)
		n := len(c.ids)
		if c.bits != nil {
			n = len(c.bits) * bitmapDensity
			work += len(c.bits)
		} else {
			work += len(c.ids)
		}
		sizes[groups-1] += n
	}
	if groups < kk {
		return false // either is free
	}
	// The walk's steps: the entries of all groups but the kk-1 largest.
	gs := sizes[:groups]
	slices.Sort(gs)
	steps := 0
	for _, n := range gs[:groups-(kk-1)] {
		steps += n
	}
	words := int((hi-lo)/64) + 1
	countCost := kk*work + (kk+2)*words
	return countCost <= walkStepCost*steps
}

// bitmapDensity is a guess at the ids per word of a bitmap list, which
// holds at least 2 (see dense).
const bitmapDensity = 8

// walkStepCost is the cost of a step of walk in count's word operations:
// about 40-50 ns against 0.5-1 ns, timing each size of the queries of
// BenchmarkQuery and BenchmarkQuerySeeded both ways (TestStrategyChoice
// pins the choices at the extremes).
const walkStepCost = 40
