package targeting

import "math/bits"

// While an index is built or edited, a posting is one uint32: the
// conjunction id<<1, | 1 for an ∈ entry, | 0 for an ∉ entry.

// eol is the current id of an exhausted cursor; it sorts after every id.
const eol = ^uint32(0)

// maxConjID bounds conjunction ids so that postings (id<<1|1) fit in a
// uint32 and stay below eol.
const maxConjID = 1<<31 - 2

// plist is the posting list of one key in the partition of conjunctions
// of size k. Its ∈ entries and its ∉ entries (conjunction ids) are kept
// apart: the walk skips through ∈ entries only, and looks at ∉ ids only
// for candidates. ∈ entries are a sorted slice of ids, or, when they are
// dense (see dense), a bitmap: bit i of bits is id base+i.
type plist struct {
	k    uint8
	base uint32   // of bits, a multiple of 64
	ids  []uint32 // ∈ entries, ascending, when sparse
	bits []uint64 // ∈ entries, when dense
	neg  []uint32 // ∉ entries, ascending
}

// dense reports whether n ids between first and last are better kept as
// a bitmap: it is no larger than the slice of ids (one id or more per 32
// bits), and skipping through it costs a few word operations.
func dense(n int, first, last uint32) bool {
	return n >= 64 && uint64(last-first&^63) < 32*uint64(n)
}

// setIn stores ids (ascending) as pl's ∈ entries, as a bitmap when dense.
func (pl *plist) setIn(ids []uint32) {
	pl.ids, pl.bits, pl.base = nil, nil, 0
	if len(ids) == 0 {
		return
	}
	if !dense(len(ids), ids[0], ids[len(ids)-1]) {
		pl.ids = ids
		return
	}
	pl.base = ids[0] &^ 63
	pl.bits = make([]uint64, (ids[len(ids)-1]-pl.base)/64+1)
	for _, id := range ids {
		off := id - pl.base
		pl.bits[off/64] |= 1 << (off % 64)
	}
}

// inIDs returns pl's ∈ entries as a sorted slice (a copy for a bitmap).
func (pl *plist) inIDs() []uint32 {
	if pl.bits == nil {
		return pl.ids
	}
	var ids []uint32
	for w, word := range pl.bits {
		for word != 0 {
			ids = append(ids, pl.base+uint32(w)*64+uint32(bits.TrailingZeros64(word)))
			word &= word - 1
		}
	}
	return ids
}

// hasIn reports whether pl has ∈ entries.
func (pl *plist) hasIn() bool { return len(pl.ids) > 0 || len(pl.bits) > 0 }

// editIn returns pl's ∈ entries without the ids in rm and with those of
// add (both ascending), in a new plist sharing nothing with pl. A bitmap
// is edited as a bitmap: an update costs its size in words, not a decode.
func (pl *plist) editIn(rm []kid, add []uint32) plist {
	var np plist
	if pl.bits == nil {
		np.setIn(mergeIDs(pl.ids, rm, add))
		return np
	}
	lo, hi := pl.base, pl.base+uint32(len(pl.bits))*64
	if len(add) > 0 {
		lo, hi = min(lo, add[0]&^63), max(hi, add[len(add)-1]&^63+64)
	}
	bm := make([]uint64, (hi-lo)/64)
	copy(bm[(pl.base-lo)/64:], pl.bits)
	for _, r := range rm {
		if o := r.id - lo; r.id >= lo && o/64 < uint32(len(bm)) {
			bm[o/64] &^= 1 << (o % 64)
		}
	}
	for _, id := range add {
		o := id - lo
		bm[o/64] |= 1 << (o % 64)
	}
	for len(bm) > 0 && bm[len(bm)-1] == 0 {
		bm = bm[:len(bm)-1]
	}
	for len(bm) > 0 && bm[0] == 0 {
		bm, lo = bm[1:], lo+64
	}
	n := 0
	for _, w := range bm {
		n += bits.OnesCount64(w)
	}
	if n == 0 {
		return np
	}
	np.bits, np.base = bm, lo
	first := lo + uint32(bits.TrailingZeros64(bm[0]))
	last := lo + uint32(len(bm)-1)*64 + 63 - uint32(bits.LeadingZeros64(bm[len(bm)-1]))
	if !dense(n, first, last) {
		np.setIn(np.inIDs())
	}
	return np
}
