package loadtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// requireWrk returns wrk's path. CI sets LOADTEST_REQUIRE_WRK=1 (and installs
// wrk), so there a missing wrk fails instead of skipping.
func requireWrk(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("wrk")
	if err != nil {
		if os.Getenv("LOADTEST_REQUIRE_WRK") == "1" {
			t.Fatalf("wrk is required (LOADTEST_REQUIRE_WRK=1) but not on PATH: %v (apt-get install wrk)", err)
		}
		t.Skip("wrk not on PATH; set LOADTEST_REQUIRE_WRK=1 to make this a failure")
	}
	return path
}

var wrkRate = regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`)

// runWrk runs wrk's closed model (one thread, conns connections) posting
// body to url+PathAd and returns its requests per second.
func runWrk(t *testing.T, wrk, url string, conns int, d time.Duration, body []byte) float64 {
	t.Helper()
	script := filepath.Join(t.TempDir(), "post.lua")
	lua := fmt.Sprintf("wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = [==[%s]==]\n", body)
	if err := os.WriteFile(script, []byte(lua), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d+30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, wrk, "-t1", "-c"+strconv.Itoa(conns), "-d"+strconv.Itoa(int(d.Seconds()))+"s",
		"-s", script, url+PathAd).CombinedOutput()
	if err != nil {
		t.Fatalf("wrk: %v\n%s", err, out)
	}
	m := wrkRate.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no Requests/sec in wrk output:\n%s", out)
	}
	rate, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("wrk -c%d: %.1f req/s", conns, rate)
	return rate
}

// The closed model carries as much traffic as wrk does against the same
// server. The server takes a fixed 10ms per request, so throughput is set by
// the concurrency both tools keep in flight, not by how fast the shared
// CPU happens to be.
func TestClosedModelThroughputMatchesWrk(t *testing.T) {
	wrk := requireWrk(t)
	url := startServer(t, sleepHandler(10*time.Millisecond))
	const conns = 10
	d := 2 * time.Second
	g := NewGenerator(DefaultScenario(), 1)
	var r Request
	g.Next(g.NewSource(0), &r)
	body := g.AppendAdRequest(nil, &r)

	// Best of three interleaved rounds each, so that a burst of other work
	// on the shared machine during one run does not decide the outcome.
	var want, got float64
	for range 3 {
		want = max(want, runWrk(t, wrk, url, conns, d, body))
		res, err := Run(context.Background(), Config{Targets: []string{url}, Rate: 0, Concurrency: conns, Duration: d})
		if err != nil {
			t.Fatal(err)
		}
		if res.Errors != 0 {
			t.Fatalf("%d errors: %s", res.Errors, res.LastError)
		}
		t.Logf("loadtest -rate 0 -concurrency %d: %.1f req/s (ideal %.0f)", conns, res.AchievedRate, conns/0.010)
		got = max(got, res.AchievedRate)
	}
	if dev := got/want - 1; dev < -0.10 || dev > 0.10 {
		t.Errorf("loadtest %.1f req/s vs wrk %.1f req/s: %+.1f%%, want within 10%%", got, want, 100*dev)
	}

	if testing.Short() {
		return
	}
	// For the record (not asserted: it measures how the two clients share
	// two cores with the server): an empty server at full speed.
	fast := startServer(t, sleepHandler(0))
	w := runWrk(t, wrk, fast, 8, 2*time.Second, body)
	res, err := Run(context.Background(), Config{Targets: []string{fast}, Rate: 0, Concurrency: 8, Duration: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("empty server, 8 connections: wrk %.0f req/s, loadtest %.0f req/s (%.0f%%)", w, res.AchievedRate, 100*res.AchievedRate/w)
}
