package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Result is the outcome of one run, the body of the -json file. The fields
// named in DESIGN.md section 3 (target_rate, achieved_rate, requests,
// status, errors, fill_rate, latency_ms, beacons, baseline) are a fixed
// contract; the others are extras.
type Result struct {
	Endpoint    string   `json:"endpoint"`
	Model       string   `json:"model"` // "open" or "closed"
	Targets     []string `json:"targets"`
	Concurrency int      `json:"concurrency"`
	DurationS   float64  `json:"duration_s"` // planned
	Elapsed     float64  `json:"elapsed_s"`  // measured, including the drain of in-flight requests
	// TargetRate is the planned mean rate over the duration: -rate, or less
	// with -ramp (0 in the closed model).
	TargetRate   float64 `json:"target_rate"`
	AchievedRate float64 `json:"achieved_rate"`
	// Requests counts the ad requests completed (answered or failed).
	Requests int64 `json:"requests"`
	// Scheduled, Late and Dropped describe the open model: requests planned,
	// sent more than the late threshold after their intended time (their
	// latency still counts from the intended time), and never sent because
	// the run ended while they waited for a free worker.
	Scheduled int64   `json:"scheduled"`
	Late      int64   `json:"late"`
	Dropped   int64   `json:"dropped"`
	MaxLagMs  float64 `json:"max_lag_ms"`
	// Status counts requests per HTTP status; "0" counts transport errors,
	// so the counts sum to Requests.
	Status       map[string]int64 `json:"status"`
	Errors       int64            `json:"errors"`
	ErrorsByKind map[string]int64 `json:"errors_by_kind"`
	LastError    string           `json:"last_error,omitempty"`
	// FillRate is 200-with-ads over all 2xx answers.
	FillRate     float64 `json:"fill_rate"`
	Filled       int64   `json:"filled"`
	BadResponses int64   `json:"bad_responses"` // 200s whose body did not parse
	// LatencyMs is measured from each request's intended send time.
	LatencyMs Percentiles   `json:"latency_ms"`
	Beacons   BeaconResult  `json:"beacons"`
	Series    []SecondStats `json:"series"`

	// Baseline is the same schedule against an empty fasthttp server.
	Baseline *Result `json:"baseline,omitempty"`
	// Ratio is achieved_rate / baseline.achieved_rate; LatencyRatio divides
	// each latency percentile by the baseline's.
	Ratio        *float64     `json:"ratio,omitempty"`
	LatencyRatio *Percentiles `json:"latency_ratio,omitempty"`
}

// Percentiles are latencies in milliseconds.
type Percentiles struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// BeaconResult counts the tracking beacons that followed fills.
type BeaconResult struct {
	Sent   int64 `json:"sent"`
	Failed int64 `json:"failed"` // transport error or a status outside 2xx/3xx
	// Dropped beacons were never sent: the beacon queue was full, or the run
	// was over before their turn.
	Dropped     int64 `json:"dropped"`
	Impressions int64 `json:"impressions"`
	Clicks      int64 `json:"clicks"`
	Conversions int64 `json:"conversions"`
	// ClicksSkipped and ConversionsSkipped count the clicks and conversions
	// drawn by -ctr and -conv-rate that had no URL to follow.
	ClicksSkipped      int64       `json:"clicks_skipped"`
	ConversionsSkipped int64       `json:"conversions_skipped"`
	LastFailure        string      `json:"last_failure,omitempty"`
	LatencyMs          Percentiles `json:"latency_ms"`
}

// SecondStats is one second of the run: completions in it and their latency.
type SecondStats struct {
	T        int     `json:"t"` // seconds since the start, the end of the interval
	Requests int64   `json:"requests"`
	Target   float64 `json:"target,omitempty"` // open model: requests planned in this second
	// Span is the interval's length in seconds: 1, except for a last,
	// partial second (the drain of in-flight requests).
	Span float64 `json:"span_s"`
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// setRatios compares r with its baseline.
func (r *Result) setRatios() {
	b := r.Baseline
	if b == nil {
		return
	}
	x := ratio(r.AchievedRate, b.AchievedRate)
	r.Ratio = &x
	r.LatencyRatio = &Percentiles{
		P50: ratio(r.LatencyMs.P50, b.LatencyMs.P50), P90: ratio(r.LatencyMs.P90, b.LatencyMs.P90),
		P99: ratio(r.LatencyMs.P99, b.LatencyMs.P99), P999: ratio(r.LatencyMs.P999, b.LatencyMs.P999),
		Max: ratio(r.LatencyMs.Max, b.LatencyMs.Max), Mean: ratio(r.LatencyMs.Mean, b.LatencyMs.Mean),
	}
}

// WriteJSONFile writes r, indented, to path.
func (r *Result) WriteJSONFile(path string) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return fmt.Errorf("cannot encode result: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write result: %w", err)
	}
	return nil
}

// WriteSummary prints the human-readable report of r (and its baseline).
func (r *Result) WriteSummary(w io.Writer) {
	r.writeOne(w, "")
	if b := r.Baseline; b != nil {
		fmt.Fprintln(w)
		b.writeOne(w, "baseline (empty fasthttp server, same schedule, run first)")
		fmt.Fprintf(w, "\nratio to baseline: throughput %.3f; latency p50 %.2fx p90 %.2fx p99 %.2fx p99.9 %.2fx max %.2fx\n",
			*r.Ratio, r.LatencyRatio.P50, r.LatencyRatio.P90, r.LatencyRatio.P99, r.LatencyRatio.P999, r.LatencyRatio.Max)
	}
}

func (r *Result) writeOne(w io.Writer, title string) {
	if title == "" {
		title = "ad server " + strings.Join(r.Targets, ",")
	}
	fmt.Fprintf(w, "== %s: %s model, endpoint %s, %d workers, %.1fs\n", title, r.Model, r.Endpoint, r.Concurrency, r.Elapsed)
	if r.Model == "open" {
		fmt.Fprintf(w, "rate      target %.1f/s  achieved %.1f/s  (scheduled %d, sent %d, late %d, dropped %d, max lag %.1fms)\n",
			r.TargetRate, r.AchievedRate, r.Scheduled, r.Requests, r.Late, r.Dropped, r.MaxLagMs)
	} else {
		fmt.Fprintf(w, "rate      achieved %.1f/s  (%d requests)\n", r.AchievedRate, r.Requests)
	}
	l := r.LatencyMs
	fmt.Fprintf(w, "latency   p50 %s  p90 %s  p99 %s  p99.9 %s  max %s  (ms; requests that waited for a worker are timed from their intended send time)\n",
		f3(l.P50), f3(l.P90), f3(l.P99), f3(l.P999), f3(l.Max))
	codes := make([]string, 0, len(r.Status))
	for c := range r.Status {
		codes = append(codes, c)
	}
	sort.Slice(codes, func(i, j int) bool { a, _ := strconv.Atoi(codes[i]); b, _ := strconv.Atoi(codes[j]); return a < b })
	var sb strings.Builder
	for _, c := range codes {
		name := c
		if c == "0" {
			name = "error"
		}
		fmt.Fprintf(&sb, " %s:%d", name, r.Status[c])
	}
	fmt.Fprintf(w, "status   %s\n", sb.String())
	if r.Errors > 0 {
		fmt.Fprintf(w, "errors    %d: timeout %d, conn_refused %d, conn_closed %d, other %d (last: %s)\n", r.Errors,
			r.ErrorsByKind[ErrTimeout], r.ErrorsByKind[ErrConnRefused], r.ErrorsByKind[ErrConnClosed], r.ErrorsByKind[ErrOther], r.LastError)
	}
	fmt.Fprintf(w, "fill      %.1f%% of 2xx (%d filled", 100*r.FillRate, r.Filled)
	if r.BadResponses > 0 {
		fmt.Fprintf(w, ", %d unparseable 200s", r.BadResponses)
	}
	fmt.Fprintln(w, ")")
	if b := r.Beacons; b.Sent+b.Dropped+b.ClicksSkipped+b.ConversionsSkipped > 0 {
		fmt.Fprintf(w, "beacons   sent %d failed %d dropped %d: imp %d click %d conv %d (skipped: click %d conv %d); p50 %s p99 %s ms\n",
			b.Sent, b.Failed, b.Dropped, b.Impressions, b.Clicks, b.Conversions, b.ClicksSkipped, b.ConversionsSkipped,
			f3(b.LatencyMs.P50), f3(b.LatencyMs.P99))
		if b.LastFailure != "" {
			fmt.Fprintf(w, "          last beacon failure: %s\n", b.LastFailure)
		}
	}
	if r.Dropped > 0 || r.Late*100 > r.Scheduled {
		fmt.Fprintf(w, "WARNING   the target rate was not held: %d late, %d dropped of %d scheduled; raise -concurrency or lower -rate (dropped requests are not in the latency figures)\n",
			r.Late, r.Dropped, r.Scheduled)
	}
}

func f3(v float64) string { return strconv.FormatFloat(v, 'f', 3, 64) }
