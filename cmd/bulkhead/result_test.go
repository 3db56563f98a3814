package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/adserver/adserver/loadtest"
)

// phases builds a result from (mode, achieved rate, p99) triples.
func phases(faults []Mode, ph ...any) *Result {
	r := &Result{Config: Config{Faults: faults, Bound: 0.1}, Delivery: Delivery{Pass: true}}
	for i := 0; i < len(ph); i += 3 {
		ad := &loadtest.Result{AchievedRate: ph[i+1].(float64)}
		ad.LatencyMs.P99 = ph[i+2].(float64)
		r.Phases = append(r.Phases, &Phase{Index: i / 3, Mode: ph[i].(string), Ad: ad, Reports: &ReportStats{}})
	}
	return r
}

func TestEvaluate(t *testing.T) {
	one := []Mode{ModeDown, ModeBlackhole, ModeSlow}
	cases := []struct {
		name   string
		r      *Result
		status string
		want   string // in Failures
	}{
		{"all within", phases(one,
			"normal", 1000.0, 2.0, "down", 1000.0, 2.1, "normal", 1000.0, 2.0, "blackhole", 1000.0, 1.9,
			"normal", 1000.0, 2.0, "slow", 1000.0, 2.0, "normal", 1000.0, 2.05), "PASS", ""},
		{"slow p99 outside, quiet controls", phases(one,
			"normal", 1000.0, 2.0, "down", 1000.0, 2.1, "normal", 1000.0, 2.0, "blackhole", 1000.0, 1.9,
			"normal", 1000.0, 2.0, "slow", 1000.0, 3.0, "normal", 1000.0, 2.05), "FAIL", "slow: median p99 ratio 1.481"},
		{"down throughput outside", phases(one,
			"normal", 1000.0, 2.0, "down", 800.0, 2.0, "normal", 1000.0, 2.0, "blackhole", 1000.0, 2.0,
			"normal", 1000.0, 2.0, "slow", 1000.0, 2.0, "normal", 1000.0, 2.0), "FAIL", "down: median throughput ratio 0.800"},
		{"noisy controls", phases(one,
			"normal", 1000.0, 2.0, "down", 1000.0, 2.0, "normal", 1000.0, 9.0, "blackhole", 1000.0, 2.0,
			"normal", 1000.0, 2.0, "slow", 1000.0, 2.0, "normal", 1000.0, 2.0), "INCONCLUSIVE", "p99: only 0 of 2"},
		{"noisy controls, every fault phase better than every control", phases(one,
			"normal", 1000.0, 2.0, "down", 1000.0, 1.0, "normal", 1000.0, 9.0, "blackhole", 1000.0, 1.0,
			"normal", 1000.0, 2.0, "slow", 1000.0, 1.0, "normal", 1000.0, 9.0, "down", 1000.0, 1.0,
			"normal", 1000.0, 2.0), "PASS", ""},
		{"noisy controls, one fault phase among the controls", phases(one,
			"normal", 1000.0, 2.0, "down", 1000.0, 1.0, "normal", 1000.0, 9.0, "blackhole", 1000.0, 1.0,
			"normal", 1000.0, 2.0, "slow", 1000.0, 3.0, "normal", 1000.0, 9.0, "down", 1000.0, 1.0,
			"normal", 1000.0, 2.0), "INCONCLUSIVE", "p99: only 0 of 3"},
		{"lost events", func() *Result {
			r := phases([]Mode{ModeDown}, "normal", 1000.0, 2.0, "down", 1000.0, 2.0, "normal", 1000.0, 2.0)
			r.Delivery = Delivery{Problems: []string{"ClickHouse holds 9 distinct events, the node recorded 10"}}
			return r
		}(), "FAIL", "delivery: ClickHouse holds 9"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.r.evaluate(0.1)
			if c.r.Status != c.status || c.r.Pass != (c.status == "PASS") {
				t.Errorf("status %s (pass %v), want %s; failures %q", c.r.Status, c.r.Pass, c.status, c.r.Failures)
			}
			if c.want != "" && !strings.Contains(strings.Join(c.r.Failures, "\n"), c.want) {
				t.Errorf("failures %q lack %q", c.r.Failures, c.want)
			}
			var out bytes.Buffer
			c.r.print(&out)
			if !strings.Contains(out.String(), "result: "+c.status) {
				t.Errorf("output lacks the status:\n%s", out.String())
			}
		})
	}
}

func TestEvaluateNeighbours(t *testing.T) {
	r := phases([]Mode{ModeDown, ModeSlow},
		"normal", 100.0, 1.0, "down", 100.0, 1.0, "normal", 100.0, 3.0, "slow", 100.0, 1.0, "normal", 100.0, 1.0)
	r.evaluate(0.1)
	if len(r.Faults) != 2 || len(r.Controls) != 1 {
		t.Fatalf("%d faults, %d controls; want 2 and 1", len(r.Faults), len(r.Controls))
	}
	if f := r.Faults[1]; f.Phase != 3 || f.NormalP99 != 2.0 || f.P99Ratio != 0.5 {
		t.Errorf("slow against phases 2 and 4: %+v", f)
	}
	if c := r.Controls[0]; c.Phase != 2 || c.P99Ratio != 3.0 || c.Pass {
		t.Errorf("control: %+v", c)
	}
}
