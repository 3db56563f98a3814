package targeting

import (
	"cmp"
	"math"
	"math/bits"
	"slices"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Keys are the bytes: attribute id, then for hour and weekday the zone
// number (2 bytes), then the value. The Z key, which holds one ∈ entry per
// conjunction without IN predicates, is a lone 0xff and always has id 0.
const zKey = "\xff"

func timeAttr(a campaign.AttrID) bool { return a == campaign.IDHour || a == campaign.IDWeekday }

func appendKey(b []byte, a campaign.AttrID, z uint16, v string) []byte {
	b = append(b, byte(a))
	if timeAttr(a) {
		b = append(b, byte(z>>8), byte(z))
	}
	return append(b, v...)
}

// keyTable interns keys and zones, for a fresh build (everything owned) or
// for an edit of a published index (copy on write).
type keyTable struct {
	fresh  map[string]uint32 // a fresh build's keys (then dict is unused)
	dict   smapEdit[uint32]
	n      uint32 // next key id
	zones  []zone
	zoneOf map[string]uint16
	owned  bool // zones and zoneOf may be written in place
	create bool // unknown keys are added; otherwise they are a BUG
}

// newKeyTable returns the key table of a fresh build: keys go to a plain
// map until freeze.
func newKeyTable(hint int) keyTable {
	return keyTable{
		fresh:  map[string]uint32{zKey: 0},
		n:      1,
		zoneOf: map[string]uint16{},
		owned:  true,
		create: true,
	}
}

// freeze moves a fresh build's keys into the persistent dictionary.
func (kt *keyTable) freeze() smap[uint32] {
	m := newSmap[uint32](len(kt.fresh))
	for k, id := range kt.fresh {
		m.setFresh(k, id)
	}
	kt.fresh = nil
	return m
}

func (kt *keyTable) id(b []byte) uint32 {
	if kt.fresh != nil {
		id, ok := kt.fresh[string(b)]
		if !ok {
			id = kt.n
			kt.n++
			kt.fresh[string(b)] = id
		}
		return id
	}
	if id, ok := kt.dict.m.getBytes(b); ok {
		return id
	}
	if !kt.create {
		panic("BUG: targeting: key of an indexed campaign missing from the dictionary")
	}
	id := kt.n
	kt.n++
	kt.dict.set(string(b), id)
	return id
}

func (kt *keyTable) zone(loc *time.Location) uint16 {
	name := loc.String()
	if z, ok := kt.zoneOf[name]; ok {
		return z
	}
	if !kt.create {
		panic("BUG: targeting: zone of an indexed campaign missing")
	}
	if len(kt.zones) >= 1<<16 {
		panic("BUG: targeting: more than 65536 time zones")
	}
	if !kt.owned {
		kt.zones = slices.Clone(kt.zones)
		m := make(map[string]uint16, len(kt.zoneOf)+1)
		for k, v := range kt.zoneOf {
			m[k] = v
		}
		kt.zoneOf = m
		kt.owned = true
	}
	z := uint16(len(kt.zones))
	kt.zones = append(kt.zones, zone{name: name, loc: loc})
	kt.zoneOf[name] = z
	return z
}

// post is one key of a compiled conjunction.
type post struct {
	key uint32
	neg bool
}

// cconj is a compiled conjunction: posts[lo:hi] of its compiler.
type cconj struct {
	lo, hi int
	idx    uint16 // index in Targeting.Any
	k      uint8
	verify bool
	sk     sortKey
}

// sortKey orders conjunctions in a fresh build (see builder.number): by
// run (size, then the set of attributes of their IN predicates), then by
// the smallest key id of each of the first three such attributes in
// clusterOrder, so that conjunctions sharing common values sit together.
type sortKey struct {
	hi uint64 // run<<43 | first attribute's key id
	lo uint64 // second<<32 | third
}

// run identifies the conjunction's run: size<<16 | attribute set.
func (s sortKey) run() uint64 { return s.hi >> 43 }

func makeSortKey(k uint8, attrs uint32, first *[campaign.NumAttrs]uint32) sortKey {
	var ids [3]uint64
	n := 0
	for _, a := range clusterOrder {
		if attrs&(1<<a) != 0 && n < len(ids) {
			ids[n] = uint64(first[a])
			n++
		}
	}
	return sortKey{
		hi: (uint64(k)<<16|uint64(attrs))<<43 | ids[0]&(1<<43-1),
		lo: ids[1]<<32 | ids[2]&(1<<32-1),
	}
}

// clusterOrder lists the attributes densest first: those that most
// campaigns target with few distinct values.
var clusterOrder = [campaign.NumAttrs]campaign.AttrID{
	campaign.IDCountry, campaign.IDDeviceType, campaign.IDSize, campaign.IDOS,
	campaign.IDLanguage, campaign.IDBrowser, campaign.IDRegion, campaign.IDCity,
	campaign.IDPublisher, campaign.IDPlacement, campaign.IDDomain, campaign.IDBundle,
	campaign.IDHour, campaign.IDWeekday, campaign.IDSegment, campaign.IDKeyword,
}

// compiler turns a campaign's targeting into posting keys. Its buffers are
// reused from one campaign to the next.
type compiler struct {
	kb    []byte
	posts []post
	conjs []cconj
}

// campaign compiles c's indexable conjunctions, in order. Empty targeting
// is one conjunction without predicates. A conjunction with an IN
// predicate on an unknown attribute can never hold and is left out (the
// same way every time, so a campaign's i-th compiled conjunction is stable).
func (cp *compiler) campaign(c *campaign.Campaign, kt *keyTable) []cconj {
	cp.posts, cp.conjs = cp.posts[:0], cp.conjs[:0]
	if len(c.Targeting.Any) == 0 {
		cp.conj(c, 0, nil, kt)
	}
	if len(c.Targeting.Any) > 1<<16 {
		panic("BUG: targeting: campaign " + c.ID + " has more than 65536 conjunctions (was it validated?)")
	}
	for i := range c.Targeting.Any {
		cp.conj(c, uint16(i), c.Targeting.Any[i].All, kt)
	}
	return cp.conjs
}

// conj compiles one conjunction. Its size k is the number of distinct
// attributes of its IN predicates: the walk finds the conjunctions that
// have, for each of these attributes, one of the request's values, and no
// NOT IN value of the request. That is the conjunction itself when each
// attribute has one IN predicate; otherwise it is marked for verification.
func (cp *compiler) conj(c *campaign.Campaign, idx uint16, preds []campaign.Predicate, kt *keyTable) {
	lo := len(cp.posts)
	var (
		attrs  uint32
		verify bool
		z      uint16
		zSet   bool
		first  [campaign.NumAttrs]uint32
	)
	for i := range first {
		first[i] = ^uint32(0)
	}
	for i := range preds {
		p := &preds[i]
		a, known := lookupAttr(p.Attr)
		if !known {
			if len(p.In) > 0 {
				cp.posts = cp.posts[:lo]
				return
			}
			continue
		}
		if timeAttr(a) && !zSet {
			z, zSet = kt.zone(c.Location()), true
		}
		if len(p.In) > 0 {
			verify = verify || attrs&(1<<a) != 0
			attrs |= 1 << a
			for _, v := range p.In {
				cp.kb = appendKey(cp.kb[:0], a, z, v)
				id := kt.id(cp.kb)
				cp.posts = append(cp.posts, post{key: id})
				first[a] = min(first[a], id)
			}
		}
		for _, v := range p.NotIn {
			cp.kb = appendKey(cp.kb[:0], a, z, v)
			cp.posts = append(cp.posts, post{key: kt.id(cp.kb), neg: true})
		}
	}
	k := bits.OnesCount32(attrs)
	if k == 0 {
		cp.posts = append(cp.posts, post{key: 0})
	}
	// One post per key: a key that is also in a NOT IN predicate keeps
	// only the ∉ entry (the conjunction fails whenever the request has it).
	ps := cp.posts[lo:]
	slices.SortFunc(ps, func(x, y post) int { return cmp.Compare(x.key, y.key) })
	w := 0
	for _, p := range ps {
		if w > 0 && ps[w-1].key == p.key {
			ps[w-1].neg = ps[w-1].neg || p.neg
			continue
		}
		ps[w] = p
		w++
	}
	cp.posts = cp.posts[:lo+w]
	cc := cconj{lo: lo, hi: lo + w, idx: idx, k: uint8(k), verify: verify,
		sk: makeSortKey(uint8(k), attrs, &first)}
	cp.conjs = append(cp.conjs, cc)
}

// posting returns p's posting for conjunction id.
func (p post) posting(id uint32) uint32 {
	if p.neg {
		return id << 1
	}
	return id<<1 | 1
}

// unixNano returns t in Unix nanoseconds, saturated at the int64 range,
// so comparisons with times inside the range stay exact.
func unixNano(t time.Time) int64 {
	switch {
	case t.Before(minNano):
		return math.MinInt64
	case t.After(maxNano):
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minNano = time.Unix(0, math.MinInt64)
	maxNano = time.Unix(0, math.MaxInt64)
)

func newConjInfo(c *campaign.Campaign, cj cconj, n int) conjInfo {
	if c.Priority < 0 || c.Priority > 255 {
		panic("BUG: targeting: campaign " + c.ID + " has a priority out of range (was it validated?)")
	}
	return conjInfo{c: c, start: unixNano(c.Start), end: unixNano(c.End), fits: CreativeBits(c),
		conj: cj.idx, prio: uint8(c.Priority), k: cj.k, multi: n > 1, verify: cj.verify}
}
