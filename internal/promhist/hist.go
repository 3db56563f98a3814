// Package promhist is a lock-free Prometheus histogram for hot paths.
//
// VictoriaMetrics/metrics histograms take a mutex on every Update; on the
// request path that is a global lock every request contends on. A
// Histogram here is fixed buckets of atomic counters and an atomic
// fixed-point sum, so Observe is a handful of atomic adds and never blocks.
// Histograms register themselves with the metrics package's default set,
// so they appear in /metrics next to every other metric, in the Prometheus
// classic histogram format (_bucket{le=...}, _sum, _count).
package promhist

import (
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// sumScale is the fixed-point scale of the sum: 1e-9 of the unit
// (nanoseconds for a histogram of seconds).
const sumScale = 1e9

// Histogram counts observations into fixed buckets. The zero value is not
// usable; create one with New.
type Histogram struct {
	name, labels string // name without labels; labels without braces
	bounds       []float64
	counts       []atomic.Uint64 // len(bounds)+1; the last is +Inf
	sum          atomic.Uint64   // fixed point, sumScale
}

var (
	mu       sync.Mutex
	all      []*Histogram
	register sync.Once
)

// DurationBuckets are upper bounds in seconds from 50µs to 10s, for request
// latencies.
var DurationBuckets = []float64{0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

// New creates and registers a histogram. name may carry labels in the
// Prometheus form `name{a="b"}`; bounds are the buckets' upper bounds,
// sorted ascending. New panics on a malformed name, like the metrics
// package does.
func New(name string, bounds []float64) *Histogram {
	if !sort.Float64sAreSorted(bounds) || len(bounds) == 0 {
		panic("promhist: bounds must be sorted and non-empty")
	}
	h := &Histogram{name: name, bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
	if i := strings.IndexByte(name, '{'); i >= 0 {
		if !strings.HasSuffix(name, "}") {
			panic(fmt.Sprintf("promhist: malformed metric name %q", name))
		}
		h.name, h.labels = name[:i], name[i+1:len(name)-1]
	}
	mu.Lock()
	all = append(all, h)
	mu.Unlock()
	register.Do(func() { metrics.RegisterMetricsWriter(writeAll) })
	return h
}

// Observe counts one observation of v. Negative values and NaN are
// ignored. It does not lock or allocate.
func (h *Histogram) Observe(v float64) {
	if !(v >= 0) {
		return
	}
	i := 0
	for i < len(h.bounds) && v > h.bounds[i] {
		i++
	}
	h.counts[i].Add(1)
	if s := v * sumScale; s < math.MaxUint64/2 {
		h.sum.Add(uint64(s))
	}
}

// Count returns the number of observations so far.
func (h *Histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

func writeAll(w io.Writer) {
	mu.Lock()
	hs := append([]*Histogram(nil), all...)
	mu.Unlock()
	for _, h := range hs {
		h.write(w)
	}
}

func (h *Histogram) write(w io.Writer) {
	sep := ""
	if h.labels != "" {
		sep = ","
	}
	var cum uint64
	for i, b := range h.bounds {
		cum += h.counts[i].Load()
		fmt.Fprintf(w, "%s_bucket{%s%sle=\"%s\"} %d\n", h.name, h.labels, sep, strconv.FormatFloat(b, 'g', -1, 64), cum)
	}
	cum += h.counts[len(h.bounds)].Load()
	fmt.Fprintf(w, "%s_bucket{%s%sle=\"+Inf\"} %d\n", h.name, h.labels, sep, cum)
	lb := ""
	if h.labels != "" {
		lb = "{" + h.labels + "}"
	}
	fmt.Fprintf(w, "%s_sum%s %s\n", h.name, lb, strconv.FormatFloat(float64(h.sum.Load())/sumScale, 'g', -1, 64))
	fmt.Fprintf(w, "%s_count%s %d\n", h.name, lb, cum)
}
