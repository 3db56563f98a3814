package targeting

import (
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Index is an immutable snapshot of the campaign catalog with a
// boolean-expression index over the targeting of its active campaigns.
// A nil *Index is a valid empty index. All methods are safe for concurrent
// use; nothing reachable from an Index is ever modified.
type Index struct {
	// keys interns a key's bytes (see appendKey) to its id.
	keys smap[uint32]
	// nkeys is the next key id.
	nkeys uint32
	// lists maps a key id to its posting lists, one per conjunction size,
	// in ascending size. Key ids at or past the allocated range have none.
	lists pvec[[]plist]
	// conjs maps a conjunction id to what it belongs to.
	conjs pvec[conjInfo]
	// nconj is the end of the conjunction id space, the next id given out
	// at the end; ids are never reused before a compaction renumbers them.
	nconj uint32
	// clustered is nconj at the last full build (spare ids included):
	// ids from it on were given out at the end by updates.
	clustered uint32
	// The runs of conjunctions with the same size and attributes laid out
	// by the last full build: run i, of key runOf[sortKey.run()], has
	// spare ids [runNext[i], runEnd[i]) for new conjunctions. runOf and
	// runEnd never change until the next build; runNext is copied on
	// write.
	runOf   map[uint64]uint32
	runNext []uint32
	runEnd  []uint32
	// live counts indexed conjunctions; dead counts deleted ids below nconj.
	live, dead uint32
	// camps maps a campaign id to its record, for every stored campaign
	// whatever its status.
	camps smap[*crec]
	// zones are the time zones named by hour and weekday predicates, in
	// the order of their numbers; append-only until a compaction.
	zones  []zone
	zoneOf map[string]uint16
	// maxK is the largest conjunction size ever indexed (an upper bound).
	maxK uint8
	// updates counts Update calls since the last full build.
	updates int
	// compactions counts the full builds in this index's lineage since
	// the last Build.
	compactions int
	// comp is the compaction of this lineage under way, or nil; log is
	// the last batch applied since its base (nil at the base). See
	// compact.go.
	comp *compaction
	log  *batch
}

// conjInfo describes one indexed conjunction. A zero conjInfo is a
// deleted conjunction; no posting list refers to it any more.
type conjInfo struct {
	c *campaign.Campaign
	// start and end are c's flight in Unix nanoseconds, saturated, so
	// that Query checks it without loading the campaign.
	start, end int64
	// fits is c's CreativeBits, for QueryMatches.
	fits uint64
	// first is the id of c's first indexed conjunction; it identifies the
	// campaign when deduplicating matches of campaigns with several.
	first uint32
	// conj is the conjunction's index in c.Targeting.Any (0 for empty
	// targeting).
	conj uint16
	// prio is c.Priority, for QueryMatches.
	prio  uint8
	k     uint8 // size: distinct attributes among the IN predicates
	multi bool  // c has more than one indexed conjunction
	// verify is set when some attribute has several IN predicates: the
	// walk then only proves one of them holds, and Query evaluates the
	// conjunction itself.
	verify bool
}

// crec is what the index keeps per campaign: the campaign and the ids of
// its indexed conjunctions, in the order compile yields them.
type crec struct {
	c   *campaign.Campaign
	ids []uint32
}

// zone is a time zone named by some hour or weekday predicate.
type zone struct {
	name string
	loc  *time.Location
}

// empty is the index Live.Load returns before the first Store.
var empty = Build(nil)

// Len returns the number of campaigns in the snapshot, whatever their status.
func (ix *Index) Len() int {
	if ix == nil {
		return 0
	}
	return ix.camps.n
}

// Get returns the campaign with the given id, or nil.
func (ix *Index) Get(id string) *campaign.Campaign {
	if ix == nil {
		return nil
	}
	if r, ok := ix.camps.get(id); ok {
		return r.c
	}
	return nil
}

// All calls yield for every campaign in the snapshot, in no particular
// order, until yield returns false. It fits range-over-func:
// for c := range ix.All { ... }.
func (ix *Index) All(yield func(*campaign.Campaign) bool) {
	if ix == nil {
		return
	}
	ix.camps.all(func(_ string, r *crec) bool { return yield(r.c) })
}

// Stats describes the size of an index, for metrics and logs.
type Stats struct {
	Campaigns    int  // stored campaigns, whatever their status
	Conjunctions int  // indexed conjunctions (of active campaigns)
	Dead         int  // conjunction ids freed by updates, reclaimed by the next compaction
	Appended     int  // conjunction ids given out by updates since the last full build
	Keys         int  // interned attribute-value keys
	Zones        int  // time zones used by hour/weekday predicates
	Updates      int  // incremental updates since the last full build
	Compactions  int  // full builds by Update since the first Build, in the background or for large batches
	Compacting   bool // a background compaction is under way
}

// Stats returns the index's size figures.
func (ix *Index) Stats() Stats {
	if ix == nil {
		return Stats{}
	}
	return Stats{
		Campaigns: ix.camps.n, Conjunctions: int(ix.live), Dead: int(ix.dead),
		Appended: int(ix.nconj - ix.clustered),
		Keys:     int(ix.nkeys), Zones: len(ix.zones), Updates: ix.updates,
		Compactions: ix.compactions, Compacting: ix.comp != nil,
	}
}

// plists returns the posting lists of a key, or nil.
func (ix *Index) plists(b []byte) []plist {
	id, ok := ix.keys.getBytes(b)
	if !ok || !ix.lists.has(id) {
		return nil
	}
	return *ix.lists.get(id)
}

// Live holds the current snapshot for readers that never lock. The zero
// value is ready to use and holds an empty index. Store is typically
// called by one goroutine (the feed); Load from any number.
type Live struct {
	_ noCopy
	p atomic.Pointer[Index]
}

// Load returns the current snapshot, never nil.
func (l *Live) Load() *Index {
	if ix := l.p.Load(); ix != nil {
		return ix
	}
	return empty
}

// Store makes ix the current snapshot. A nil ix stores an empty index.
func (l *Live) Store(ix *Index) {
	if ix == nil {
		ix = empty
	}
	l.p.Store(ix)
}

// noCopy makes go vet's copylocks check flag copies of the struct that
// embeds it.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
