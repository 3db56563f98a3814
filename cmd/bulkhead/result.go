package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/adserver/adserver/loadtest"
)

// Result is what one run measured; the body of the -json file.
type Result struct {
	Config  Config         `json:"config"`
	Node    string         `json:"node"`  // the adserver command line
	Proxy   string         `json:"proxy"` // the proxy's address
	Dir     string         `json:"dir"`
	Started time.Time      `json:"started"`
	Seeded  map[string]int `json:"seeded"`
	// Calibration is the closed-model run that set Rate (nil with -rate).
	Calibration *loadtest.Result `json:"calibration,omitempty"`
	Rate        float64          `json:"rate"` // the open-model rate of every phase
	Phases      []*Phase         `json:"phases"`
	// Faults compare each fault phase with its normal neighbours; Controls
	// compare each normal phase with its normal neighbours (two phases
	// away), which shows how much fault-free phases differ on this machine.
	Faults   []Comparison `json:"faults"`
	Controls []Comparison `json:"controls"`
	// Verdicts judge each fault kind by the medians of its comparisons'
	// ratios over the rounds (one round: its only comparison).
	Verdicts []Verdict `json:"verdicts"`
	// Resolution says whether fault-free phases agree within the bound,
	// i.e. whether this run on this machine can resolve it at all.
	Resolution Resolution `json:"resolution"`
	Delivery   Delivery   `json:"delivery"`
	// Status is PASS (every fault within the bound, the controls too, and
	// every event delivered), FAIL (a fault outside the bound while the
	// controls are within it, or an event lost or doubled) or INCONCLUSIVE
	// (the controls differ by more than the bound: the machine is too
	// noisy to show the bound either way). Failures says why.
	Status   string   `json:"status"`
	Pass     bool     `json:"pass"`
	Failures []string `json:"failures,omitempty"`
}

// Phase is one measured phase.
type Phase struct {
	Index int              `json:"index"`
	Round int              `json:"round"` // 0 for the first normal phase
	Mode  string           `json:"mode"`
	Start time.Time        `json:"start"`
	Ad    *loadtest.Result `json:"ad"`
	// Reports are the report queries started during the phase.
	Reports *ReportStats `json:"reports"`
	// ProxyBytes and ProxyConns are what the proxy forwarded and accepted
	// during the phase.
	ProxyBytes int64 `json:"proxy_bytes"`
	ProxyConns int64 `json:"proxy_conns"`
	// ShipperErrors is the growth of adserver_shipper_errors_total during
	// the phase; Unshipped is adserver_eventlog_unshipped_records at its
	// end; CHRows the rows in the events table at its end.
	ShipperErrors float64 `json:"shipper_errors"`
	Unshipped     float64 `json:"unshipped"`
	CHRows        int64   `json:"ch_rows"`
	// CatchupS is, after a fault phase, the time from restoring the proxy
	// to the node reporting its backlog shipped (-1: not within -catchup).
	CatchupS float64 `json:"catchup_s,omitempty"`
	// CPU is the CPU used during the phase, in cores.
	CPU CPUShare `json:"cpu"`
}

// Comparison is one phase against the mean of its neighbours.
type Comparison struct {
	Phase            int     `json:"phase"`
	Mode             string  `json:"mode"`
	Neighbours       []int   `json:"neighbours"`
	Throughput       float64 `json:"throughput"`
	NormalThroughput float64 `json:"normal_throughput"`
	ThroughputRatio  float64 `json:"throughput_ratio"`
	P99              float64 `json:"p99_ms"`
	NormalP99        float64 `json:"normal_p99_ms"`
	P99Ratio         float64 `json:"p99_ratio"`
	P999Ratio        float64 `json:"p999_ratio"`
	Pass             bool    `json:"pass"`
	// Saturated: during one of the phases compared, processes other than
	// the node, the harness and ClickHouse left the machine (nearly) no
	// idle CPU, so the comparison measures them as much as the node.
	Saturated bool `json:"saturated"`
}

// Verdict judges one fault kind over its rounds.
type Verdict struct {
	Mode            string  `json:"mode"`
	Comparisons     int     `json:"comparisons"`
	Passed          int     `json:"passed"` // comparisons within the bound in both metrics
	ThroughputRatio float64 `json:"median_throughput_ratio"`
	P99Ratio        float64 `json:"median_p99_ratio"`
	ThroughputOK    bool    `json:"throughput_ok"`
	P99OK           bool    `json:"p99_ok"`
}

// Resolution counts the controls (normal phases against their normal
// neighbours) within the bound, per metric. A metric is resolved when at
// least three quarters of the controls are within the bound: then a fault
// outside it is the fault's doing, not the machine's.
type Resolution struct {
	Controls         int     `json:"controls"`
	ThroughputWithin int     `json:"throughput_within"`
	P99Within        int     `json:"p99_within"`
	MedianP99Ratio   float64 `json:"median_p99_ratio"`
	ThroughputOK     bool    `json:"throughput_ok"`
	P99OK            bool    `json:"p99_ok"`
	// P99Below is set when the controls do not resolve the p99 bound but
	// every fault phase's p99 ratio is within it and below every
	// control's: the faults made p99 better, not worse, beyond the noise
	// (with at least 3 of each, the chance of that ordering without an
	// effect is at most 1 in 20). The bound is one-sided (a bulkhead must
	// keep faults from hurting serving), so that resolves it.
	P99Below bool `json:"p99_below_every_control"`
}

// Delivery checks that every event the node recorded, during faults
// included, reached ClickHouse exactly once.
type Delivery struct {
	// BeaconsOK counts the beacons the node answered with success (the
	// harness's count, all runs included).
	BeaconsOK int64 `json:"beacons_ok"`
	// Recorded is adserver_events_recorded_total; LogFailed
	// adserver_events_log_failed_total.
	Recorded  int64 `json:"recorded"`
	LogFailed int64 `json:"log_failed"`
	// CHRows and CHUnique are count() and uniqExact(event_id) of the events
	// table; RollupEvents the events counted by rollup_campaign_hourly,
	// which must equal CHUniqueNonTest.
	CHRows          int64    `json:"ch_rows"`
	CHUnique        int64    `json:"ch_unique"`
	CHUniqueNonTest int64    `json:"ch_unique_non_test"`
	RollupEvents    int64    `json:"rollup_events"`
	WaitS           float64  `json:"wait_s"` // the final wait for the shipper
	Pass            bool     `json:"pass"`
	Problems        []string `json:"problems,omitempty"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// compare compares phase i with the mean of the phases in nb.
func (r *Result) compare(i int, nb []int, bound float64) Comparison {
	p := r.Phases[i].Ad
	var thr, p99, p999 float64
	for _, j := range nb {
		thr += r.Phases[j].Ad.AchievedRate / float64(len(nb))
		p99 += r.Phases[j].Ad.LatencyMs.P99 / float64(len(nb))
		p999 += r.Phases[j].Ad.LatencyMs.P999 / float64(len(nb))
	}
	c := Comparison{
		Phase: i, Mode: r.Phases[i].Mode, Neighbours: nb,
		Throughput: p.AchievedRate, NormalThroughput: thr, ThroughputRatio: ratio(p.AchievedRate, thr),
		P99: p.LatencyMs.P99, NormalP99: p99, P99Ratio: ratio(p.LatencyMs.P99, p99),
		P999Ratio: ratio(p.LatencyMs.P999, p999),
	}
	c.Pass = c.ThroughputRatio >= 1-bound && c.P99Ratio <= 1+bound
	c.Saturated = r.Phases[i].CPU.saturatedByOthers()
	for _, j := range nb {
		c.Saturated = c.Saturated || r.Phases[j].CPU.saturatedByOthers()
	}
	return c
}

// verdict takes the medians of the ratios of cs.
func verdict(mode string, cs []Comparison, bound float64) Verdict {
	v := Verdict{Mode: mode, Comparisons: len(cs)}
	thr := make([]float64, len(cs))
	p99 := make([]float64, len(cs))
	for i, c := range cs {
		thr[i], p99[i] = c.ThroughputRatio, c.P99Ratio
		if c.Pass {
			v.Passed++
		}
	}
	v.ThroughputRatio, v.P99Ratio = median(thr), median(p99)
	v.ThroughputOK = len(cs) > 0 && v.ThroughputRatio >= 1-bound
	v.P99OK = len(cs) > 0 && v.P99Ratio <= 1+bound
	return v
}

func within(ratio, bound float64) bool { return ratio >= 1-bound && ratio <= 1+bound }

func resolution(controls []Comparison, bound float64) Resolution {
	r := Resolution{Controls: len(controls)}
	p99 := make([]float64, len(controls))
	for i, c := range controls {
		if within(c.ThroughputRatio, bound) {
			r.ThroughputWithin++
		}
		if within(c.P99Ratio, bound) {
			r.P99Within++
		}
		p99[i] = c.P99Ratio
	}
	r.MedianP99Ratio = median(p99)
	enough := func(n int) bool { return r.Controls > 0 && 4*n >= 3*r.Controls }
	r.ThroughputOK, r.P99OK = enough(r.ThroughputWithin), enough(r.P99Within)
	return r
}

func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	x = append([]float64(nil), x...)
	sort.Float64s(x)
	n := len(x)
	if n%2 == 1 {
		return x[n/2]
	}
	return (x[n/2-1] + x[n/2]) / 2
}

// evaluate fills Faults, Controls, Verdicts, Resolution, Status, Pass and
// Failures.
func (r *Result) evaluate(bound float64) {
	normal := func(j int) bool { return j >= 0 && j < len(r.Phases) && r.Phases[j].Mode == ModePass.String() }
	r.Faults, r.Controls, r.Failures = nil, nil, nil
	for i, ph := range r.Phases {
		if ph.Ad == nil {
			continue
		}
		if ph.Mode != ModePass.String() {
			var nb []int
			for _, j := range []int{i - 1, i + 1} {
				if normal(j) {
					nb = append(nb, j)
				}
			}
			if len(nb) == 0 {
				continue // the run stopped early
			}
			r.Faults = append(r.Faults, r.compare(i, nb, bound))
		} else if normal(i-2) && normal(i+2) {
			c := r.compare(i, []int{i - 2, i + 2}, bound)
			// A control is within the bound when it is that close either way.
			c.Pass = within(c.ThroughputRatio, bound) && within(c.P99Ratio, bound)
			r.Controls = append(r.Controls, c)
		}
	}
	r.Verdicts = nil
	r.Resolution = resolution(r.Controls, bound)
	if !r.Resolution.P99OK && len(r.Faults) >= 3 && len(r.Controls) >= 3 {
		maxFault, minControl := 0.0, r.Controls[0].P99Ratio
		for _, c := range r.Faults {
			maxFault = max(maxFault, c.P99Ratio)
		}
		for _, c := range r.Controls {
			minControl = min(minControl, c.P99Ratio)
		}
		r.Resolution.P99Below = maxFault <= 1+bound && maxFault < minControl
	}
	res := r.Resolution
	var fails, unsure []string
	for _, m := range r.Config.Faults {
		var cs []Comparison
		for _, c := range r.Faults {
			if c.Mode == m.String() {
				cs = append(cs, c)
			}
		}
		v := verdict(m.String(), cs, bound)
		r.Verdicts = append(r.Verdicts, v)
		for _, x := range []struct {
			name     string
			ok, res  bool
			ratio    float64
			resolved string
		}{
			{"throughput", v.ThroughputOK, res.ThroughputOK, v.ThroughputRatio, fmt.Sprintf("%d of %d", res.ThroughputWithin, res.Controls)},
			{"p99", v.P99OK, res.P99OK, v.P99Ratio, fmt.Sprintf("%d of %d", res.P99Within, res.Controls)},
		} {
			if x.ok {
				continue
			}
			msg := fmt.Sprintf("%s: median %s ratio %.3f over %d round(s) is outside the %.0f%% bound", v.Mode, x.name, x.ratio, v.Comparisons, 100*bound)
			if x.res {
				fails = append(fails, msg)
			} else {
				unsure = append(unsure, msg+" (but only "+x.resolved+" controls are within it: noise)")
			}
		}
	}
	if !r.Delivery.Pass {
		fails = append(fails, "delivery: "+strings.Join(r.Delivery.Problems, "; "))
	}
	if !res.ThroughputOK {
		unsure = append(unsure, fmt.Sprintf("throughput: only %d of %d fault-free phases are within the bound of their neighbours", res.ThroughputWithin, res.Controls))
	}
	if !res.P99OK && !res.P99Below {
		unsure = append(unsure, fmt.Sprintf("p99: only %d of %d fault-free phases are within the bound of their neighbours (median ratio %.3f): "+
			"the machine is too noisy to resolve the bound; rerun when it is quieter", res.P99Within, res.Controls, res.MedianP99Ratio))
	}
	switch {
	case len(fails) > 0:
		r.Status, r.Failures = "FAIL", append(fails, unsure...)
	case len(unsure) > 0:
		r.Status, r.Failures = "INCONCLUSIVE", unsure
	default:
		r.Status = "PASS"
	}
	r.Pass = r.Status == "PASS"
}

// exitCode maps the status: 0 PASS, 1 FAIL, 3 INCONCLUSIVE.
func (r *Result) exitCode() int {
	switch r.Status {
	case "PASS":
		return 0
	case "INCONCLUSIVE":
		return 3
	}
	return 1
}

func (r *Result) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return fmt.Errorf("cannot encode the result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write the result: %w", err)
	}
	return nil
}

// print writes the human-readable report.
func (r *Result) print(w io.Writer) {
	fmt.Fprintf(w, "\nnode:  %s\nproxy: %s → %s (slow adds %v per direction)\n", r.Node, r.Proxy, r.Config.ClickHouse, r.Config.Delay)
	if c := r.Calibration; c != nil {
		fmt.Fprintf(w, "closed-model maximum: %.0f/s (%d workers, p50 %.2fms p99 %.2fms); open-model rate %.0f/s (%.0f%%)\n",
			c.AchievedRate, c.Concurrency, c.LatencyMs.P50, c.LatencyMs.P99, r.Rate, 100*r.Config.RateFraction)
	} else {
		fmt.Fprintf(w, "open-model rate %.0f/s (-rate)\n", r.Rate)
	}
	r.printPhases(w)
	bound := r.Config.Bound
	fmt.Fprintf(w, "\nfault phases against the mean of their normal neighbours (bound: throughput >= %.2f, p99 <= %.2f;\n"+
		"sat: a phase compared ran with the machine saturated by other processes):\n", 1-bound, 1+bound)
	fmt.Fprintf(w, "%-13s %-7s %10s %10s %7s %8s %8s %7s %7s  %s\n",
		"phase", "vs", "achvd/s", "normal/s", "ratio", "p99ms", "normal", "ratio", "p99.9r", "verdict")
	for _, c := range r.Faults {
		writeComparison(w, c, "PASS", "FAIL")
	}
	if len(r.Controls) > 0 {
		fmt.Fprintln(w, "control: normal phases against their normal neighbours (the noise between fault-free phases):")
		for _, c := range r.Controls {
			writeComparison(w, c, "within", "outside")
		}
	}
	fmt.Fprintf(w, "\nper fault, medians over the rounds:\n")
	ok := map[bool]string{true: "within", false: "OUTSIDE"}
	for _, v := range r.Verdicts {
		fmt.Fprintf(w, "  %-9s throughput %.3f (%s)  p99 %.3f (%s)  %d of %d phases within the bound in both\n",
			v.Mode, v.ThroughputRatio, ok[v.ThroughputOK], v.P99Ratio, ok[v.P99OK], v.Passed, v.Comparisons)
	}
	res := r.Resolution
	fmt.Fprintf(w, "  controls: throughput within the bound in %d of %d, p99 in %d of %d (median p99 ratio %.3f): "+
		"throughput %s, p99 %s\n", res.ThroughputWithin, res.Controls, res.P99Within, res.Controls, res.MedianP99Ratio,
		map[bool]string{true: "resolved", false: "NOT resolved"}[res.ThroughputOK], map[bool]string{true: "resolved", false: "NOT resolved"}[res.P99OK])
	if res.P99Below {
		fmt.Fprintf(w, "  p99 resolved one-sided: every fault phase's p99 ratio is within the bound and below every control's\n")
	}
	d := r.Delivery
	fmt.Fprintf(w, "\ndelivery: beacons answered %d; node recorded %d events (log failures %d); ClickHouse: %d rows, %d distinct, rollups count %d (of %d non-test); final wait %.1fs: %s\n",
		d.BeaconsOK, d.Recorded, d.LogFailed, d.CHRows, d.CHUnique, d.RollupEvents, d.CHUniqueNonTest, d.WaitS,
		map[bool]string{true: "nothing lost, nothing doubled", false: "PROBLEM: " + strings.Join(d.Problems, "; ")}[d.Pass])
	switch r.Status {
	case "PASS":
		fmt.Fprintf(w, "result: PASS (every fault within %.0f%% of normal throughput and p99, fault-free phases too; every event delivered)\n", 100*bound)
	default:
		fmt.Fprintf(w, "result: %s\n", r.Status)
		for _, f := range r.Failures {
			fmt.Fprintf(w, "  %s\n", f)
		}
	}
}

// printPhases writes the two per-phase tables.
func (r *Result) printPhases(w io.Writer) {
	fmt.Fprintf(w, "\n/v1/ad per phase (open model, latency from each request's intended send time; µs/req: the\n"+
		"adserver's CPU time per ad request, beacons and reports included; cpu in cores:\n"+
		"adserver/harness/clickhouse/other processes/idle; sat: saturated by other processes):\n")
	fmt.Fprintf(w, "%-3s %-9s %8s %8s %7s %7s %8s %8s %6s %6s %5s %6s %7s  %s\n",
		"#", "mode", "target/s", "achvd/s", "p50ms", "p99ms", "p99.9ms", "max ms", "errors", "late", "drop", "fill", "µs/req", "cpu")
	for _, ph := range r.Phases {
		a := ph.Ad
		sat := ""
		if ph.CPU.saturatedByOthers() {
			sat = " sat"
		}
		fmt.Fprintf(w, "%-3d %-9s %8.0f %8.1f %7.2f %7.2f %8.2f %8.1f %6d %6d %5d %5.1f%% %7.0f  %s%s\n",
			ph.Index, ph.Mode, a.TargetRate, a.AchievedRate, a.LatencyMs.P50, a.LatencyMs.P99, a.LatencyMs.P999, a.LatencyMs.Max,
			a.Errors, a.Late, a.Dropped, 100*a.FillRate, 1e6*ratio(ph.CPU.Node, a.AchievedRate), ph.CPU, sat)
	}
	fmt.Fprintf(w, "\nClickHouse work per phase (reports: GET /v1/reports started in the phase; ch errs: growth of\n"+
		"adserver_shipper_errors_total; unshipped, ch rows: at the phase's end; catch-up: after the proxy is restored):\n")
	fmt.Fprintf(w, "%-3s %-9s %8s %-24s %9s %9s %6s %7s %9s %8s %8s\n",
		"#", "mode", "beacons", "reports ok/sent", "rep p99ms", "proxy KB", "conns", "ch errs", "unshipped", "ch rows", "catch-up")
	for _, ph := range r.Phases {
		a, rep := ph.Ad, ph.Reports
		catchup := ""
		switch {
		case ph.CatchupS > 0:
			catchup = fmt.Sprintf("%.1fs", ph.CatchupS)
		case ph.CatchupS < 0:
			catchup = "timeout"
		}
		fmt.Fprintf(w, "%-3d %-9s %8d %-24s %9.0f %9.0f %6d %7.0f %9.0f %8d %8s\n",
			ph.Index, ph.Mode, a.Beacons.Sent-a.Beacons.Failed,
			strings.TrimSpace(fmt.Sprintf("%d/%d %s", rep.OK, rep.Sent, statusSummary(rep.Status))), rep.LatencyMs.P99,
			float64(ph.ProxyBytes)/1024, ph.ProxyConns, ph.ShipperErrors, ph.Unshipped, ph.CHRows, catchup)
	}
}

func writeComparison(w io.Writer, c Comparison, pass, fail string) {
	nb := make([]string, len(c.Neighbours))
	for i, j := range c.Neighbours {
		nb[i] = fmt.Sprint(j)
	}
	v := fail
	if c.Pass {
		v = pass
	}
	if c.Saturated {
		v += " (sat)"
	}
	fmt.Fprintf(w, "%-13s %-7s %10.1f %10.1f %7.3f %8.2f %8.2f %7.3f %7.3f  %s\n",
		fmt.Sprintf("%d %s", c.Phase, c.Mode), strings.Join(nb, ","), c.Throughput, c.NormalThroughput, c.ThroughputRatio,
		c.P99, c.NormalP99, c.P99Ratio, c.P999Ratio, v)
}

// statusSummary shows the non-200 answers, e.g. "503:12 504:4".
func statusSummary(m map[string]int64) string {
	var keys []string
	for k := range m {
		if k != "200" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var sb strings.Builder
	for _, k := range keys {
		if sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		fmt.Fprintf(&sb, "%s:%d", k, m[k])
	}
	return sb.String()
}
