package targeting

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the tests need these zones wherever they run

	"github.com/adserver/adserver/campaign"
)

// mk returns a validated campaign; preds are "attr in a,b" or
// "attr !in a,b", conjunctions separated by "|". An empty string is
// run-of-network.
func mk(t testing.TB, id, tz, targeting string) *campaign.Campaign {
	t.Helper()
	c := base(id, tz)
	c.Targeting = parseTargeting(targeting)
	if err := c.Validate(); err != nil {
		t.Fatalf("campaign %s: %v", id, err)
	}
	return c
}

var flightStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func base(id, tz string) *campaign.Campaign {
	return &campaign.Campaign{
		ID: id, AdvertiserID: "adv-1", Status: campaign.StatusActive,
		Start: flightStart, End: flightStart.AddDate(2, 0, 0), Timezone: tz,
		Budget: campaign.Budget{Daily: 1_000_000}, Bid: campaign.Bid{Model: campaign.BidCPM, Amount: 1_000_000},
		Creatives: []campaign.Creative{{ID: "cr-1", Format: campaign.FormatBanner, W: 300, H: 250,
			HTML: "<b>ad</b>", LandingURL: "https://example.com/"}},
	}
}

func parseTargeting(s string) campaign.Targeting {
	var t campaign.Targeting
	if strings.TrimSpace(s) == "" {
		return t
	}
	for _, conj := range strings.Split(s, "|") {
		var cj campaign.Conjunction
		for _, p := range strings.Split(conj, "&") {
			f := strings.Fields(p)
			vals := strings.Split(f[2], ",")
			pr := campaign.Predicate{Attr: f[0]}
			if f[1] == "in" {
				pr.In = vals
			} else {
				pr.NotIn = vals
			}
			cj.All = append(cj.All, pr)
		}
		t.Any = append(t.Any, cj)
	}
	return t
}

// attrs builds an Attrs from "attr=v1,v2 attr=v".
func attrs(s string) *Attrs {
	a := new(Attrs)
	for _, f := range strings.Fields(s) {
		name, vals, _ := strings.Cut(f, "=")
		id, ok := campaign.LookupAttr(name)
		if !ok {
			panic("unknown attribute " + name)
		}
		for _, v := range strings.Split(vals, ",") {
			a.Add(id, v)
		}
	}
	return a
}

func ids(cs []*campaign.Campaign) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	slices.Sort(out)
	return out
}

// --- random catalogs for the property tests: small vocabularies, so that
// predicates collide often.

var (
	propZones = []string{"", "UTC", "Asia/Seoul", "America/New_York", "Europe/Berlin",
		"Australia/Sydney", "Asia/Kolkata", "Asia/Kathmandu", "America/St_Johns"}
	propVocab = map[campaign.AttrID][]string{
		campaign.IDPlacement:  {"p1", "p2", "p3"},
		campaign.IDPublisher:  {"pub1", "pub2"},
		campaign.IDSize:       {"300x250", "728x90", "320x50"},
		campaign.IDCountry:    {"us", "kr", "jp", "de"},
		campaign.IDRegion:     {"11", "ca"},
		campaign.IDCity:       {"seoul", "nyc"},
		campaign.IDDeviceType: {"mobile", "tablet", "desktop", "ctv"},
		campaign.IDOS:         {"android", "ios", "windows"},
		campaign.IDBrowser:    {"chrome", "safari"},
		campaign.IDLanguage:   {"ko", "en"},
		campaign.IDSegment:    {"s0", "s1", "s2", "s3", "s4", "s5"},
		campaign.IDKeyword:    {"k0", "k1", "k2", "k3"},
		campaign.IDHour:       campaign.Hours[:],
		campaign.IDWeekday:    campaign.Weekdays[:],
		campaign.IDDomain:     {"a.example", "b.example"},
		campaign.IDBundle:     {"com.app"},
	}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func randValues(r *rand.Rand, attr campaign.AttrID, max int) []string {
	voc := propVocab[attr]
	n := 1 + r.IntN(max)
	out := make([]string, n)
	for i := range out {
		out[i] = pick(r, voc)
		if attr == campaign.IDCountry && r.IntN(3) == 0 {
			out[i] = strings.ToUpper(out[i]) // Validate normalizes
		}
	}
	return out
}

func randTargeting(r *rand.Rand) campaign.Targeting {
	var t campaign.Targeting
	if r.IntN(8) == 0 {
		return t
	}
	for range 1 + r.IntN(3) {
		var cj campaign.Conjunction
		for range 1 + r.IntN(4) {
			attr := campaign.AttrID(r.IntN(campaign.NumAttrs))
			if r.IntN(3) == 0 { // favour a few attributes, to get matches
				attr = pick(r, []campaign.AttrID{campaign.IDCountry, campaign.IDSegment, campaign.IDHour})
			}
			p := campaign.Predicate{Attr: campaign.Attributes[attr]}
			if r.IntN(10) < 3 {
				p.NotIn = randValues(r, attr, 3)
			} else {
				p.In = randValues(r, attr, 4)
			}
			cj.All = append(cj.All, p)
		}
		t.Any = append(t.Any, cj)
	}
	return t
}

var propEpoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func randCampaign(t testing.TB, r *rand.Rand, id string) *campaign.Campaign {
	c := base(id, pick(r, propZones))
	switch r.IntN(10) {
	case 0:
		c.Status = campaign.StatusPaused
	case 1:
		c.Status = campaign.StatusArchived
	}
	c.Start = propEpoch.Add(time.Duration(r.IntN(400*24)) * time.Hour)
	c.End = c.Start.Add(time.Duration(1+r.IntN(300*24)) * time.Hour)
	if r.IntN(3) == 0 {
		c.Start, c.End = propEpoch, propEpoch.AddDate(3, 0, 0)
	}
	c.Targeting = randTargeting(r)
	c.Priority = r.IntN(101)
	if err := c.Validate(); err != nil {
		t.Fatalf("random campaign: %v", err)
	}
	return c
}

// randTime favours the hours around DST transitions.
func randTime(r *rand.Rand) time.Time {
	if r.IntN(3) == 0 {
		edges := []time.Time{
			time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC),   // US spring forward
			time.Date(2026, 3, 29, 1, 0, 0, 0, time.UTC),  // EU spring forward
			time.Date(2026, 4, 5, 16, 0, 0, 0, time.UTC),  // Sydney falls back
			time.Date(2026, 10, 25, 1, 0, 0, 0, time.UTC), // EU falls back
			time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC),  // US falls back
		}
		return pick(r, edges).Add(time.Duration(r.IntN(4*3600)-2*3600) * time.Second)
	}
	return propEpoch.Add(time.Duration(r.Int64N(int64(500 * 24 * time.Hour))))
}

func randAttrs(r *rand.Rand, a *Attrs) {
	a.Reset()
	for attr := range campaign.AttrID(campaign.NumAttrs) {
		if r.IntN(2) == 0 {
			continue
		}
		for _, v := range randValues(r, attr, 3) {
			a.Add(attr, v)
		}
	}
	if r.IntN(10) == 0 {
		a.Add(campaign.IDCountry, " US ") // normalized by Add
	}
}

func describeAttrs(a *Attrs) string {
	var b strings.Builder
	for attr, vs := range a.vals {
		if len(vs) > 0 {
			fmt.Fprintf(&b, "%s=%v ", campaign.Attributes[attr], vs)
		}
	}
	return b.String()
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed+1)) }
