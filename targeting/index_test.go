package targeting

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

func TestQueryExamples(t *testing.T) {
	cs := []*campaign.Campaign{
		mk(t, "ron", "", ""),
		mk(t, "kr-us", "", "country in KR,US & os !in ios"),
		mk(t, "sports-or-jp", "", "segment in sports & country in kr | country in jp"),
		mk(t, "two-segments", "", "segment in a,b & segment in c"),
		mk(t, "not-android", "", "os !in android"),
		mk(t, "seoul-9", "Asia/Seoul", "hour in 9"),
		mk(t, "ny-weekday", "America/New_York", "weekday in mon,tue & country in us"),
		mk(t, "contradiction", "", "country in kr & country !in kr"),
		mk(t, "in-and-not", "", "country in kr,us & country !in kr"),
	}
	ix := Build(cs)
	midnight := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC) // Monday; 09:00 in Seoul, Sunday 20:00 in New York
	tests := []struct {
		attrs string
		at    time.Time
		want  []string
	}{
		{"country=kr os=android", midnight, []string{"kr-us", "ron", "seoul-9"}},
		{"country=KR os=ios", midnight, []string{"not-android", "ron", "seoul-9"}},
		{"country=kr segment=sports,x", midnight.Add(time.Hour), []string{"kr-us", "not-android", "ron", "sports-or-jp"}},
		{"country=jp", midnight.Add(time.Hour), []string{"not-android", "ron", "sports-or-jp"}},
		{"segment=a,c", midnight.Add(time.Hour), []string{"not-android", "ron", "two-segments"}},
		{"segment=a,b", midnight.Add(time.Hour), []string{"not-android", "ron"}},
		{"country=us", midnight.Add(5 * time.Hour), []string{"in-and-not", "kr-us", "not-android", "ny-weekday", "ron"}},
		{"country=us,kr", midnight.Add(5 * time.Hour), []string{"kr-us", "not-android", "ny-weekday", "ron"}},
		{"", midnight, []string{"not-android", "ron", "seoul-9"}},
	}
	a := new(Attrs)
	for _, tt := range tests {
		a.Reset()
		for attr, vs := range attrs(tt.attrs).vals {
			for _, v := range vs {
				a.Add(campaign.AttrID(attr), v)
			}
		}
		got := ids(ix.Query(a, tt.at, nil))
		if !slices.Equal(got, tt.want) {
			t.Errorf("%q at %v: got %v, want %v", tt.attrs, tt.at, got, tt.want)
		}
		if scan := ids(Scan(cs, a, tt.at, nil)); !slices.Equal(scan, tt.want) {
			t.Errorf("Scan %q at %v: got %v, want %v", tt.attrs, tt.at, scan, tt.want)
		}
	}
}

func TestQueryLiveOnly(t *testing.T) {
	paused := mk(t, "paused", "", "")
	paused.Status = campaign.StatusPaused
	ix := Build([]*campaign.Campaign{mk(t, "live", "", ""), paused})
	a := new(Attrs)
	if got := ids(ix.Query(a, flightStart.Add(time.Hour), nil)); !slices.Equal(got, []string{"live"}) {
		t.Errorf("inside flight: %v", got)
	}
	for _, at := range []time.Time{flightStart.Add(-time.Second), flightStart.AddDate(2, 0, 0)} {
		if got := ix.Query(a, at, nil); len(got) != 0 {
			t.Errorf("at %v, outside flight: %v", at, ids(got))
		}
	}
	if ix.Len() != 2 || ix.Get("paused") != paused || ix.Get("nope") != nil {
		t.Errorf("Len %d, Get paused %v", ix.Len(), ix.Get("paused"))
	}
}

// TestProperty is the index's main test: for thousands of random catalogs
// and requests, Query returns exactly what Scan returns, on a fresh Build
// and on indexes derived through chains of incremental updates.
func TestProperty(t *testing.T) {
	trials := 1500
	if testing.Short() {
		trials = 200
	}
	r := rand.New(rand.NewPCG(1, 2))
	a := new(Attrs)
	for trial := range trials {
		n := r.IntN(60)
		var cs []*campaign.Campaign
		for i := range n {
			cs = append(cs, randCampaign(t, r, fmt.Sprintf("c%d", i)))
		}
		ix := Build(cs)
		check(t, r, a, ix, cs, fmt.Sprintf("trial %d build", trial))

		// A chain of incremental updates, checked after each step.
		state := map[string]*campaign.Campaign{}
		for _, c := range cs {
			state[c.ID] = c
		}
		for step := range 1 + r.IntN(6) {
			var ups []*campaign.Campaign
			var dels []string
			for range r.IntN(6) {
				id := fmt.Sprintf("c%d", r.IntN(n+10))
				ups = append(ups, randCampaign(t, r, id))
			}
			for range r.IntN(4) {
				dels = append(dels, fmt.Sprintf("c%d", r.IntN(n+10)))
			}
			for _, c := range ups {
				state[c.ID] = c
			}
			for _, id := range dels {
				delete(state, id)
			}
			ix = ix.Update(ups, dels)
			cur := catalog(state)
			where := fmt.Sprintf("trial %d step %d", trial, step)
			check(t, r, a, ix, cur, where)
			if ix.Len() != len(cur) {
				t.Fatalf("%s: Len %d, want %d", where, ix.Len(), len(cur))
			}
			for _, c := range cur {
				if ix.Get(c.ID) != c {
					t.Fatalf("%s: Get(%s) is not the latest upsert", where, c.ID)
				}
			}
		}
		if t.Failed() {
			return
		}
	}
	t.Logf("%d index states checked, %.1f matches per query", checks, float64(matched)/float64(6*checks))
}

func catalog(state map[string]*campaign.Campaign) []*campaign.Campaign {
	cs := make([]*campaign.Campaign, 0, len(state))
	for _, c := range state {
		cs = append(cs, c)
	}
	slices.SortFunc(cs, func(x, y *campaign.Campaign) int { return cmpStr(x.ID, y.ID) })
	return cs
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

var checks, matched int // for the log: the property test is not vacuous

// check compares Query with Scan for a few random requests, including
// repeated queries that only change size, as the server does per slot.
func check(t *testing.T, r *rand.Rand, a *Attrs, ix *Index, cs []*campaign.Campaign, where string) {
	t.Helper()
	checks++
	var got, want []*campaign.Campaign
	for q := range 6 {
		now := randTime(r)
		if q%3 == 0 {
			randAttrs(r, a)
		} else {
			a.Set(campaign.IDSize, pick(r, propVocab[campaign.IDSize]))
		}
		got = ix.Query(a, now, got[:0])
		want = Scan(cs, a, now, want[:0])
		gi, wi := ids(got), ids(want)
		if !slices.Equal(gi, wi) {
			t.Errorf("%s: request %s at %v:\n got  %v\n want %v", where, describeAttrs(a), now, gi, wi)
			return
		}
		if !sameStrategies(t, ix, a, now, got) {
			t.Errorf("%s: request %s at %v: the strategies disagree", where, describeAttrs(a), now)
			return
		}
		matched += len(got)
		if len(slices.Compact(gi)) != len(got) {
			t.Errorf("%s: duplicates in %v", where, gi)
		}
	}
}

// TestUpdateMatchesBuild checks that a long chain of updates, including
// compactions, leaves an index equivalent to a fresh build.
func TestUpdateMatchesBuild(t *testing.T) {
	defer func(m int) { compactMin = m }(compactMin)
	compactMin = 20
	r := rand.New(rand.NewPCG(3, 4))
	state := map[string]*campaign.Campaign{}
	ix := Build(nil)
	a := new(Attrs)
	compactions := 0
	for step := range 400 {
		var ups []*campaign.Campaign
		for range 1 + r.IntN(5) {
			ups = append(ups, randCampaign(t, r, fmt.Sprintf("c%d", r.IntN(80))))
		}
		dels := []string{fmt.Sprintf("c%d", r.IntN(80))}
		for _, c := range ups {
			state[c.ID] = c
		}
		for _, id := range dels {
			delete(state, id)
		}
		prev := ix.Stats().Compactions
		ix = ix.Update(ups, dels)
		if ix.Stats().Compactions > prev {
			compactions++
		}
		if ix.needsCompaction() && !ix.Stats().Compacting {
			t.Fatalf("step %d: no compaction under way: %+v", step, ix.Stats())
		}
		if step%3 == 0 {
			// Let some compactions finish before the next update, and
			// leave others running across several.
			waitCompaction(ix)
		}
		cs := catalog(state)
		check(t, r, a, ix, cs, fmt.Sprintf("step %d", step))
		fresh := Build(cs)
		for range 3 {
			now := randTime(r)
			randAttrs(r, a)
			if g, w := ids(ix.Query(a, now, nil)), ids(fresh.Query(a, now, nil)); !slices.Equal(g, w) {
				t.Fatalf("step %d: updated %v, fresh build %v", step, g, w)
			}
		}
	}
	if compactions == 0 {
		t.Error("no compaction happened")
	}
	t.Logf("%d compactions", compactions)
}

func TestUpdateSharesStructure(t *testing.T) {
	var cs []*campaign.Campaign
	for i := range 2000 {
		cs = append(cs, mk(t, fmt.Sprintf("c%d", i), "", fmt.Sprintf("country in us & segment in s%d", i%50)))
	}
	ix := Build(cs)
	nx := ix.Update([]*campaign.Campaign{mk(t, "c7", "", "country in kr")}, []string{"c8"})
	a := attrs("country=us segment=s7")
	if got := ids(ix.Query(a, flightStart, nil)); len(got) != 40 || !slices.Contains(got, "c7") {
		t.Fatalf("old snapshot changed: %d matches", len(got))
	}
	if got := ids(nx.Query(a, flightStart, nil)); len(got) != 39 || slices.Contains(got, "c7") {
		t.Fatalf("new snapshot: %d matches", len(got))
	}
	shared := 0
	for i := range ix.lists.dir {
		if i < len(nx.lists.dir) && ix.lists.dir[i] == nx.lists.dir[i] {
			shared++
		}
	}
	if shared < len(ix.lists.dir)-4 {
		t.Errorf("only %d of %d key chunks shared", shared, len(ix.lists.dir))
	}
	if nx.Len() != 1999 || nx.Get("c8") != nil || ix.Get("c8") == nil {
		t.Errorf("Len %d, c8 %v", nx.Len(), nx.Get("c8"))
	}
}

func TestBuildDuplicateIDsLastWins(t *testing.T) {
	ix := Build([]*campaign.Campaign{mk(t, "c", "", "country in us"), mk(t, "c", "", "country in kr")})
	if ix.Len() != 1 || len(ix.Query(attrs("country=us"), flightStart, nil)) != 0 || len(ix.Query(attrs("country=kr"), flightStart, nil)) != 1 {
		t.Error("the later campaign should replace the earlier")
	}
}

func TestUpdateBatchOrder(t *testing.T) {
	ix := Build([]*campaign.Campaign{mk(t, "a", "", "")})
	ix = ix.Update([]*campaign.Campaign{mk(t, "b", "", "country in us"), mk(t, "b", "", "country in kr"), mk(t, "a", "", "")}, []string{"a", "zzz"})
	if got := ids(ix.Query(attrs("country=kr"), flightStart, nil)); !slices.Equal(got, []string{"b"}) {
		t.Errorf("got %v, want [b]", got)
	}
	if ix.Get("a") != nil || ix.Len() != 1 {
		t.Error("a delete in the batch should win over an upsert of the same id")
	}
}

func TestNilAndEmpty(t *testing.T) {
	var ix *Index
	a := attrs("country=us")
	if ix.Len() != 0 || ix.Get("x") != nil || len(ix.Query(a, flightStart, nil)) != 0 {
		t.Error("nil index should be empty")
	}
	ix.All(func(*campaign.Campaign) bool { t.Error("nil index has campaigns"); return false })
	nx := ix.Update([]*campaign.Campaign{mk(t, "c", "", "")}, nil)
	if len(nx.Query(a, flightStart, nil)) != 1 {
		t.Error("update of a nil index")
	}
	var l Live
	if l.Load() == nil || l.Load().Len() != 0 {
		t.Error("zero Live should hold an empty index")
	}
	l.Store(nx)
	if l.Load() != nx {
		t.Error("Store/Load")
	}
	n := 0
	for range nx.All {
		n++
	}
	if n != 1 {
		t.Errorf("All yielded %d", n)
	}
}

// TestTimeCache moves one Attrs through a day in 7-minute steps, across
// zones with half- and quarter-hour offsets, and a DST change.
func TestTimeCache(t *testing.T) {
	var cs []*campaign.Campaign
	for _, tz := range propZones {
		for h := range 24 {
			cs = append(cs, mk(t, fmt.Sprintf("%s-%d", strings.ReplaceAll(tz, "/", "."), h), tz, fmt.Sprintf("hour in %d & weekday !in wed", h)))
		}
	}
	ix := Build(cs)
	a := new(Attrs)
	at := time.Date(2026, 3, 7, 20, 0, 0, 0, time.UTC)
	for range 24 * 60 / 7 * 2 {
		got, want := ids(ix.Query(a, at, nil)), ids(Scan(cs, a, at, nil))
		if !slices.Equal(got, want) {
			t.Fatalf("at %v: got %v, want %v", at, got, want)
		}
		at = at.Add(7*time.Minute + 13*time.Second)
	}
}

// sameStrategies checks that Query answers want (its answer with the
// strategy of a) in the same order whether it walks or counts every size,
// and that QueryMatches gives the same campaigns in the same order with
// their priorities and creative bits.
func sameStrategies(t *testing.T, ix *Index, a *Attrs, now time.Time, want []*campaign.Campaign) bool {
	t.Helper()
	defer func(s uint8) { a.strategy = s }(a.strategy)
	for _, s := range []uint8{0, strategyWalk, strategyCount} {
		a.strategy = s
		if got := ix.Query(a, now, nil); !slices.Equal(got, want) {
			t.Logf("strategy %d: %v, want %v", s, ids(got), ids(want))
			return false
		}
		ms := ix.QueryMatches(a, now, nil)
		if len(ms) != len(want) {
			t.Logf("strategy %d: QueryMatches gave %d matches, want %d", s, len(ms), len(want))
			return false
		}
		for i, m := range ms {
			if m.Campaign != want[i] || m.Priority != want[i].Priority || m.Creatives != CreativeBits(want[i]) {
				t.Logf("strategy %d: QueryMatches[%d] = %s (priority %d), want %s (%d)", s, i, m.Campaign.ID, m.Priority, want[i].ID, want[i].Priority)
				return false
			}
		}
	}
	return true
}
