package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/adserver/adserver/loadtest"

	"github.com/adserver/adserver/internal/adproc"
)

// bench is one run's moving parts.
type bench struct {
	cfg     Config
	log     io.Writer
	proxy   *Proxy
	node    *node
	ch      chHTTP
	sc      *loadtest.Scenario
	reports *reportDriver
	rate    float64
	res     *Result
}

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "bulkhead: "+format+"\n", args...)
}

// run does the whole measurement. It returns what it measured so far,
// even on error (nil only when nothing started); a run cut short by an
// error has Status ERROR.
func run(ctx context.Context, cfg Config) (_ *Result, err error) {
	b := &bench{cfg: cfg, log: cfg.Log, ch: chHTTP{url: strings.TrimRight(cfg.ClickHouseHTTP, "/")}}
	defer func() {
		if b.res == nil {
			return
		}
		b.res.evaluate(cfg.Bound)
		if err != nil {
			b.res.Status, b.res.Pass = "ERROR", false
			b.res.Failures = append([]string{err.Error()}, b.res.Failures...)
		}
	}()
	if b.log == nil {
		b.log = os.Stderr
	}
	if err := ensureClickHouse(ctx, cfg.ClickHouse, b.ch, cfg.ClickHouseScript, b.logf); err != nil {
		return nil, fmt.Errorf("ClickHouse at %s / %s does not answer: %w", cfg.ClickHouse, cfg.ClickHouseHTTP, err)
	}
	dir, err := adproc.WorkDir(cfg.Dir, "bulkhead-")
	if err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer os.RemoveAll(dir)
	}
	bin := cfg.Adserver
	if bin == "" {
		bin = filepath.Join(dir, "adserver")
		b.logf("building %s", bin)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/adserver/adserver/cmd/adserver")
		cmd.Stdout, cmd.Stderr = b.log, b.log
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("cannot build the adserver (run from the repository, or pass -adserver): %w", err)
		}
	}

	if b.proxy, err = NewProxy(cfg.ProxyListen, cfg.ClickHouse, cfg.Delay); err != nil {
		return nil, err
	}
	defer b.proxy.Close()
	addrs, err := nodeAddrs(cfg.PortBase)
	if err != nil {
		return nil, err
	}
	b.node = &node{bin: bin, dir: filepath.Join(dir, "node"), logLevel: cfg.LogLevel,
		clickhouse: b.proxy.Addr(), database: cfg.Database,
		serving: addrs[0], adminAddr: addrs[1], broker: addrs[2]}
	b.res = &Result{Config: cfg, Node: b.node.cmdline(), Proxy: b.proxy.Addr(), Dir: dir, Started: time.Now()}
	if !cfg.Keep {
		defer b.dropDatabase()
	}
	defer b.node.stop()
	defer b.proxy.SetMode(ModePass) // let the node ship what it holds as it stops
	b.logf("starting %s", b.node.cmdline())
	if err := b.node.start(ctx, cfg.ReadyTimeout); err != nil {
		return b.res, err
	}
	if err := b.seed(ctx); err != nil {
		return b.res, err
	}
	return b.res, b.measure(ctx)
}

// nodeAddrs returns the node's serving, management and broker addresses.
func nodeAddrs(base int) ([]string, error) {
	if base == 0 {
		return freePorts(3)
	}
	addrs := make([]string, 3)
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.1:%d", base+i)
		if err := checkFree(addrs[i]); err != nil {
			return nil, err
		}
	}
	return addrs, nil
}

// seed creates the catalog through the management API (the loadtest
// seeder) and sets up the report driver with the advertisers' API keys.
func (b *bench) seed(ctx context.Context) error {
	cfg := b.cfg
	token, err := b.node.adminToken()
	if err != nil {
		return err
	}
	b.sc = loadtest.DefaultScenario()
	now := time.Now()
	sres, err := loadtest.Seed(ctx, loadtest.SeedConfig{
		Admin: b.node.adminURL(), Token: token, Campaigns: cfg.Campaigns, Advertisers: cfg.Advertisers,
		Seed: cfg.Seed, Scenario: b.sc, Now: now, Log: b.log,
	})
	if err != nil {
		return fmt.Errorf("seed: %w", err)
	}
	if sres.Failed > 0 {
		return fmt.Errorf("seed: %d PUTs failed: %v", sres.Failed, sres.Errors)
	}
	// The seeder's catalog is a pure function of its inputs: rebuild it
	// for the advertisers' API keys.
	cat := loadtest.BuildCatalog(b.sc, cfg.Campaigns, cfg.Advertisers, cfg.Seed, now)
	keys := make([]string, len(cat.Advertisers))
	for i, a := range cat.Advertisers {
		keys[i] = a.APIKey
	}
	b.reports = newReportDriver(b.node.adminURL(), keys, cfg.ReportRate, cfg.ReportWorkers, 10*time.Second)
	b.res.Seeded = sres.Created
	return nil
}

func (b *bench) load(rate float64, d time.Duration, seed uint64) loadtest.Config {
	c := b.cfg
	return loadtest.Config{
		Targets: []string{b.node.servingURL()}, Rate: rate, Duration: d,
		Concurrency: c.Concurrency, Timeout: c.Timeout,
		ImpRate: c.ImpRate, CTR: c.CTR, ConvRate: c.ConvRate,
		Seed: seed, Scenario: b.sc,
	}
}

// measure calibrates the rate, warms up, runs the phases and checks the
// delivery of every event.
func (b *bench) measure(ctx context.Context) error {
	cfg := b.cfg
	b.rate = cfg.Rate
	if b.rate == 0 {
		b.logf("measuring the closed-model maximum for %v (%d workers)", cfg.Calibrate, cfg.Concurrency)
		// The warm-up is a run of its own so that its beacons are counted.
		w, err := loadtest.Run(ctx, b.load(0, time.Second, cfg.Seed*1000+997))
		if err != nil {
			return fmt.Errorf("calibration: %w", err)
		}
		b.addBeacons(w)
		cal, err := loadtest.Run(ctx, b.load(0, cfg.Calibrate, cfg.Seed*1000+999))
		if err != nil {
			return fmt.Errorf("calibration: %w", err)
		}
		b.res.Calibration = cal
		b.addBeacons(cal)
		if cal.AchievedRate <= 0 || cal.Errors == cal.Requests {
			return fmt.Errorf("calibration: achieved %.1f/s with %d errors of %d (last: %s)",
				cal.AchievedRate, cal.Errors, cal.Requests, cal.LastError)
		}
		b.rate = float64(int(cfg.RateFraction*cal.AchievedRate + 0.5))
		b.logf("closed-model maximum %.0f/s (p99 %.2fms); driving %.0f/s", cal.AchievedRate, cal.LatencyMs.P99, b.rate)
	}
	b.res.Rate = b.rate
	if cfg.Warmup > 0 {
		w, err := loadtest.Run(ctx, b.load(b.rate, cfg.Warmup, cfg.Seed*1000+998))
		if err != nil {
			return fmt.Errorf("warmup: %w", err)
		}
		b.addBeacons(w)
	}
	type planned struct {
		round int
		mode  Mode
	}
	plan := []planned{{0, ModePass}}
	for r := range cfg.Rounds {
		for _, f := range cfg.Faults {
			plan = append(plan, planned{r + 1, f}, planned{r + 1, ModePass})
		}
	}
	defer func() {
		b.reports.wait()
		for _, ph := range b.res.Phases {
			ph.Reports.finish()
		}
	}()
	for i, p := range plan {
		if err := ctx.Err(); err != nil {
			return err
		}
		m := p.mode
		ph, err := b.phase(ctx, i, m)
		if ph != nil {
			ph.Round = p.round
			b.res.Phases = append(b.res.Phases, ph)
		}
		if err != nil {
			return fmt.Errorf("phase %d (%s): %w", i, m, err)
		}
	}
	return b.deliver(ctx)
}

// addBeacons counts the beacons of r the server answered with success.
func (b *bench) addBeacons(r *loadtest.Result) {
	b.res.Delivery.BeaconsOK += r.Beacons.Sent - r.Beacons.Failed
}

// phase runs one measured phase with the proxy in mode m and, after a
// fault, restores the proxy and waits for the node's backlog to ship.
func (b *bench) phase(ctx context.Context, i int, m Mode) (*Phase, error) {
	if err := b.proxy.SetMode(m); err != nil {
		return nil, err
	}
	ph := &Phase{Index: i, Mode: m.String(), Start: time.Now(), Reports: &ReportStats{}}
	p0 := b.proxy.Stats()
	m0, err := b.node.metrics()
	if err != nil {
		return nil, err
	}
	pid := b.node.proc.Pid()
	c0 := readCPU(pid)
	rctx, cancel := context.WithCancel(ctx)
	b.reports.run(rctx, ph.Reports)
	ad, err := loadtest.Run(ctx, b.load(b.rate, b.cfg.Phase, b.cfg.Seed*1000+uint64(i)))
	cancel()
	if err != nil {
		return nil, err
	}
	ph.CPU = share(c0, readCPU(pid))
	ph.Ad = ad
	b.addBeacons(ad)
	p1 := b.proxy.Stats()
	ph.ProxyBytes = p1.Up + p1.Down - p0.Up - p0.Down
	ph.ProxyConns = p1.Accepted - p0.Accepted
	m1, err := b.node.metrics()
	if err != nil {
		return ph, err
	}
	ph.ShipperErrors = sumPrefix(m1, "adserver_shipper_errors_total") - sumPrefix(m0, "adserver_shipper_errors_total")
	ph.Unshipped = m1["adserver_eventlog_unshipped_records"]
	if ph.CHRows, _, err = b.ch.eventCounts(ctx, b.cfg.Database); err != nil {
		return ph, err
	}
	if !b.node.alive() {
		return ph, fmt.Errorf("the adserver exited; its log %s ends with:\n%s", b.node.logPath(), adproc.Tail(b.node.logPath(), 20))
	}
	b.logf("phase %d %-9s achieved %.0f/s p50 %.2fms p99 %.2fms p99.9 %.2fms errors %d fill %.1f%% shipper errors %+.0f unshipped %.0f cpu node/harness/ch/other/idle %s",
		i, m, ad.AchievedRate, ad.LatencyMs.P50, ad.LatencyMs.P99, ad.LatencyMs.P999, ad.Errors, 100*ad.FillRate,
		ph.ShipperErrors, ph.Unshipped, ph.CPU)
	if m != ModePass {
		if err := b.proxy.SetMode(ModePass); err != nil {
			return ph, err
		}
		if b.cfg.Catchup > 0 {
			d, err := b.waitShipped(ctx, b.cfg.Catchup)
			ph.CatchupS = d.Seconds()
			if err != nil {
				b.logf("phase %d: %v (going on)", i, err)
				ph.CatchupS = -1
			} else {
				b.logf("phase %d: backlog shipped %.1fs after the proxy was restored", i, d.Seconds())
			}
		}
	}
	return ph, nil
}

func sumPrefix(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// waitShipped waits until the node reports no unshipped event.
func (b *bench) waitShipped(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for {
		m, err := b.node.metrics()
		if err == nil && m["adserver_eventlog_unshipped_records"] == 0 {
			return time.Since(t0), nil
		}
		if time.Since(t0) > timeout {
			return time.Since(t0), fmt.Errorf("events still unshipped after %v (%.0f; last error %v)",
				timeout, m["adserver_eventlog_unshipped_records"], err)
		}
		select {
		case <-ctx.Done():
			return time.Since(t0), ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// deliver waits for the last events to ship and compares what the node
// recorded with what ClickHouse holds: every recorded event exactly once
// in the events table and in the rollups.
func (b *bench) deliver(ctx context.Context) error {
	d := &b.res.Delivery
	wait, err := b.waitShipped(ctx, b.cfg.ShipTimeout)
	d.WaitS = wait.Seconds()
	if err != nil {
		d.Problems = append(d.Problems, err.Error())
	}
	m, err := b.node.metrics()
	if err != nil {
		return err
	}
	d.Recorded = int64(m["adserver_events_recorded_total"])
	d.LogFailed = int64(m["adserver_events_log_failed_total"])
	if d.CHRows, d.CHUnique, err = b.ch.eventCounts(ctx, b.cfg.Database); err != nil {
		return err
	}
	db := b.cfg.Database
	var s string
	if s, err = b.ch.query(ctx, fmt.Sprintf("SELECT uniqExact(event_id) FROM %s.events WHERE test = 0", db)); err == nil {
		fmt.Sscan(s, &d.CHUniqueNonTest)
		s, err = b.ch.query(ctx, fmt.Sprintf(
			"SELECT sum(impressions + clicks + conversions + wins + billings + losses) FROM %s.rollup_campaign_hourly", db))
		fmt.Sscan(s, &d.RollupEvents)
	}
	if err != nil {
		return err
	}
	if d.CHUnique != d.Recorded {
		d.Problems = append(d.Problems, fmt.Sprintf("ClickHouse holds %d distinct events, the node recorded %d", d.CHUnique, d.Recorded))
	}
	if d.CHRows != d.CHUnique {
		d.Problems = append(d.Problems, fmt.Sprintf("ClickHouse holds %d rows for %d distinct events (duplicates)", d.CHRows, d.CHUnique))
	}
	if d.RollupEvents != d.CHUniqueNonTest {
		d.Problems = append(d.Problems, fmt.Sprintf("the rollup counts %d events, the events table %d (non-test)", d.RollupEvents, d.CHUniqueNonTest))
	}
	if d.LogFailed > 0 {
		d.Problems = append(d.Problems, fmt.Sprintf("%d events could not be logged", d.LogFailed))
	}
	if d.Recorded < d.BeaconsOK {
		d.Problems = append(d.Problems, fmt.Sprintf("the node recorded %d events, fewer than the %d beacons it answered with success", d.Recorded, d.BeaconsOK))
	}
	d.Pass = len(d.Problems) == 0
	return nil
}

// dropDatabase removes the run's ClickHouse database.
func (b *bench) dropDatabase() {
	if _, err := b.ch.query(context.Background(), "DROP DATABASE IF EXISTS "+b.cfg.Database); err != nil {
		b.logf("cannot drop database %s: %v", b.cfg.Database, err)
	}
}
