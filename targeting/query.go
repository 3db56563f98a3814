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
// Z list too for K = 0) and selects the conjunctions found in the lists of
// K distinct attributes (of one for K = 0) and in no ∉ list, either by
// walking the lists in step by conjunction id, skipping every list to the
// id of the K-th one (see walk), or, when the lists are dense in their
// span, by counting with bitmaps (see count). The matches go through a
// last cheap filter: the flight window at now, and for the rare
// conjunctions with several IN predicates on one attribute a direct
// evaluation.
func (ix *Index) Query(a *Attrs, now time.Time, dst []*campaign.Campaign) []*campaign.Campaign {
	for _, id := range ix.match(a, now) {
		dst = append(dst, ix.conjs.get(id).c)
	}
	return dst
}

// Match is a campaign that matched a query, with what a ranker needs first
// of it, read from the index: a caller that ranks matches by priority, and
// needs a creative that fits its slot, need not load the campaigns of the
// lower tiers, nor those whose creatives cannot fit.
type Match struct {
	Campaign *campaign.Campaign
	Priority int // Campaign.Priority
	// Creatives is CreativeBits(Campaign).
	Creatives uint64
}

// QueryMatches is [Index.Query] with each campaign's priority and creative
// bits: it appends the same campaigns in the same order.
func (ix *Index) QueryMatches(a *Attrs, now time.Time, dst []Match) []Match {
	for _, id := range ix.match(a, now) {
		ci := ix.conjs.get(id)
		dst = append(dst, Match{Campaign: ci.c, Priority: int(ci.prio), Creatives: ci.fits})
	}
	return dst
}

// CreativeBits is a digest of the formats and sizes of c's creatives: the
// union of their CreativeBit. A slot whose formats' bits (the union of the
// CreativeBit of each size it accepts) are all absent from it has no
// creative of c that fits; the converse holds for the bits that are exact
// (see CreativeBit).
func CreativeBits(c *campaign.Campaign) uint64 {
	var m uint64
	for i := range c.Creatives {
		cr := &c.Creatives[i]
		b, _ := CreativeBit(cr.Format == campaign.FormatVideo, cr.W, cr.H)
		m |= b
	}
	return m
}

// CreativeBit is the bit of a creative (or a slot) format in
// CreativeBits: one bit for video, whatever its size (players scale
// video), and for a banner one by its size: a bit of its own for each of
// the common sizes, one of the others' shared bits for the rest. exact
// reports a banner bit of its own: a campaign whose CreativeBits has it
// has a banner creative of exactly that size.
func CreativeBit(video bool, w, h int) (bit uint64, exact bool) {
	if video {
		return 1 << 63, false
	}
	for i, z := range bannerSizes {
		if z == [2]int{w, h} {
			return 1 << i, true
		}
	}
	x := (uint64(uint32(w))<<32 | uint64(uint32(h))) * 0x9E3779B97F4A7C15
	return 1 << (len(bannerSizes) + int((x>>32)%uint64(63-len(bannerSizes)))), false
}

// bannerSizes are the IAB display sizes, which get bits of their own in
// CreativeBits.
var bannerSizes = [...][2]int{{300, 250}, {728, 90}, {320, 50}, {300, 600}, {160, 600}, {970, 250},
	{970, 90}, {336, 280}, {468, 60}, {320, 100}, {300, 50}, {120, 600}, {250, 250}, {200, 200},
	{180, 150}, {125, 125}, {240, 400}, {300, 1050}, {640, 480}, {480, 320}, {320, 480}, {1024, 768}, {768, 1024}}

// match returns, in a's scratch, one conjunction id per campaign of ix
// that matches a at now (see Query): the campaign's matching conjunction,
// or its first indexed one if it has several.
func (ix *Index) match(a *Attrs, now time.Time) []uint32 {
	if ix == nil || ix.live == 0 {
		return nil
	}
	b := ix.cursors(a, now)
	top := len(b) / 2
	hits := a.hits[:0]
	for k := top - 1; k >= 0; k-- {
		in, out := a.curs[b[k]:b[k+1]], a.curs[b[top+k]:b[top+k+1]]
		if a.strategy == strategyCount || a.strategy == 0 && countCheaper(in, k) {
			hits = count(in, out, k, &a.acc, hits)
		} else {
			hits = ix.walk(in, out, a.cur[b[k]:b[k+1]], a.cur[b[top+k]:b[top+k+1]], k, a.groups[:0], &a.ubits, hits)
		}
	}

	// Filter hits in place: those of single-conjunction campaigns stay in
	// order, those of campaigns with several go to multi, deduplicated by
	// their first id and appended after.
	multi := a.multi[:0]
	t := unixNano(now)
	n := 0
	for _, id := range hits {
		ci := ix.conjs.get(id)
		switch {
		case t < ci.start || t >= ci.end: // outside the flight: !c.Live(now)
		case ci.verify && !conjHolds(ci, a, now):
		case ci.multi:
			multi = append(multi, ci.first)
		default:
			hits[n] = id
			n++
		}
	}
	hits = hits[:n]
	if len(multi) > 0 {
		slices.Sort(multi)
		for i, first := range multi {
			if i == 0 || first != multi[i-1] {
				hits = append(hits, first)
			}
		}
	}
	a.hits, a.multi = hits, multi
	return hits
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
