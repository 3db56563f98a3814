package pacing

import (
	"math"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

// market drives one campaign through a stretch of time, second by second:
// opportunities arrive at a rate shaped by the reference traffic curve
// (opportunitiesPerDay over a UTC day), and each one Allow admits is
// reserved and charged at once for cost. Deterministic: fractional arrivals
// accumulate.
type market struct {
	p                   *Pacer
	c                   *campaign.Campaign
	opportunitiesPerDay float64
	cost                campaign.Micros
	share               [24]float64
	acc                 float64
	hourly              map[int64]campaign.Micros // spend by unix hour
}

func (m *market) run(t *testing.T, from, to time.Time) {
	t.Helper()
	if m.hourly == nil {
		m.hourly = make(map[int64]campaign.Micros)
	}
	for now := from; now.Before(to); now = now.Add(time.Second) {
		m.acc += m.opportunitiesPerDay * m.share[now.UTC().Hour()] / 3600
		for ; m.acc >= 1; m.acc-- {
			m.p.Observe("p-1", now)
			if ok, _ := m.p.Allow(m.c, now); !ok {
				continue
			}
			if _, ok := m.p.Reserve(m.c, m.cost, now); !ok {
				continue
			}
			m.p.Charge(m.c.ID, m.cost, now)
			m.hourly[now.Unix()/3600] += m.cost
		}
		if now.Unix()%5 == 0 {
			m.p.Tick(now)
		}
	}
}

// hourlyRMSE compares the spend of each hour of the plan's day with the plan.
func (m *market) hourlyRMSE(pl *Plan) (rmsePct float64, spent campaign.Micros) {
	var sq, planned float64
	n := 0
	for h := pl.Start; h.Before(pl.End); h = h.Add(time.Hour) {
		want := float64(pl.Spend(h.Add(time.Hour)) - pl.Spend(h))
		got := float64(m.hourly[h.Unix()/3600])
		sq += (got - want) * (got - want)
		planned += want
		spent += campaign.Micros(got)
		n++
	}
	return 100 * math.Sqrt(sq/float64(n)) / (planned / float64(n)), spent
}

func TestControllerFollowsPlan(t *testing.T) {
	for _, tc := range []struct {
		name, tz string
		demand   float64 // full-pass spend over a day / budget
	}{
		{"loose", "UTC", 8},
		{"tight", "UTC", 1.3},
		{"loose-seoul", "Asia/Seoul", 8},
		{"tight-new-york", "America/New_York", 1.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := mustLoc(t, tc.tz)
			// Two UTC days teach the traffic profile (and carry the demand
			// estimate across local midnights); the local day after is
			// measured.
			from := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
			day := DayOf(from.Add(48*time.Hour), loc)
			start, end := day.Bounds(loc)
			p := newTestPacer(t, Config{Seed: 7})
			budget := 50 * unit
			c := testCampaign(t, "c-"+tc.name, tc.tz, "even", campaign.Micros(budget), 0, "")
			m := &market{p: p, c: c, opportunitiesPerDay: 200_000, share: ReferenceTraffic()}
			m.cost = campaign.Micros(tc.demand * float64(budget) / m.opportunitiesPerDay)
			m.run(t, from, start.Add(5*time.Second))
			pl, ok := p.Plan(c.ID)
			if !ok || pl.Day != day || pl.Shape != ShapeGlobal {
				t.Fatalf("plan %+v: want day %s shaped by the learned profile of all traffic", pl, day)
			}
			// Probe at 02:30 UTC, where the reference traffic is flat (the
			// learned profile is smoothed: at a sharp hourly step it is off
			// by a few percent for a quarter-hour).
			probe := start.Add(time.Hour)
			for probe.UTC().Hour() != 2 {
				probe = probe.Add(time.Hour)
			}
			probe = probe.Add(30 * time.Minute)
			m.run(t, start.Add(5*time.Second), probe)
			// Converged: the demand estimate is the true demand, and the
			// pass rate is what spreads the budget over the planned day.
			st, _ := p.Status(c.ID, probe)
			trueDemand := tc.demand * float64(budget)
			if d := float64(st.Demand); math.Abs(d-trueDemand) > 0.2*trueDemand { // sampling noise: ~60 wins in the window
				t.Errorf("demand estimate %.0f, true %.0f", d, trueDemand)
			}
			var planned float64 // share of a day's traffic in the planned hours
			for k := 0; k < len(pl.pl.traffic)-2; k++ {
				planned += pl.pl.traffic[k] * quarterSeconds
			}
			if want := min(1/(tc.demand*planned), 1); math.Abs(st.Pass-want) > 0.25*want {
				t.Errorf("pass %.4f, want about %.4f", st.Pass, want)
			}
			m.run(t, probe, end)
			rmse, spent := m.hourlyRMSE(pl)
			util := 100 * float64(spent) / float64(budget)
			t.Logf("%s: utilisation %.2f%%, hourly RMSE %.2f%% of the mean hourly plan", day, util, rmse)
			if util < 98 || util > 100.0001 {
				t.Errorf("utilisation %.2f%%, want 98..100", util)
			}
			if rmse > 10 {
				t.Errorf("hourly RMSE %.2f%%, want <= 10", rmse)
			}
		})
	}
}

func TestSlowStart(t *testing.T) {
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	p := newTestPacer(t, Config{InitialPassRate: 0.05})
	c := testCampaign(t, "c-1", "UTC", "even", 100*unit, 0, "")
	p.Update(c)
	pass := func() float64 { st, _ := p.Status(c.ID, now); return st.Pass }
	if got := pass(); math.Abs(got-0.05) > 1e-9 {
		t.Fatalf("a new campaign starts at pass %v, want 0.05", got)
	}
	// No traffic: the pass rate doubles each interval up to 1.
	want := 0.05
	for i := 0; i < 7; i++ {
		now = now.Add(5 * time.Second)
		p.Tick(now)
		if i > 0 {
			want = min(2*want, 1)
		}
		if got := pass(); math.Abs(got-want) > 1e-9 {
			t.Fatalf("tick %d: pass %v, want %v", i, got, want)
		}
	}
	// Abundant traffic shows up: the demand estimate takes over and the
	// pass rate falls, by at most half per interval.
	m := &market{p: p, c: c, opportunitiesPerDay: 2_000_000, cost: 1000, share: ReferenceTraffic()}
	prev := pass()
	for i := 0; i < 12; i++ {
		m.run(t, now, now.Add(5*time.Second))
		now = now.Add(5 * time.Second)
		got := pass()
		if got < prev/2-1e-9 || got > prev*2+1e-9 {
			t.Fatalf("interval %d: pass moved from %v to %v, more than x2", i, prev, got)
		}
		prev = got
	}
	if prev > 0.2 {
		t.Fatalf("pass %v after a minute of 20x demand, want well below 1", prev)
	}
}

// A campaign in New York on its 25-hour day (and on its 23-hour day) plans
// over the whole local day and finishes its budget before local midnight.
func TestControllerOnDSTDays(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	for _, day := range []string{"2026-11-01", "2026-03-08"} {
		t.Run(day, func(t *testing.T) {
			d, _ := ParseDay(day)
			start, end := d.Bounds(ny)
			p := newTestPacer(t, Config{Seed: 3})
			budget := 20 * unit
			c := testCampaign(t, "c-ny", "America/New_York", "even", campaign.Micros(budget), 0, "")
			var flat [24]float64
			for h := range flat {
				flat[h] = 1.0 / 24
			}
			m := &market{p: p, c: c, opportunitiesPerDay: 100_000, share: flat}
			m.cost = campaign.Micros(4 * float64(budget) / m.opportunitiesPerDay)
			m.run(t, start, start.Add(5*time.Second))
			pl, ok := p.Plan(c.ID)
			if !ok || pl.Day != d || !pl.Start.Equal(start) || !pl.End.Equal(end) {
				t.Fatalf("plan %+v, want day %s [%s, %s)", pl, d, start, end)
			}
			if got, want := len(pl.pl.traffic), int(end.Sub(start)/(15*time.Minute)); got != want {
				t.Fatalf("plan has %d quarter-hours, want %d", got, want)
			}
			// The plan is complete 30 minutes before midnight.
			if got := pl.Spend(end.Add(-30 * time.Minute)); got != pl.Budget {
				t.Fatalf("plan at 23:30 = %v, want the budget %v", got, pl.Budget)
			}
			if got := pl.Spend(end.Add(-90 * time.Minute)); got >= pl.Budget {
				t.Fatalf("plan at 22:30 = %v, want below the budget", got)
			}
			m.run(t, start.Add(5*time.Second), end)
			rmse, spent := m.hourlyRMSE(pl)
			t.Logf("spent %v of %v, hourly RMSE %.2f%%", spent, budget, rmse)
			if float64(spent) < 0.98*float64(budget) || spent > campaign.Micros(budget) {
				t.Errorf("spent %v of %v", spent, budget)
			}
			if rmse > 10 {
				t.Errorf("hourly RMSE %.2f%%, want <= 10", rmse)
			}
		})
	}
}

// A campaign that falls behind its plan (two hours without traffic) closes
// most of the gap within the hour after (CatchUp is 15m; the demand
// estimate, decayed during the outage, first has to recover) and still
// spends its day budget: the feedback part of the controller. (The feed-forward alone, at the plan's
// rate, would end the day short by the two hours' plan.)
func TestControllerCatchesUp(t *testing.T) {
	from := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	start := from.Add(48 * time.Hour)
	end := start.Add(24 * time.Hour)
	p := newTestPacer(t, Config{Seed: 11})
	budget := 50 * unit
	c := testCampaign(t, "c-gap", "UTC", "even", campaign.Micros(budget), 0, "")
	m := &market{p: p, c: c, opportunitiesPerDay: 200_000, share: ReferenceTraffic()}
	m.cost = campaign.Micros(3 * float64(budget) / m.opportunitiesPerDay)
	m.run(t, from, start.Add(10*time.Hour))
	pl, ok := p.Plan(c.ID)
	if !ok || pl.Day != DayOf(start, time.UTC) {
		t.Fatalf("plan %+v, want one for %s", pl, DayOf(start, time.UTC))
	}
	// The outage: no requests from 10:00 to 12:00; the controller keeps
	// running.
	outageEnd := start.Add(12 * time.Hour)
	for now := start.Add(10 * time.Hour); now.Before(outageEnd); now = now.Add(5 * time.Second) {
		p.Tick(now)
	}
	spent := func() (s campaign.Micros) { // on the measured day
		for h, v := range m.hourly {
			if h >= start.Unix()/3600 {
				s += v
			}
		}
		return s
	}
	behind := pl.Spend(outageEnd) - spent()
	m.run(t, outageEnd, outageEnd.Add(time.Hour))
	gap := pl.Spend(outageEnd.Add(time.Hour)) - spent()
	m.run(t, outageEnd.Add(time.Hour), end)
	util := 100 * float64(spent()) / float64(budget)
	t.Logf("behind the plan by %v after the outage, by %v an hour later; utilisation %.2f%%", behind, gap, util)
	if behind < campaign.Micros(budget)/20 {
		t.Fatalf("the outage left the campaign only %v behind its plan: the test does not test catching up", behind)
	}
	if gap > behind/4 {
		t.Errorf("an hour after the outage still %v behind the plan (was %v)", gap, behind)
	}
	if util < 98 || util > 100.0001 {
		t.Errorf("utilisation %.2f%%, want 98..100", util)
	}
}
