package pacing

import (
	"time"

	"github.com/adserver/adserver/campaign"
)

// plan is an even campaign's target spend curve for one local day: the
// day budget spread over the day in proportion to the expected traffic of
// each quarter-hour, compressed to end FinishEarly before midnight and
// clipped to the campaign's flight. Immutable once built.
type plan struct {
	day    Day
	conf   *campaign.Campaign // the campaign version it was built for
	budget int64              // day budget B, micros
	start  int64              // unix seconds of quarter 0 (local midnight)
	end    int64              // unix seconds of the next local midnight
	// cum[k] is the planned fraction of B spent by quarter k's start;
	// len(cum) == quarters+1, cum[quarters] == 1 unless the flight misses
	// the day (all zero).
	cum []float64
	// traffic[k] is the expected share of a UTC day's traffic arriving per
	// second during quarter k: the controller's traffic model.
	traffic []float64
	shape   string // ShapeUniform, ShapeGlobal or ShapePlacement
}

func buildPlan(c *campaign.Campaign, day Day, start, end time.Time, shape *[quartersPerDay]float64,
	source string, budget int64, finishEarly time.Duration, notBefore time.Time) *plan {
	s, e := start.Unix(), end.Unix()
	k := int((e - s + quarterSeconds - 1) / quarterSeconds)
	pl := &plan{day: day, conf: c, budget: budget, start: s, end: e,
		cum: make([]float64, k+1), traffic: make([]float64, k), shape: source}
	early := int64(finishEarly/time.Second) / quarterSeconds * quarterSeconds
	from, to := s, e-early
	if fs := c.Start.Unix(); !c.Start.IsZero() && fs > from {
		from = fs
	}
	if nb := notBefore.Unix(); !notBefore.IsZero() && nb > from {
		from = nb
	}
	if fe := c.End.Unix(); !c.End.IsZero() && fe < to {
		to = fe
	}
	w := make([]float64, k)
	var total float64
	for i := range k {
		qs := s + int64(i)*quarterSeconds
		qe := min(qs+quarterSeconds, e)
		u := qs % 86400
		if u < 0 {
			u += 86400
		}
		density := shape[u/quarterSeconds]
		pl.traffic[i] = density / quarterSeconds
		if overlap := min(qe, to) - max(qs, from); overlap > 0 {
			w[i] = density * float64(overlap) / quarterSeconds
			total += w[i]
		}
	}
	if total > 0 {
		var acc float64
		for i := range k {
			acc += w[i]
			pl.cum[i+1] = acc / total
		}
		pl.cum[k] = 1
	}
	return pl
}

// at locates t (unix nanos) in the plan: quarter index and the fraction of
// it elapsed. Times outside the day clamp to its ends.
func (pl *plan) at(t int64) (k int, frac float64) {
	sec := float64(t)/1e9 - float64(pl.start)
	if sec <= 0 {
		return 0, 0
	}
	n := len(pl.traffic)
	k = int(sec / quarterSeconds)
	if k >= n {
		return n - 1, 1
	}
	return k, (sec - float64(k)*quarterSeconds) / quarterSeconds
}

// fraction is the planned fraction of the day budget spent by t.
func (pl *plan) fraction(t int64) float64 {
	k, f := pl.at(t)
	return pl.cum[k] + f*(pl.cum[k+1]-pl.cum[k])
}

// rate is the planned fraction of the day budget to spend per second at t.
func (pl *plan) rate(t int64) float64 {
	k, _ := pl.at(t)
	if t >= pl.end*1e9 {
		return 0
	}
	return (pl.cum[k+1] - pl.cum[k]) / quarterSeconds
}

// trafficAt is the expected share of a day's traffic per second at t.
func (pl *plan) trafficAt(t int64) float64 {
	k, _ := pl.at(t)
	return pl.traffic[k]
}
