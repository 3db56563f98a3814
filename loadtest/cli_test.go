package loadtest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMainRunWritesJSONAndChart(t *testing.T) {
	s := &fakeAdServer{withConv: true}
	url := startServer(t, s.handle)
	dir := t.TempDir()
	jsonPath, chartPath := filepath.Join(dir, "out.json"), filepath.Join(dir, "chart.html")
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-target", url, "-rate", "200", "-duration", "1s", "-concurrency", "8", "-baseline",
		"-json", jsonPath, "-chart", chartPath, "-imp-rate", "1", "-ctr", "0.5", "-seed", "4"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, &stdout, &stderr)
	}
	t.Logf("summary:\n%s", &stdout)
	for _, want := range []string{"latency", "p99", "baseline", "ratio to baseline", "beacons"} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("summary lacks %q", want)
		}
	}
	checkJSONFields(t, jsonPath, true)
	html, err := os.ReadFile(chartPath)
	if err != nil {
		t.Fatal(err)
	}
	checkChart(t, string(html))
}

func TestMainSVGChart(t *testing.T) {
	url := startServer(t, sleepHandler(0))
	path := filepath.Join(t.TempDir(), "c.svg")
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"-target", url, "-rate", "0", "-concurrency", "2", "-duration", "1500ms", "-chart", path}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, &stderr)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "<?xml") || strings.Count(string(b), "<svg") != 1 || !strings.Contains(string(b), "<polyline") {
		t.Errorf("bad SVG:\n%.500s", b)
	}
}

func checkChart(t *testing.T, html string) {
	t.Helper()
	for _, bad := range []string{"<script", "<link", "src=", "href=", "cdn"} {
		if strings.Contains(html, bad) {
			t.Errorf("chart is not self-contained: has %q", bad)
		}
	}
	if strings.Count(html, "<svg") != 2 || strings.Count(html, "<polyline") < 4 || !strings.Contains(html, "p99") {
		t.Errorf("chart lacks its SVG plots")
	}
}

func TestMainUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-rate", "10"},
		{"-target", "ftp://x", "-rate", "1"},
		{"-target", "http://127.0.0.1:1", "-endpoint", "soap"},
		{"-target", "http://127.0.0.1:1", "-ctr", "2"},
		{"-target", "http://127.0.0.1:1", "-chart", "x.gif"},
		{"-target", "http://127.0.0.1:1", "extra"},
		{"-nope"},
		{"seed"},
	} {
		var stdout, stderr bytes.Buffer
		if code := Main(args, &stdout, &stderr); code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %s)", args, code, &stderr)
		}
	}
}

func TestMainAllFailedExitsNonZero(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := Main([]string{"-target", "http://127.0.0.1:1", "-rate", "20", "-duration", "200ms"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "every request failed") {
		t.Errorf("exit %d, stderr %s", code, &stderr)
	}
}

func TestMainSeed(t *testing.T) {
	rec := newPutRecorder(false)
	url := startServer(t, rec.handle)
	var stdout, stderr bytes.Buffer
	code := Main([]string{"seed", "-admin", url, "-token", "T", "-campaigns", "30", "-advertisers", "3", "-placements", "5", "-seed", "2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, &stdout, &stderr)
	}
	if len(rec.bodies) != 30+3+5 {
		t.Errorf("%d PUTs, want 38", len(rec.bodies))
	}
	if !strings.Contains(stdout.String(), "30 campaigns created") {
		t.Errorf("output: %s", &stdout)
	}
}

func TestMainScenario(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"scenario"}, &stdout, &stderr); code != 0 {
		t.Fatal(code)
	}
	var m map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &m); err != nil || m["users"] == nil {
		t.Errorf("scenario output: %v", err)
	}
}
