package main

import (
	"bytes"
	"context"
	"encoding/json"
	"github.com/adserver/adserver/internal/chtest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSmoke runs the whole program with tiny phases against a real adserver
// process and the real ClickHouse (started by scripts/clickhouse.sh when it
// does not answer). It checks that every phase runs and is reported, and
// that every event reaches ClickHouse; it asserts nothing about
// performance (the measurement is `go run ./cmd/bulkhead`).
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a real adserver process (skipped with -short)")
	}
	chAddr := chtest.Addr()
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "result.json")
	var log bytes.Buffer
	cfg, err := parseFlags([]string{
		"-clickhouse", chAddr,
		"-clickhouse-script", "../../scripts/clickhouse.sh",
		"-dir", filepath.Join(dir, "work"),
		"-campaigns", "50",
		"-calibrate", "1s", "-rate-fraction", "0.05", "-concurrency", "8",
		"-warmup", "0s", "-phase", "1s", "-rounds", "1", "-delay", "100ms",
		"-report-rate", "5", "-report-workers", "2",
		"-json", jsonPath,
	}, &log)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Log = &log
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg)
	if err != nil {
		t.Fatalf("run: %v\nlog:\n%s", err, log.String())
	}
	var out, stderr bytes.Buffer
	finish(res, nil, cfg, &out, &stderr)
	t.Logf("log:\n%s\noutput:\n%s", log.String(), out.String())

	want := []string{"normal", "down", "normal", "blackhole", "normal", "slow", "normal"}
	if len(res.Phases) != len(want) {
		t.Fatalf("%d phases, want %d", len(res.Phases), len(want))
	}
	for i, ph := range res.Phases {
		if ph.Mode != want[i] || ph.Index != i {
			t.Errorf("phase %d: mode %s, want %s", i, ph.Mode, want[i])
		}
		if ph.Ad == nil || ph.Ad.Requests == 0 || ph.Reports == nil {
			t.Errorf("phase %d (%s): no ad requests or no report stats measured", i, ph.Mode)
		}
	}
	if res.Calibration == nil || res.Rate <= 0 {
		t.Errorf("no calibration: rate %v", res.Rate)
	}
	if len(res.Faults) != 3 || len(res.Controls) != 2 {
		t.Errorf("%d fault comparisons and %d controls, want 3 and 2", len(res.Faults), len(res.Controls))
	}
	if !res.Delivery.Pass {
		t.Errorf("delivery: %v", res.Delivery.Problems)
	}
	text := out.String()
	for _, s := range []string{"fault phases against", "1 down", "3 blackhole", "5 slow", "delivery:", "result:"} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q", s)
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var back Result
	if err := json.Unmarshal(b, &back); err != nil || len(back.Phases) != len(want) {
		t.Errorf("JSON result: %v, %d phases", err, len(back.Phases))
	}
	if _, err := os.Stat(filepath.Join(dir, "work")); !os.IsNotExist(err) {
		t.Errorf("work directory left behind: %v", err)
	}
}
