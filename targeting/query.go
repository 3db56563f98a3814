package targeting

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/adserver/adserver/campaign"
)

// cursor walks one posting list.
type cursor struct {
	ents []entry
	pos  int
	cur  uint32 // ents[pos].id, or eol
	k    uint8
}

func (c *cursor) start() {
	c.pos = 0
	c.cur = c.ents[0].id
}

// skipTo moves to the first entry of conjunction id or later: galloping
// from the current position, then binary search.
func (c *cursor) skipTo(id uint32) {
	target := id << 1
	if c.cur >= target {
		return
	}
	ents := c.ents
	lo, step := c.pos+1, 1
	hi := lo
	for hi < len(ents) && ents[hi].id < target {
		lo = hi + 1
		hi += step
		step <<= 1
	}
	hi = min(hi, len(ents))
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if ents[m].id < target {
			lo = m + 1
		} else {
			hi = m
		}
	}
	c.pos = lo
	if lo < len(ents) {
		c.cur = ents[lo].id
	} else {
		c.cur = eol
	}
}

// sortCursors orders cs by current entry. Insertion sort: the slice is
// short and nearly sorted after each step of the walk.
func sortCursors(cs []cursor) {
	for i := 1; i < len(cs); i++ {
		if cs[i].cur >= cs[i-1].cur {
			continue
		}
		x := cs[i]
		j := i
		for j > 0 && cs[j-1].cur > x.cur {
			cs[j] = cs[j-1]
			j--
		}
		cs[j] = x
	}
}

// Query appends to dst the campaigns of ix that match a at now: live at
// now (active, inside their flight) and satisfying at least one of their
// conjunctions, each campaign once, in no particular order. With a reused
// a and dst it does not allocate.
//
// It runs the Conjunction algorithm of Whang et al., "Indexing Boolean
// Expressions" (VLDB 2009): for each conjunction size K from the largest
// down to 0, it opens the size-K posting lists of the request's keys (the
// Z list too for K = 0) and walks them in step, sorted by current entry. A
// conjunction can only hold if at least max(K,1) lists reach it, so the
// lists ahead of the K-th smallest skip to its id; when the first K agree,
// the entries at that id decide: any ∉ entry rejects, otherwise the
// conjunction holds when the union of the entries' IN slots covers all of
// them (an extension of the paper's count, exact for multi-valued
// attributes and for several predicates on one attribute).
func (ix *Index) Query(a *Attrs, now time.Time, dst []*campaign.Campaign) []*campaign.Campaign {
	if ix == nil || ix.live == 0 {
		return dst
	}
	buckets := ix.cursors(a, now)
	hits := a.hits[:0]
	for k := len(buckets) - 2; k >= 0; k-- {
		hits = ix.walk(a.curs[buckets[k]:buckets[k+1]], k, hits)
	}
	a.hits = hits

	multi := a.multi[:0]
	for _, id := range hits {
		ci := ix.conjs.get(id)
		switch {
		case !ci.c.Live(now):
		case ci.multi:
			multi = append(multi, ci.first)
		default:
			dst = append(dst, ci.c)
		}
	}
	if len(multi) > 0 {
		slices.Sort(multi)
		for i, first := range multi {
			if i == 0 || first != multi[i-1] {
				dst = append(dst, ix.conjs.get(first).c)
			}
		}
	}
	a.multi = multi
	return dst
}

// walk runs the Conjunction algorithm over the size-k lists ls and
// appends the ids of the conjunctions that hold.
func (ix *Index) walk(ls []cursor, k int, hits []uint32) []uint32 {
	kk := max(k, 1)
	if len(ls) < kk {
		return hits
	}
	for i := range ls {
		ls[i].start()
	}
	sortCursors(ls)
	for ls[kk-1].cur != eol {
		id := ls[kk-1].cur >> 1
		if ls[0].cur>>1 != id {
			// Fewer than kk lists can reach any id below ls[kk-1]'s.
			for i := range kk - 1 {
				ls[i].skipTo(id)
			}
			sortCursors(ls)
			continue
		}
		var mask uint32
		neg := false
		j := 0
		for ; j < len(ls) && ls[j].cur>>1 == id; j++ {
			e := ls[j].ents[ls[j].pos]
			if e.id&1 == 0 {
				neg = true
			}
			mask |= e.mask
		}
		if !neg && mask == ix.conjs.get(id).need {
			hits = append(hits, id)
		}
		for i := range j {
			ls[i].skipTo(id + 1)
		}
		sortCursors(ls)
	}
	return hits
}

// cursors resolves a against ix (reusing what a cached), lays out one
// cursor per posting list of the request's keys in a.curs grouped by size,
// and returns the group bounds: sizes k's cursors are
// a.curs[b[k]:b[k+1]].
func (ix *Index) cursors(a *Attrs, now time.Time) []int {
	a.resolve(ix, now)
	var cnt [campaign.NumAttrs + 2]int
	count := func(pls []plist) {
		for _, pl := range pls {
			cnt[pl.k+1]++
		}
	}
	z := *ix.lists.get(0)
	count(z)
	for i := range a.res {
		for _, pls := range a.res[i] {
			count(pls)
		}
	}
	for _, pls := range a.tres {
		count(pls)
	}
	top := int(ix.maxK) + 2
	for k := 1; k < top; k++ {
		cnt[k] += cnt[k-1]
	}
	n := cnt[top-1]
	if cap(a.curs) < n {
		a.curs = make([]cursor, n, n+n/2)
	}
	a.curs = a.curs[:n]
	pos := cnt
	put := func(pls []plist) {
		for _, pl := range pls {
			a.curs[pos[pl.k]] = cursor{ents: pl.ents, k: pl.k}
			pos[pl.k]++
		}
	}
	put(z)
	for i := range a.res {
		for _, pls := range a.res[i] {
			put(pls)
		}
	}
	for _, pls := range a.tres {
		put(pls)
	}
	bs := a.bounds[:top]
	copy(bs, cnt[:top])
	return bs
}

// resolve looks up the posting lists of a's values in ix, redoing only
// what changed since a was last resolved, and those of the hour and
// weekday at now in every zone of ix, cached while they hold.
func (a *Attrs) resolve(ix *Index, now time.Time) {
	if a.rix != ix {
		a.rix = ix
		a.dirty = 1<<campaign.NumAttrs - 1
	}
	for a.dirty != 0 {
		attr := campaign.AttrID(bits.TrailingZeros32(a.dirty))
		a.dirty &^= 1 << attr
		r := a.res[attr][:0]
		for _, v := range a.vals[attr] {
			a.kb = appendKey(a.kb[:0], attr, 0, v)
			if pls := ix.plists(a.kb); pls != nil {
				r = append(r, pls)
			}
		}
		a.res[attr] = r
	}
	u := now.Unix()
	if a.tix == ix && a.tfrom <= u && u < a.tto {
		return
	}
	a.tix = ix
	a.tfrom, a.tto = math.MinInt64, math.MaxInt64
	a.tres = a.tres[:0]
	for zi, z := range ix.zones {
		lt := now.In(z.loc)
		a.kb = appendKey(a.kb[:0], campaign.IDHour, uint16(zi), campaign.Hours[lt.Hour()])
		if pls := ix.plists(a.kb); pls != nil {
			a.tres = append(a.tres, pls)
		}
		a.kb = appendKey(a.kb[:0], campaign.IDWeekday, uint16(zi), campaign.Weekdays[lt.Weekday()])
		if pls := ix.plists(a.kb); pls != nil {
			a.tres = append(a.tres, pls)
		}
		// The local hour (and so the weekday) holds from the start of
		// the hour to the next one, within the zone's current offset.
		_, off := lt.Zone()
		s := (u + int64(off)) % 3600
		if s < 0 {
			s += 3600
		}
		from, to := u-s, u-s+3600
		if zs, ze := lt.ZoneBounds(); !zs.IsZero() || !ze.IsZero() {
			if !zs.IsZero() {
				from = max(from, zs.Unix())
			}
			if !ze.IsZero() {
				to = min(to, ze.Unix())
			}
		}
		a.tfrom, a.tto = max(a.tfrom, from), min(a.tto, to)
	}
}
