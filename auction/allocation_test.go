//go:build !race

package auction

import (
	"math/rand/v2"
	"testing"

	"github.com/adserver/adserver/campaign"
)

func TestRunAllocatesNothing(t *testing.T) {
	for _, slots := range []int{1, 3} {
		req := benchRequest(50, slots)
		rnd := rand.New(rand.NewPCG(1, 2))
		var a Auction
		a.Run(req, rnd) // grow the buffers
		if n := testing.AllocsPerRun(200, func() { a.Run(req, rnd) }); n != 0 {
			t.Errorf("Run, %d slots: %v allocs, want 0", slots, n)
		}
		if n := testing.AllocsPerRun(200, func() {
			a := AcquireAuction()
			a.Run(req, rnd)
			ReleaseAuction(a)
		}); n != 0 {
			t.Errorf("pooled Run, %d slots: %v allocs, want 0", slots, n)
		}
	}
}

func TestExplainAllocatesNothing(t *testing.T) {
	req := benchRequest(50, 3)
	var a Auction
	a.Run(req, nil)
	outs := a.AppendOutcomes(nil)
	buf := make([]byte, 0, 64<<10)
	if n := testing.AllocsPerRun(100, func() {
		outs = a.AppendOutcomes(outs[:0])
		buf = buf[:0]
		for i := range outs {
			buf = outs[i].AppendText(buf)
		}
	}); n != 0 {
		t.Errorf("AppendOutcomes+AppendText: %v allocs, want 0", n)
	}
}

func TestPredictAllocatesNothing(t *testing.T) {
	var m CTRModel
	m.RecordImpression("cr", "p-1")
	m.RecordImpression("cr2", "")
	cr, pl := string([]byte("cr")), string([]byte("p-1")) // not constants
	for _, k := range [][2]string{{cr, pl}, {cr, "p-2"}, {"cr2", pl}, {"nobody", pl}, {cr, ""}} {
		if n := testing.AllocsPerRun(1000, func() { m.Predict(k[0], k[1]) }); n != 0 {
			t.Errorf("Predict(%q, %q): %v allocs, want 0", k[0], k[1], n)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { m.RecordImpression(cr, pl); m.RecordClick(cr, pl) }); n != 0 {
		t.Errorf("recording a known pair: %v allocs, want 0", n)
	}
}

func TestPickCreativeAllocatesNothing(t *testing.T) {
	c := &campaign.Campaign{Creatives: []campaign.Creative{{W: 300, H: 250}, {W: 300, H: 250, Weight: 2}}}
	rnd := rand.New(rand.NewPCG(1, 1))
	w, h := 300, 250
	if n := testing.AllocsPerRun(1000, func() {
		PickCreative(c, func(cr *campaign.Creative) bool { return cr.W == w && cr.H == h }, rnd)
	}); n != 0 {
		t.Errorf("PickCreative: %v allocs, want 0", n)
	}
}
