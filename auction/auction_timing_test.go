package auction

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/adserver/adserver/campaign"
)

// benchRequest builds a request of slots slots, each listing the same n
// campaigns (one per 5 shares an advertiser with another, a few in a
// higher tier, a third CPC, round CPM bids that tie) above a 0.5 floor.
func benchRequest(n, slots int) *Request {
	r := rand.New(rand.NewPCG(1, 2))
	cands := make([]Candidate, n)
	for i := range cands {
		model, amount := campaign.BidCPM, campaign.Micros(250_000*(1+r.IntN(16)))
		pctr := 0.0
		if i%3 == 0 {
			model, amount, pctr = campaign.BidCPC, campaign.Micros(50_000+r.IntN(500_000)), 0.002+0.02*r.Float64()
		}
		c := camp("c"+strconv.Itoa(i), "adv"+strconv.Itoa(i*4/5), i%17/16, model, amount)
		cands[i] = Candidate{Campaign: c, Creative: &c.Creatives[0], PCTR: pctr}
	}
	req := &Request{Floor: 500_000, Slots: make([]Slot, slots)}
	for s := range req.Slots {
		req.Slots[s] = Slot{ID: "s" + strconv.Itoa(s), Candidates: cands}
	}
	return req
}

func BenchmarkRun(b *testing.B) {
	for _, tc := range []struct{ n, slots int }{{50, 1}, {50, 3}, {200, 1}, {200, 3}} {
		b.Run(fmt.Sprintf("candidates=%d/slots=%d", tc.n, tc.slots), func(b *testing.B) {
			req := benchRequest(tc.n, tc.slots)
			rnd := rand.New(rand.NewPCG(3, 4))
			var a Auction
			b.ReportAllocs()
			for b.Loop() {
				if len(a.Run(req, rnd)) != tc.slots {
					b.Fatal("unfilled slot")
				}
			}
		})
	}
}

func BenchmarkRunParallel(b *testing.B) {
	req := benchRequest(50, 3)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		rnd := rand.New(rand.NewPCG(rand.Uint64(), 0))
		for pb.Next() {
			a := AcquireAuction()
			a.Run(req, rnd)
			ReleaseAuction(a)
		}
	})
}

// BenchmarkExplain is the debug/decision-log path: outcomes of every
// candidate, each rendered as text.
func BenchmarkExplain(b *testing.B) {
	req := benchRequest(50, 3)
	rnd := rand.New(rand.NewPCG(3, 4))
	var a Auction
	var outs []Outcome
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		a.Run(req, rnd)
		outs = a.AppendOutcomes(outs[:0])
		buf = buf[:0]
		for i := range outs {
			buf = append(outs[i].AppendText(buf), '\n')
		}
	}
}

func BenchmarkPickCreative(b *testing.B) {
	c := &campaign.Campaign{Creatives: make([]campaign.Creative, 8)}
	for i := range c.Creatives {
		c.Creatives[i] = campaign.Creative{W: 300, H: 250 + i%2, Weight: i}
	}
	rnd := rand.New(rand.NewPCG(1, 1))
	w, h := 300, 250
	b.ReportAllocs()
	for b.Loop() {
		PickCreative(c, func(cr *campaign.Creative) bool { return cr.W == w && cr.H == h }, rnd)
	}
}

func ctrFixture() (*CTRModel, []string) {
	var m CTRModel
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = "cr-" + strconv.Itoa(i)
		m.RecordImpression(ids[i], "p-1")
	}
	return &m, ids
}

func BenchmarkPredict(b *testing.B) {
	m, ids := ctrFixture()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		m.Predict(ids[i%len(ids)], "p-1")
		i++
	}
}

func BenchmarkPredictParallel(b *testing.B) {
	m, ids := ctrFixture()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(ids))
		for pb.Next() {
			m.Predict(ids[i%len(ids)], "p-1")
			i++
		}
	})
}

func BenchmarkRecordImpressionParallel(b *testing.B) {
	m, ids := ctrFixture()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(ids))
		for pb.Next() {
			m.RecordImpression(ids[i%len(ids)], "p-1")
			i++
		}
	})
}

func BenchmarkECPM(b *testing.B) {
	bid := campaign.Bid{Model: campaign.BidCPC, Amount: 1_234_567}
	b.ReportAllocs()
	var sink campaign.Micros
	for b.Loop() {
		sink += ECPM(bid, 0.00345)
	}
	_ = sink
}
