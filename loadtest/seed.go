package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// SeedConfig drives `loadtest seed`. Zero optional fields take their
// documented defaults.
type SeedConfig struct {
	// Admin is the management listener's base URL. Required.
	Admin string
	// Token is sent as "Authorization: Bearer <Token>".
	Token string
	// Campaigns is the number of campaigns to create. Required.
	Campaigns int
	// Advertisers defaults to max(1, Campaigns/10).
	Advertisers int
	// Concurrency is the number of PUTs in flight; default 16.
	Concurrency int
	// Retries is the number of retries of a 503, 429 or transport error,
	// with exponential backoff from 100ms; default 5.
	Retries int
	// Timeout bounds each PUT (which answers once the change is applied);
	// default 10s.
	Timeout time.Duration
	Seed    uint64
	// Scenario supplies the distributions and the placements; default
	// DefaultScenario().
	Scenario *Scenario
	// Now dates the campaigns' flights; default time.Now().
	Now time.Time
	// Progress, when set, gets a progress line each second.
	Progress io.Writer
	// Log gets one line per finished phase and the first errors.
	Log io.Writer
}

// SeedResult counts what Seed did.
type SeedResult struct {
	Created map[string]int // per kind: advertisers, placements, campaigns
	Failed  int
	Retried int
	Errors  []string // the first few failures
	Elapsed time.Duration
	// EstimatedMatch and EstimatedFit are the catalog's (see Catalog).
	EstimatedMatch, EstimatedFit float64
}

type seedItem struct {
	path string
	body []byte
}

// Seed creates the catalog through the management API: advertisers first,
// then placements, then campaigns (which refer to both), each phase with
// cfg.Concurrency PUTs in flight. It returns an error only when it could not
// start; per-item failures are counted in the result.
func Seed(ctx context.Context, cfg SeedConfig) (*SeedResult, error) {
	if cfg.Campaigns <= 0 {
		return nil, fmt.Errorf("-campaigns must be > 0")
	}
	scheme, host, addr, err := parseTarget(cfg.Admin)
	if err != nil {
		return nil, fmt.Errorf("-admin: %w", err)
	}
	sc := cfg.Scenario
	if sc == nil {
		sc = DefaultScenario()
	}
	if cfg.Advertisers <= 0 {
		cfg.Advertisers = max(1, cfg.Campaigns/10)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.Retries <= 0 {
		cfg.Retries = 5
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Now.IsZero() {
		cfg.Now = time.Now()
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	cat := BuildCatalog(sc, cfg.Campaigns, cfg.Advertisers, cfg.Seed, cfg.Now)
	hc := newHostClient(scheme, addr, cfg.Concurrency, cfg.Timeout)
	defer hc.CloseIdleConnections()
	s := &seeder{cfg: &cfg, hc: hc, host: host}
	res := &SeedResult{Created: map[string]int{}, EstimatedMatch: cat.EstimatedMatch, EstimatedFit: cat.EstimatedFit}
	start := time.Now()
	phases := []struct {
		kind, prefix string
		n            int
		item         func(i int) (string, any)
	}{
		{"advertisers", "/v1/advertisers/", len(cat.Advertisers), func(i int) (string, any) { return cat.Advertisers[i].ID, cat.Advertisers[i] }},
		{"placements", "/v1/placements/", len(cat.Placements), func(i int) (string, any) { return cat.Placements[i].ID, cat.Placements[i] }},
		{"campaigns", "/v1/campaigns/", len(cat.Campaigns), func(i int) (string, any) { return cat.Campaigns[i].ID, cat.Campaigns[i] }},
	}
	for _, ph := range phases {
		items := make([]seedItem, ph.n)
		for i := range items {
			id, v := ph.item(i)
			body, err := json.Marshal(v)
			if err != nil {
				return nil, fmt.Errorf("BUG: cannot encode %s %s: %w", ph.kind, id, err)
			}
			items[i] = seedItem{path: ph.prefix + url.PathEscape(id), body: body}
		}
		t0 := time.Now()
		ok, failed := s.run(ctx, ph.kind, items)
		res.Created[ph.kind] = ok
		res.Failed += failed
		fmt.Fprintf(cfg.Log, "seed: %s: %d created, %d failed (%.1fs)\n", ph.kind, ok, failed, time.Since(t0).Seconds())
		if ctx.Err() != nil {
			break
		}
	}
	res.Retried = int(s.retried.Load())
	res.Errors = s.errs
	res.Elapsed = time.Since(start)
	return res, ctx.Err()
}

type seeder struct {
	cfg     *SeedConfig
	hc      *fasthttp.HostClient
	host    string
	retried atomic.Int64
	mu      sync.Mutex
	errs    []string
}

func (s *seeder) fail(msg string) {
	s.mu.Lock()
	if len(s.errs) < 10 {
		s.errs = append(s.errs, msg)
		fmt.Fprintf(s.cfg.Log, "seed: %s\n", msg)
	}
	s.mu.Unlock()
}

// run PUTs items with cfg.Concurrency workers and returns the counts.
func (s *seeder) run(ctx context.Context, kind string, items []seedItem) (ok, failed int) {
	var next, nok, nfail atomic.Int64
	var wg sync.WaitGroup
	done := make(chan struct{})
	if p := s.cfg.Progress; p != nil {
		go func() {
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-done:
					fmt.Fprint(p, "\r\033[K")
					return
				case <-tick.C:
					fmt.Fprintf(p, "\r\033[Kseed: %s %d/%d, %d failed", kind, nok.Load(), len(items), nfail.Load())
				}
			}
		}()
	}
	for range min(s.cfg.Concurrency, len(items)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fasthttp.AcquireRequest()
			resp := fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(items)) {
					return
				}
				if err := s.put(ctx, &items[i], req, resp); err != nil {
					nfail.Add(1)
					s.fail(err.Error())
				} else {
					nok.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	return int(nok.Load()), int(nfail.Load())
}

var errRetry = errors.New("retryable")

// put sends one PUT, retrying 503, 429 and transport errors with backoff.
func (s *seeder) put(ctx context.Context, it *seedItem, req *fasthttp.Request, resp *fasthttp.Response) error {
	backoff := 100 * time.Millisecond
	var last error
	for attempt := 0; attempt <= s.cfg.Retries; attempt++ {
		if attempt > 0 {
			s.retried.Add(1)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return ctx.Err()
			}
			backoff = min(2*backoff, 3*time.Second)
		}
		req.Reset()
		req.Header.SetMethod(fasthttp.MethodPut)
		req.SetRequestURI(it.path)
		req.Header.SetHost(s.host)
		req.Header.SetContentType("application/json")
		if s.cfg.Token != "" {
			req.Header.Set("Authorization", "Bearer "+s.cfg.Token)
		}
		req.SetBodyRaw(it.body)
		err := s.hc.DoTimeout(req, resp, s.cfg.Timeout)
		if err != nil {
			last = fmt.Errorf("PUT %s: %w", it.path, err)
			continue
		}
		switch code := resp.StatusCode(); {
		case code >= 200 && code < 300:
			return nil
		case code == fasthttp.StatusServiceUnavailable || code == fasthttp.StatusTooManyRequests:
			last = fmt.Errorf("PUT %s: status %d: %s (%w)", it.path, code, snippet(resp.Body()), errRetry)
		default:
			return fmt.Errorf("PUT %s: status %d: %s", it.path, code, snippet(resp.Body()))
		}
	}
	return fmt.Errorf("%w (gave up after %d retries)", last, s.cfg.Retries)
}

func snippet(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

func mainSeed(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest seed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg SeedConfig
	scenario := fs.String("scenario", "", "traffic scenario JSON file whose distributions and placements to use (default: built-in)")
	placements := fs.Int("placements", 0, "replace the scenario's placements with N generated ones (pass the same -placements to the run)")
	fs.StringVar(&cfg.Admin, "admin", "http://127.0.0.1:8081", "management listener base URL")
	fs.StringVar(&cfg.Token, "token", "", "admin bearer token")
	fs.IntVar(&cfg.Campaigns, "campaigns", 0, "number of campaigns to create")
	fs.IntVar(&cfg.Advertisers, "advertisers", 0, "number of advertisers (default campaigns/10, at least 1)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "random seed of the catalog")
	fs.IntVar(&cfg.Concurrency, "concurrency", 16, "PUTs in flight")
	fs.DurationVar(&cfg.Timeout, "timeout", 10*time.Second, "per-PUT timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if cfg.Campaigns <= 0 {
		fmt.Fprintln(stderr, "loadtest seed: -campaigns N (> 0) is required")
		return 2
	}
	sc, err := LoadScenario(*scenario)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest seed: %v\n", err)
		return 1
	}
	if *placements > 0 {
		sc.SetPlacementCount(*placements)
	}
	cfg.Scenario = sc
	cfg.Log = stdout
	if isTerminal(os.Stderr) {
		cfg.Progress = stderr
	}
	res, err := Seed(ctx, cfg)
	if res == nil {
		fmt.Fprintf(stderr, "loadtest seed: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "seed: %d advertisers, %d placements, %d campaigns created; %d failed, %d retries; %.1fs; "+
		"a request's targeting matches ~%.1f%% of campaigns, ~%.1f%% with a creative of its size (estimates)\n",
		res.Created["advertisers"], res.Created["placements"], res.Created["campaigns"], res.Failed, res.Retried,
		res.Elapsed.Seconds(), 100*res.EstimatedMatch, 100*res.EstimatedFit)
	if err != nil || res.Failed > 0 {
		return 1
	}
	return 0
}
