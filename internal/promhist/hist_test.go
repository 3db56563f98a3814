package promhist

import (
	"bytes"
	"strings"
	"sync"
	"testing"

	"github.com/VictoriaMetrics/metrics"
)

func TestHistogramPrometheusText(t *testing.T) {
	h := New(`test_latency_seconds{endpoint="ad"}`, []float64{0.001, 0.01, 0.1})
	for _, v := range []float64{0.0005, 0.001, 0.005, 0.05, 0.5, -1} {
		h.Observe(v)
	}
	var buf bytes.Buffer
	metrics.WritePrometheus(&buf, false)
	out := buf.String()
	for _, want := range []string{
		`test_latency_seconds_bucket{endpoint="ad",le="0.001"} 2`,
		`test_latency_seconds_bucket{endpoint="ad",le="0.01"} 3`,
		`test_latency_seconds_bucket{endpoint="ad",le="0.1"} 4`,
		`test_latency_seconds_bucket{endpoint="ad",le="+Inf"} 5`,
		`test_latency_seconds_sum{endpoint="ad"} 0.5565`,
		`test_latency_seconds_count{endpoint="ad"} 5`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := New(`test_concurrent`, DurationBuckets)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				h.Observe(float64(i) * 1e-4)
			}
		}()
	}
	wg.Wait()
	if h.Count() != 8000 {
		t.Fatalf("count %d, want 8000", h.Count())
	}
}

func BenchmarkObserve(b *testing.B) {
	h := New(`bench_observe`, DurationBuckets)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		v := 0.0003
		for pb.Next() {
			h.Observe(v)
		}
	})
}
