package targeting

import (
	"sync"
	"sync/atomic"

	"github.com/adserver/adserver/campaign"
)

// Compaction runs off the update path. When an Update leaves an index that
// needs compaction (see needsCompaction), it starts a goroutine that
// builds a fresh index from that snapshot's campaigns, and returns the
// incremental result as usual. The Updates that follow keep editing
// incrementally; each records its batch in a log, a persistent list
// linked back to the compacted snapshot, so every index knows exactly
// which changes separate it from the compaction's base. Once the build is
// done, the goroutine replays onto the fresh index the batches logged
// meanwhile, merged into one edit, a few rounds until it has caught up
// with the latest. The Update that then finds the compaction finished
// replays what is left, at most replayBudget changes per call (partial
// progress is kept for the next call), and returns the compacted index,
// with its own batch applied, as soon as it has caught up. So an Update
// never does more than its own batch plus a bounded replay; the cost of
// the full build is paid on another goroutine, once per live/8 or so
// changed conjunctions.
//
// A compaction belongs to a lineage of snapshots. An Update applied to an
// older snapshot than the latest (a branch) still gets a correct index: it
// replays along its own log, and if the compaction's progress lies on
// another branch, it drops the compaction (and starts its own if needed).

// replayMin is the least number of changes an Update replays onto a
// finished compaction: it replays max(2*len(batch), replayMin) (or one
// logged batch whole, if larger), so the gap closes even while updates
// keep coming. A merged replay costs roughly 40µs per change at 100,000
// campaigns, so 32 keeps a catch-up step near one or two milliseconds.
var replayMin = 32

// replayRounds bounds the catch-up rounds of the compaction goroutine.
// Each round replays, merged into one edit, the batches logged during
// the previous one, so the rounds shrink fast; it stops early when it has
// caught up.
var replayRounds = 32

// change is the final state of one campaign id in a batch: c, or nil for
// a delete.
type change struct {
	id string
	c  *campaign.Campaign
}

// batch is one Update's changes in a compaction's log. A batch is
// immutable once linked; prev is the batch before it, nil for the first
// after the compaction's base.
type batch struct {
	prev  *batch
	seq   int // 1 + prev's
	total int // changes from the base up to and including this batch
	ch    []change
}

func (b *batch) seqTotal() (seq, total int) {
	if b == nil {
		return 0, 0
	}
	return b.seq, b.total
}

// compaction is a background rebuild of the snapshot base and its
// catch-up with the batches applied after it.
type compaction struct {
	// tip is the log's latest batch, published by Update for the
	// goroutine's catch-up rounds.
	tip atomic.Pointer[batch]
	// abandoned is set when the lineage no longer needs the result.
	abandoned atomic.Bool
	// done is closed when the goroutine has finished; from then on
	// caught and at belong to Update calls, under mu.
	done chan struct{}

	mu sync.Mutex
	// caught is the compacted index with the log up to at (nil: none
	// of it) applied.
	caught *Index
	at     *batch
}

// startCompaction starts rebuilding base's campaigns in a new goroutine
// and records the compaction in base.comp. base must be fresh from an
// edit and not yet published; it is never modified again.
func startCompaction(base *Index) {
	c := &compaction{done: make(chan struct{})}
	base.comp = c
	compactionsStarted.Add(1)
	go c.run(base, replayRounds)
}

// compactionsStarted counts background compactions started, for tests.
var compactionsStarted atomic.Int64

func (c *compaction) run(base *Index, rounds int) {
	defer close(c.done)
	cx := base.rebuild(nil, false)
	cx.compactions = base.compactions + 1
	var at *batch
	for range rounds {
		if c.abandoned.Load() {
			break
		}
		path, ok := logPath(at, c.tip.Load())
		if !ok || len(path) == 0 {
			break
		}
		cx = cx.edit(mergeBatches(path), false)
		at = path[len(path)-1]
	}
	c.caught, c.at = cx, at
}

// finished reports whether the goroutine is done.
func (c *compaction) finished() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// catchUp replays onto the compacted index the logged batches up to tip,
// at most budget changes of them, or the first batch whole if larger. It returns the
// compacted index if it has caught up with tip, nil if some batches are
// left (the progress is kept), and ok false if tip is not a descendant
// of the progress made so far (another branch's): the compaction is of no
// use to tip's lineage. The compaction must be finished.
func (c *compaction) catchUp(tip *batch, budget int) (cx *Index, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	path, ok := logPath(c.at, tip)
	if !ok {
		return nil, false
	}
	if len(path) == 0 {
		return c.caught, true
	}
	_, from := c.at.seqTotal()
	n := 1
	for n < len(path) && path[n].total-from <= budget {
		n++
	}
	c.caught = c.caught.edit(mergeBatches(path[:n]), true)
	c.at = path[n-1]
	if n == len(path) {
		return c.caught, true
	}
	return nil, true
}

// logPath returns the batches after at up to tip, oldest first, and
// whether at is tip or one of its ancestors (nil stands for the base).
func logPath(at, tip *batch) ([]*batch, bool) {
	seq, _ := at.seqTotal()
	var path []*batch
	b := tip
	for b != nil && b.seq > seq {
		path = append(path, b)
		b = b.prev
	}
	if b != at {
		return nil, false
	}
	for i, j := 0, len(path)-1; i < j; i, j = i+1, j-1 {
		path[i], path[j] = path[j], path[i]
	}
	return path, true
}

// mergeBatches returns the final state of every id the batches name, in
// first-seen order.
func mergeBatches(path []*batch) []change {
	if len(path) == 1 {
		return path[0].ch
	}
	pos := make(map[string]int)
	var out []change
	for _, b := range path {
		for _, ch := range b.ch {
			if i, seen := pos[ch.id]; seen {
				out[i] = ch
				continue
			}
			pos[ch.id] = len(out)
			out = append(out, ch)
		}
	}
	return out
}
