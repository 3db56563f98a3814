package loadtest

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// Config is one load test. The zero value of each optional field means its
// documented default.
type Config struct {
	// Targets are the base URLs of the server nodes (http or https);
	// requests are spread over them round-robin. Required.
	Targets []string
	// Endpoint is "ad" (POST /v1/ad, the default) or "openrtb" (POST /openrtb2/bid).
	Endpoint string
	// Rate is the open model's mean arrival rate in requests per second;
	// 0 selects the closed model (Concurrency workers at full speed).
	Rate float64
	// Duration of the measured run; default 10s.
	Duration time.Duration
	// Warmup runs the same traffic for this long before measuring and
	// discards it. Default none.
	Warmup time.Duration
	// Ramp raises the open model's rate linearly from 0 over this time (the
	// closed model starts its workers evenly over it). Default none.
	Ramp time.Duration
	// DayShape modulates the open model's rate with the scenario's 24-hour
	// shape compressed into Duration (Rate stays the mean).
	DayShape bool
	// Concurrency is the number of workers: the bound on ad requests in
	// flight. Default 64.
	Concurrency int
	// Timeout bounds each request; default 2s.
	Timeout time.Duration
	// LateThreshold: an open-model request sent more than this after its
	// intended time is counted late. Default 10ms.
	LateThreshold time.Duration
	// ImpRate is the share of fills followed by an impression beacon, CTR
	// the share of impressions followed by a click, ConvRate the share of
	// clicks followed by a conversion. All default 0 (no beacons).
	ImpRate, CTR, ConvRate float64
	// BeaconWorkers send beacons (each its own connection per target);
	// default Concurrency, so beacons keep up with fills in most runs.
	BeaconWorkers int
	// Seed makes the traffic reproducible.
	Seed uint64
	// Scenario is the traffic model; default DefaultScenario().
	Scenario *Scenario
	// Baseline first runs the same schedule against an empty fasthttp
	// server started on 127.0.0.1:0 and reports the ratio.
	Baseline bool
	// Progress, when set, gets a progress line each second (the CLI sets it
	// only when stderr is a terminal).
	Progress io.Writer
}

func (c *Config) duration() time.Duration { return defaultDur(c.Duration, 10*time.Second) }
func (c *Config) timeout() time.Duration  { return defaultDur(c.Timeout, 2*time.Second) }
func (c *Config) lateThreshold() time.Duration {
	return defaultDur(c.LateThreshold, 10*time.Millisecond)
}

func (c *Config) concurrency() int {
	if c.Concurrency <= 0 {
		return 64
	}
	return c.Concurrency
}

func (c *Config) beaconWorkers() int {
	if c.BeaconWorkers > 0 {
		return c.BeaconWorkers
	}
	return c.concurrency()
}

func (c *Config) openrtb() bool { return c.Endpoint == "openrtb" }

func defaultDur(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Validate reports the first problem with the configuration.
func (c *Config) Validate() error {
	switch {
	case len(c.Targets) == 0:
		return fmt.Errorf("-target is required")
	case c.Endpoint != "" && c.Endpoint != "ad" && c.Endpoint != "openrtb":
		return fmt.Errorf("-endpoint must be ad or openrtb, got %q", c.Endpoint)
	case c.Rate < 0:
		return fmt.Errorf("-rate must be >= 0, got %v", c.Rate)
	case c.Duration < 0 || c.Warmup < 0 || c.Ramp < 0 || c.Timeout < 0:
		return fmt.Errorf("durations must be >= 0")
	case c.Concurrency < 0 || c.Concurrency > 100000:
		return fmt.Errorf("-concurrency must be between 1 and 100000, got %d", c.Concurrency)
	}
	for name, v := range map[string]float64{"-imp-rate": c.ImpRate, "-ctr": c.CTR, "-conv-rate": c.ConvRate} {
		if v < 0 || v > 1 {
			return fmt.Errorf("%s must be between 0 and 1, got %v", name, v)
		}
	}
	for _, t := range c.Targets {
		if _, _, _, err := parseTarget(t); err != nil {
			return err
		}
	}
	return nil
}

// Run performs the load test: the baseline first when asked (so that the
// ad server's background work after its run cannot slow the baseline), then
// the ad server run. Cancelling ctx ends the current phase early; the
// partial result is returned.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sc := cfg.Scenario
	if sc == nil {
		sc = DefaultScenario()
	}
	gen := NewGenerator(sc, cfg.Seed)
	var base *Result
	if cfg.Baseline {
		srv, err := StartBaseline()
		if err != nil {
			return nil, err
		}
		base, err = runPhases(ctx, &cfg, gen, []string{srv.URL()}, "baseline")
		srv.Close()
		if err != nil {
			return nil, err
		}
	}
	res, err := runPhases(ctx, &cfg, gen, cfg.Targets, "run")
	if err != nil {
		return nil, err
	}
	res.Baseline = base
	res.setRatios()
	return res, nil
}

// runPhases runs the warmup (discarded) and the measured run against urls.
func runPhases(ctx context.Context, cfg *Config, gen *Generator, urls []string, label string) (*Result, error) {
	ts, err := newTargets(urls, cfg.concurrency(), cfg.beaconWorkers(), cfg.timeout())
	if err != nil {
		return nil, err
	}
	defer closeTargets(ts)
	if cfg.Warmup > 0 {
		runOnce(ctx, cfg, gen, ts, cfg.Warmup, joinLabel(label, "warmup"))
	}
	res := runOnce(ctx, cfg, gen, ts, cfg.duration(), label)
	res.Targets = urls
	return res, nil
}

func joinLabel(a, b string) string {
	if a == "" {
		return b
	}
	return a + " " + b
}

// runner is one timed run. Its workers share the schedule counter, the
// recorder and the beacon pool; everything else is per worker.
type runner struct {
	cfg      *Config
	gen      *Generator
	targets  []*target
	rec      *recorder
	beacons  *beaconPool
	sched    *Schedule // nil in the closed model
	start    time.Time
	deadline time.Time
	next     atomic.Int64 // open model: next sequence number to claim
	rr       atomic.Uint64
}

func runOnce(ctx context.Context, cfg *Config, gen *Generator, ts []*target, d time.Duration, label string) *Result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{cfg: cfg, gen: gen, targets: ts}
	model := "closed"
	if cfg.Rate > 0 {
		model = "open"
		var shape []float64
		if cfg.DayShape {
			shape = gen.Scenario().DayShape
		}
		r.sched = NewSchedule(cfg.Rate, d, cfg.Ramp, shape)
	}
	n := cfg.concurrency()
	r.start = time.Now()
	r.deadline = r.start.Add(d)
	r.rec = newRecorder(r.start)
	r.beacons = startBeacons(cfg.beaconWorkers(), 4096, r.rec, cfg.CTR, cfg.ConvRate, cfg.timeout(), cfg.Seed)
	stopProgress := r.progress(ctx, label)

	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		go func() {
			defer wg.Done()
			w := r.newWorker(i)
			defer w.release()
			if r.sched != nil {
				r.runOpen(ctx, w)
			} else {
				r.runClosed(ctx, w, time.Duration(i)*cfg.Ramp/time.Duration(n))
			}
		}()
	}
	wg.Wait()
	end := time.Now()
	if end.Before(r.deadline) && ctx.Err() == nil {
		// The open model's last request finished before the planned end: the
		// rate is over the planned duration.
		end = r.deadline
	}
	stopProgress()
	r.beacons.close(time.Now().Add(cfg.timeout()))

	res := &Result{
		Endpoint: "ad", Model: model, Concurrency: n,
		DurationS: d.Seconds(), TargetRate: cfg.Rate,
	}
	if cfg.openrtb() {
		res.Endpoint = "openrtb"
	}
	r.rec.result(res, end)
	if r.sched != nil {
		res.Scheduled = r.sched.Total()
		if end.Before(r.deadline) { // cancelled
			res.Scheduled = r.sched.CountBefore(end.Sub(r.start))
		}
		res.Dropped = max(0, res.Scheduled-res.Requests)
		res.TargetRate = float64(r.sched.Total()) / d.Seconds() // the planned mean (below -rate during a ramp)
		for i := range res.Series {
			t := time.Duration(res.Series[i].T) * time.Second
			res.Series[i].Target = float64(r.sched.CountBefore(t) - r.sched.CountBefore(t-time.Second))
		}
	}
	return res
}

// worker holds one goroutine's reusable state.
type worker struct {
	id    int
	src   *Source
	req   Request
	body  []byte
	hreq  *fasthttp.Request
	hresp *fasthttp.Response
	rp    responseParser
	timer *time.Timer
}

func (r *runner) newWorker(id int) *worker {
	w := &worker{
		id: id, src: r.gen.NewSource(id), body: make([]byte, 0, 2048),
		hreq: fasthttp.AcquireRequest(), hresp: fasthttp.AcquireResponse(),
		timer: time.NewTimer(time.Hour),
	}
	w.timer.Stop()
	return w
}

func (w *worker) release() {
	fasthttp.ReleaseRequest(w.hreq)
	fasthttp.ReleaseResponse(w.hresp)
}

// earlySend: a request due sooner than this is sent at once rather than
// waited for, as Go's timers cannot wait that precisely.
const earlySend = 500 * time.Microsecond

// runOpen claims sequence numbers until the schedule or the time is over.
// A request claimed before its intended time waits for it and its latency
// runs from the send. A request claimed after its intended time (every
// worker was busy: the server is behind) is sent at once, counted late if
// beyond the threshold, and its latency runs from the intended time, so
// the queueing the server caused is measured. When the run ends, requests
// never claimed are the dropped ones.
func (r *runner) runOpen(ctx context.Context, w *worker) {
	total := r.sched.Total()
	threshold := r.cfg.lateThreshold()
	for ctx.Err() == nil {
		i := r.next.Add(1) - 1
		if i >= total {
			return
		}
		now := time.Now()
		if !now.Before(r.deadline) {
			return
		}
		intended := r.start.Add(r.sched.At(i))
		r.prepare(w)
		from := intended
		if wait := intended.Sub(now); wait > 0 {
			if wait < earlySend {
				// Shorter than the timer's resolution: send now, a hair early.
				wait = 0
			}
			if wait > 0 {
				w.timer.Reset(wait)
				select {
				case <-w.timer.C:
				case <-ctx.Done():
					w.timer.Stop()
					return
				}
			}
			// The worker was free and waiting: any delay past the intended
			// time is the timer's slop (about 1ms: Go's timers ride on
			// epoll's millisecond timeout), not the server's doing, so the
			// latency runs from the actual send.
			now = time.Now()
			from = now
		}
		r.rec.addLag(now.Sub(intended), threshold)
		r.do(w, r.targets[uint64(i)%uint64(len(r.targets))], from)
	}
}

// runClosed sends back to back until the deadline; latency runs from the
// actual send.
func (r *runner) runClosed(ctx context.Context, w *worker, delay time.Duration) {
	if delay > 0 {
		w.timer.Reset(delay)
		select {
		case <-w.timer.C:
		case <-ctx.Done():
			w.timer.Stop()
			return
		}
	}
	for ctx.Err() == nil && time.Now().Before(r.deadline) {
		t := r.targets[r.rr.Add(1)%uint64(len(r.targets))]
		r.prepare(w)
		r.do(w, t, time.Now())
	}
}

// prepare generates the worker's next request body.
func (r *runner) prepare(w *worker) {
	r.gen.Next(w.src, &w.req)
	if r.cfg.openrtb() {
		w.body = r.gen.AppendOpenRTB(w.body[:0], &w.req)
	} else {
		w.body = r.gen.AppendAdRequest(w.body[:0], &w.req)
	}
}

// do sends the prepared request to t and records it, its latency running
// from intended.
func (r *runner) do(w *worker, t *target, intended time.Time) {
	openrtb := r.cfg.openrtb()
	path := PathAd
	if openrtb {
		path = PathOpenRTB
	}
	req, resp := w.hreq, w.hresp
	req.Reset()
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(path)
	req.Header.SetHost(t.host)
	req.Header.SetContentType("application/json")
	if openrtb {
		req.Header.Set("X-Openrtb-Version", "2.6")
	}
	req.SetBodyRaw(w.body)

	err := t.ad.DoTimeout(req, resp, r.cfg.timeout())
	now := time.Now()
	if err != nil {
		r.rec.add(intended, now, 0, classify(err), false, false, err)
		return
	}
	status := resp.StatusCode()
	var filled, bad bool
	if status == fasthttp.StatusOK {
		fills, ok := w.rp.parse(openrtb, resp.Body())
		bad = !ok
		filled = len(fills) > 0
		for i := range fills {
			if f := &fills[i]; len(f.imp) > 0 && r.cfg.ImpRate > 0 && w.src.Float64() < r.cfg.ImpRate {
				r.beacons.offer(f.job(t))
			}
		}
	}
	r.rec.add(intended, now, status, -1, filled, bad, nil)
}

// progress prints a line each second to cfg.Progress until stopped.
func (r *runner) progress(ctx context.Context, label string) (stop func()) {
	out := r.cfg.Progress
	if out == nil {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				fmt.Fprint(out, "\r\033[K")
				return
			case <-ctx.Done():
				return
			case now := <-tick.C:
				n, errs, last := r.rec.snapshot()
				fmt.Fprintf(out, "\r\033[K%s %3.0fs  requests %d  last second %d/s p50 %.2fms p99 %.2fms max %.2fms  errors %d",
					label, now.Sub(r.start).Seconds(), n, last.Requests, last.P50, last.P99, last.Max, errs)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
