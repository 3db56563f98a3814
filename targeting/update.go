package targeting

import (
	"cmp"
	"slices"
	"sync/atomic"

	"github.com/adserver/adserver/campaign"
)

// Incremental updates are copy-on-write, per posting list. Update never
// modifies ix; the new index shares with it every posting list, chunk of
// the conjunction and key arrays, and shard of the id and key maps that the
// batch does not touch. A changed campaign's old conjunctions are removed
// from the lists of their keys and its new ones get fresh ids: a spare id
// left by Build at the end of the run of conjunctions of the same size
// and attributes, so that they sit among the ones most like them, or once
// the run has none left, the next id at the end of the id space. The cost
// of a batch is the length of the posting lists it touches (a bitmap's
// words for a dense one) plus a few small copies (a chunk of 256 array
// elements, a map shard of about len/256 entries, the chunk directories),
// not the size of the catalog.
//
// Deleted ids are not reused, and conjunctions added at the end of the id
// space sit outside Build's clusters, where the walk skips less well. So
// once the dead ids outnumber the live ones or the ones added at the end
// exceed an eighth of them (and compactMin in both cases), the index is
// compacted: rebuilt from scratch, renumbering everything and dropping
// unused keys. That happens at most once per live/8 changed conjunctions,
// and off the update path: see compact.go. The one full build an Update
// still does itself is for a batch that is large next to the index (see
// rebuildMin), where a build costs a few times the batch's incremental
// edit anyway, the bootstrap of an empty index included.
var compactMin = 4096

// rebuildMin is the least batch (in changed campaigns) that Update applies
// by a full build, when the batch is also at least a quarter of the
// catalog.
var rebuildMin = 1024

// needsCompaction reports whether ix should be rebuilt from scratch.
func (ix *Index) needsCompaction() bool {
	live := int(ix.live)
	return int(ix.dead) > max(live, compactMin) || int(ix.nconj-ix.clustered) > max(live/8, compactMin)
}

// inlineWork counts the conjunctions indexed by Build and those removed
// or indexed by incremental edits, on the callers' goroutines: everything
// but the builds and replays of background compactions.
var inlineWork atomic.Int64

// updateWorkHook, when set (by tests), is called at the end of every
// Update with the number of changed campaign ids in the batch and the
// growth of inlineWork during the call: the work the call did itself, by
// edits, replays or a full build.
var updateWorkHook func(changes, work int)

// Update returns a new index: ix with the campaigns of upserts added or
// replaced and the campaigns with the ids in deletes removed. Deletes apply
// after upserts (an id in both ends deleted); a later upsert of an id
// replaces an earlier one. Unknown ids in deletes are ignored. Upserted
// campaigns must have passed Validate and must not be modified afterwards.
// Update may run concurrently with queries on ix and on other snapshots.
//
// Its cost is that of the batch, not of the catalog: compactions run in
// the background and their result is picked up by a later Update (see
// compact.go). An empty batch returns ix, or, if a background compaction
// of ix's lineage has finished, the compacted index with the same
// campaigns; a caller that applies no changes for a while can call
// Update(nil, nil) now and then to pick it up.
func (ix *Index) Update(upserts []*campaign.Campaign, deletes []string) *Index {
	if ix == nil {
		ix = empty
	}
	ch := finalStates(upserts, deletes)
	w0 := inlineWork.Load()
	nx := ix.update(ch)
	if h := updateWorkHook; h != nil {
		h(len(ch), int(inlineWork.Load()-w0))
	}
	return nx
}

// finalStates returns the final state of each id named by a batch, in
// first-seen order.
func finalStates(upserts []*campaign.Campaign, deletes []string) []change {
	if len(upserts) == 0 && len(deletes) == 0 {
		return nil
	}
	pos := make(map[string]int, len(upserts)+len(deletes))
	ch := make([]change, 0, len(upserts)+len(deletes))
	note := func(id string, c *campaign.Campaign) {
		if i, seen := pos[id]; seen {
			ch[i].c = c
			return
		}
		pos[id] = len(ch)
		ch = append(ch, change{id: id, c: c})
	}
	for _, c := range upserts {
		note(c.ID, c)
	}
	for _, id := range deletes {
		note(id, nil)
	}
	return ch
}

func (ix *Index) update(ch []change) *Index {
	comp := ix.comp
	if len(ch) == 0 {
		if comp != nil && comp.finished() {
			if cx, _ := comp.catchUp(ix.log, replayMin); cx != nil {
				return cx
			}
		}
		return ix
	}
	added := 0
	for _, x := range ch {
		if x.c != nil {
			added += max(len(x.c.Targeting.Any), 1)
		}
	}
	if len(ch) >= max(rebuildMin, ix.Len()/4) || uint64(ix.nconj)+uint64(added) > maxConjID {
		if comp != nil {
			comp.abandoned.Store(true)
		}
		nx := ix.rebuild(ch, true)
		nx.compactions = ix.compactions + 1
		return nx
	}
	if comp == nil {
		nx := ix.edit(ch, true)
		if nx.needsCompaction() {
			startCompaction(nx)
		}
		return nx
	}

	// A compaction is under way: log the batch, and if the compaction is
	// finished, catch it up by a bounded replay; the batch applies to the
	// compacted index if that reaches it, to ix otherwise.
	seq, total := ix.log.seqTotal()
	b := &batch{prev: ix.log, seq: seq + 1, total: total + len(ch), ch: ch}
	if comp.finished() {
		cx, ok := comp.catchUp(b, max(2*len(ch), replayMin))
		if cx != nil {
			return cx
		}
		if !ok {
			comp = nil // another branch's: of no use here
		}
	}
	nx := ix.edit(ch, true)
	if comp == nil {
		if nx.needsCompaction() {
			startCompaction(nx)
		}
		return nx
	}
	nx.comp, nx.log = comp, b
	comp.tip.Store(b)
	return nx
}

// edit applies a batch incrementally (see editor); inline says whether
// its work counts in inlineWork.
func (ix *Index) edit(ch []change, inline bool) *Index {
	e := newEditor(ix)
	for _, x := range ch {
		e.remove(x.id)
		if x.c != nil {
			e.add(x.c)
		}
	}
	if inline {
		inlineWork.Add(int64(e.work))
	}
	return e.finish()
}

// rebuild builds a fresh index from ix's campaigns with the batch applied;
// inline says whether its work counts in inlineWork.
func (ix *Index) rebuild(ch []change, inline bool) *Index {
	changed := make(map[string]bool, len(ch))
	for _, x := range ch {
		changed[x.id] = true
	}
	cs := make([]*campaign.Campaign, 0, ix.Len()+len(ch))
	ix.All(func(c *campaign.Campaign) bool {
		if !changed[c.ID] {
			cs = append(cs, c)
		}
		return true
	})
	for _, x := range ch {
		if x.c != nil {
			cs = append(cs, x.c)
		}
	}
	// Number the campaigns in id order, not in the maps' random order,
	// so that the same catalog always gets the same layout.
	slices.SortFunc(cs, func(x, y *campaign.Campaign) int { return cmp.Compare(x.ID, y.ID) })
	if inline {
		return Build(cs)
	}
	return build(cs)
}

// editor derives a new index from a published one.
type editor struct {
	old     *Index
	kt      keyTable
	camps   smapEdit[*crec]
	conjs   pvecEdit[conjInfo]
	lists   pvecEdit[[]plist]
	nconj   uint32
	live    uint32
	dead    uint32
	maxK    uint8
	comp    compiler
	touched map[uint32]*keyDelta
	// runNext is old.runNext until the first spare id is taken.
	runNext  []uint32
	runOwned bool
	// work counts the conjunctions removed and indexed.
	work int
}

// keyDelta is what a batch does to one key's posting lists.
type keyDelta struct {
	removed []kid   // entries to drop
	added   []kentr // entries to append, ids ascending per size
}

type kid struct {
	k  uint8
	id uint32
}

type kentr struct {
	k uint8
	p uint32 // posting
}

func newEditor(ix *Index) *editor {
	return &editor{
		old: ix,
		kt: keyTable{
			dict:   smapEdit[uint32]{m: ix.keys},
			n:      ix.nkeys,
			zones:  ix.zones,
			zoneOf: ix.zoneOf,
		},
		camps:   smapEdit[*crec]{m: ix.camps},
		conjs:   pvecEdit[conjInfo]{v: ix.conjs},
		lists:   pvecEdit[[]plist]{v: ix.lists},
		nconj:   ix.nconj,
		live:    ix.live,
		dead:    ix.dead,
		maxK:    ix.maxK,
		touched: map[uint32]*keyDelta{},
		runNext: ix.runNext,
	}
}

func (e *editor) delta(key uint32) *keyDelta {
	d := e.touched[key]
	if d == nil {
		d = new(keyDelta)
		e.touched[key] = d
	}
	return d
}

// remove takes the campaign id out: its record, its conjunctions, and
// their entries. Compiling the stored campaign again yields the same keys
// in the same order, all already interned.
func (e *editor) remove(id string) {
	r, ok := e.camps.m.get(id)
	if !ok {
		return
	}
	e.camps.del(id)
	if len(r.ids) == 0 {
		return
	}
	e.kt.create = false
	cc := e.comp.campaign(r.c, &e.kt)
	if len(cc) != len(r.ids) {
		panic("BUG: targeting: campaign " + id + " compiles differently than when it was indexed")
	}
	for j, cj := range cc {
		cid := r.ids[j]
		for _, p := range e.comp.posts[cj.lo:cj.hi] {
			d := e.delta(p.key)
			d.removed = append(d.removed, kid{k: cj.k, id: cid})
		}
		e.conjs.set(cid, conjInfo{})
	}
	e.live -= uint32(len(r.ids))
	e.dead += uint32(len(r.ids))
	e.work += len(r.ids)
}

// add indexes c under fresh conjunction ids.
func (e *editor) add(c *campaign.Campaign) {
	r := &crec{c: c}
	e.camps.set(c.ID, r)
	if c.Status != campaign.StatusActive {
		return
	}
	e.kt.create = true
	cc := e.comp.campaign(c, &e.kt)
	r.ids = make([]uint32, len(cc))
	for j, cj := range cc {
		cid := e.newID(cj)
		r.ids[j] = cid
		ci := newConjInfo(c, cj, len(cc))
		ci.first = r.ids[0]
		e.conjs.set(cid, ci)
		e.maxK = max(e.maxK, cj.k)
		for _, p := range e.comp.posts[cj.lo:cj.hi] {
			d := e.delta(p.key)
			d.added = append(d.added, kentr{k: cj.k, p: p.posting(cid)})
		}
	}
	e.live += uint32(len(r.ids))
	e.work += len(r.ids)
}

// newID picks the id of a new conjunction: a spare id of its run if
// one is left, so that it sits among the conjunctions most like it,
// otherwise the next id at the end.
func (e *editor) newID(cj cconj) uint32 {
	if run, ok := e.old.runOf[cj.sk.run()]; ok && e.runNext[run] < e.old.runEnd[run] {
		if !e.runOwned {
			e.runNext, e.runOwned = slices.Clone(e.runNext), true
		}
		e.runNext[run]++
		return e.runNext[run] - 1
	}
	e.nconj++
	return e.nconj - 1
}

func (e *editor) finish() *Index {
	for key, d := range e.touched {
		var old []plist
		if e.lists.v.has(key) {
			old = *e.lists.v.get(key)
		}
		e.lists.set(key, mergeLists(old, d))
	}
	ix := &Index{
		keys:      e.kt.dict.m,
		nkeys:     e.kt.n,
		lists:     e.lists.v,
		conjs:     e.conjs.v,
		nconj:     e.nconj,
		clustered: e.old.clustered,
		runOf:     e.old.runOf,
		runNext:   e.runNext,
		runEnd:    e.old.runEnd,
		live:      e.live,
		dead:      e.dead,
		camps:     e.camps.m,
		zones:     e.kt.zones,
		zoneOf:    e.kt.zoneOf,
		maxK:      e.maxK,
		updates:   e.old.updates + 1,

		compactions: e.old.compactions,
	}
	// Queries index lists and conjs without bounds checks of their own:
	// make sure every key id and conjunction id has its chunk.
	if ix.nkeys > 0 && !ix.lists.has(ix.nkeys-1) {
		e.lists.set(ix.nkeys-1, nil)
		ix.lists = e.lists.v
	}
	if ix.nconj > 0 && !ix.conjs.has(ix.nconj-1) {
		e.conjs.set(ix.nconj-1, conjInfo{})
		ix.conjs = e.conjs.v
	}
	return ix
}

// mergeLists applies d to one key's lists: drops the removed entries,
// appends the added ones, drops lists left empty. Lists of sizes d does
// not touch are shared with old.
func mergeLists(old []plist, d *keyDelta) []plist {
	slices.SortFunc(d.removed, func(x, y kid) int {
		return cmp.Or(cmp.Compare(x.k, y.k), cmp.Compare(x.id, y.id))
	})
	slices.SortFunc(d.added, func(x, y kentr) int {
		return cmp.Or(cmp.Compare(x.k, y.k), cmp.Compare(x.p, y.p))
	})
	out := make([]plist, 0, len(old)+1)
	rm, ad := d.removed, d.added
	oi := 0
	for oi < len(old) || len(rm) > 0 || len(ad) > 0 {
		// The next size to produce: the smallest among the three.
		k := uint8(255)
		if oi < len(old) {
			k = old[oi].k
		}
		if len(rm) > 0 {
			k = min(k, rm[0].k)
		}
		if len(ad) > 0 {
			k = min(k, ad[0].k)
		}
		var cur plist
		if oi < len(old) && old[oi].k == k {
			cur = old[oi]
			oi++
		}
		nr := 0
		for nr < len(rm) && rm[nr].k == k {
			nr++
		}
		na := 0
		for na < len(ad) && ad[na].k == k {
			na++
		}
		if nr == 0 && na == 0 {
			out = append(out, cur)
			continue
		}
		var addIn, addNeg []uint32
		for _, x := range ad[:na] {
			if x.p&1 == 1 {
				addIn = append(addIn, x.p>>1)
			} else {
				addNeg = append(addNeg, x.p>>1)
			}
		}
		np := cur.editIn(rm[:nr], addIn)
		np.k = k
		np.neg = mergeIDs(cur.neg, rm[:nr], addNeg)
		rm, ad = rm[nr:], ad[na:]
		if np.hasIn() || len(np.neg) > 0 {
			out = append(out, np)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// mergeIDs returns ids (ascending) without the conjunctions in rm and
// with those of add, both ascending.
func mergeIDs(ids []uint32, rm []kid, add []uint32) []uint32 {
	if len(ids) == 0 && len(add) == 0 {
		return nil
	}
	out := make([]uint32, 0, len(ids)+len(add))
	for _, id := range ids {
		for len(rm) > 0 && rm[0].id < id {
			rm = rm[1:]
		}
		if len(rm) > 0 && rm[0].id == id {
			continue
		}
		for len(add) > 0 && add[0] < id {
			out = append(out, add[0])
			add = add[1:]
		}
		out = append(out, id)
	}
	return append(out, add...)
}
