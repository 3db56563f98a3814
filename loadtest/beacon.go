package loadtest

import (
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// beaconJob is the tracking chain of one rendered ad: an impression, then
// maybe a click, then maybe a conversion. The strings are owned by the job.
// conv is the conversion URL the answer named, if any; otherwise the
// conversion calls the postback the click's redirect carries (see
// postbackOf), as the server issues them.
type beaconJob struct {
	t                *target
	imp, click, conv string
}

// beaconPool sends beacons from a bounded queue with a fixed number of
// workers, apart from the ad request workers, so that beacons never delay
// the ad request schedule. A job offered to a full queue is dropped and
// counted. Clicks follow an impression with probability ctr, conversions a
// click with probability convRate. offer may be called concurrently; close
// once, after the last offer.
type beaconPool struct {
	jobs     chan beaconJob
	rec      *recorder
	ctr      float64
	convRate float64
	timeout  time.Duration
	seed     uint64
	stopAt   atomic.Int64 // unix nanoseconds after which queued jobs are dropped; 0 = none
	wg       sync.WaitGroup
}

func startBeacons(workers, queue int, rec *recorder, ctr, convRate float64, timeout time.Duration, seed uint64) *beaconPool {
	p := &beaconPool{
		jobs: make(chan beaconJob, queue), rec: rec, ctr: ctr, convRate: convRate,
		timeout: timeout, seed: seed,
	}
	p.wg.Add(workers)
	for i := range workers {
		go p.work(i)
	}
	return p
}

// offer queues a job without blocking.
func (p *beaconPool) offer(j beaconJob) {
	select {
	case p.jobs <- j:
	default:
		p.rec.beaconEvent(func(c *beaconCounts) { c.dropped++ })
	}
}

// close stops accepting jobs, sends the queued ones until drainBy (later
// ones are dropped and counted), and waits for the workers.
func (p *beaconPool) close(drainBy time.Time) {
	p.stopAt.Store(drainBy.UnixNano())
	close(p.jobs)
	p.wg.Wait()
}

func (p *beaconPool) work(id int) {
	defer p.wg.Done()
	rng := rand.New(rand.NewPCG(p.seed, 0xbeac0+uint64(id)))
	req := fasthttp.AcquireRequest()
	resp := fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	for j := range p.jobs {
		if s := p.stopAt.Load(); s != 0 && time.Now().UnixNano() > s {
			p.rec.beaconEvent(func(c *beaconCounts) { c.dropped++ })
			continue
		}
		p.rec.beaconEvent(func(c *beaconCounts) { c.impressions++ })
		if !p.get(j.t, j.imp, req, resp) || rng.Float64() >= p.ctr {
			continue
		}
		if j.click == "" {
			p.rec.beaconEvent(func(c *beaconCounts) { c.clickSkipped++ })
			continue
		}
		p.rec.beaconEvent(func(c *beaconCounts) { c.clicks++ })
		if !p.get(j.t, j.click, req, resp) || rng.Float64() >= p.convRate {
			continue
		}
		conv := j.conv
		if conv == "" {
			conv = postbackOf(resp)
		}
		if conv == "" {
			p.rec.beaconEvent(func(c *beaconCounts) { c.convSkipped++ })
			continue
		}
		p.rec.beaconEvent(func(c *beaconCounts) { c.conversion++ })
		p.get(j.t, conv, req, resp)
	}
}

// get sends one beacon to t and reports whether it succeeded (2xx or 3xx;
// redirects are not followed). A URL without a path counts as failed.
func (p *beaconPool) get(t *target, u string, req *fasthttp.Request, resp *fasthttp.Response) bool {
	path, ok := beaconPath(u)
	if !ok {
		p.rec.beacon(0, fmt.Sprintf("not an http(s) URL or path: %.100q", u))
		return false
	}
	req.Reset()
	req.Header.SetMethod(fasthttp.MethodGet)
	req.SetRequestURI(path)
	req.Header.SetHost(t.host)
	start := time.Now()
	err := t.beacon.DoTimeout(req, resp, p.timeout)
	lat := time.Since(start)
	failure := ""
	switch code := resp.StatusCode(); {
	case err != nil:
		failure = fmt.Sprintf("GET %s: %v", pathOnly(path), err)
	case code < 200 || code >= 400:
		failure = fmt.Sprintf("GET %s: status %d", pathOnly(path), code)
	}
	p.rec.beacon(lat, failure)
	return failure == ""
}

// ConversionParam is the query parameter of a click's redirect (its
// Location, the landing page) that carries the signed conversion postback
// of that click; the server's server.ConversionParam. The harness plays the
// advertiser's landing page: a converting visit calls the postback.
const ConversionParam = "adserver_conv"

// postbackOf returns the conversion postback a click's answer carries in its
// redirect's landing URL, or "".
func postbackOf(resp *fasthttp.Response) string {
	loc := resp.Header.Peek(fasthttp.HeaderLocation)
	if len(loc) == 0 {
		return ""
	}
	u, err := url.Parse(string(loc))
	if err != nil {
		return ""
	}
	return u.Query().Get(ConversionParam)
}

func pathOnly(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		return p[:i]
	}
	return p
}
