package decision

import (
	"fmt"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

// reservePacer lets every campaign through Allow and refuses the
// reservations of the campaigns in refuse (headroom above zero but below
// one ad's cost), or the campaigns in exhausted at Allow already.
type reservePacer struct {
	refuse, exhausted map[string]bool
	reserves          []string // campaigns whose reservation was asked, in order
}

func (p *reservePacer) Allow(c *campaign.Campaign, now time.Time) (bool, string) {
	if p.exhausted[c.ID] {
		return false, "budget_exhausted"
	}
	return true, ""
}

func (p *reservePacer) Reserve(c *campaign.Campaign, cost campaign.Micros, now time.Time) bool {
	p.reserves = append(p.reserves, c.ID)
	return !p.refuse[c.ID]
}

func (p *reservePacer) Observe(string, time.Time) {}

// bidCatalog is one CPM campaign per advertiser, c-<bid in cents>, all
// matching every request, with a 300x250 banner.
func bidCatalog(t *testing.T, cents ...int) *Catalog {
	var cs []*campaign.Campaign
	for _, b := range cents {
		js := fmt.Sprintf(`{"id":"c-%d","advertiser_id":"adv-%d","status":"active","start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z",
			"budget":{"daily":1000},"bid":{"model":"cpm","amount":%d.%02d},"targeting":{},
			"creatives":[{"id":"cr-%d","format":"banner","w":300,"h":250,"html":"<a href='{{CLICK_URL}}'>x</a>","landing_url":"https://e.example/"}]}`,
			b, b, b/100, b%100, b)
		c, err := campaign.DecodeCampaign([]byte(js))
		if err != nil {
			t.Fatalf("%v\n%s", err, js)
		}
		cs = append(cs, c)
	}
	return &Catalog{Index: targeting.Build(cs), Placements: map[string]*campaign.Placement{}}
}

func oneSlotRequest() *Request {
	req := &Request{ID: "r", PlacementID: "p-1", UserID: "u-1", Country: "KR"}
	s := req.AddSlot()
	s.ID, s.Sizes = "s1", []Size{{300, 250}}
	return req
}

// A winner whose reservation fails (Allow let it through, its budget has
// room for less than this ad) gives the slot to the next candidate at the
// price of an auction without it, as if pacing had refused it from the
// start, in the lazy admission and in the debug path alike; the slot is not
// left unfilled.
func TestRefusedReservationGoesToNext(t *testing.T) {
	cat := bidCatalog(t, 500, 400, 300, 200, 100)
	for _, c := range []struct {
		name    string
		refuse  []string
		want    string // campaign of the ad, "" for none
		asked   int    // reservations asked
		noFill  string
		refused int // budget_exhausted exclusions in the debug answer
	}{
		{"none refused", nil, "c-500", 1, "", 0},
		{"winner refused", []string{"c-500"}, "c-400", 2, "", 1},
		{"two refused", []string{"c-500", "c-400"}, "c-300", 3, "", 2},
		{"all refused", []string{"c-500", "c-400", "c-300", "c-200", "c-100"}, "", maxRefusals + 1, NoFillNoWinner, maxRefusals + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, debug := range []bool{false, true} {
				refusing := &reservePacer{refuse: map[string]bool{}}
				exhausted := &reservePacer{exhausted: map[string]bool{}}
				for _, id := range c.refuse {
					refusing.refuse[id] = true
					exhausted.exhausted[id] = true
				}
				var got, ref Result
				req := oneSlotRequest()
				req.Debug = debug
				e, _, _ := newTestEngine(t)
				e.Capper = nil
				e.Pacer = refusing
				e.Decide(req, cat, nil, testNow, &got)
				// The reference: pacing refuses the same campaigns at Allow.
				e.Pacer = exhausted
				e.Decide(req, cat, nil, testNow, &ref)

				var campaignID string
				if len(got.Ads) == 1 {
					campaignID = got.Ads[0].Campaign.ID
				}
				if campaignID != c.want || len(got.Ads) > 1 || got.NoFill != c.noFill {
					t.Fatalf("debug %v: ads %v, no-fill %q; want %q, no-fill %q", debug, adKeys(&got), got.NoFill, c.want, c.noFill)
				}
				if len(refusing.reserves) != c.asked {
					t.Errorf("debug %v: reservations asked %v, want %d", debug, refusing.reserves, c.asked)
				}
				if c.want != "" && fmt.Sprint(adKeys(&got)) != fmt.Sprint(adKeys(&ref)) {
					t.Errorf("debug %v: %v, refused at Allow instead: %v", debug, adKeys(&got), adKeys(&ref))
				}
				if debug {
					n := 0
					for _, d := range got.Debug {
						if d.Stage == StagePacing && d.Reason == "budget_exhausted" {
							n++
						}
					}
					if n != c.refused {
						t.Errorf("debug answer explains %d refused reservations, want %d: %+v", n, c.refused, got.Debug)
					}
				}
			}
		})
	}
}
