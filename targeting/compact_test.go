package targeting

import (
	"fmt"
	"slices"
	"testing"

	"github.com/adserver/adserver/campaign"
)

// waitCompaction blocks until the compaction under way in ix's lineage,
// if any, has finished its background part.
func waitCompaction(ix *Index) {
	if ix.comp != nil {
		<-ix.comp.done
	}
}

// TestUpdateWorkBounded fails if an Update ever does work the size of the
// catalog on the caller's goroutine. It counts work units (conjunctions
// removed or indexed by the call, full builds included) through
// updateWorkHook, not time: over thousands of single-campaign updates,
// enough for several compactions, every call stays within its own batch
// plus the bounded replay of a finished compaction, 2*maxConj*(batch +
// max(2*batch, replayMin)) units, where a synchronous compaction would
// cost every conjunction of the index. It also checks that the background
// compactions did happen and were picked up, and that queries stay
// exact throughout.
func TestUpdateWorkBounded(t *testing.T) {
	defer func(c, r, rr int, h func(int, int)) {
		compactMin, replayMin, replayRounds, updateWorkHook = c, r, rr, h
	}(compactMin, replayMin, replayRounds, updateWorkHook)
	compactMin, replayMin = 100, 16
	const n = 3000
	cs := benchCatalog(t, n)
	g := newBenchGen(23)
	ups := make([]*campaign.Campaign, 4000)
	for i := range ups {
		ups[i] = g.campaign(t, fmt.Sprintf("c-%d", g.r.IntN(n+n/10)))
	}
	maxConj := 1
	for _, c := range slices.Concat(cs, ups) {
		maxConj = max(maxConj, len(c.Targeting.Any))
	}
	state := map[string]*campaign.Campaign{}
	for _, c := range cs {
		state[c.ID] = c
	}
	ix := Build(cs)
	live := ix.Stats().Conjunctions

	worst, calls := 0, 0
	updateWorkHook = func(changes, work int) {
		calls++
		worst = max(worst, work)
		if limit := 2 * maxConj * (changes + max(2*changes, replayMin)); work > limit {
			t.Errorf("update %d: %d work units for a batch of %d changes, limit %d (the index has %d conjunctions)",
				calls, work, changes, limit, live)
		}
	}
	started := compactionsStarted.Load()
	a := new(Attrs)
	var got, want []*campaign.Campaign
	for i, c := range ups {
		var dels []string
		if i%10 == 9 {
			dels = []string{fmt.Sprintf("c-%d", g.r.IntN(n))}
		}
		ix = ix.Update([]*campaign.Campaign{c}, dels)
		state[c.ID] = c
		for _, id := range dels {
			delete(state, id)
		}
		// In the first half, the compactions leave all the catch-up to
		// the updates (16 changes at most per call).
		replayRounds = 8
		if i < len(ups)/2 {
			replayRounds = 0
		}
		if i%400 == 399 {
			// Let the compaction under way finish, so that the next
			// updates pick it up; the others overlap it with updates.
			waitCompaction(ix)
		}
		if i%250 == 0 {
			cur := catalog(state)
			for range 3 {
				g.request(a)
				got, want = ix.Query(a, benchNow, got[:0]), Scan(cur, a, benchNow, want[:0])
				if gi, wi := ids(got), ids(want); !slices.Equal(gi, wi) {
					t.Fatalf("update %d: %d matches, want %d", i, len(gi), len(wi))
				}
			}
		}
		if t.Failed() {
			return
		}
	}
	st := ix.Stats()
	if st.Compactions < 2 || compactionsStarted.Load()-started < 2 {
		t.Errorf("%d compactions picked up, %d started: %+v", st.Compactions, compactionsStarted.Load()-started, st)
	}
	t.Logf("%d updates; most work by one call %d units (index: %d conjunctions); %d compactions picked up; %+v",
		calls, worst, live, st.Compactions, st)
}

// TestCompactionBranches updates older snapshots of a lineage whose
// compaction is under way or finished: each branch stays exact, whichever
// of them the compaction's progress follows.
func TestCompactionBranches(t *testing.T) {
	defer func(c, r, rr int) { compactMin, replayMin, replayRounds = c, r, rr }(compactMin, replayMin, replayRounds)
	compactMin, replayMin, replayRounds = 20, 2, 0
	r := newRand(31)
	state := map[string]*campaign.Campaign{}
	ix := Build(nil)
	type fork struct {
		ix    *Index
		state map[string]*campaign.Campaign
	}
	var forks []fork
	a := new(Attrs)
	for step := range 300 {
		c := randCampaign(t, r, fmt.Sprintf("c%d", r.IntN(60)))
		ix = ix.Update([]*campaign.Campaign{c}, nil)
		state[c.ID] = c
		if ix.Stats().Compacting && len(forks) < 40 && step%5 == 0 {
			forks = append(forks, fork{ix, clone(state)})
		}
		if step%7 == 0 {
			waitCompaction(ix)
		}
	}
	check(t, r, a, ix, catalog(state), "main line")
	for i, f := range forks {
		waitCompaction(f.ix)
		fx := f.ix
		for j := range 12 {
			c := randCampaign(t, r, fmt.Sprintf("c%d", r.IntN(60)))
			del := fmt.Sprintf("c%d", r.IntN(60))
			fx = fx.Update([]*campaign.Campaign{c}, []string{del})
			f.state[c.ID] = c
			delete(f.state, del)
			check(t, r, a, fx, catalog(f.state), fmt.Sprintf("fork %d step %d", i, j))
		}
		if t.Failed() {
			return
		}
	}
	if len(forks) == 0 {
		t.Fatal("no compaction under way to fork from")
	}
}

func clone(m map[string]*campaign.Campaign) map[string]*campaign.Campaign {
	out := make(map[string]*campaign.Campaign, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestUpdatePicksUpCompaction checks that an empty batch installs a
// finished compaction, and that a large batch is applied by a build.
func TestUpdatePicksUpCompaction(t *testing.T) {
	defer func(c int) { compactMin = c }(compactMin)
	compactMin = 10
	r := newRand(41)
	var cs []*campaign.Campaign
	for i := range 40 {
		cs = append(cs, randCampaign(t, r, fmt.Sprintf("c%d", i)))
	}
	ix := Build(cs)
	state := map[string]*campaign.Campaign{}
	for _, c := range cs {
		state[c.ID] = c
	}
	for i := 0; !ix.Stats().Compacting; i++ {
		if i > 1000 {
			t.Fatalf("no compaction started: %+v", ix.Stats())
		}
		c := randCampaign(t, r, fmt.Sprintf("c%d", r.IntN(40)))
		ix = ix.Update([]*campaign.Campaign{c}, nil)
		state[c.ID] = c
	}
	waitCompaction(ix)
	cx := ix.Update(nil, nil)
	if st := cx.Stats(); st.Compacting || st.Compactions != ix.Stats().Compactions+1 || st.Dead != 0 {
		t.Errorf("after an empty update: %+v", st)
	}
	a := new(Attrs)
	check(t, r, a, cx, catalog(state), "picked up")

	// A batch of a quarter of the catalog or more (and rebuildMin) is a
	// fresh build.
	defer func(m int) { rebuildMin = m }(rebuildMin)
	rebuildMin = 10
	var ups []*campaign.Campaign
	for i := range 15 {
		c := randCampaign(t, r, fmt.Sprintf("c%d", i))
		ups = append(ups, c)
		state[c.ID] = c
	}
	bx := cx.Update(ups, nil)
	if st := bx.Stats(); st.Updates != 0 || st.Appended != 0 || st.Dead != 0 {
		t.Errorf("a large batch should rebuild: %+v", st)
	}
	check(t, r, a, bx, catalog(state), "large batch")
}
