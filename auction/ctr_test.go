package auction

import (
	"math"
	"sync"
	"testing"
)

func near(got, want, tol float64) bool { return math.Abs(got-want) <= tol }

func TestCTRPrior(t *testing.T) {
	var m CTRModel // zero value: defaults
	if p := m.Predict("new", "p-1"); p != DefaultPriorMean {
		t.Errorf("new creative: %v, want the prior %v", p, DefaultPriorMean)
	}
	m2, err := NewCTRModel(CTRConfig{PriorMean: 0.002, PriorStrength: 200, PlacementStrength: 50})
	if err != nil {
		t.Fatal(err)
	}
	if p := m2.Predict("new", ""); p != 0.002 {
		t.Errorf("configured prior: %v, want 0.002", p)
	}
	// Impressions without clicks pull the estimate down, by the Beta
	// posterior mean: (0.4 + 0) / (200 + 200) = 0.001.
	for range 200 {
		m2.RecordImpression("cr", "")
	}
	if p := m2.Predict("cr", ""); !near(p, 0.001, 1e-15) {
		t.Errorf("after 200 impressions, no clicks: %v, want 0.001", p)
	}
}

func TestCTRConverges(t *testing.T) {
	var m CTRModel
	const imps, clicks = 100_000, 2_000 // 2%
	prev := m.Predict("cr", "p-1")
	for i := range imps {
		m.RecordImpression("cr", "p-1")
		if i%50 == 0 {
			m.RecordClick("cr", "p-1")
		}
		if i == 999 {
			// Part way: between the prior and the observed CTR.
			p := m.Predict("cr", "p-1")
			if !(p > prev && p < 0.02) {
				t.Errorf("after 1000 impressions: %v, want in (%v, 0.02)", p, prev)
			}
		}
	}
	if i, c := m.Counts("cr", "p-1"); i != imps || c != clicks {
		t.Fatalf("counts %d/%d, want %d/%d", i, c, imps, clicks)
	}
	if i, c := m.Counts("cr", ""); i != imps || c != clicks {
		t.Fatalf("creative counts %d/%d, want %d/%d", i, c, imps, clicks)
	}
	if p := m.Predict("cr", "p-1"); !near(p, 0.02, 0.0003) {
		t.Errorf("after 100k impressions at 2%%: %v", p)
	}
	// A new placement for a known creative starts from the creative's
	// estimate, not from the prior.
	want := (DefaultPriorMean*DefaultPriorStrength + clicks) / (DefaultPriorStrength + imps)
	if p := m.Predict("cr", "p-new"); p != want {
		t.Errorf("known creative, new placement: %v, want %v", p, want)
	}
}

func TestCTRBlendsPlacements(t *testing.T) {
	var m CTRModel
	record := func(pl string, imps, clicks int) {
		for i := range imps {
			m.RecordImpression("cr", pl)
			if i < clicks {
				m.RecordClick("cr", pl)
			}
		}
	}
	record("low", 90_000, 900)  // 1%
	record("high", 10_000, 500) // 5%
	cr := m.Predict("cr", "")
	if !near(cr, (0.005*1000+1400.0)/(1000+100_000), 1e-15) { // Beta posterior mean
		t.Errorf("creative level %v", cr)
	}
	high, low := m.Predict("cr", "high"), m.Predict("cr", "low")
	wantHigh := (DefaultPlacementStrength*cr + 500) / (DefaultPlacementStrength + 10_000)
	if !near(high, wantHigh, 1e-15) || !(high > cr && high < 0.05 && high > 0.045) {
		t.Errorf("high placement %v, want %v (between creative %v and 5%%, near 5%%)", high, wantHigh, cr)
	}
	if !(low < cr && low > 0.01 && low < 0.0105) {
		t.Errorf("low placement %v, want just above 1%%", low)
	}
}

func TestCTRClampsAndForgets(t *testing.T) {
	m, _ := NewCTRModel(CTRConfig{PriorStrength: 1, PlacementStrength: 1})
	for range 10 {
		m.RecordClick("cr", "p") // clicks whose impressions were lost
	}
	if p := m.Predict("cr", "p"); p != 1 {
		t.Errorf("clicks without impressions: %v, want clamped to 1", p)
	}
	m.RecordImpression("other", "p")
	m.Forget("cr")
	if i, c := m.Counts("cr", "p"); i != 0 || c != 0 {
		t.Errorf("after Forget: %d/%d", i, c)
	}
	if p := m.Predict("cr", "p"); p != DefaultPriorMean {
		t.Errorf("after Forget: %v, want the prior", p)
	}
	if i, _ := m.Counts("other", "p"); i != 1 {
		t.Errorf("Forget dropped another creative's counts")
	}
}

func TestCTRConfigValidate(t *testing.T) {
	bad := []CTRConfig{
		{PriorMean: 1}, {PriorMean: -0.1}, {PriorMean: math.NaN()},
		{PriorStrength: -1}, {PriorStrength: math.Inf(1)},
		{PlacementStrength: -5}, {PlacementStrength: math.NaN()},
	}
	for _, c := range bad {
		if _, err := NewCTRModel(c); err == nil {
			t.Errorf("NewCTRModel(%+v) accepted", c)
		}
	}
	if _, err := NewCTRModel(CTRConfig{PriorMean: 0.01, PriorStrength: 100, PlacementStrength: 10}); err != nil {
		t.Errorf("valid config rejected: %v", err)
	}
}

// TestCTRConcurrent records and predicts from many goroutines; run it with
// -race. Every count must arrive.
func TestCTRConcurrent(t *testing.T) {
	var m CTRModel
	const workers, n = 8, 5_000
	placements := []string{"p-1", "p-2", "p-3"}
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range n {
				pl := placements[(w+i)%len(placements)]
				m.RecordImpression("cr", pl)
				if i%10 == 0 {
					m.RecordClick("cr", pl)
				}
				if p := m.Predict("cr", pl); !(p >= 0 && p <= 1) {
					t.Errorf("prediction %v out of range", p)
					return
				}
				_ = m.Predict("cr-"+pl, pl) // unknown creative: read path only
			}
		})
	}
	wg.Wait()
	var imps, clicks uint64
	for _, pl := range placements {
		i, c := m.Counts("cr", pl)
		imps, clicks = imps+i, clicks+c
	}
	ci, cc := m.Counts("cr", "")
	if imps != workers*n || clicks != workers*n/10 || ci != imps || cc != clicks {
		t.Errorf("counts: pairs %d/%d, creative %d/%d, want %d/%d", imps, clicks, ci, cc, workers*n, workers*n/10)
	}
}
