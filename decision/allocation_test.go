//go:build !race

package decision

import (
	mrand "math/rand/v2"
	"testing"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

// A decision with pacing and caps allocates nothing once its Result's
// buffers have grown (tracking URLs are not signed here: Sign is nil).
func TestDecideAllocatesNothing(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	cs := randomCatalog(t, rng, 500, 50, true)
	cat := &Catalog{Index: targeting.Build(cs), Placements: map[string]*campaign.Placement{}}
	e, _, _ := newTestEngine(t)
	reqs := make([]*Request, 64)
	for i := range reqs {
		reqs[i] = randomRequest(rng, i)
	}
	var res Result
	for _, req := range reqs { // grow the buffers
		res.Reset()
		e.Decide(req, cat, nil, testNow, &res)
	}
	i := 0
	if n := testing.AllocsPerRun(500, func() {
		res.Reset()
		e.Decide(reqs[i%len(reqs)], cat, nil, testNow, &res)
		i++
	}); n != 0 {
		t.Errorf("%v allocations per decision", n)
	}
}
