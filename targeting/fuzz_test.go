package targeting

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

// FuzzQuery decodes random bytes into a request (attribute, value pairs
// from a small vocabulary and raw strings, and a time) and checks Query
// against Scan on a fixed random catalog.
func FuzzQuery(f *testing.F) {
	r := newRand(9)
	var cs []*campaign.Campaign
	for i := range 200 {
		cs = append(cs, randCampaign(f, r, fmt.Sprintf("c%d", i)))
	}
	ix := Build(cs)
	// An updated twin of ix, to fuzz the incremental path as well.
	var ups []*campaign.Campaign
	for i := range 40 {
		ups = append(ups, randCampaign(f, r, fmt.Sprintf("c%d", i*5)))
	}
	state := map[string]*campaign.Campaign{}
	for _, c := range cs {
		state[c.ID] = c
	}
	for _, c := range ups {
		state[c.ID] = c
	}
	delete(state, "c3")
	ux := ix.Update(ups, []string{"c3"})
	ucs := catalog(state)

	f.Add([]byte{3, 0, 10, 1, 12, 2}, int64(0))
	f.Add([]byte("\x03KR\x00\x0asports\x00"), int64(86400*200))
	f.Fuzz(func(t *testing.T, data []byte, sec int64) {
		a := new(Attrs)
		for len(data) >= 2 {
			attr := campaign.AttrID(int(data[0]) % campaign.NumAttrs)
			if data[1] < 128 { // a known value
				voc := propVocab[attr]
				a.Add(attr, voc[int(data[1])%len(voc)])
				data = data[2:]
				continue
			}
			n := min(int(data[1]-128), len(data)-2)
			a.Add(attr, string(data[2:2+n]))
			data = data[2+n:]
		}
		now := propEpoch.Add(time.Duration(sec%(3*365*86400)) * time.Second)
		for _, tc := range []struct {
			ix *Index
			cs []*campaign.Campaign
		}{{ix, cs}, {ux, ucs}} {
			res := tc.ix.Query(a, now, nil)
			got, want := ids(res), ids(Scan(tc.cs, a, now, nil))
			if !slices.Equal(got, want) {
				t.Fatalf("request %s at %v: got %v, want %v", describeAttrs(a), now, got, want)
			}
			if !sameStrategies(t, tc.ix, a, now, res) {
				t.Fatalf("request %s at %v: the strategies disagree", describeAttrs(a), now)
			}
		}
	})
}

// TestCatalogUpdates applies batches of realistic updates to a 10,000
// campaign catalog (dense lists stored as bitmaps, compactions included)
// and checks queries against Scan after each.
func TestCatalogUpdates(t *testing.T) {
	defer func(m int) { compactMin = m }(compactMin)
	compactMin = 200
	cs := benchCatalog(t, 10000)
	state := map[string]*campaign.Campaign{}
	for _, c := range cs {
		state[c.ID] = c
	}
	ix := Build(cs)
	g := newBenchGen(17)
	a := new(Attrs)
	var got, want []*campaign.Campaign
	rebuilt := 0
	for step := range 60 {
		var ups []*campaign.Campaign
		var dels []string
		for range 100 {
			ups = append(ups, g.campaign(t, fmt.Sprintf("c-%d", g.r.IntN(11000))))
		}
		for range 10 {
			dels = append(dels, fmt.Sprintf("c-%d", g.r.IntN(11000)))
		}
		for _, c := range ups {
			state[c.ID] = c
		}
		for _, id := range dels {
			delete(state, id)
		}
		prev := ix
		ix = ix.Update(ups, dels)
		if ix.Stats().Compactions > prev.Stats().Compactions {
			rebuilt++
		}
		if step%4 == 0 {
			waitCompaction(ix)
		}
		cur := catalog(state)
		for q := range 5 {
			g.request(a)
			got, want = ix.Query(a, benchNow, got[:0]), Scan(cur, a, benchNow, want[:0])
			if gi, wi := ids(got), ids(want); !slices.Equal(gi, wi) {
				t.Fatalf("step %d: %d matches, want %d", step, len(gi), len(wi))
			}
			if q == 0 && !sameStrategies(t, ix, a, benchNow, got) {
				t.Fatalf("step %d: the strategies disagree", step)
			}
		}
	}
	if rebuilt == 0 {
		t.Errorf("no compaction happened: %+v", ix.Stats())
	}
}

// TestLiveConcurrent has readers query the current snapshot while a
// writer keeps updating and storing new ones (run it with -race).
func TestLiveConcurrent(t *testing.T) {
	var l Live
	r := newRand(21)
	var cs []*campaign.Campaign
	for i := range 300 {
		cs = append(cs, randCampaign(t, r, fmt.Sprintf("c%d", i)))
	}
	l.Store(Build(cs))
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rr := newRand(uint64(100 + w))
			a := AcquireAttrs()
			defer ReleaseAttrs(a)
			var dst []*campaign.Campaign
			for !stop.Load() {
				randAttrs(rr, a)
				ix := l.Load()
				dst = ix.Query(a, randTime(rr), dst[:0])
				_ = ix.Explain(a, randTime(rr), "c1")
			}
		}()
	}
	for i := range 200 {
		up := randCampaign(t, r, fmt.Sprintf("c%d", r.IntN(400)))
		l.Store(l.Load().Update([]*campaign.Campaign{up}, []string{fmt.Sprintf("c%d", i)}))
	}
	stop.Store(true)
	wg.Wait()
}
