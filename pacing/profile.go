package pacing

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Traffic profile constants. See the package doc, "Plan".
const (
	quarterSeconds = 15 * 60
	quartersPerDay = 24 * 4
	// A UTC day with fewer requests than this is too noisy to learn from.
	minFoldObservations = 4 * quartersPerDay
	// Weight of the newest day when folding it into a learned shape: an
	// exponential average with a half-life of one day.
	foldWeight = 0.5
)

// profile counts requests per UTC quarter-hour and keeps the learned shape
// of a day's traffic.
type profile struct {
	// counts[day&1][quarter] counts requests of the current and previous
	// UTC day; Tick folds the previous day into shape and zeroes it.
	counts [2][quartersPerDay]atomic.Int64
	// firstSeen is the unix second of the first request counted: a day
	// whose start was not observed is only partly counted and is not
	// learned from.
	firstSeen atomic.Int64

	// Guarded by profiles.mu.
	shape  [quartersPerDay]float64 // sums to 1 once days > 0
	volume float64                 // smoothed requests per day
	days   int                     // days folded
}

// profiles holds the traffic profile of every placement and of all traffic.
type profiles struct {
	global      profile // counts filled from the placements' at fold time
	byPlacement readMostly[*profile]

	mu         sync.Mutex
	foldedDay  int64 // last UTC day number folded, guarded by mu
	foldedOnce bool
}

func utcDayQuarter(t time.Time) (day int64, q int) {
	s := t.Unix()
	day = s / 86400
	r := s % 86400
	if r < 0 {
		day--
		r += 86400
	}
	return day, int(r / quarterSeconds)
}

// observe counts one request for placementID at t: one atomic add, on
// the placement's own counter (the profile of all traffic is summed from
// the placements' at fold time, so requests for different placements do
// not contend). Lock-free after the placement's first request.
func (ps *profiles) observe(placementID string, t time.Time) {
	day, q := utcDayQuarter(t)
	// Targeting values are normalized (lower case); so are profile keys.
	placementID = campaign.NormalizeValue(campaign.IDPlacement, placementID)
	pr := ps.byPlacement.getOrCreate(placementID, func(string) *profile { return new(profile) })
	pr.count(day, q, t)
}

func (pr *profile) count(day int64, q int, t time.Time) {
	pr.counts[day&1][q].Add(1)
	if pr.firstSeen.Load() == 0 {
		pr.firstSeen.CompareAndSwap(0, t.Unix())
	}
}

// fold learns from the previous UTC day once it is over. Tick calls it.
func (ps *profiles) fold(now time.Time) {
	today, _ := utcDayQuarter(now)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.foldedOnce && ps.foldedDay >= today-1 {
		return
	}
	ps.foldedDay, ps.foldedOnce = today-1, true
	day := today - 1
	g := &ps.global
	for q := range g.counts[day&1] {
		g.counts[day&1][q].Store(0)
	}
	ps.byPlacement.each(func(_ string, pr *profile) {
		for q := range pr.counts[day&1] {
			g.counts[day&1][q].Add(pr.counts[day&1][q].Load())
		}
		if f := pr.firstSeen.Load(); f != 0 && (g.firstSeen.Load() == 0 || f < g.firstSeen.Load()) {
			g.firstSeen.Store(f)
		}
	})
	g.foldLocked(day)
	ps.byPlacement.each(func(_ string, pr *profile) { pr.foldLocked(day) })
}

// foldLocked learns from UTC day `day` and clears its counts.
func (pr *profile) foldLocked(day int64) {
	var c [quartersPerDay]float64
	var n float64
	for q := range pr.counts[day&1] {
		v := float64(pr.counts[day&1][q].Swap(0))
		c[q] = v
		n += v
	}
	if n < minFoldObservations || pr.firstSeen.Load() >= day*86400+quarterSeconds {
		return
	}
	// Normalize, then smooth with a circular [1/4 1/2 1/4] kernel so that
	// a quiet or busy quarter-hour does not become a plan step.
	var s [quartersPerDay]float64
	for q := range c {
		prev, next := c[(q+quartersPerDay-1)%quartersPerDay], c[(q+1)%quartersPerDay]
		s[q] = (prev/4 + c[q]/2 + next/4) / n
	}
	if pr.days == 0 {
		pr.shape, pr.volume = s, n
	} else {
		for q := range s {
			pr.shape[q] = (1-foldWeight)*pr.shape[q] + foldWeight*s[q]
		}
		pr.volume = (1-foldWeight)*pr.volume + foldWeight*n
	}
	pr.days++
}

// Shape sources, reported by Status.
const (
	ShapeUniform   = "uniform"
	ShapeGlobal    = "global"
	ShapePlacement = "placement"
)

// campaignShape returns the expected share of a day's traffic in each UTC
// quarter-hour for c: the volume-weighted mix of the learned shapes of the
// placements it targets, else the learned shape of all traffic, else
// uniform.
func (ps *profiles) campaignShape(c *campaign.Campaign) (shape [quartersPerDay]float64, source string) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	var vol float64
	for _, id := range targetedPlacements(c) {
		pr, ok := ps.byPlacement.get(id)
		if !ok || pr.days == 0 {
			continue
		}
		for q := range shape {
			shape[q] += pr.volume * pr.shape[q]
		}
		vol += pr.volume
	}
	if vol > 0 {
		for q := range shape {
			shape[q] /= vol
		}
		return shape, ShapePlacement
	}
	if ps.global.days > 0 {
		return ps.global.shape, ShapeGlobal
	}
	for q := range shape {
		shape[q] = 1.0 / quartersPerDay
	}
	return shape, ShapeUniform
}

// targetedPlacements returns the placements c can run on when its
// targeting restricts placements in every conjunction, else nil.
func targetedPlacements(c *campaign.Campaign) []string {
	if len(c.Targeting.Any) == 0 {
		return nil
	}
	var out []string
	for _, conj := range c.Targeting.Any {
		found := false
		for _, p := range conj.All {
			if p.Attr == campaign.AttrPlacement && len(p.In) > 0 {
				out = append(out, p.In...)
				found = true
			}
		}
		if !found {
			return nil
		}
	}
	return out
}
