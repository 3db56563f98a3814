package auction

import (
	"math/rand/v2"
	"testing"

	"github.com/adserver/adserver/campaign"
)

func TestPickCreative(t *testing.T) {
	c := &campaign.Campaign{ID: "c", Creatives: []campaign.Creative{
		{ID: "w0", W: 300, H: 250},            // weight 0 counts as 1
		{ID: "w3", W: 300, H: 250, Weight: 3}, // three times as often
		{ID: "big", W: 728, H: 90, Weight: 100},
	}}
	fits := func(cr *campaign.Creative) bool { return cr.W == 300 && cr.H == 250 }
	rnd := rand.New(rand.NewPCG(5, 6))
	const n = 40_000
	got := map[string]int{}
	for range n {
		got[PickCreative(c, fits, rnd).ID]++
	}
	// Expect 10000 and 30000; 5 standard deviations is about ±430.
	if got["big"] != 0 || got["w0"] < 9_500 || got["w0"] > 10_500 || got["w3"] < 29_500 || got["w3"] > 30_500 {
		t.Errorf("rotation %v, want w0≈10000 w3≈30000 big=0", got)
	}

	if cr := PickCreative(c, func(cr *campaign.Creative) bool { return cr.W == 728 }, rnd); cr == nil || cr.ID != "big" {
		t.Errorf("only fitting creative: got %v", cr)
	}
	if cr := PickCreative(c, func(*campaign.Creative) bool { return false }, rnd); cr != nil {
		t.Errorf("nothing fits: got %v, want nil", cr)
	}
	if cr := PickCreative(&campaign.Campaign{}, nil, rnd); cr != nil {
		t.Errorf("no creatives: got %v, want nil", cr)
	}
	all := map[string]bool{}
	for range 1000 {
		all[PickCreative(c, nil, rnd).ID] = true
	}
	if len(all) != 3 {
		t.Errorf("nil fits picked %v, want all three", all)
	}
	// The same seed replays the same rotation.
	r1, r2 := rand.New(rand.NewPCG(9, 9)), rand.New(rand.NewPCG(9, 9))
	for i := range 100 {
		if PickCreative(c, fits, r1) != PickCreative(c, fits, r2) {
			t.Fatalf("draw %d differs for the same seed", i)
		}
	}
}

// TestPickCreativeImpureFits: a fits that answers true on the first pass
// and false on the second must not crash the picker.
func TestPickCreativeImpureFits(t *testing.T) {
	c := &campaign.Campaign{Creatives: []campaign.Creative{{ID: "a"}, {ID: "b"}}}
	calls := 0
	fits := func(*campaign.Creative) bool { calls++; return calls <= 2 }
	if cr := PickCreative(c, fits, rand.New(rand.NewPCG(1, 1))); cr != nil {
		t.Errorf("got %v, want nil when nothing fits on the second pass", cr.ID)
	}
}
