package targeting

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/loadtest"
)

// The load test's world: the catalog `loadtest seed` creates (10,000
// campaigns, each matching about 2.8% of the traffic) and the requests
// `loadtest` sends, as the server's decision engine queries them (each
// request's attributes, the primary size of its first slot). Its lists
// are dense (a request's values are in the lists of hundreds of
// conjunctions per size), where Query counts rather than walks.

var seededNow = time.Date(2026, 11, 24, 15, 4, 0, 0, time.UTC)

type seededWorld struct {
	cs   []*campaign.Campaign
	ix   *Index
	reqs []*Attrs
}

var (
	seededOnce  sync.Once
	seededCache *seededWorld
)

func seeded(tb testing.TB) *seededWorld {
	seededOnce.Do(func() {
		sc := loadtest.DefaultScenario()
		cat := loadtest.BuildCatalog(sc, 10000, 1000, 1, seededNow)
		w := &seededWorld{}
		for i := range cat.Campaigns {
			js, err := json.Marshal(cat.Campaigns[i])
			if err != nil {
				tb.Fatal(err)
			}
			c, err := campaign.DecodeCampaign(js)
			if err != nil {
				tb.Fatal(err)
			}
			w.cs = append(w.cs, c)
		}
		w.ix = Build(w.cs)
		g := loadtest.NewGenerator(sc, 1)
		src := g.NewSource(0)
		var r loadtest.Request
		for range 1024 {
			g.Next(src, &r)
			a := new(Attrs)
			sized := false
			g.Attrs(&r, func(attr, v string) {
				id, ok := campaign.LookupAttr(attr)
				if !ok {
					tb.Fatalf("attribute %q", attr)
				}
				if id == campaign.IDSize {
					if sized {
						return
					}
					sized = true
				}
				a.Add(id, v)
			})
			w.reqs = append(w.reqs, a)
		}
		seededCache = w
	})
	return seededCache
}

// TestSeededCatalog checks Query against Scan, with every strategy, on
// the load test's world.
func TestSeededCatalog(t *testing.T) {
	w := seeded(t)
	reqs := w.reqs[:128]
	if testing.Short() {
		reqs = reqs[:32]
	}
	matched := 0
	for i, a := range reqs {
		got, want := w.ix.Query(a, seededNow, nil), Scan(w.cs, a, seededNow, nil)
		if gi, wi := ids(got), ids(want); !slices.Equal(gi, wi) {
			t.Fatalf("request %d (%s): %d matches, want %d", i, describeAttrs(a), len(gi), len(wi))
		}
		if !sameStrategies(t, w.ix, a, seededNow, got) {
			t.Fatalf("request %d (%s): the strategies disagree", i, describeAttrs(a))
		}
		matched += len(got)
	}
	if mean := float64(matched) / float64(len(reqs)); mean < 100 {
		t.Errorf("%.1f matches per request: not the dense catalog this test is for", mean)
	}
}

// TestStrategyChoice pins the cost model's choices at the two extremes:
// the load test's dense lists are counted, and a selective request
// against a large catalog, whose lists are a few ids spread over a wide id
// range, is walked.
func TestStrategyChoice(t *testing.T) {
	choices := func(ix *Index, a *Attrs, now time.Time) (walked, counted int) {
		b := ix.cursors(a, now)
		top := len(b) / 2
		for k := top - 1; k >= 1; k-- {
			if in := a.curs[b[k]:b[k+1]]; len(in) > 0 {
				if countCheaper(in, k) {
					counted++
				} else {
					walked++
				}
			}
		}
		return walked, counted
	}
	w := seeded(t)
	walked, counted := 0, 0
	for _, a := range w.reqs[:100] {
		wk, ct := choices(w.ix, a, seededNow)
		walked, counted = walked+wk, counted+ct
	}
	if walked*20 > counted {
		t.Errorf("load-test catalog: %d sizes walked, %d counted", walked, counted)
	}

	var cs []*campaign.Campaign
	for i := range 30000 {
		cs = append(cs, mk(t, fmt.Sprintf("s%d", i), "", fmt.Sprintf("country in %s & placement in p%d", []string{"us", "kr", "de"}[i%3], i%3000)))
	}
	ix := Build(cs)
	a := attrs("country=us placement=p6 segment=s1") // p6: campaigns s6, s3006, ..., all us
	if wk, ct := choices(ix, a, flightStart); wk != 1 || ct != 0 {
		t.Errorf("selective request: %d sizes walked, %d counted; want the one walked", wk, ct)
	}
	if got := ids(ix.Query(a, flightStart, nil)); len(got) != 10 {
		t.Errorf("selective request: %d matches, want 10", len(got))
	}
}
