package targeting

import (
	"cmp"
	"math/bits"
	"slices"
	"time"

	"github.com/adserver/adserver/campaign"
)

// entry is one posting: conjunction id<<1 | 1 for an ∈ entry, | 0 for an
// ∉ entry, so that sorting by id puts a conjunction's ∉ entries first, as
// in the paper. mask holds the IN-predicate slots of the conjunction that
// the key satisfies (zero for ∉ entries and for the Z entry).
type entry struct {
	id   uint32
	mask uint32
}

// eol is the current id of an exhausted cursor; it sorts after every entry.
const eol = ^uint32(0)

// maxConjID bounds conjunction ids so that id<<1|1 stays below eol.
const maxConjID = 1<<31 - 2

// plist is the posting list of one key in the partition of conjunctions
// of size k, sorted by entry id.
type plist struct {
	k    uint8
	ents []entry
}

// conjInfo describes one indexed conjunction. A zero conjInfo is a
// deleted conjunction; no posting list refers to it any more.
type conjInfo struct {
	c    *campaign.Campaign
	need uint32 // every IN slot: the conjunction holds when mask == need
	// first is the id of c's first indexed conjunction; it identifies the
	// campaign when deduplicating matches of campaigns with several.
	first uint32
	k     uint8 // size: distinct attributes among the IN predicates
	multi bool  // c has more than one indexed conjunction
}

// crec is what the index keeps per campaign: the campaign and the range
// [first, first+n) of its indexed conjunction ids.
type crec struct {
	c        *campaign.Campaign
	first, n uint32
}

// zone is a time zone named by some hour or weekday predicate.
type zone struct {
	name string
	loc  *time.Location
}

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
	dict   smapEdit[uint32]
	n      uint32 // next key id
	zones  []zone
	zoneOf map[string]uint16
	owned  bool // zones and zoneOf may be written in place
	create bool // unknown keys are added; otherwise they are a BUG
}

func newKeyTable(hint int) keyTable {
	kt := keyTable{
		dict:   smapEdit[uint32]{m: newSmap[uint32](hint), arrOwned: true},
		zoneOf: map[string]uint16{},
		owned:  true,
		create: true,
	}
	for i := range kt.dict.owned {
		kt.dict.owned[i] = true
	}
	kt.dict.set(zKey, 0)
	kt.n = 1
	return kt
}

func (kt *keyTable) id(b []byte) uint32 {
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
	key  uint32
	mask uint32
	neg  bool
}

// cconj is a compiled conjunction: posts[lo:hi] of its compiler.
type cconj struct {
	lo, hi int
	k      uint8
	need   uint32
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
		cp.conj(c, nil, kt)
	}
	for i := range c.Targeting.Any {
		cp.conj(c, c.Targeting.Any[i].All, kt)
	}
	return cp.conjs
}

func (cp *compiler) conj(c *campaign.Campaign, preds []campaign.Predicate, kt *keyTable) {
	lo := len(cp.posts)
	var (
		slot  uint
		attrs uint32
		need  uint32
		z     uint16
		zSet  bool
	)
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
			if slot >= 32 {
				panic("BUG: targeting: conjunction of campaign " + c.ID + " has more than 32 IN predicates (was it validated?)")
			}
			bit := uint32(1) << slot
			slot++
			need |= bit
			attrs |= 1 << a
			for _, v := range p.In {
				cp.kb = appendKey(cp.kb[:0], a, z, v)
				cp.posts = append(cp.posts, post{key: kt.id(cp.kb), mask: bit})
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
	// One post per key: masks of a key in several IN predicates merge; a
	// key that is also in a NOT IN predicate keeps only the ∉ entry.
	ps := cp.posts[lo:]
	slices.SortFunc(ps, func(x, y post) int { return cmp.Compare(x.key, y.key) })
	w := 0
	for _, p := range ps {
		if w > 0 && ps[w-1].key == p.key {
			ps[w-1].mask |= p.mask
			ps[w-1].neg = ps[w-1].neg || p.neg
			continue
		}
		ps[w] = p
		w++
	}
	for i := range ps[:w] {
		if ps[i].neg {
			ps[i].mask = 0
		}
	}
	cp.posts = cp.posts[:lo+w]
	cp.conjs = append(cp.conjs, cconj{lo: lo, hi: lo + w, k: uint8(k), need: need})
}

func (p post) entry(id uint32) entry {
	if p.neg {
		return entry{id: id << 1}
	}
	return entry{id: id<<1 | 1, mask: p.mask}
}
