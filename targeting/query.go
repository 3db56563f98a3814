package targeting

import (
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Query appends to dst the campaigns of ix that match a at now: live at
// now (active, inside their flight) and satisfying at least one of their
// conjunctions, each campaign once, in no particular order. With a reused
// a and dst it does not allocate. Calling it again with a changed only in
// a few attributes (say size, once per slot) re-resolves only those.
//
// It runs the Conjunction algorithm of Whang et al., "Indexing Boolean
// Expressions" (VLDB 2009): for each conjunction size K from the largest
// down to 0, it opens the size-K posting lists of the request's keys (the
// Z list too for K = 0) and walks them in step by conjunction id, skipping
// every list to the id of the K-th one (see walk). The matches go through
// a last cheap filter: the flight window at now, and for the rare
// conjunctions with several IN predicates on one attribute a direct
// evaluation.
func (ix *Index) Query(a *Attrs, now time.Time, dst []*campaign.Campaign) []*campaign.Campaign {
	if ix == nil || ix.live == 0 {
		return dst
	}
	b := ix.cursors(a, now)
	top := len(b) / 2
	hits := a.hits[:0]
	for k := top - 1; k >= 0; k-- {
		in, out := a.curs[b[k]:b[k+1]], a.curs[b[top+k]:b[top+k+1]]
		hits = ix.walk(in, out, a.cur[b[k]:b[k+1]], a.cur[b[top+k]:b[top+k+1]], k, a.groups[:0], &a.ubits, hits)
	}
	a.hits = hits

	multi := a.multi[:0]
	t := unixNano(now)
	for _, id := range hits {
		ci := ix.conjs.get(id)
		switch {
		case t < ci.start || t >= ci.end: // outside the flight: !c.Live(now)
		case ci.verify && !conjHolds(ci, a, now):
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

// cursors resolves a against ix (reusing what a cached) and lays out one
// cursor per posting list of the request's keys, grouped by size: size
// k's ∈ lists are a.curs[b[k]:b[k+1]], grouped by attribute, and its ∉
// lists a.curs[b[top+k]:b[top+k+1]], where top = len(b)/2.
func (ix *Index) cursors(a *Attrs, now time.Time) []int {
	a.resolve(ix, now)
	top := int(ix.maxK) + 1
	// Bucket k holds size k's ∈ lists, bucket top+k its ∉ lists.
	var cnt [2*campaign.NumAttrs + 3]int
	z := *ix.lists.get(0)
	a.eachPlist(z, func(_ uint8, pl *plist) {
		if pl.hasIn() {
			cnt[pl.k+1]++
		}
		if len(pl.neg) > 0 {
			cnt[top+int(pl.k)+1]++
		}
	})
	for k := 1; k <= 2*top; k++ {
		cnt[k] += cnt[k-1]
	}
	n := cnt[2*top]
	if cap(a.curs) < n {
		a.curs = make([]cursor, n, n+n/2)
		a.cur = make([]uint32, cap(a.curs))
		a.groups = make([]group, 0, cap(a.curs))
	}
	a.curs, a.cur = a.curs[:n], a.cur[:n]
	pos := cnt
	a.eachPlist(z, func(attr uint8, pl *plist) {
		if pl.hasIn() {
			a.curs[pos[pl.k]] = cursor{ids: pl.ids, bits: pl.bits, base: pl.base, attr: attr}
			pos[pl.k]++
		}
		if len(pl.neg) > 0 {
			a.curs[pos[top+int(pl.k)]] = cursor{ids: pl.neg, attr: attr}
			pos[top+int(pl.k)]++
		}
	})
	bs := a.bounds[:2*top+1]
	copy(bs, cnt[:2*top+1])
	return bs
}

// eachPlist calls f for every posting list of the request's keys, the
// lists of one attribute one after the other.
func (a *Attrs) eachPlist(z []plist, f func(attr uint8, pl *plist)) {
	for i := range z {
		f(zAttr, &z[i])
	}
	for attr := range a.res {
		for _, pls := range a.res[attr] {
			for i := range pls {
				f(uint8(attr), &pls[i])
			}
		}
	}
	for t, attr := range [2]uint8{uint8(campaign.IDHour), uint8(campaign.IDWeekday)} {
		for _, pls := range a.tres[t] {
			for i := range pls {
				f(attr, &pls[i])
			}
		}
	}
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
	a.tres[0], a.tres[1] = a.tres[0][:0], a.tres[1][:0]
	for zi, z := range ix.zones {
		lt := now.In(z.loc)
		a.kb = appendKey(a.kb[:0], campaign.IDHour, uint16(zi), campaign.Hours[lt.Hour()])
		if pls := ix.plists(a.kb); pls != nil {
			a.tres[0] = append(a.tres[0], pls)
		}
		a.kb = appendKey(a.kb[:0], campaign.IDWeekday, uint16(zi), campaign.Weekdays[lt.Weekday()])
		if pls := ix.plists(a.kb); pls != nil {
			a.tres[1] = append(a.tres[1], pls)
		}
		// The local hour (and so the weekday) holds from the start of
		// the hour to the next one, within the zone's current offset.
		_, off := lt.Zone()
		s := (u + int64(off)) % 3600
		if s < 0 {
			s += 3600
		}
		from, to := u-s, u-s+3600
		zs, ze := lt.ZoneBounds() // zero when the offset never changes
		if !zs.IsZero() {
			from = max(from, zs.Unix())
		}
		if !ze.IsZero() {
			to = min(to, ze.Unix())
		}
		a.tfrom, a.tto = max(a.tfrom, from), min(a.tto, to)
	}
}

// conjHolds evaluates a conjunction the walk could not decide alone.
func conjHolds(ci *conjInfo, a *Attrs, now time.Time) bool {
	lt := localTime{c: ci.c, now: now}
	return failing(ci.c.Targeting.Any[ci.conj].All, a, &lt) < 0
}
