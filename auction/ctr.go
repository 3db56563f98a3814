package auction

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// CTR model defaults.
const (
	DefaultPriorMean         = 0.005
	DefaultPriorStrength     = 1000
	DefaultPlacementStrength = 500
)

// CTRConfig sets the Bayesian prior of a [CTRModel]. The zero value uses
// the defaults.
type CTRConfig struct {
	// PriorMean is the click-through rate predicted for a creative with no
	// evidence, in (0, 1). Default 0.005 (0.5%).
	PriorMean float64
	// PriorStrength is the weight of the prior, in impressions: the α+β of
	// the Beta(α, β) prior, with α = PriorMean × PriorStrength. After this
	// many impressions a creative's own CTR and the prior weigh the same.
	// Default 1000.
	PriorStrength float64
	// PlacementStrength is the weight, in impressions, of the creative's
	// overall estimate when it serves as the prior of the creative's CTR in
	// one placement. After this many impressions in a placement, the
	// placement's own CTR and the creative's overall estimate weigh the
	// same. Default 500.
	PlacementStrength float64
}

// Validate reports a setting out of range.
func (c *CTRConfig) Validate() error {
	switch {
	case c.PriorMean != 0 && !(c.PriorMean > 0 && c.PriorMean < 1):
		return fmt.Errorf("ctr prior mean %v must be in (0, 1)", c.PriorMean)
	case c.PriorStrength != 0 && !(c.PriorStrength > 0 && c.PriorStrength <= 1e12):
		return fmt.Errorf("ctr prior strength %v must be in (0, 1e12] impressions", c.PriorStrength)
	case c.PlacementStrength != 0 && !(c.PlacementStrength > 0 && c.PlacementStrength <= 1e12):
		return fmt.Errorf("ctr placement strength %v must be in (0, 1e12] impressions", c.PlacementStrength)
	}
	return nil
}

// CTRModel predicts the click-through rate of a creative in a placement
// from the impressions and clicks recorded so far, per creative and per
// (creative, placement), shrunk toward a Beta prior:
//
//	creative:  μc = (α + clicks_c) / (α + β + imps_c)
//	placement: p  = (k_p × μc + clicks_cp) / (k_p + imps_cp)
//
// so a new creative starts at the prior mean, a known creative in a new
// placement starts at its overall estimate, and both move toward the
// observed CTR as evidence accumulates.
//
// The zero value is ready to use with the default [CTRConfig]. A CTRModel
// is safe for concurrent use: Predict takes no lock and does not allocate;
// recording allocates only the first time a creative or pair is seen and
// then adds atomically. The two counters of a pair are read without a
// common snapshot, so a prediction may see a click before its impression;
// the result is clamped to [0, 1]. Counts are kept per process; memory
// grows with the number of (creative, placement) pairs seen (see Forget).
type CTRModel struct {
	cfg    CTRConfig
	counts sync.Map // ctrKey → *ctrCounts; placement "" is the creative level
}

type ctrKey struct{ creative, placement string }

type ctrCounts struct {
	imps, clicks atomic.Uint64
	// creative is the creative-level counters of a (creative, placement)
	// pair; nil at the creative level.
	creative *ctrCounts
}

// NewCTRModel returns a model with the given prior, or the error of
// cfg.Validate.
func NewCTRModel(cfg CTRConfig) (*CTRModel, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &CTRModel{cfg: cfg}, nil
}

func (m *CTRModel) params() (mean, strength, placementStrength float64) {
	mean, strength, placementStrength = m.cfg.PriorMean, m.cfg.PriorStrength, m.cfg.PlacementStrength
	if mean == 0 {
		mean = DefaultPriorMean
	}
	if strength == 0 {
		strength = DefaultPriorStrength
	}
	if placementStrength == 0 {
		placementStrength = DefaultPlacementStrength
	}
	return mean, strength, placementStrength
}

// RecordImpression counts an impression of the creative in the placement
// (and for the creative overall). An empty placementID counts it for the
// creative only.
func (m *CTRModel) RecordImpression(creativeID, placementID string) {
	c := m.counters(creativeID, placementID)
	c.imps.Add(1)
	if c.creative != nil {
		c.creative.imps.Add(1)
	}
}

// RecordClick counts a click on the creative in the placement (and for the
// creative overall). An empty placementID counts it for the creative only.
func (m *CTRModel) RecordClick(creativeID, placementID string) {
	c := m.counters(creativeID, placementID)
	c.clicks.Add(1)
	if c.creative != nil {
		c.creative.clicks.Add(1)
	}
}

// counters returns the counters of the pair (or of the creative, for an
// empty placement), creating them on first use.
func (m *CTRModel) counters(creativeID, placementID string) *ctrCounts {
	if v, ok := m.counts.Load(ctrKey{creativeID, placementID}); ok {
		return v.(*ctrCounts)
	}
	var cr *ctrCounts
	if v, ok := m.counts.Load(ctrKey{creativeID, ""}); ok {
		cr = v.(*ctrCounts)
	} else {
		v, _ := m.counts.LoadOrStore(ctrKey{creativeID, ""}, new(ctrCounts))
		cr = v.(*ctrCounts)
	}
	if placementID == "" {
		return cr
	}
	v, _ := m.counts.LoadOrStore(ctrKey{creativeID, placementID}, &ctrCounts{creative: cr})
	return v.(*ctrCounts)
}

// Predict returns the predicted click-through rate of the creative in the
// placement (of the creative overall for an empty placementID), in [0, 1].
// It does not allocate.
func (m *CTRModel) Predict(creativeID, placementID string) float64 {
	mean, strength, placementStrength := m.params()
	var pair, cr *ctrCounts
	if placementID != "" {
		if v, ok := m.counts.Load(ctrKey{creativeID, placementID}); ok {
			pair = v.(*ctrCounts)
			cr = pair.creative
		}
	}
	if cr == nil {
		if v, ok := m.counts.Load(ctrKey{creativeID, ""}); ok {
			cr = v.(*ctrCounts)
		}
	}
	p := mean
	if cr != nil {
		p = (mean*strength + float64(cr.clicks.Load())) / (strength + float64(cr.imps.Load()))
	}
	if pair != nil {
		p = (placementStrength*p + float64(pair.clicks.Load())) / (placementStrength + float64(pair.imps.Load()))
	}
	return math.Min(p, 1)
}

// Counts returns the impressions and clicks recorded for the pair (for the
// creative overall with an empty placementID).
func (m *CTRModel) Counts(creativeID, placementID string) (imps, clicks uint64) {
	if v, ok := m.counts.Load(ctrKey{creativeID, placementID}); ok {
		c := v.(*ctrCounts)
		return c.imps.Load(), c.clicks.Load()
	}
	return 0, 0
}

// Forget drops every count of the creative, as when its campaign is
// deleted, so that memory does not grow without bound. It walks the whole
// model. Counts recorded for the creative concurrently with Forget may be
// lost or kept.
func (m *CTRModel) Forget(creativeID string) {
	m.counts.Range(func(k, _ any) bool {
		if k.(ctrKey).creative == creativeID {
			m.counts.Delete(k)
		}
		return true
	})
}
