package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func run(t *testing.T, cfg Config) *Result {
	t.Helper()
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got := sumStatus(res); got != res.Requests {
		t.Errorf("status counts sum to %d, requests %d", got, res.Requests)
	}
	if res.Baseline != nil {
		if got := sumStatus(res.Baseline); got != res.Baseline.Requests {
			t.Errorf("baseline status counts sum to %d, requests %d", got, res.Baseline.Requests)
		}
	}
	return res
}

// A server that takes 5ms per request shows a p50 near 5ms.
func TestLatencyReflectsServiceTime(t *testing.T) {
	url := startServer(t, sleepHandler(5*time.Millisecond))
	res := run(t, Config{Targets: []string{url}, Rate: 200, Duration: 2 * time.Second, Concurrency: 32})
	t.Logf("p50 %.2fms p99 %.2fms requests %d", res.LatencyMs.P50, res.LatencyMs.P99, res.Requests)
	if p := res.LatencyMs.P50; p < 4.5 || p > 60 {
		t.Errorf("p50 = %.2fms, want about 5ms", p)
	}
	if res.Status["204"] < 300 || res.Errors != 0 {
		t.Errorf("status %v errors %d", res.Status, res.Errors)
	}
}

// A one-second stall shows in the open model's tail for every request
// scheduled during it (coordinated omission corrected), while the closed
// model hides it behind the few requests that were in flight.
func TestStallOpenModelVersusClosedModel(t *testing.T) {
	open := &stallServer{arm: 800 * time.Millisecond, stall: time.Second}
	ro := run(t, Config{Targets: []string{startServer(t, open.handle)}, Rate: 400, Duration: 3 * time.Second, Concurrency: 16})
	closed := &stallServer{arm: 800 * time.Millisecond, stall: time.Second}
	rc := run(t, Config{Targets: []string{startServer(t, closed.handle)}, Rate: 0, Duration: 3 * time.Second, Concurrency: 4})
	t.Logf("open: %d requests, stalled %d, p50 %.1f p90 %.1f p99 %.1f max %.1f ms, late %d, dropped %d",
		ro.Requests, open.stalled.Load(), ro.LatencyMs.P50, ro.LatencyMs.P90, ro.LatencyMs.P99, ro.LatencyMs.Max, ro.Late, ro.Dropped)
	t.Logf("closed: %d requests, stalled %d, p50 %.2f p90 %.2f p99 %.2f max %.1f ms",
		rc.Requests, closed.stalled.Load(), rc.LatencyMs.P50, rc.LatencyMs.P90, rc.LatencyMs.P99, rc.LatencyMs.Max)
	if open.stalled.Load() == 0 || closed.stalled.Load() == 0 {
		t.Fatal("the server did not stall")
	}
	// ~400 of ~1200 requests were due during the stall: well over 10% of
	// them waited hundreds of ms.
	if ro.LatencyMs.P90 < 200 || ro.LatencyMs.P99 < 500 {
		t.Errorf("open model p90 %.1fms p99 %.1fms: the stall is hidden", ro.LatencyMs.P90, ro.LatencyMs.P99)
	}
	if ro.Late < 100 {
		t.Errorf("open model: %d late requests, want the ones due during the stall", ro.Late)
	}
	if rc.LatencyMs.Max < 500 {
		t.Errorf("closed model max %.1fms: the stall was not seen at all", rc.LatencyMs.Max)
	}
	if rc.LatencyMs.P99*5 > ro.LatencyMs.P99 {
		t.Errorf("closed p99 %.2fms is not far below open p99 %.2fms", rc.LatencyMs.P99, ro.LatencyMs.P99)
	}
}

// At a modest rate the achieved rate is the target rate, and the JSON file
// has every field of the contract.
func TestAchievedRateAndJSON(t *testing.T) {
	url := startServer(t, sleepHandler(0))
	res := run(t, Config{Targets: []string{url}, Rate: 500, Duration: 2 * time.Second, Concurrency: 16})
	t.Logf("achieved %.1f/s, requests %d, scheduled %d, late %d, dropped %d, max lag %.2fms",
		res.AchievedRate, res.Requests, res.Scheduled, res.Late, res.Dropped, res.MaxLagMs)
	if res.Scheduled != 1000 {
		t.Errorf("scheduled %d, want 1000", res.Scheduled)
	}
	if res.AchievedRate < 400 || res.AchievedRate > 550 {
		t.Errorf("achieved %.1f/s, want about 500", res.AchievedRate)
	}
	if res.Requests+res.Dropped != res.Scheduled {
		t.Errorf("requests %d + dropped %d != scheduled %d", res.Requests, res.Dropped, res.Scheduled)
	}
	var n int64
	for _, s := range res.Series {
		n += s.Requests
	}
	if n != res.Requests {
		t.Errorf("per-second series sums to %d, want %d", n, res.Requests)
	}
	path := filepath.Join(t.TempDir(), "out.json")
	if err := res.WriteJSONFile(path); err != nil {
		t.Fatal(err)
	}
	checkJSONFields(t, path, false)
}

func checkJSONFields(t *testing.T, path string, baseline bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	check := func(name string, m map[string]any) {
		for _, k := range []string{"target_rate", "achieved_rate", "requests", "status", "errors", "fill_rate", "latency_ms", "beacons"} {
			if _, ok := m[k]; !ok {
				t.Errorf("%s: missing %q", name, k)
			}
		}
		lat, _ := m["latency_ms"].(map[string]any)
		for _, k := range []string{"p50", "p90", "p99", "p999", "max"} {
			if _, ok := lat[k].(float64); !ok {
				t.Errorf("%s: latency_ms.%s missing", name, k)
			}
		}
		bc, _ := m["beacons"].(map[string]any)
		for _, k := range []string{"sent", "failed"} {
			if _, ok := bc[k].(float64); !ok {
				t.Errorf("%s: beacons.%s missing", name, k)
			}
		}
		st, _ := m["status"].(map[string]any)
		sum := 0.0
		for _, v := range st {
			sum += v.(float64)
		}
		if sum != m["requests"].(float64) {
			t.Errorf("%s: status sums to %v, requests %v", name, sum, m["requests"])
		}
	}
	check("result", m)
	if baseline {
		bm, ok := m["baseline"].(map[string]any)
		if !ok {
			t.Fatal("no baseline object")
		}
		check("baseline", bm)
		if _, ok := m["ratio"].(float64); !ok {
			t.Error("no ratio")
		}
	}
}

// More requests than the workers can carry: the excess is reported late
// and dropped, never hidden.
func TestOverloadReportsLateAndDropped(t *testing.T) {
	url := startServer(t, sleepHandler(50*time.Millisecond))
	res := run(t, Config{Targets: []string{url}, Rate: 200, Duration: time.Second, Concurrency: 2})
	t.Logf("requests %d scheduled %d late %d dropped %d p99 %.1fms", res.Requests, res.Scheduled, res.Late, res.Dropped, res.LatencyMs.P99)
	if res.Dropped < 100 || res.Late < 10 {
		t.Errorf("dropped %d late %d: overload hidden", res.Dropped, res.Late)
	}
	if res.Requests+res.Dropped != res.Scheduled {
		t.Errorf("requests %d + dropped %d != scheduled %d", res.Requests, res.Dropped, res.Scheduled)
	}
	if res.LatencyMs.P99 < 200 {
		t.Errorf("p99 %.1fms: the queueing delay is hidden", res.LatencyMs.P99)
	}
}

func TestErrorKinds(t *testing.T) {
	// A port with nothing listening: connection refused.
	res := run(t, Config{Targets: []string{"http://127.0.0.1:1"}, Rate: 50, Duration: 300 * time.Millisecond, Concurrency: 2})
	if res.Errors == 0 || res.Errors != res.Requests || res.ErrorsByKind[ErrConnRefused] != res.Errors || res.Status["0"] != res.Errors {
		t.Errorf("refused: errors %d of %d, by kind %v, status %v, last %q", res.Errors, res.Requests, res.ErrorsByKind, res.Status, res.LastError)
	}
	slow := startServer(t, sleepHandler(300*time.Millisecond))
	res = run(t, Config{Targets: []string{slow}, Rate: 20, Duration: 300 * time.Millisecond, Concurrency: 8, Timeout: 50 * time.Millisecond})
	if res.Errors == 0 || res.ErrorsByKind[ErrTimeout] != res.Errors {
		t.Errorf("timeout: errors %d of %d, by kind %v, last %q", res.Errors, res.Requests, res.ErrorsByKind, res.LastError)
	}
}

func TestBeaconsFollowFills(t *testing.T) {
	s := &fakeAdServer{withConv: true}
	url := startServer(t, s.handle)
	res := run(t, Config{Targets: []string{url}, Rate: 200, Duration: time.Second, Concurrency: 8,
		ImpRate: 1, CTR: 1, ConvRate: 1})
	b := res.Beacons
	t.Logf("requests %d fill %.2f beacons %+v server imps %d clicks %d convs %d", res.Requests, res.FillRate, b, s.imps.Load(), s.clicks.Load(), s.convs.Load())
	if res.FillRate < 0.4 || res.FillRate > 0.6 {
		t.Errorf("fill rate %.2f, want 0.5", res.FillRate)
	}
	if b.Impressions != res.Filled || s.imps.Load() != res.Filled {
		t.Errorf("impressions %d (server saw %d), fills %d", b.Impressions, s.imps.Load(), res.Filled)
	}
	if b.Clicks != b.Impressions || s.clicks.Load() != b.Clicks || s.convs.Load() != b.Clicks || b.Conversions != b.Clicks {
		t.Errorf("clicks %d convs %d (server %d, %d), imps %d", b.Clicks, b.Conversions, s.clicks.Load(), s.convs.Load(), b.Impressions)
	}
	if b.Failed != 0 || b.Sent != 3*res.Filled {
		t.Errorf("sent %d failed %d, want %d sent", b.Sent, b.Failed, 3*res.Filled)
	}

	// Without conversion_url, a conversion calls the postback the click's
	// redirect carries, as the ad server issues them.
	s3 := &fakeAdServer{postback: true}
	res = run(t, Config{Targets: []string{startServer(t, s3.handle)}, Rate: 100, Duration: 500 * time.Millisecond, Concurrency: 4,
		ImpRate: 1, CTR: 1, ConvRate: 1})
	if b := res.Beacons; b.Clicks == 0 || b.Conversions != b.Clicks || s3.convs.Load() != b.Clicks || b.ConversionsSkipped != 0 || b.Failed != 0 {
		t.Errorf("postback: clicks %d conversions %d skipped %d failed %d (server convs %d)", b.Clicks, b.Conversions, b.ConversionsSkipped, b.Failed, s3.convs.Load())
	}

	// With neither, conversions are skipped and counted.
	s2 := &fakeAdServer{}
	res = run(t, Config{Targets: []string{startServer(t, s2.handle)}, Rate: 100, Duration: 500 * time.Millisecond, Concurrency: 4,
		ImpRate: 1, CTR: 1, ConvRate: 1})
	if res.Beacons.ConversionsSkipped != res.Beacons.Clicks || res.Beacons.Clicks == 0 || s2.convs.Load() != 0 {
		t.Errorf("conversions skipped %d, clicks %d, server convs %d", res.Beacons.ConversionsSkipped, res.Beacons.Clicks, s2.convs.Load())
	}
}

func TestOpenRTBEndpointAndBurl(t *testing.T) {
	s := &fakeAdServer{}
	url := startServer(t, s.handle)
	res := run(t, Config{Targets: []string{url}, Endpoint: "openrtb", Rate: 100, Duration: 500 * time.Millisecond, Concurrency: 4, ImpRate: 1})
	if s.ortb.Load() != res.Requests || res.Requests < 40 {
		t.Fatalf("server saw %d openrtb requests, harness sent %d", s.ortb.Load(), res.Requests)
	}
	if res.FillRate != 1 || s.imps.Load() != res.Requests {
		t.Errorf("fill %.2f, imps %d of %d", res.FillRate, s.imps.Load(), res.Requests)
	}
	if p, _ := s.lastBurlPrice.Load().(string); p != "2.25" {
		t.Errorf("burl price = %q, want 2.25", p)
	}
}

func TestRoundRobinTargets(t *testing.T) {
	a, b := &fakeAdServer{}, &fakeAdServer{}
	res := run(t, Config{Targets: []string{startServer(t, a.handle), startServer(t, b.handle)}, Rate: 200, Duration: 500 * time.Millisecond, Concurrency: 8})
	if na, nb := a.n.Load(), b.n.Load(); na+nb != res.Requests || na < res.Requests/2-1 || nb < res.Requests/2-1 {
		t.Errorf("split %d/%d of %d", na, nb, res.Requests)
	}
	// Closed model too.
	a.n.Store(0)
	b.n.Store(0)
	res = run(t, Config{Targets: []string{startServer(t, a.handle), startServer(t, b.handle)}, Duration: 300 * time.Millisecond, Concurrency: 4})
	if na, nb := a.n.Load(), b.n.Load(); na+nb != res.Requests || na < res.Requests/3 || nb < res.Requests/3 {
		t.Errorf("closed split %d/%d of %d", na, nb, res.Requests)
	}
}

func TestBaselineRun(t *testing.T) {
	url := startServer(t, sleepHandler(2*time.Millisecond))
	res := run(t, Config{Targets: []string{url}, Duration: 500 * time.Millisecond, Concurrency: 4, Baseline: true})
	b := res.Baseline
	if b == nil || res.Ratio == nil || res.LatencyRatio == nil {
		t.Fatal("no baseline")
	}
	t.Logf("ad %.0f/s p50 %.3fms; baseline %.0f/s p50 %.3fms; ratio %.3f", res.AchievedRate, res.LatencyMs.P50, b.AchievedRate, b.LatencyMs.P50, *res.Ratio)
	if b.Status["204"] != b.Requests || b.Requests == 0 {
		t.Errorf("baseline status %v", b.Status)
	}
	// The 2ms server cannot beat the empty one.
	if *res.Ratio >= 1 || res.LatencyRatio.P50 <= 1 {
		t.Errorf("ratio %.3f, p50 ratio %.2f", *res.Ratio, res.LatencyRatio.P50)
	}
	path := filepath.Join(t.TempDir(), "out.json")
	if err := res.WriteJSONFile(path); err != nil {
		t.Fatal(err)
	}
	checkJSONFields(t, path, true)
}

func TestCancelledRunReturnsPartialResult(t *testing.T) {
	url := startServer(t, sleepHandler(0))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	res, err := Run(ctx, Config{Targets: []string{url}, Rate: 100, Duration: time.Minute, Concurrency: 4})
	if err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("cancel took %v", el)
	}
	if res.Scheduled > 100 || res.Requests == 0 || res.Dropped > 5 {
		t.Errorf("scheduled %d requests %d dropped %d", res.Scheduled, res.Requests, res.Dropped)
	}
}

func TestWarmupIsNotMeasured(t *testing.T) {
	s := &fakeAdServer{}
	url := startServer(t, s.handle)
	res := run(t, Config{Targets: []string{url}, Rate: 100, Warmup: 500 * time.Millisecond, Duration: 500 * time.Millisecond, Concurrency: 4})
	if res.Requests+res.Dropped != 50 || s.n.Load() < res.Requests+45 {
		t.Errorf("measured %d requests (+%d dropped), server saw %d; want 50 measured of ~100", res.Requests, res.Dropped, s.n.Load())
	}
}

func TestDayShapeModulatesRate(t *testing.T) {
	url := startServer(t, sleepHandler(0))
	res := run(t, Config{Targets: []string{url}, Rate: 100, Duration: 4 * time.Second, DayShape: true, Concurrency: 8})
	if res.Scheduled < 395 || res.Scheduled > 400 || len(res.Series) < 4 || len(res.Series) > 5 { // a loaded machine may spill into a fifth second
		t.Fatalf("scheduled %d, %d seconds", res.Scheduled, len(res.Series))
	}
	// Hours 0-5 (first second) are the peak, hours 18-23 (last) the trough.
	first, last := res.Series[0], res.Series[3]
	t.Logf("per second: %+v", res.Series)
	if first.Target < 2*last.Target || first.Requests < 2*last.Requests {
		t.Errorf("day shape not applied: first second %v/%d, last %v/%d", first.Target, first.Requests, last.Target, last.Requests)
	}
}

func TestProgressLine(t *testing.T) {
	url := startServer(t, sleepHandler(0))
	var buf syncBuffer
	run(t, Config{Targets: []string{url}, Rate: 50, Duration: 1500 * time.Millisecond, Concurrency: 2, Progress: &buf})
	if s := buf.String(); !strings.Contains(s, "requests") || !strings.Contains(s, "p99") {
		t.Errorf("progress output %q", s)
	}
}

// syncBuffer is a bytes.Buffer safe for the progress goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
