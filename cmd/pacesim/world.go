package main

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/pacing"
)

// The simulated market: four placements, four countries, a pool of users
// with skewed activity, and a catalog of campaigns bidding on them.
var (
	placements     = []string{"p-news", "p-games", "p-video", "p-social"}
	placementShare = []float64{0.35, 0.30, 0.15, 0.20}
	placementFloor = []campaign.Micros{300_000, 200_000, 800_000, 250_000} // CPM
	countries      = []string{"KR", "US", "CN", "DE"}
	countryShare   = []float64{0.30, 0.25, 0.25, 0.20}
	timezones      = []string{"Asia/Shanghai", "America/New_York", "Asia/Seoul", "Europe/Berlin", "UTC"}
)

const (
	renderRate   = 0.95             // share of won decisions whose impression beacon comes back
	maxBeaconLag = 3 * time.Second  // impression beacons arrive within this
	clickLagMean = 8 * time.Second  // clicks arrive after an exponential delay...
	maxClickLag  = 50 * time.Second // ...capped here
	userPool     = 200_000
)

// Budget classes: the daily budget as a share of what the campaign could
// win in a day of the warm-up auction with every campaign bidding.
var budgetClasses = []struct {
	name   string
	factor float64
}{
	{"loose", 0.25},  // traffic 4x the budget
	{"tight", 0.80},  // traffic 1.25x the budget
	{"burst", 0.004}, // asap: the budget is gone in minutes
	{"starved", 1.5},
}

// classOf assigns budget classes over the catalog: even campaigns
// alternate loose and tight; asap ones cycle burst, tight, loose, starved.
func classOf(i int) string {
	if i%3 != 2 {
		return []string{"loose", "tight"}[(i/3+i)%2]
	}
	return []string{"burst", "tight", "loose", "starved"}[(i/3)%4]
}

type simCampaign struct {
	c     *campaign.Campaign
	ctr   float64 // CPC: the true (and predicted) click-through rate
	ecpm  int64   // bid as micros per 1000 impressions
	class string
	// potential is the expected spend per day of the warm-up auction, in
	// which no campaign is paced: a lower bound of the campaign's demand.
	potential float64
	// spend by unix quarter-hour, as charged (the simulator's ledger).
	spend   map[int64]int64
	charges map[int64]int64
	plans   map[pacing.Day]*pacing.Plan
}

type world struct {
	rng       *rand.Rand
	campaigns []*simCampaign
	// eligible[placement][country] lists the campaigns whose targeting
	// matches.
	eligible [][][]int
	traffic  [24]float64
}

func pick(r *rand.Rand, shares []float64) int {
	x := r.Float64()
	for i, s := range shares {
		if x < s {
			return i
		}
		x -= s
	}
	return len(shares) - 1
}

// newWorld builds a deterministic catalog of n campaigns whose flight
// covers [from, to). Budgets are set later from the warm-up.
func newWorld(seed uint64, n int, from, to time.Time) (*world, error) {
	w := &world{rng: rand.New(rand.NewPCG(seed, 0x5eed)), traffic: pacing.ReferenceTraffic()}
	r := rand.New(rand.NewPCG(seed, 0xca7a))
	for i := 0; i < n; i++ {
		sc := &simCampaign{spend: make(map[int64]int64), charges: make(map[int64]int64), plans: make(map[pacing.Day]*pacing.Plan)}
		pacingMode := campaign.PacingEven
		if i%3 == 2 {
			pacingMode = campaign.PacingASAP
		}
		model := campaign.BidCPM
		var bid campaign.Micros
		if i%4 == 3 {
			model = campaign.BidCPC
			sc.ctr = 0.02 + 0.02*r.Float64()
			bid = campaign.Micros(60_000 + r.Int64N(40_000)) // 0.06..0.10
			sc.ecpm = int64(float64(bid) * sc.ctr * 1000)
		} else {
			bid = campaign.Micros(1_500_000 + r.Int64N(1_500_000)) // CPM 1.5..3
			sc.ecpm = int64(bid)
		}
		sc.class = classOf(i)
		var targeting campaign.Targeting
		var conj campaign.Conjunction
		if k := 1 + r.IntN(3); k < len(countries) {
			perm := r.Perm(len(countries))[:k]
			var in campaign.Values
			for _, j := range perm {
				in = append(in, countries[j])
			}
			conj.All = append(conj.All, campaign.Predicate{Attr: campaign.AttrCountry, In: in})
		}
		if i%5 == 1 {
			conj.All = append(conj.All, campaign.Predicate{Attr: campaign.AttrPlacement,
				In: campaign.Values{placements[r.IntN(len(placements))], placements[r.IntN(len(placements))]}})
		}
		if len(conj.All) > 0 {
			targeting.Any = []campaign.Conjunction{conj}
		}
		var fcap *campaign.FrequencyCap
		if i%3 == 1 {
			fcap = &campaign.FrequencyCap{Count: 5 + r.IntN(10), Window: campaign.Duration(24 * time.Hour)}
		}
		c := &campaign.Campaign{
			ID: fmt.Sprintf("c-%02d", i), AdvertiserID: "adv-sim", Status: campaign.StatusActive,
			Start: from, End: to, Timezone: timezones[i%len(timezones)],
			Budget: campaign.Budget{Daily: 1}, Pacing: pacingMode,
			Bid:          campaign.Bid{Model: model, Amount: bid},
			FrequencyCap: fcap, Targeting: targeting,
			Creatives: []campaign.Creative{{ID: "cr", Format: campaign.FormatBanner, W: 300, H: 250,
				HTML: "<b>ad</b>", LandingURL: "https://example.com/"}},
		}
		if err := c.Validate(); err != nil {
			return nil, fmt.Errorf("BUG: generated campaign %s: %w", c.ID, err)
		}
		sc.c = c
		w.campaigns = append(w.campaigns, sc)
	}
	w.eligible = make([][][]int, len(placements))
	for p := range placements {
		w.eligible[p] = make([][]int, len(countries))
		for k := range countries {
			for i, sc := range w.campaigns {
				if matches(sc.c, placements[p], countries[k]) {
					w.eligible[p][k] = append(w.eligible[p][k], i)
				}
			}
		}
	}
	return w, nil
}

func matches(c *campaign.Campaign, placement, country string) bool {
	if len(c.Targeting.Any) == 0 {
		return true
	}
	for _, conj := range c.Targeting.Any {
		ok := true
		for _, p := range conj.All {
			v := country
			if p.Attr == campaign.AttrPlacement {
				v = placement
			}
			found := false
			for _, x := range p.In {
				found = found || strings.EqualFold(x, v)
			}
			ok = ok && found
		}
		if ok {
			return true
		}
	}
	return false
}

// rate returns the mean requests per second at t: rps times the traffic
// curve, linearly interpolated between the centers of the UTC hours.
func (w *world) rate(t time.Time, rps float64) float64 {
	s := float64(t.Unix()%86400)/3600 - 0.5
	if s < 0 {
		s += 24
	}
	h := int(s)
	f := s - float64(h)
	share := w.traffic[h%24]*(1-f) + w.traffic[(h+1)%24]*f
	return rps * 24 * share
}

// poisson draws a Poisson variate (normal approximation above 30).
func poisson(r *rand.Rand, lambda float64) int {
	if lambda > 30 {
		return max(int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())), 0)
	}
	l, k, p := math.Exp(-lambda), 0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// request is one simulated ad request.
type request struct {
	at        time.Time
	placement int
	country   int
	user      int
}

func (w *world) newRequest(at time.Time) request {
	u := w.rng.Float64()
	return request{at: at, placement: pick(w.rng, placementShare), country: pick(w.rng, countryShare),
		user: int(u * u * userPool)}
}

// bidSpread is the spread (log-normal sigma) of a campaign's value across
// requests: its CPM bid, or for CPC its predicted click rate, is the
// campaign's base value times exp(bidSpread * N(0,1)). Without it the
// highest bidder would win every auction it enters.
const bidSpread = 0.5

// bid is one candidate of an auction.
type bid struct {
	idx  int
	ecpm int64   // this request's value, CPM micros
	m    float64 // this request's multiplier of the campaign's base value
}

func (w *world) candidate(i int) bid {
	m := math.Exp(bidSpread * w.rng.NormFloat64())
	return bid{idx: i, ecpm: int64(float64(w.campaigns[i].ecpm) * m), m: m}
}

// price returns the second price (CPM micros) for the candidate at i of a
// list sorted by eCPM, never above its own bid.
func secondPrice(cands []bid, i int, floor int64) int64 {
	next := floor
	if i+1 < len(cands) {
		next = max(next, cands[i+1].ecpm)
	}
	return min(cands[i].ecpm, next+10_000)
}

func sortBids(b []bid) {
	for i := 1; i < len(b); i++ {
		for j := i; j > 0 && (b[j].ecpm > b[j-1].ecpm || b[j].ecpm == b[j-1].ecpm && b[j].idx < b[j-1].idx); j-- {
			b[j], b[j-1] = b[j-1], b[j]
		}
	}
}
