package loadtest

import (
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/valyala/fasthttp"
)

// Histogram bounds: latencies are recorded in microseconds from 1 µs to 1 h
// with 3 significant digits; larger values are clamped to the maximum.
const (
	histMin   = 1
	histMax   = int64(time.Hour / time.Microsecond)
	histDigit = 3
)

// Error kinds, the keys of Result.ErrorsByKind.
const (
	ErrTimeout     = "timeout"
	ErrConnRefused = "conn_refused"
	ErrConnClosed  = "conn_closed"
	ErrOther       = "other"
)

var errorKinds = [...]string{ErrTimeout, ErrConnRefused, ErrConnClosed, ErrOther}

// classify names the kind of a transport error.
func classify(err error) int {
	var ne net.Error
	switch {
	case errors.Is(err, fasthttp.ErrTimeout), errors.Is(err, fasthttp.ErrDialTimeout),
		errors.Is(err, fasthttp.ErrTLSHandshakeTimeout), errors.As(err, &ne) && ne.Timeout():
		return 0
	case errors.Is(err, syscall.ECONNREFUSED):
		return 1
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, fasthttp.ErrConnectionClosed):
		return 2
	}
	return 3
}

func newHist() *hdrhistogram.Histogram { return hdrhistogram.New(histMin, histMax, histDigit) }

func record(h *hdrhistogram.Histogram, d time.Duration) {
	us := int64(d / time.Microsecond)
	_ = h.RecordValue(min(max(us, histMin), histMax))
}

// recorder accumulates the measurements of one run. Safe for concurrent use:
// every method takes its mutex, which keeps completions in time order so
// that the per-second series rolls forward without keeping a histogram per
// second.
type recorder struct {
	mu      sync.Mutex
	start   time.Time
	hist    *hdrhistogram.Histogram
	cur     *hdrhistogram.Histogram // completions in second curSec
	curSec  int
	curN    int64
	series  []SecondStats
	status  map[int]int64
	errs    [len(errorKinds)]int64
	lastErr string
	n       int64
	filled  int64
	ok2xx   int64
	badBody int64
	late    int64
	maxLag  time.Duration

	beacons beaconCounts
	bhist   *hdrhistogram.Histogram
}

type beaconCounts struct {
	sent, failed, dropped           int64
	impressions, clicks, conversion int64
	convSkipped, clickSkipped       int64
	lastFailure                     string
}

func newRecorder(start time.Time) *recorder {
	return &recorder{
		start: start, hist: newHist(), cur: hdrhistogram.New(histMin, histMax, 2),
		status: make(map[int]int64), bhist: newHist(),
	}
}

// roll closes the seconds before sec. Called with mu held.
func (r *recorder) roll(sec int) {
	for r.curSec < sec {
		s := SecondStats{T: r.curSec + 1, Requests: r.curN, Span: 1}
		if r.curN > 0 {
			s.P50 = ms(r.cur.ValueAtQuantile(50))
			s.P90 = ms(r.cur.ValueAtQuantile(90))
			s.P99 = ms(r.cur.ValueAtQuantile(99))
			s.Max = ms(r.cur.Max())
		}
		r.series = append(r.series, s)
		r.cur.Reset()
		r.curN = 0
		r.curSec++
	}
}

// add records one ad request: status > 0, or errKind >= 0 for a transport
// error. Its latency runs from intended to now.
func (r *recorder) add(intended, now time.Time, status, errKind int, filled, badBody bool, err error) {
	lat := now.Sub(intended)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roll(int(now.Sub(r.start) / time.Second))
	r.n++
	r.curN++
	record(r.hist, lat)
	record(r.cur, lat)
	if errKind >= 0 {
		r.errs[errKind]++
		r.status[0]++
		if err != nil {
			r.lastErr = err.Error()
		}
		return
	}
	r.status[status]++
	if status >= 200 && status < 300 {
		r.ok2xx++
	}
	if filled {
		r.filled++
	}
	if badBody {
		r.badBody++
	}
}

func (r *recorder) addLag(lag, threshold time.Duration) {
	r.mu.Lock()
	if lag > threshold {
		r.late++
	}
	r.maxLag = max(r.maxLag, lag)
	r.mu.Unlock()
}

// beacon records one beacon sent and its latency; failure, if not empty,
// says why it failed.
func (r *recorder) beacon(lat time.Duration, failure string) {
	r.mu.Lock()
	r.beacons.sent++
	if failure != "" {
		r.beacons.failed++
		r.beacons.lastFailure = failure
	}
	record(r.bhist, lat)
	r.mu.Unlock()
}

func (r *recorder) beaconEvent(f func(c *beaconCounts)) {
	r.mu.Lock()
	f(&r.beacons)
	r.mu.Unlock()
}

// snapshot returns the progress figures: requests so far, errors, and the
// last complete second.
func (r *recorder) snapshot() (n, errs int64, last SecondStats) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.errs {
		errs += e
	}
	if len(r.series) > 0 {
		last = r.series[len(r.series)-1]
	}
	return r.n, errs, last
}

func ms(us int64) float64 { return float64(us) / 1000 }

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	if h.TotalCount() == 0 {
		return Percentiles{}
	}
	return Percentiles{
		P50: ms(h.ValueAtQuantile(50)), P90: ms(h.ValueAtQuantile(90)),
		P99: ms(h.ValueAtQuantile(99)), P999: ms(h.ValueAtQuantile(99.9)),
		Max: ms(h.Max()), Mean: h.Mean() / 1000,
	}
}

// result fills the measurement fields of res; end is the end of the run.
func (r *recorder) result(res *Result, end time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.roll(int(end.Sub(r.start)/time.Second) + 1)
	// Drop a trailing partial second with nothing in it.
	for len(r.series) > 0 && r.series[len(r.series)-1].Requests == 0 &&
		time.Duration(len(r.series))*time.Second > end.Sub(r.start) {
		r.series = r.series[:len(r.series)-1]
	}
	elapsed := end.Sub(r.start)
	if n := len(r.series); n > 0 {
		if part := elapsed.Seconds() - float64(n-1); part < 1 {
			r.series[n-1].Span = max(part, 0.001)
		}
	}
	res.Elapsed = elapsed.Seconds()
	res.Requests = r.n
	if elapsed > 0 {
		res.AchievedRate = float64(r.n) / elapsed.Seconds()
	}
	res.Status = make(map[string]int64, len(r.status))
	for code, c := range r.status {
		res.Status[strconv.Itoa(code)] = c
	}
	res.ErrorsByKind = make(map[string]int64, len(errorKinds))
	for i, k := range errorKinds {
		res.ErrorsByKind[k] = r.errs[i]
		res.Errors += r.errs[i]
	}
	res.LastError = r.lastErr
	res.Filled = r.filled
	res.BadResponses = r.badBody
	if r.ok2xx > 0 {
		res.FillRate = float64(r.filled) / float64(r.ok2xx)
	}
	res.Late = r.late
	res.MaxLagMs = float64(r.maxLag) / float64(time.Millisecond)
	res.LatencyMs = percentiles(r.hist)
	b := r.beacons
	res.Beacons = BeaconResult{
		Sent: b.sent, Failed: b.failed, Dropped: b.dropped,
		Impressions: b.impressions, Clicks: b.clicks, Conversions: b.conversion,
		ClicksSkipped: b.clickSkipped, ConversionsSkipped: b.convSkipped, LastFailure: b.lastFailure,
		LatencyMs: percentiles(r.bhist),
	}
	res.Series = r.series
}
