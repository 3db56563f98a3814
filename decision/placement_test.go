package decision

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

// observingPacer allows everything and records the placements observed.
type observingPacer struct{ observed []string }

func (p *observingPacer) Allow(*campaign.Campaign, time.Time) (bool, string) { return true, "" }
func (p *observingPacer) Reserve(*campaign.Campaign, campaign.Micros, time.Time) bool {
	return true
}
func (p *observingPacer) Observe(id string, _ time.Time) { p.observed = append(p.observed, id) }

func placementCampaign(t *testing.T, id, adv, placement string, bid string) *campaign.Campaign {
	t.Helper()
	c, err := campaign.DecodeCampaign([]byte(`{"id":"` + id + `","advertiser_id":"` + adv + `","status":"active",
		"start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z","budget":{"daily":100},
		"bid":{"model":"cpm","amount":` + bid + `},
		"targeting":{"any":[{"all":[{"attr":"placement","in":["` + placement + `"]}]}]},
		"creatives":[{"id":"cr-` + id + `","format":"banner","w":300,"h":250,"html":"x","landing_url":"https://e.example/","adomain":["` + adv + `.example"]}]}`))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Each slot is decided in its own placement: targeting, floor and price
// rule are the slot's placement's, pacing observes each placement once,
// and the ad names the slot's placement.
func TestSlotPlacements(t *testing.T) {
	cs := []*campaign.Campaign{
		placementCampaign(t, "a-first", "adv-a", "p-first", "3"),
		placementCampaign(t, "b-first", "adv-b", "p-first", "2"),
		placementCampaign(t, "c-second", "adv-c", "p-second", "2.5"),
		placementCampaign(t, "d-second", "adv-d", "p-second", "1"),
		placementCampaign(t, "e-floor", "adv-e", "p-floor", "1.9"),
	}
	cat := &Catalog{Index: targeting.Build(cs), Placements: map[string]*campaign.Placement{
		"p-first":  {ID: "p-first", Auction: "first", Floor: 500_000},
		"p-second": {ID: "p-second", Floor: 1_800_000},
		"p-floor":  {ID: "p-floor", Floor: 2_000_000},
	}}
	pacer := &observingPacer{}
	e := &Engine{NodeID: "n1", Seed: 7, Pacer: pacer}
	req := &Request{ID: "r", PlacementID: "p-first", UserID: "u"}
	for _, sp := range []struct{ id, placement string }{{"1", ""}, {"2", "p-second"}, {"3", "p-floor"}, {"4", "p-second"}} {
		s := req.AddSlot()
		s.ID, s.PlacementID = sp.id, sp.placement
		s.Sizes = append(s.Sizes, Size{300, 250})
	}
	var res Result
	e.Decide(req, cat, nil, testNow, &res)

	if want := []string{"p-first", "p-second", "p-floor"}; !slices.Equal(pacer.observed, want) {
		t.Errorf("observed %v, want %v", pacer.observed, want)
	}
	type got struct {
		slot, campaign string
		price          campaign.Micros
		placement      string
	}
	var ads []got
	for _, a := range res.Ads {
		ads = append(ads, got{a.SlotID, a.Campaign.ID, a.Price, req.SlotPlacement(a.SlotIndex)})
	}
	want := []got{
		// p-first is first price: a-first pays its bid.
		{"1", "a-first", 3_000_000, "p-first"},
		// p-second is second price with a 1.80 floor: d-second (1.00) is
		// below it, so c-second pays the floor plus a cent.
		{"2", "c-second", 1_810_000, "p-second"},
		// Slot 3's e-floor (1.90) is below p-floor's 2.00; slot 4's only
		// candidate above the floor, c-second, has won slot 2.
	}
	if !slices.Equal(ads, want) {
		t.Errorf("ads %+v, want %+v", ads, want)
	}
}

// Long block lists (an OpenRTB bcat/badv can hold thousands of entries)
// still block exactly the listed domains and categories, in any order.
func TestLongBlockLists(t *testing.T) {
	cs := []*campaign.Campaign{
		placementCampaign(t, "a", "adv-a", "p-1", "3"),
		placementCampaign(t, "b", "adv-b", "p-1", "2"),
	}
	cs[0].Categories = []string{"IAB7-1"}
	cat := &Catalog{Index: targeting.Build(cs), Placements: map[string]*campaign.Placement{}}
	e := &Engine{NodeID: "n1", Seed: 7}
	winner := func(blockedDomains, blockedCats []string) string {
		req := &Request{ID: "r", PlacementID: "p-1", BlockedDomains: blockedDomains, BlockedCats: blockedCats}
		s := req.AddSlot()
		s.ID = "1"
		s.Sizes = append(s.Sizes, Size{300, 250})
		var res Result
		e.Decide(req, cat, nil, testNow, &res)
		if len(res.Ads) == 0 {
			return ""
		}
		return res.Ads[0].Campaign.ID
	}
	long := func(extra ...string) []string {
		l := make([]string, 0, 5000)
		for i := range 5000 {
			l = append(l, "zz"+strconv.Itoa(5000-i)+".example")
		}
		return append(append(l[:2500:2500], extra...), l[2500:]...)
	}
	if got := winner(long(), nil); got != "a" {
		t.Errorf("nothing of theirs blocked: winner %q, want a", got)
	}
	if got := winner(long("adv-a.example"), nil); got != "b" {
		t.Errorf("adv-a.example blocked among 5000: winner %q, want b", got)
	}
	if got := winner(long("adv-b.example", "adv-a.example"), nil); got != "" {
		t.Errorf("both blocked: winner %q, want none", got)
	}
	if got := winner(nil, long()); got != "a" {
		t.Errorf("5000 categories, none theirs: winner %q, want a", got)
	}
	if got := winner(nil, long("IAB7-1")); got != "b" {
		t.Errorf("a's category blocked among 5000: winner %q, want b", got)
	}
}
