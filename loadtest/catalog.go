package loadtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The catalog's JSON shapes: the management API bodies of DESIGN.md
// section 3, declared here so the harness depends on no server package.

// Advertiser is the body of PUT /v1/advertisers/{id}.
type Advertiser struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	APIKey   string `json:"api_key"`
	Timezone string `json:"timezone"`
}

// Placement is the body of PUT /v1/placements/{id}.
type Placement struct {
	ID          string   `json:"id"`
	PublisherID string   `json:"publisher_id"`
	Name        string   `json:"name"`
	Format      string   `json:"format"`
	Sizes       [][2]int `json:"sizes"`
	Floor       float64  `json:"floor"`
}

// Campaign is the body of PUT /v1/campaigns/{id}.
type Campaign struct {
	ID           string        `json:"id"`
	AdvertiserID string        `json:"advertiser_id"`
	Status       string        `json:"status"`
	Start        string        `json:"start"`
	End          string        `json:"end"`
	Timezone     string        `json:"timezone"`
	Budget       Budget        `json:"budget"`
	Pacing       string        `json:"pacing"`
	Bid          Bid           `json:"bid"`
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	Priority     int           `json:"priority"`
	Targeting    Targeting     `json:"targeting"`
	Creatives    []Creative    `json:"creatives"`
}

// Budget is a campaign's daily and total budget in the account currency.
type Budget struct {
	Daily float64 `json:"daily"`
	Total float64 `json:"total"`
}

// Bid is a campaign's bid: model cpm or cpc.
type Bid struct {
	Model  string  `json:"model"`
	Amount float64 `json:"amount"`
}

// FrequencyCap limits impressions per user per window.
type FrequencyCap struct {
	Count  int    `json:"count"`
	Window string `json:"window"`
}

// Targeting is an OR of ANDs; empty is run-of-network.
type Targeting struct {
	Any []Clause `json:"any,omitempty"`
}

// Clause holds when all its predicates hold.
type Clause struct {
	All []Predicate `json:"all"`
}

// Predicate tests one attribute.
type Predicate struct {
	Attr  string   `json:"attr"`
	In    []string `json:"in,omitempty"`
	NotIn []string `json:"not_in,omitempty"`
}

// Creative is a banner creative.
type Creative struct {
	ID         string   `json:"id"`
	Format     string   `json:"format"`
	W          int      `json:"w"`
	H          int      `json:"h"`
	HTML       string   `json:"html"`
	LandingURL string   `json:"landing_url"`
	Adomain    []string `json:"adomain"`
}

// Catalog is what `loadtest seed` creates.
type Catalog struct {
	Advertisers []Advertiser
	Placements  []Placement
	Campaigns   []Campaign
	// EstimatedMatch is the mean estimated share of requests whose
	// targeting attributes a campaign matches: the share of the catalog the
	// server's targeting index returns per request. EstimatedFit is the
	// share that also has a creative of the request's slot size (the
	// candidates that can take part in the auction). Independence between
	// attributes is assumed.
	EstimatedMatch, EstimatedFit float64
}

// attrShares is the share of requests carrying each value of each
// attribute, measured on a sample of the scenario's traffic.
type attrShares map[string]map[string]float64

func measureShares(sc *Scenario, seed uint64, n int) attrShares {
	g := NewGenerator(sc, seed)
	src := g.NewSource(1 << 20)
	sh := attrShares{}
	var r Request
	seen := map[string]bool{}
	for range n {
		g.Next(src, &r)
		clear(seen)
		g.Attrs(&r, func(attr, v string) {
			if k := attr + "\x00" + v; !seen[k] {
				seen[k] = true
				if sh[attr] == nil {
					sh[attr] = map[string]float64{}
				}
				sh[attr][v] += 1 / float64(n)
			}
		})
	}
	return sh
}

// sorted returns an attribute's values sorted by name (for determinism).
func (s attrShares) sorted(attr string) []string {
	vs := make([]string, 0, len(s[attr]))
	for v := range s[attr] {
		vs = append(vs, v)
	}
	sort.Strings(vs)
	return vs
}

// Attributes a generated targeting clause may test, with their odds.
var targetAttrs = []Weighted{
	{"country", 3}, {"region", 1}, {"device_type", 2}, {"os", 2}, {"browser", 1}, {"language", 1},
	{"segment", 3}, {"keyword", 2}, {"placement", 1}, {"publisher", 1},
}

// BuildCatalog draws a catalog from the scenario's distributions: m
// advertisers, the scenario's placements and n campaigns whose targeting is
// sized so that each matches an estimated MatchMin..MatchMax share of the
// traffic (a ROSShare of them are run-of-network). That share is the
// targeting's alone, as the server's index sees it; a matched campaign
// whose creatives do not fit the slot's size is a candidate that drops out
// after the index. now sets the flights: start a week before, end 90 days
// after.
func BuildCatalog(sc *Scenario, n, m int, seed uint64, now time.Time) *Catalog {
	if m <= 0 {
		m = 1
	}
	rng := rand.New(rand.NewPCG(seed, 0xca7a106))
	cm := sc.Campaigns
	tzs := cm.Timezones
	if len(tzs) == 0 {
		tzs = []string{"UTC"}
	}
	cat := &Catalog{}
	for i := 1; i <= m; i++ {
		cat.Advertisers = append(cat.Advertisers, Advertiser{
			ID: "adv-" + strconv.Itoa(i), Name: "Advertiser " + strconv.Itoa(i),
			APIKey: fmt.Sprintf("key-%016x%08x", rng.Uint64(), rng.Uint32()), Timezone: tzs[rng.IntN(len(tzs))],
		})
	}
	for _, p := range sc.Placements {
		name := p.Name
		if name == "" {
			name = p.ID
		}
		cat.Placements = append(cat.Placements, Placement{
			ID: p.ID, PublisherID: p.PublisherID, Name: name, Format: "banner", Sizes: p.Sizes, Floor: math.Round(p.Floor*1e6) / 1e6,
		})
	}
	sh := measureShares(sc, seed, 20000)
	sizes := sh.sorted("size")
	start := now.UTC().Truncate(24 * time.Hour).Add(-7 * 24 * time.Hour)
	end := start.Add(97 * 24 * time.Hour)
	b := &campaignBuilder{rng: rng, sh: sh, cm: cm}
	sumMatch, sumFit := 0.0, 0.0
	for i := 1; i <= n; i++ {
		id := "c-" + strconv.Itoa(i)
		adv := cat.Advertisers[(i-1)%m]
		c := Campaign{
			ID: id, AdvertiserID: adv.ID, Status: "active",
			Start: start.Format(time.RFC3339), End: end.Format(time.RFC3339),
			Timezone: tzs[rng.IntN(len(tzs))], Pacing: "even", Priority: 1 + rng.IntN(10),
		}
		daily := cents(logUniform(rng, rangeOr(cm.DailyBudget, 50, 5000)))
		c.Budget = Budget{Daily: daily, Total: cents(daily * float64(20+rng.IntN(40)))}
		if rng.Float64() < cm.ASAPShare {
			c.Pacing = "asap"
		}
		if rng.Float64() < cm.CPCShare {
			c.Bid = Bid{Model: "cpc", Amount: cents(uniform(rng, rangeOr(cm.BidCPC, 0.1, 1.5)))}
		} else {
			c.Bid = Bid{Model: "cpm", Amount: cents(uniform(rng, rangeOr(cm.BidCPM, 0.5, 5)))}
		}
		if rng.Float64() < cm.FrequencyCapShare {
			c.FrequencyCap = &FrequencyCap{Count: 1 + rng.IntN(10), Window: [...]string{"1h", "12h", "24h"}[rng.IntN(3)]}
		}
		// Creatives: sizes drawn by their share of the traffic.
		nc := 1 + rng.IntN(3)
		if lo, hi := cm.Creatives[0], cm.Creatives[1]; lo > 0 && hi >= lo {
			nc = lo + rng.IntN(hi-lo+1)
		}
		coverage := 0.0
		have := map[string]bool{}
		domain := adv.ID + ".example"
		for k := 1; k <= nc; k++ {
			size := b.drawValue("size", sizes, 1)
			if !have[size] {
				have[size] = true
				coverage += sh["size"][size]
			}
			wh := strings.SplitN(size, "x", 2)
			w, _ := strconv.Atoi(wh[0])
			h, _ := strconv.Atoi(wh[1])
			crid := "cr-" + strconv.Itoa(i) + "-" + strconv.Itoa(k)
			c.Creatives = append(c.Creatives, Creative{
				ID: crid, Format: "banner", W: w, H: h,
				HTML: fmt.Sprintf(`<a href="{{CLICK_URL}}" target="_blank"><img src="https://cdn.%s/%s/%s.png" width="%d" height="%d" alt="%s"></a>`,
					domain, id, crid, w, h, adv.Name),
				LandingURL: "https://www." + domain + "/landing/" + id,
				Adomain:    []string{domain},
			})
		}
		// The share is the targeting's own: an earlier version divided it by
		// the creatives' size coverage so that the share of requests a
		// campaign could fill came out at MatchMin..MatchMax, which made the
		// targeting of one-size campaigns several times broader and the
		// index return ~7% of the catalog per request instead of ~2.5%.
		est := 1.0
		if rng.Float64() >= cm.ROSShare {
			p := logUniform(rng, [2]float64{max(cm.MatchMin, 1e-4), max(cm.MatchMax, cm.MatchMin, 1e-4)})
			c.Targeting, est = b.targeting(p)
		}
		sumMatch += est
		sumFit += est * coverage
		cat.Campaigns = append(cat.Campaigns, c)
	}
	if n > 0 {
		cat.EstimatedMatch = sumMatch / float64(n)
		cat.EstimatedFit = sumFit / float64(n)
	}
	return cat
}

type campaignBuilder struct {
	rng *rand.Rand
	sh  attrShares
	cm  CampaignModel
}

// targeting returns targeting matching about share of requests (before
// the creative size filter) and its estimate.
func (b *campaignBuilder) targeting(share float64) (Targeting, float64) {
	if share >= 1 {
		return Targeting{}, 1
	}
	if b.rng.Float64() < 0.1 { // an OR of two narrower clauses
		c1, e1 := b.clause(share / 2)
		c2, e2 := b.clause(share / 2)
		return Targeting{Any: []Clause{c1, c2}}, min(1, e1+e2)
	}
	c, e := b.clause(share)
	return Targeting{Any: []Clause{c}}, e
}

// clause builds an AND of 1-4 predicates whose estimated joint share (the
// product, attributes taken as independent) approaches target.
func (b *campaignBuilder) clause(target float64) (Clause, float64) {
	var cl Clause
	used := map[string]bool{}
	prod := 1.0
	k := 1 + b.rng.IntN(3)
	add := func(q float64) {
		attr := b.pickAttr(used)
		if attr == "" {
			return
		}
		used[attr] = true
		vals, s := b.drawValues(attr, q)
		cl.All = append(cl.All, Predicate{Attr: attr, In: vals})
		prod *= s
	}
	for j := 0; j < k && prod > target; j++ {
		add(math.Pow(target/prod, 1/float64(k-j)))
	}
	for len(cl.All) < 4 && prod > 1.6*target {
		add(target / prod)
	}
	if len(cl.All) == 0 {
		add(target)
	}
	// Now and then an exclusion, as real campaigns do ("not on iOS").
	if b.rng.Float64() < 0.15 && !used["os"] && !used["device_type"] {
		attr := [...]string{"os", "device_type"}[b.rng.IntN(2)]
		v := b.drawValue(attr, b.sh.sorted(attr), 0.5)
		cl.All = append(cl.All, Predicate{Attr: attr, NotIn: []string{v}})
		prod *= 1 - b.sh[attr][v]
	}
	return cl, prod
}

func (b *campaignBuilder) pickAttr(used map[string]bool) string {
	var free []Weighted
	for _, a := range targetAttrs {
		if !used[a.Value] && len(b.sh[a.Value]) > 0 {
			free = append(free, a)
		}
	}
	if len(free) == 0 {
		return ""
	}
	c := newChoice(len(free), func(i int) float64 { return free[i].Weight })
	return free[c.pick(b.rng.Float64())].Value
}

// drawValues draws distinct values of attr by traffic share until their
// summed share reaches q, preferring values not much larger than q.
func (b *campaignBuilder) drawValues(attr string, q float64) ([]string, float64) {
	all := b.sh.sorted(attr)
	var vals []string
	sum := 0.0
	for sum < q && len(all) > 0 {
		v := b.drawValue(attr, all, 1.5*(q-sum))
		vals = append(vals, v)
		sum += b.sh[attr][v]
		all = without(all, v)
	}
	return vals, min(sum, 1)
}

// drawValue draws one of vals by traffic share among those with a share of
// at most limit (the smallest one if none is that small).
func (b *campaignBuilder) drawValue(attr string, vals []string, limit float64) string {
	var cand []string
	for _, v := range vals {
		if b.sh[attr][v] <= limit {
			cand = append(cand, v)
		}
	}
	if len(cand) == 0 {
		best := vals[0]
		for _, v := range vals {
			if b.sh[attr][v] < b.sh[attr][best] {
				best = v
			}
		}
		return best
	}
	c := newChoice(len(cand), func(i int) float64 { return b.sh[attr][cand[i]] })
	return cand[c.pick(b.rng.Float64())]
}

func without(vs []string, v string) []string {
	out := vs[:0:0]
	for _, x := range vs {
		if x != v {
			out = append(out, x)
		}
	}
	return out
}

func rangeOr(r [2]float64, lo, hi float64) [2]float64 {
	if r[0] > 0 && r[1] >= r[0] {
		return r
	}
	return [2]float64{lo, hi}
}

func uniform(rng *rand.Rand, r [2]float64) float64 { return r[0] + rng.Float64()*(r[1]-r[0]) }

func logUniform(rng *rand.Rand, r [2]float64) float64 {
	return math.Exp(math.Log(r[0]) + rng.Float64()*(math.Log(r[1])-math.Log(r[0])))
}

func cents(x float64) float64 { return max(0.01, math.Round(x*100)/100) }
