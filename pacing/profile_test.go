package pacing

import (
	"math"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

// observeDay counts requests for placement over the UTC day starting at
// day: perQuarter(hour) requests in each quarter-hour.
func observeDay(p *Pacer, placement string, day time.Time, perQuarter func(hour int) int) {
	for q := 0; q < quartersPerDay; q++ {
		at := day.Add(time.Duration(q) * 15 * time.Minute)
		for i := perQuarter(q / 4); i > 0; i-- {
			p.Observe(placement, at.Add(time.Duration(i)*time.Second))
		}
	}
}

// The plan of an even campaign follows the traffic profile learnt for the
// placements it targets (volume-weighted), else the profile of all
// traffic, else a uniform day; a UTC day not observed from its start is
// not learnt from.
func TestPlanShapeByPlacement(t *testing.T) {
	day1 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	daytime := func(h int) bool { return h >= 6 && h < 18 }
	// p-day: most traffic 06:00-18:00 UTC; p-night: most outside it, a
	// third of p-day's volume.
	dayTraffic := func(h int) int {
		if daytime(h) {
			return 60
		}
		return 6
	}
	nightTraffic := func(h int) int {
		if daytime(h) {
			return 2
		}
		return 20
	}
	target := func(placements string) string {
		return `"targeting":{"any":[{"all":[{"attr":"placement","in":[` + placements + `]}]}]},`
	}
	camps := map[string]*campaign.Campaign{
		"day":   testCampaign(t, "c-day", "UTC", "even", 100*unit, 0, target(`"p-day"`)),
		"night": testCampaign(t, "c-night", "UTC", "even", 100*unit, 0, target(`"P-Night"`)), // values are case-insensitive
		"both":  testCampaign(t, "c-both", "UTC", "even", 100*unit, 0, target(`"p-day","p-night"`)),
		"all":   testCampaign(t, "c-all", "UTC", "even", 100*unit, 0, ""),
		"other": testCampaign(t, "c-other", "UTC", "even", 100*unit, 0, target(`"p-unseen"`)),
	}
	// daytimeShare is the planned share of the day budget spent 06:00-18:00.
	daytimeShare := func(p *Pacer, c *campaign.Campaign, day time.Time) (float64, string) {
		t.Helper()
		pl, ok := p.Plan(c.ID)
		if !ok || pl.Day != DayOf(day, time.UTC) {
			t.Fatalf("%s: plan %+v, want one for %s", c.ID, pl, DayOf(day, time.UTC))
		}
		return float64(pl.Spend(day.Add(18*time.Hour))-pl.Spend(day.Add(6*time.Hour))) / float64(pl.Budget), pl.Shape
	}
	// The plan ends FinishEarly (30m) before midnight: 23.5 planned hours,
	// of which 12 in daytime.
	const planned = 23.5

	p := newTestPacer(t, Config{})
	for d := 0; d < 2; d++ {
		at := day1.AddDate(0, 0, d)
		observeDay(p, "p-day", at, dayTraffic)
		observeDay(p, "p-night", at, nightTraffic)
		p.Tick(at.Add(24*time.Hour + time.Second)) // folds day d
	}
	day3 := day1.AddDate(0, 0, 2)
	now := day3.Add(time.Second)
	for _, c := range camps {
		p.Update(c)
	}
	p.Tick(now)
	// Expected daytime shares from the learnt profiles (the smoothing
	// kernel moves a little weight across the 06:00 and 18:00 edges, and
	// the night hours lose the last half hour to FinishEarly).
	dayVol, nightVol := 12*4*60.0+12*4*6, 12*4*2.0+12*4*20
	dayShare := 12 * 4 * 60 / dayVol
	nightShare := 12 * 4 * 2 / nightVol
	for _, tc := range []struct {
		name, shape string
		want        float64
	}{
		{"day", ShapePlacement, dayShare},
		{"night", ShapePlacement, nightShare},
		{"both", ShapePlacement, (dayVol*dayShare + nightVol*nightShare) / (dayVol + nightVol)},
		{"all", ShapeGlobal, (dayVol*dayShare + nightVol*nightShare) / (dayVol + nightVol)},
		{"other", ShapeGlobal, (dayVol*dayShare + nightVol*nightShare) / (dayVol + nightVol)},
	} {
		got, shape := daytimeShare(p, camps[tc.name], day3)
		t.Logf("%s: %s shape, %.3f of the budget planned 06:00-18:00 UTC (profile %.3f)", camps[tc.name].ID, shape, got, tc.want)
		if shape != tc.shape {
			t.Errorf("%s: plan shaped by %q, want %q", camps[tc.name].ID, shape, tc.shape)
		}
		if math.Abs(got-tc.want) > 0.04 {
			t.Errorf("%s: %.3f of the budget planned 06:00-18:00 UTC, want about %.3f", camps[tc.name].ID, got, tc.want)
		}
	}

	// Nothing learnt: uniform. Observing from 10:00 UTC on does not teach
	// a day whose start was missed.
	q := newTestPacer(t, Config{})
	observeDay(q, "p-day", day1, func(h int) int {
		if h < 10 {
			return 0
		}
		return dayTraffic(h)
	})
	for _, c := range camps {
		q.Update(c)
	}
	q.Tick(day1.Add(24*time.Hour + time.Second))
	day2 := day1.AddDate(0, 0, 1)
	for _, name := range []string{"day", "all"} {
		got, shape := daytimeShare(q, camps[name], day2)
		if shape != ShapeUniform || math.Abs(got-12/planned) > 0.01 {
			t.Errorf("%s without a complete day learnt: %s shape, %.3f planned 06:00-18:00, want uniform %.3f",
				camps[name].ID, shape, got, 12/planned)
		}
	}
}
