package pacing

import "math"

// Controller constants; the package doc explains them.
const (
	// demandTimeConstant is the time constant (seconds) of the demand
	// estimator's exponential average.
	demandTimeConstant = 180.0
	// maxStep bounds the change of the pass rate per control interval:
	// at most x2 up (also the slow-start growth) and /2 down.
	maxStep = 2.0
	// trafficFloor keeps the feed-forward finite in quarter-hours whose
	// expected traffic is (almost) zero: 5% of the mean density.
	trafficFloor = 0.05 / 86400
)

// controller sets one even campaign's pass probability on this node. Only
// Tick touches it, under the campaign's mutex.
type controller struct {
	started bool
	pass    float64 // current pass probability
	// demand is the estimated spend of a full day of traffic at pass 1, in
	// micros, all nodes together: the spend rate at pass 1 is
	// demand*traffic(t). Zero means not known yet (slow start).
	demand  float64
	lastAt  int64 // unix nanos of the previous update
	lastG   int64 // global committed day spend at lastAt
	lastDay Day
}

// update advances the controller to now, given the global committed spend
// g (spend plus reservations, all nodes) of the plan's day, and returns the
// new pass probability.
//
// Each interval it (1) re-estimates the campaign's demand from the spend
// the last interval brought at the pass rate it had, (2) computes the spend
// rate wanted now: the plan's rate plus the gap to the plan spread over the
// catch-up horizon, and (3) sets the pass rate that yields the wanted rate
// under the estimated demand, moving at most a factor maxStep per interval.
// Before any demand is seen the pass rate starts at initial and doubles
// each interval (slow start).
func (ct *controller) update(now int64, g int64, pl *plan, catchUp, initial, floor float64) float64 {
	if !ct.started || pl.day != ct.lastDay {
		if !ct.started {
			ct.pass = initial
		}
		ct.started = true
		ct.lastAt, ct.lastG, ct.lastDay = now, g, pl.day
		if ct.demand > 0 {
			// A new day: the learned demand carries over, so the pass rate
			// starts where the plan needs it instead of ramping again.
			ct.pass = clampPass(ct.want(now, g, pl, catchUp)/(ct.demand*max(pl.trafficAt(now), trafficFloor)), floor)
		}
		return ct.pass
	}
	dt := float64(now-ct.lastAt) / 1e9
	if dt <= 0 {
		return ct.pass
	}
	inc := float64(max(g-ct.lastG, 0))
	if tr := pl.trafficAt((now + ct.lastAt) / 2); tr > 0 && ct.pass > 0 {
		sample := inc / (ct.pass * dt * max(tr, trafficFloor))
		switch {
		case ct.demand > 0:
			ct.demand += (1 - math.Exp(-dt/demandTimeConstant)) * (sample - ct.demand)
		case inc > 0:
			ct.demand = sample
		}
	}
	ct.lastAt, ct.lastG = now, g
	p := ct.pass * maxStep
	if ct.demand > 0 {
		p = ct.want(now, g, pl, catchUp) / (ct.demand * max(pl.trafficAt(now), trafficFloor))
		p = min(max(p, ct.pass/maxStep), ct.pass*maxStep)
	}
	ct.pass = clampPass(p, floor)
	return ct.pass
}

// want is the spend rate (micros per second) that follows the plan and
// closes the gap to it over catchUp seconds.
func (ct *controller) want(now int64, g int64, pl *plan, catchUp float64) float64 {
	b := float64(pl.budget)
	w := b*pl.rate(now) + (b*pl.fraction(now)-float64(g))/catchUp
	return max(w, 0)
}

func clampPass(p, floor float64) float64 {
	if math.IsNaN(p) {
		return 1
	}
	return min(max(p, floor), 1)
}
