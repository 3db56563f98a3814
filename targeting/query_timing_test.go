package targeting

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

var benchSizes3 = []int{1000, 10000, 100000}

var catalogs sync.Map // n → []*campaign.Campaign

func cachedCatalog(b *testing.B, n int) []*campaign.Campaign {
	if cs, ok := catalogs.Load(n); ok {
		return cs.([]*campaign.Campaign)
	}
	cs := benchCatalog(b, n)
	catalogs.Store(n, cs)
	return cs
}

// benchRequests returns typical requests, each an Attrs filled once and,
// if ix is not nil, queried once so that its scratch buffers have grown:
// the benchmarks measure the steady state of reused Attrs.
func benchRequests(n int, ix *Index) []*Attrs {
	g := newBenchGen(99)
	reqs := make([]*Attrs, n)
	for i := range reqs {
		reqs[i] = new(Attrs)
		g.request(reqs[i])
		if ix != nil {
			ix.Query(reqs[i], benchNow, nil)
		}
	}
	return reqs
}

// BenchmarkQuery measures one request's query against the index: the
// key lookups of all its values (the cache is invalidated, as for a new
// request) and the posting-list walk, appending to a reused slice.
func BenchmarkQuery(b *testing.B) {
	for _, n := range benchSizes3 {
		b.Run(fmt.Sprintf("campaigns=%d", n), func(b *testing.B) {
			ix := Build(cachedCatalog(b, n))
			reqs := benchRequests(256, ix)
			var dst []*campaign.Campaign
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				a := reqs[i&255]
				a.rix = nil // resolve every value again, like a new request
				dst = ix.Query(a, benchNow, dst[:0])
				matched += len(dst)
			}
			b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
		})
	}
}

// BenchmarkQuerySeeded is one slot's query of a load-test request against
// the load-test catalog of 10,000 campaigns (a new request each time: its
// values are resolved again), with Query choosing its strategy per size
// (auto) or made to walk or count every size.
func BenchmarkQuerySeeded(b *testing.B) {
	w := seeded(b)
	for _, st := range []struct {
		name     string
		strategy uint8
	}{{"auto", 0}, {"walk", strategyWalk}, {"count", strategyCount}} {
		b.Run(st.name, func(b *testing.B) {
			for _, a := range w.reqs {
				a.strategy = st.strategy
				w.ix.Query(a, seededNow, nil)
			}
			defer func() {
				for _, a := range w.reqs {
					a.strategy = 0
				}
			}()
			var dst []*campaign.Campaign
			matched := 0
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				a := w.reqs[i&1023]
				a.rix = nil
				dst = w.ix.Query(a, seededNow, dst[:0])
				matched += len(dst)
			}
			b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
		})
	}
}

// BenchmarkQuerySlot is the server's second and later slot of a request:
// only size changes.
func BenchmarkQuerySlot(b *testing.B) {
	ix := Build(cachedCatalog(b, 100000))
	reqs := benchRequests(256, ix)
	var dst []*campaign.Campaign
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		a := reqs[i&255]
		a.Set(campaign.IDSize, benchSizes[i%len(benchSizes)].v)
		dst = ix.Query(a, benchNow, dst[:0])
	}
}

// BenchmarkQueryAfterUpdates queries an index that took incremental
// updates for 10% of its campaigns, in batches of 100: their new versions
// went to the spare ids of their runs (or the end of the id space), not
// to the clusters a fresh build would give them.
func BenchmarkQueryAfterUpdates(b *testing.B) {
	cs := cachedCatalog(b, 100000)
	ix := Build(cs)
	g := newBenchGen(3)
	for i := 0; i < len(cs)/10; i += 100 {
		ups := make([]*campaign.Campaign, 100)
		for j := range ups {
			ups[j] = g.campaign(b, fmt.Sprintf("c-%d", g.r.IntN(len(cs))))
		}
		ix = ix.Update(ups, nil)
	}
	b.Logf("%+v", ix.Stats())
	reqs := benchRequests(256, ix)
	var dst []*campaign.Campaign
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		a := reqs[i&255]
		a.rix = nil
		dst = ix.Query(a, benchNow, dst[:0])
	}
}

// BenchmarkQueryParallel queries from every P at once, an Attrs each.
func BenchmarkQueryParallel(b *testing.B) {
	ix := Build(cachedCatalog(b, 100000))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		reqs := benchRequests(64, ix)
		var dst []*campaign.Campaign
		for i := 0; pb.Next(); i++ {
			a := reqs[i&63]
			a.rix = nil
			dst = ix.Query(a, benchNow, dst[:0])
		}
	})
}

// BenchmarkScan is the baseline: the brute-force evaluation of every
// campaign for the same requests.
func BenchmarkScan(b *testing.B) {
	for _, n := range benchSizes3 {
		b.Run(fmt.Sprintf("campaigns=%d", n), func(b *testing.B) {
			cs := cachedCatalog(b, n)
			reqs := benchRequests(256, nil)
			var dst []*campaign.Campaign
			matched := 0
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				dst = Scan(cs, reqs[i&255], benchNow, dst[:0])
				matched += len(dst)
			}
			b.ReportMetric(float64(matched)/float64(b.N), "matches/op")
		})
	}
}

// BenchmarkBuild builds the index from scratch and reports the heap it
// keeps per campaign (the index's own structures, not the campaigns).
func BenchmarkBuild(b *testing.B) {
	cs := cachedCatalog(b, 100000)
	b.Run(fmt.Sprintf("campaigns=%d", len(cs)), func(b *testing.B) {
		perCampaign := indexBytes(cs) / float64(len(cs))
		b.ReportAllocs()
		for b.Loop() {
			Build(cs)
		}
		b.ReportMetric(perCampaign, "B/campaign")
	})
}

// indexBytes measures the live heap an index of cs adds.
func indexBytes(cs []*campaign.Campaign) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	ix := Build(cs)
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(ix)
	return float64(after.HeapAlloc) - float64(before.HeapAlloc)
}

// BenchmarkUpdate applies one incremental upsert (a campaign replaced by a
// new version with new targeting) to a 100,000-campaign index, chaining
// the snapshots as the feed does, so compactions are included. Besides
// the mean (ns/op) it reports the distribution of single update latencies
// (p50, p99, max): run it with -benchtime=10000x for the worst case over
// 10,000 consecutive updates.
func BenchmarkUpdate(b *testing.B) {
	cs := cachedCatalog(b, 100000)
	b.Run(fmt.Sprintf("campaigns=%d", len(cs)), func(b *testing.B) {
		g := newBenchGen(5)
		ups := make([]*campaign.Campaign, 1024)
		for i := range ups {
			ups[i] = g.campaign(b, fmt.Sprintf("c-%d", g.r.IntN(len(cs))))
		}
		ix := Build(cs)
		rebuilds := 0
		lat := make([]time.Duration, 0, 1<<16)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			start := time.Now()
			nx := ix.Update(ups[i&1023:i&1023+1], nil)
			lat = append(lat, time.Since(start))
			if nx.updates == 0 || nx.Stats().Compactions != ix.Stats().Compactions {
				rebuilds++
			}
			ix = nx
		}
		b.StopTimer()
		slices.Sort(lat)
		q := func(f float64) float64 { return float64(lat[min(len(lat)-1, int(f*float64(len(lat))))].Microseconds()) }
		b.ReportMetric(float64(rebuilds), "compactions")
		b.ReportMetric(q(0.5), "p50-µs")
		b.ReportMetric(q(0.99), "p99-µs")
		b.ReportMetric(float64(lat[len(lat)-1].Microseconds()), "max-µs")
	})
}

// BenchmarkBuildMillion builds an index of 1,000,000 conjunctions
// (250,000 campaigns of 4 each); the bar is under 5 s per build.
func BenchmarkBuildMillion(b *testing.B) {
	g := newBenchGen(11)
	cs := make([]*campaign.Campaign, 250000)
	for i := range cs {
		c := g.campaign(b, fmt.Sprintf("m-%d", i))
		c.Status = campaign.StatusActive
		for len(c.Targeting.Any) < 4 {
			c.Targeting.Any = append(c.Targeting.Any, g.conj())
		}
		c.Targeting.Any = c.Targeting.Any[:4]
		cs[i] = c
	}
	b.ResetTimer()
	var ix *Index
	for b.Loop() {
		start := time.Now()
		ix = Build(cs)
		b.Logf("built %d conjunctions in %v", ix.Stats().Conjunctions, time.Since(start))
	}
	b.ReportMetric(float64(ix.Stats().Conjunctions), "conjunctions")
}

func BenchmarkParseUA(b *testing.B) {
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ParseUA(uaCases[i%len(uaCases)].ua)
	}
}

var aged sync.Map // n → *Index

// agedIndex returns an index of cs that took batches of incremental
// updates (1,000 campaigns each) until its dead conjunction ids are a few
// thousand short of the compaction threshold (dead > live).
func agedIndex(b *testing.B, cs []*campaign.Campaign) *Index {
	if ix, ok := aged.Load(len(cs)); ok {
		return ix.(*Index)
	}
	ix := Build(cs)
	g := newBenchGen(6)
	for {
		st := ix.Stats()
		if st.Dead+3000 > st.Conjunctions || st.Appended+3000 > st.Conjunctions/8 {
			break
		}
		ups := make([]*campaign.Campaign, 1000)
		for j := range ups {
			ups[j] = g.campaign(b, fmt.Sprintf("c-%d", g.r.IntN(len(cs))))
		}
		ix = ix.Update(ups, nil)
	}
	aged.Store(len(cs), ix)
	return ix
}

// BenchmarkUpdateLatency measures single-campaign updates, one after the
// other as the feed applies them, to a 100,000-campaign index that is a
// few thousand changes short of a compaction: a run of
// -benchtime=10000x crosses the threshold, so its max is the worst case
// over 10,000 consecutive updates, compaction included. It reports the
// wall-clock latency (p50, p99, p999, max) and, on Linux, the updating
// thread's CPU time (cpu-p50, cpu-p99, cpu-max), which leaves out the
// waits for a CPU that dominate wall-clock outliers on a shared machine.
func BenchmarkUpdateLatency(b *testing.B) {
	cs := cachedCatalog(b, 100000)
	start := agedIndex(b, cs)
	g := newBenchGen(7)
	ups := make([]*campaign.Campaign, 4096)
	for i := range ups {
		ups[i] = g.campaign(b, fmt.Sprintf("c-%d", g.r.IntN(len(cs))))
	}
	b.Run(fmt.Sprintf("campaigns=%d", len(cs)), func(b *testing.B) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		ix := start
		compactions := 0
		lat := make([]time.Duration, 0, 1<<14)
		cpu := make([]time.Duration, 0, 1<<14)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			t0, c0 := time.Now(), threadCPU()
			nx := ix.Update(ups[i&4095:i&4095+1], nil)
			cpu = append(cpu, threadCPU()-c0)
			lat = append(lat, time.Since(t0))
			if nx.Stats().Updates < ix.Stats().Updates {
				compactions++
			}
			ix = nx
		}
		b.StopTimer()
		b.ReportMetric(float64(compactions), "compactions")
		report := func(ds []time.Duration, prefix string, qs ...float64) {
			slices.Sort(ds)
			for _, q := range qs {
				name := fmt.Sprintf("%sp%g-µs", prefix, q*100)
				if q == 1 {
					name = prefix + "max-µs"
				}
				b.ReportMetric(float64(ds[min(len(ds)-1, int(q*float64(len(ds))))].Microseconds()), name)
			}
		}
		report(lat, "", 0.5, 0.99, 0.999, 1)
		if cpu[len(cpu)-1] > 0 {
			report(cpu, "cpu-", 0.5, 0.99, 1)
		}
		b.Logf("%d updates, %+v", len(lat), ix.Stats())
	})
}

// BenchmarkUpdateBootstrap is the feed's bootstrap: one batch of every
// campaign applied to the empty index.
func BenchmarkUpdateBootstrap(b *testing.B) {
	cs := cachedCatalog(b, 100000)
	b.Run(fmt.Sprintf("campaigns=%d", len(cs)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			Build(nil).Update(cs, nil)
		}
	})
}

// BenchmarkUpdateBulk is a bulk load through the tail: the catalog
// arrives in batches of 2,000 campaigns, applied one after the other from
// the empty index (background compactions included, on the machine's
// other cores).
func BenchmarkUpdateBulk(b *testing.B) {
	cs := cachedCatalog(b, 100000)
	b.Run(fmt.Sprintf("campaigns=%d", len(cs)), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ix := Build(nil)
			for i := 0; i < len(cs); i += 2000 {
				ix = ix.Update(cs[i:min(i+2000, len(cs))], nil)
			}
			b.ReportMetric(float64(ix.Stats().Appended), "appended")
		}
	})
}
