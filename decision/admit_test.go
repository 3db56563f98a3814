package decision

import (
	"fmt"
	mrand "math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

// hashPacer refuses a fixed, pseudo-random fifth of the campaigns (by id)
// and counts its calls.
type hashPacer struct{ allows atomic.Int64 }

// idHash is FNV-1a, inline so that it allocates nothing.
func idHash(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h
}

func (p *hashPacer) Allow(c *campaign.Campaign, now time.Time) (bool, string) {
	p.allows.Add(1)
	if idHash(c.ID)%5 == 0 {
		return false, "throttled"
	}
	return true, ""
}
func (p *hashPacer) Reserve(*campaign.Campaign, campaign.Micros, time.Time) bool { return true }
func (p *hashPacer) Observe(string, time.Time)                                   {}

// hashCapper caps a fixed third of the (user, campaign) pairs.
type hashCapper struct{ calls atomic.Int64 }

func (k *hashCapper) Allows(user string, c *campaign.Campaign, now time.Time) bool {
	k.calls.Add(1)
	return (idHash(user)^idHash(c.ID))%3 != 0
}
func (k *hashCapper) Record(string, *campaign.Campaign, time.Time) {}

// randomCatalog makes n campaigns of a few advertisers with distinct bids
// (so the auction has no ties), mixed priorities, CPM and CPC, caps, and one
// or two banners of one size each; about half match any given request.
func randomCatalog(t testing.TB, rng *mrand.Rand, n, advertisers int, distinct bool) []*campaign.Campaign {
	sizes := [][2]int{{300, 250}, {728, 90}, {320, 50}}
	countries := []string{"KR", "US", "JP"}
	cs := make([]*campaign.Campaign, n)
	for i := range cs {
		model, amount := "cpm", 0.5+float64(i)*0.013
		if !distinct {
			amount = 1
		} else if i%4 == 0 {
			model, amount = "cpc", 0.05+float64(i)*0.0071
		}
		tgt := `{}`
		if i%7 != 0 {
			tgt = fmt.Sprintf(`{"any":[{"all":[{"attr":"country","in":[%q,%q]}]}]}`,
				countries[rng.IntN(3)], countries[rng.IntN(3)])
		}
		capJS := ""
		if i%3 == 0 {
			capJS = `"frequency_cap":{"count":2,"window":"1h"},`
		}
		var crs string
		z := sizes[rng.IntN(len(sizes))] // one size: a campaign fits one slot of a request
		for k := range 1 + rng.IntN(2) {
			if k > 0 {
				crs += ","
			}
			crs += fmt.Sprintf(`{"id":"cr-%d-%d","format":"banner","w":%d,"h":%d,"html":"<a href='{{CLICK_URL}}'>x</a>","landing_url":"https://e.example/","adomain":["a%d.example"]}`,
				i, k, z[0], z[1], i%advertisers)
		}
		prio := 1 + rng.IntN(3)
		if !distinct {
			prio = 1
		}
		if i%5 == 0 {
			capJS += fmt.Sprintf(`"deals":["d-%d"],`, i%2) // set up for a deal
		}
		js := fmt.Sprintf(`{"id":"c-%d","advertiser_id":"adv-%d","status":"active","start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z",
			"budget":{"daily":1000},"bid":{"model":%q,"amount":%.4f},%s"priority":%d,"targeting":%s,"creatives":[%s]}`,
			i, i%advertisers, model, amount, capJS, prio, tgt, crs)
		c, err := campaign.DecodeCampaign([]byte(js))
		if err != nil {
			t.Fatalf("campaign %d: %v\n%s", i, err, js)
		}
		cs[i] = c
	}
	return cs
}

func randomRequest(rng *mrand.Rand, i int) *Request {
	req := &Request{
		ID: fmt.Sprintf("r-%d", i), PlacementID: "p-1", UserID: fmt.Sprintf("u-%d", rng.IntN(50)),
		Country: []string{"KR", "US", "JP"}[rng.IntN(3)],
	}
	// One size per slot, none shared: a campaign is a candidate of one slot
	// only (one campaign in two slots would tie with itself, which the
	// auction breaks at random).
	sizes := []Size{{300, 250}, {728, 90}, {320, 50}}
	first := rng.IntN(3)
	for k := range 1 + rng.IntN(3) {
		s := req.AddSlot()
		s.ID = fmt.Sprintf("s%d", k)
		s.Sizes = append(s.Sizes, sizes[(first+k)%3])
		s.Floor = campaign.Micros(rng.IntN(3)) * 1_000_000
		if rng.IntN(3) == 0 {
			s.PlacementID = "p-2" // testPlacements: its own floor and rule
		}
		if rng.IntN(3) == 0 {
			s.PrivateAuction = rng.IntN(2) == 0
			for d := range 2 {
				s.Deals = append(s.Deals, fmt.Sprintf("d-%d", d))
				s.DealFloors = append(s.DealFloors, campaign.Micros(rng.IntN(3))*1_500_000)
			}
		}
	}
	return req
}

// testPlacements are the placements randomRequest names.
func testPlacements() map[string]*campaign.Placement {
	return map[string]*campaign.Placement{
		"p-1": {ID: "p-1", Floor: 200_000},
		"p-2": {ID: "p-2", Floor: 1_500_000, Auction: "first"},
	}
}

func newTestEngine(t testing.TB) (*Engine, *hashPacer, *hashCapper) {
	ctr, err := auction.NewCTRModel(auction.CTRConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, k := &hashPacer{}, &hashCapper{}
	return &Engine{NodeID: "n1", Seed: 7, CTR: ctr, Pacer: p, Capper: k}, p, k
}

type adKey struct {
	slot, campaign string
	price, clear   campaign.Micros
}

func adKeys(res *Result) []adKey {
	var ks []adKey
	for _, a := range res.Ads {
		ks = append(ks, adKey{a.SlotID, a.Campaign.ID, a.Price, a.ClearingECPM})
	}
	return ks
}

// The lazy admission picks the same winners at the same prices as checking
// every candidate (the debug path), while asking pacing and caps far less.
func TestLazyAdmissionMatchesEager(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	for round := range 20 {
		cs := randomCatalog(t, rng, 300, 5+rng.IntN(40), true)
		cat := &Catalog{Index: targeting.Build(cs), Placements: testPlacements()}
		e, p, k := newTestEngine(t)
		var lazyCalls, eagerCalls int64
		for i := range 50 {
			req := randomRequest(rng, i)
			var lazy, eager Result
			before := p.allows.Load() + k.calls.Load()
			e.Decide(req, cat, nil, testNow, &lazy)
			mid := p.allows.Load() + k.calls.Load()
			req.Debug = true
			e.Decide(req, cat, nil, testNow, &eager)
			lazyCalls += mid - before
			eagerCalls += p.allows.Load() + k.calls.Load() - mid
			if got, want := adKeys(&lazy), adKeys(&eager); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d request %d: lazy admission gave %v, checking every candidate %v", round, i, got, want)
			}
			if (lazy.NoFill == "") != (eager.NoFill == "") {
				t.Fatalf("round %d request %d: no-fill %q vs %q", round, i, lazy.NoFill, eager.NoFill)
			}
		}
		if lazyCalls*3 > eagerCalls {
			t.Errorf("round %d: %d pacing and cap checks, checking every candidate made %d", round, lazyCalls, eagerCalls)
		}
	}
}

// Candidates tied with the last one admitted are all admitted: the
// auction's random tie-break must see every one of them.
func TestLazyAdmissionKeepsTies(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(3, 4))
	cs := randomCatalog(t, rng, 60, 60, false) // one price, one priority, all advertisers distinct
	cat := &Catalog{Index: targeting.Build(cs), Placements: map[string]*campaign.Placement{}}
	e, _, _ := newTestEngine(t)
	req := &Request{ID: "r", UserID: "u-1", Country: "KR"}
	s := req.AddSlot()
	s.ID, s.Sizes = "s1", []Size{{300, 250}}
	var res Result
	e.Decide(req, cat, nil, testNow, &res)
	want := 0
	for _, c := range cs {
		if c.Bid.Model == campaign.BidCPM && fitsAny(c, s) && e.costlyIneligible(req, c, testNow) == "" &&
			targetingMatchesKR(c) {
			want++
		}
	}
	if got := len(res.auction.Slots[0].Candidates); got != want || want < 10 {
		t.Errorf("%d candidates reached the auction, want all %d tied ones", got, want)
	}
	if len(res.Ads) != 1 {
		t.Errorf("%d ads", len(res.Ads))
	}
}

func targetingMatchesKR(c *campaign.Campaign) bool {
	if len(c.Targeting.Any) == 0 {
		return true
	}
	for _, v := range c.Targeting.Any[0].All[0].In {
		if v == "kr" || v == "KR" {
			return true
		}
	}
	return false
}

// The cheap filters (pauses, blocks) run per priority tier in the lazy
// admission, only on the tiers it reaches: the winners, their prices and
// the no-fill reason (blocked when every candidate reached was blocked)
// are still those of checking every candidate. Pacing and caps are off
// here: they count a candidate as passed at different stages in the two
// paths, which may change the reason between no_winner and blocked.
func TestLazyAdmissionFilters(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(5, 6))
	reasons := map[string]int{}
	for round := range 20 {
		advertisers := 5 + rng.IntN(40)
		cs := randomCatalog(t, rng, 300, advertisers, true)
		cat := &Catalog{Index: targeting.Build(cs), Placements: map[string]*campaign.Placement{}}
		e, _, _ := newTestEngine(t)
		e.Pacer, e.Capper = nil, nil
		for i := range 50 {
			req := randomRequest(rng, i)
			sw := &Switches{Serving: true, Charging: true,
				PausedCampaigns: map[string]bool{}, PausedAdvertisers: map[string]bool{}}
			for range rng.IntN(100) {
				sw.PausedCampaigns[fmt.Sprintf("c-%d", rng.IntN(len(cs)))] = true
			}
			for range rng.IntN(3) {
				sw.PausedAdvertisers[fmt.Sprintf("adv-%d", rng.IntN(advertisers))] = true
			}
			share := rng.Float64() // of the advertisers blocked
			for a := range advertisers {
				if rng.Float64() < share {
					req.BlockedDomains = append(req.BlockedDomains, fmt.Sprintf("a%d.example", a))
				}
			}
			var lazy, eager Result
			e.Decide(req, cat, sw, testNow, &lazy)
			req.Debug = true
			e.Decide(req, cat, sw, testNow, &eager)
			if got, want := adKeys(&lazy), adKeys(&eager); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("round %d request %d: lazy admission gave %v, checking every candidate %v", round, i, got, want)
			}
			if lazy.NoFill != eager.NoFill {
				t.Fatalf("round %d request %d: no-fill %q, checking every candidate %q", round, i, lazy.NoFill, eager.NoFill)
			}
			reasons[lazy.NoFill]++
		}
	}
	if reasons[NoFillBlocked] == 0 || reasons[""] == 0 {
		t.Errorf("outcomes %v: want fills and blocked no-fills", reasons)
	}
	t.Logf("outcomes: %v", reasons)
}

// The index's creative bits never drop a campaign with a creative that
// fits the slot (fitsAny is the truth), and never admit one without when
// they are exact; the common sizes get exact bits of their own.
func TestSlotBits(t *testing.T) {
	rng := mrand.New(mrand.NewPCG(7, 8))
	var sizes []Size
	for z := range commonSizes {
		sizes = append(sizes, z)
	}
	for range 50 {
		sizes = append(sizes, Size{1 + rng.IntN(2000), 1 + rng.IntN(2000)})
	}
	bits := map[uint64]Size{}
	for z := range commonSizes {
		b, exact := targeting.CreativeBit(false, z.W, z.H)
		if !exact {
			t.Errorf("size %v: not exact", z)
		}
		if o, ok := bits[b]; ok {
			t.Errorf("sizes %v and %v share a bit", z, o)
		}
		bits[b] = z
	}
	filtered, exacts := 0, 0
	for range 20000 {
		c := &campaign.Campaign{}
		for range 1 + rng.IntN(3) {
			cr := campaign.Creative{Format: campaign.FormatBanner}
			if rng.IntN(5) == 0 {
				cr.Format, cr.Duration = campaign.FormatVideo, 5+rng.IntN(30)
			}
			z := sizes[rng.IntN(len(sizes))]
			cr.W, cr.H = z.W, z.H
			c.Creatives = append(c.Creatives, cr)
		}
		s := &Slot{Video: rng.IntN(4) == 0}
		if s.Video && rng.IntN(2) == 0 {
			s.MinDuration, s.MaxDuration = 10, 20
		}
		for range 1 + rng.IntN(3) {
			s.Sizes = append(s.Sizes, sizes[rng.IntN(len(sizes))])
		}
		fit, exact := slotBits(s)
		may, fits := targeting.CreativeBits(c)&fit != 0, fitsAny(c, s)
		if fits && !may {
			t.Fatalf("creatives %+v fit slot %+v, but their bits miss it", c.Creatives, s)
		}
		if exact && may && !fits {
			t.Fatalf("creatives %+v do not fit slot %+v, but its exact bits meet theirs", c.Creatives, s)
		}
		if !may {
			filtered++
		}
		if exact {
			exacts++
		}
	}
	if filtered < 5000 || exacts < 2000 {
		t.Errorf("of 20000 campaigns, the bits ruled out only %d, and were exact for %d", filtered, exacts)
	}
}
