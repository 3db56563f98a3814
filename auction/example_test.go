package auction_test

import (
	"fmt"
	"math/rand/v2"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
)

// The server's /v1/ad path for a request with two slots: pick a fitting
// creative per (campaign, slot), predict its CTR, run the auction, read the
// wins (and, in debug mode, the outcomes).
func ExampleAuction_Run() {
	banner := func(id string, w, h int) campaign.Creative {
		return campaign.Creative{ID: id, Format: campaign.FormatBanner, W: w, H: h}
	}
	eligible := []*campaign.Campaign{ // after targeting, pacing, caps and blocks
		{ID: "c-1", AdvertiserID: "adv-1", Bid: campaign.Bid{Model: campaign.BidCPM, Amount: 2_500_000},
			Creatives: []campaign.Creative{banner("cr-1", 300, 250), banner("cr-2", 728, 90)}},
		{ID: "c-2", AdvertiserID: "adv-2", Bid: campaign.Bid{Model: campaign.BidCPC, Amount: 400_000},
			Creatives: []campaign.Creative{banner("cr-3", 300, 250)}},
		{ID: "c-3", AdvertiserID: "adv-3", Bid: campaign.Bid{Model: campaign.BidCPM, Amount: 1_000_000},
			Creatives: []campaign.Creative{banner("cr-4", 728, 90)}},
		{ID: "c-4", AdvertiserID: "adv-2", Bid: campaign.Bid{Model: campaign.BidCPM, Amount: 3_000_000},
			Creatives: []campaign.Creative{banner("cr-5", 728, 90)}},
	}
	placement := &campaign.Placement{ID: "p-1", Floor: 500_000}
	slots := []struct {
		id    string
		w, h  int
		floor campaign.Micros
	}{{"s1", 300, 250, 0}, {"s2", 728, 90, 800_000}}

	var ctr auction.CTRModel // one per process, fed by the click and impression beacons
	for range 1000 {
		ctr.RecordImpression("cr-3", "p-1")
	}
	for range 10 {
		ctr.RecordClick("cr-3", "p-1")
	}

	rnd := rand.New(rand.NewPCG(1, 2)) // per worker; seeded for replay
	req := &auction.Request{Rule: auction.RuleOf(placement), Floor: placement.Floor}
	for _, s := range slots {
		slot := auction.Slot{ID: s.id, Floor: s.floor}
		for _, c := range eligible {
			cr := auction.PickCreative(c, func(cr *campaign.Creative) bool { return cr.W == s.w && cr.H == s.h }, rnd)
			if cr != nil {
				slot.Candidates = append(slot.Candidates, auction.Candidate{Campaign: c, Creative: cr, PCTR: ctr.Predict(cr.ID, placement.ID)})
			}
		}
		req.Slots = append(req.Slots, slot)
	}

	a := auction.AcquireAuction()
	defer auction.ReleaseAuction(a)
	for _, w := range a.Run(req, rnd) {
		fmt.Printf("%s: %s/%s pays %v (%s), clearing eCPM %v\n", w.SlotID, w.Candidate.Campaign.ID,
			w.Candidate.Creative.ID, w.Price, w.Candidate.Campaign.Bid.Model, w.ClearingECPM)
	}
	for _, o := range a.AppendOutcomes(nil) { // debug mode only
		fmt.Println(o)
	}
	// Output:
	// s1: c-2/cr-3 pays 0.273819 (cpc), clearing eCPM 2.51
	// s2: c-1/cr-2 pays 1.01 (cpm), clearing eCPM 1.01
	// c-1/cr-1 slot s1: lost to c-2 (priority 0, eCPM 3.666666); own priority 0, eCPM 2.5
	// c-2/cr-3 slot s1: won at 0.273819 per click (clearing eCPM 2.51, eCPM 3.666666, reserve 0.5)
	// c-1/cr-2 slot s2: won at 1.01 per mille (clearing eCPM 1.01, eCPM 2.5, reserve 0.8)
	// c-3/cr-4 slot s2: lost to c-1 (priority 0, eCPM 2.5); own priority 0, eCPM 1
	// c-4/cr-5 slot s2: excluded: advertiser adv-2 already won slot s1 with c-2
}

// The OpenRTB path: the server is a bidder. It runs the same internal
// auction per impression and bids the winner's eCPM to a second-price
// exchange (at=2) or its internal clearing price to a first-price one
// (at=1). OpenRTB prices are CPM.
func ExampleWin_RTBBid() {
	c1 := &campaign.Campaign{ID: "c-1", AdvertiserID: "adv-1", Bid: campaign.Bid{Model: campaign.BidCPM, Amount: 2_500_000}}
	c2 := &campaign.Campaign{ID: "c-2", AdvertiserID: "adv-2", Bid: campaign.Bid{Model: campaign.BidCPM, Amount: 1_200_000}}
	imp := auction.Slot{ID: "imp-1", Floor: 300_000, // imp.bidfloor
		Candidates: []auction.Candidate{{Campaign: c1}, {Campaign: c2}}}
	var a auction.Auction
	for _, w := range a.Run(&auction.Request{Slots: []auction.Slot{imp}}, nil) {
		fmt.Println("at=1 bid:", w.RTBBid(auction.RTBFirstPrice))
		fmt.Println("at=2 bid:", w.RTBBid(auction.RTBSecondPrice))
	}
	// Output:
	// at=1 bid: 1.21
	// at=2 bid: 2.5
}
