package targeting

import (
	"fmt"
	"runtime"
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
// the snapshots as the feed does, so the amortized cost of compactions is
// included.
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
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; b.Loop(); i++ {
			ix = ix.Update(ups[i&1023:i&1023+1], nil)
			if ix.updates == 0 {
				rebuilds++
			}
		}
		b.ReportMetric(float64(rebuilds), "compactions")
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
