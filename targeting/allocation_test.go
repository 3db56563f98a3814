//go:build !race

package targeting

import (
	"testing"

	"github.com/adserver/adserver/campaign"
)

// TestAllocations pins the hot paths at zero allocations: a request's
// attributes filled into a reused Attrs (upper-case input included), its
// queries with a reused result slice (first slot and later slots, walking
// or counting every size, with priorities), the brute-force Scan, and
// ParseUA.
func TestAllocations(t *testing.T) {
	cs := benchCatalog(t, 10000)
	ix := Build(cs)
	a := new(Attrs)
	fill := func() {
		a.Reset()
		a.Add(campaign.IDCountry, "US")
		a.Add(campaign.IDDeviceType, "Mobile")
		a.Add(campaign.IDOS, "android")
		a.Add(campaign.IDSize, "300x250")
		for _, s := range []string{"seg1", "SEG2", "seg3", "seg27", "seg42"} {
			a.Add(campaign.IDSegment, s)
		}
		a.Add(campaign.IDKeyword, "kw3")
	}
	var dst []*campaign.Campaign
	var ms []Match
	fill()
	dst = ix.Query(a, benchNow, dst)
	checks := []struct {
		name string
		f    func()
	}{
		{"fill", fill},
		{"fill+Query", func() { fill(); dst = ix.Query(a, benchNow, dst[:0]) }},
		{"slot Query", func() { a.Set(campaign.IDSize, "728x90"); dst = ix.Query(a, benchNow, dst[:0]) }},
		{"QueryMatches", func() { ms = ix.QueryMatches(a, benchNow, ms[:0]) }},
		{"walking Query", func() { a.strategy = strategyWalk; dst = ix.Query(a, benchNow, dst[:0]); a.strategy = 0 }},
		{"counting Query", func() { a.strategy = strategyCount; dst = ix.Query(a, benchNow, dst[:0]); a.strategy = 0 }},
		{"Scan", func() { dst = Scan(cs, a, benchNow, dst[:0]) }},
		{"ParseUA", func() { ParseUA(uaCases[0].ua) }},
	}
	for _, c := range checks {
		c.f()
		if n := testing.AllocsPerRun(100, c.f); n != 0 {
			t.Errorf("%s: %v allocations per run, want 0", c.name, n)
		}
	}
	if len(dst) == 0 {
		t.Error("the request should match something")
	}
}
