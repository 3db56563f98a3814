// Command bulkhead measures whether a ClickHouse fault harms ad serving.
// In one run it:
//
//  1. puts a TCP proxy (Proxy) in front of the real ClickHouse native port
//     and switches it between normal (pass-through), down (listener and
//     connections closed: refused), blackhole (accepted, never answered)
//     and slow (-delay added to every chunk, each direction);
//  2. starts a real adserver process with -clickhouse pointing at the
//     proxy, a private ClickHouse database, a temporary data dir, its own
//     ports and the embedded Kafka broker, and seeds a catalog through the
//     management API (loadtest.Seed);
//  3. measures the closed-model maximum of /v1/ad (unless -rate is given),
//     then drives /v1/ad with the loadtest harness in the open model at
//     -rate-fraction of it, with impression, click and conversion beacons
//     (so the shipper has events to send) and report queries on the
//     management listener (GET /v1/reports), in interleaved phases:
//     normal, down, normal, blackhole, normal, slow, normal, down, ...
//     (-rounds times the -faults);
//  4. after each fault phase, restores the proxy and waits (no traffic)
//     until the node reports every event shipped; at the end it checks
//     that ClickHouse holds exactly the events the node recorded;
//  5. prints the phases, each fault phase's throughput and p99 against the
//     mean of its two normal neighbours (and each inner normal phase
//     against its normal neighbours: the noise floor), judges each fault
//     by the medians of its ratios over the rounds against -bound, writes
//     -json, and exits 0 (PASS), 1 (FAIL: a fault outside the bound while
//     fault-free phases agree within it, or an event lost or doubled) or
//     3 (INCONCLUSIVE: fault-free phases differ by more than the bound, so
//     the machine is too noisy to show it either way); 1 also when the run
//     could not complete (ERROR).
//
// Interleaving keeps the comparison fair on a noisy shared machine: slow
// drifts (pacing, caches, neighbours) hit normal and fault phases alike.
// The per-phase CPU split (adserver, harness, ClickHouse, other processes,
// idle) shows when a neighbour saturated the machine during a phase.
//
// Usage, from the repository root (ClickHouse on 127.0.0.1:9000/8123, or
// scripts/clickhouse.sh starts it):
//
//	go run ./cmd/bulkhead -json bulkhead.json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/adserver/adserver/internal/adproc"
)

// Config is one bulkhead run. main fills it from the flags.
type Config struct {
	Adserver         string        `json:"adserver"`
	Dir              string        `json:"dir"`
	Keep             bool          `json:"keep"`
	ClickHouse       string        `json:"clickhouse"`
	ClickHouseHTTP   string        `json:"clickhouse_http"`
	ClickHouseScript string        `json:"clickhouse_script"`
	Database         string        `json:"database"`
	ProxyListen      string        `json:"proxy_listen"`
	PortBase         int           `json:"port_base"`
	Campaigns        int           `json:"campaigns"`
	Advertisers      int           `json:"advertisers"`
	Seed             uint64        `json:"seed"`
	Rate             float64       `json:"rate"`
	RateFraction     float64       `json:"rate_fraction"`
	Calibrate        time.Duration `json:"calibrate"`
	Concurrency      int           `json:"concurrency"`
	Timeout          time.Duration `json:"timeout"`
	Phase            time.Duration `json:"phase"`
	Warmup           time.Duration `json:"warmup"`
	Faults           []Mode        `json:"-"`
	FaultNames       []string      `json:"faults"`
	Rounds           int           `json:"rounds"`
	Delay            time.Duration `json:"delay"`
	ImpRate          float64       `json:"imp_rate"`
	CTR              float64       `json:"ctr"`
	ConvRate         float64       `json:"conv_rate"`
	ReportRate       float64       `json:"report_rate"`
	ReportWorkers    int           `json:"report_workers"`
	Bound            float64       `json:"bound"`
	Catchup          time.Duration `json:"catchup"`
	ShipTimeout      time.Duration `json:"ship_timeout"`
	ReadyTimeout     time.Duration `json:"ready_timeout"`
	LogLevel         string        `json:"log_level"`
	JSON             string        `json:"json"`
	// Log gets progress lines; default os.Stderr.
	Log io.Writer `json:"-"`
}

func main() {
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bulkhead:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
	res, err := run(ctx, cfg)
	os.Exit(finish(res, err, cfg, os.Stdout, os.Stderr))
}

// finish prints res, writes the JSON file and returns the exit code.
func finish(res *Result, err error, cfg Config, stdout, stderr io.Writer) int {
	code := 0
	if res != nil {
		res.print(stdout)
		if cfg.JSON != "" {
			if werr := res.writeJSON(cfg.JSON); werr != nil {
				fmt.Fprintln(stderr, "bulkhead:", werr)
				code = 1
			}
		}
		code = max(code, res.exitCode())
	}
	if err != nil {
		fmt.Fprintln(stderr, "bulkhead:", err)
		code = 1
	}
	return code
}

func parseFlags(args []string, stderr io.Writer) (Config, error) {
	var cfg Config
	fs := flag.NewFlagSet("bulkhead", flag.ContinueOnError)
	fs.SetOutput(stderr)
	faults := fs.String("faults", "down,blackhole,slow", "fault phases of a round, in order, each followed by a normal phase: down, blackhole, slow")
	fs.StringVar(&cfg.Adserver, "adserver", "", "adserver binary to start (default: go build ./cmd/adserver into the work directory)")
	fs.StringVar(&cfg.Dir, "dir", "", "work directory for the node's data dir, log and binary (default: a new temporary directory)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the work directory and the ClickHouse database")
	fs.StringVar(&cfg.ClickHouse, "clickhouse", "127.0.0.1:9000", "the real ClickHouse's native-protocol address (the proxy's upstream)")
	fs.StringVar(&cfg.ClickHouseHTTP, "clickhouse-http", "http://127.0.0.1:8123", "the real ClickHouse's HTTP interface, used directly to count delivered events")
	fs.StringVar(&cfg.ClickHouseScript, "clickhouse-script", "scripts/clickhouse.sh", "script run with 'start' when ClickHouse does not answer; empty: fail instead")
	fs.StringVar(&cfg.Database, "database", "", "ClickHouse database of the node (default bulkhead_<unix time>; dropped at the end unless -keep)")
	fs.StringVar(&cfg.ProxyListen, "proxy-listen", "127.0.0.1:0", "the proxy's address (port 0: a free one)")
	fs.IntVar(&cfg.PortBase, "port-base", 0, "the node serves on base, management on base+1, embedded broker on base+2; 0: free ports")
	fs.IntVar(&cfg.Campaigns, "campaigns", 1000, "campaigns to seed (loadtest seed)")
	fs.IntVar(&cfg.Advertisers, "advertisers", 0, "advertisers to seed (default campaigns/10, at least 1)")
	fs.Uint64Var(&cfg.Seed, "seed", 1, "seed of the catalog and the traffic")
	fs.Float64Var(&cfg.Rate, "rate", 0, "open-model /v1/ad rate per second; 0: -rate-fraction of the closed-model maximum measured first")
	fs.Float64Var(&cfg.RateFraction, "rate-fraction", 0.5, "share of the measured closed-model maximum to drive (with -rate 0)")
	fs.DurationVar(&cfg.Calibrate, "calibrate", 5*time.Second, "length of the closed-model measurement (with -rate 0)")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "loadtest workers: closed-model parallelism, open-model bound on requests in flight")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "per-request timeout of /v1/ad and beacons")
	fs.DurationVar(&cfg.Phase, "phase", 10*time.Second, "length of each measured phase")
	fs.DurationVar(&cfg.Warmup, "warmup", 5*time.Second, "open-model traffic before the first phase, not measured")
	fs.IntVar(&cfg.Rounds, "rounds", 3, "repetitions of the fault sequence; each fault is judged by the medians of its rounds' ratios")
	fs.DurationVar(&cfg.Delay, "delay", 2*time.Second, "latency the slow mode adds to every read and write, each direction")
	fs.Float64Var(&cfg.ImpRate, "imp-rate", 0.9, "share of fills followed by an impression beacon")
	fs.Float64Var(&cfg.CTR, "ctr", 0.01, "share of impressions followed by a click")
	fs.Float64Var(&cfg.ConvRate, "conv-rate", 0.05, "share of clicks followed by a conversion")
	fs.Float64Var(&cfg.ReportRate, "report-rate", 4, "GET /v1/reports per second during the phases (0: none)")
	fs.IntVar(&cfg.ReportWorkers, "report-workers", 8, "report queries in flight at most (a tick finding all busy is skipped and counted)")
	fs.Float64Var(&cfg.Bound, "bound", 0.10, "a fault phase passes when its throughput is at least (1-bound) and its p99 at most (1+bound) times its normal neighbours' mean")
	fs.DurationVar(&cfg.Catchup, "catchup", 90*time.Second, "after each fault phase, longest wait (no traffic) for the node to ship its backlog; 0: do not wait")
	fs.DurationVar(&cfg.ShipTimeout, "ship-timeout", 2*time.Minute, "at the end, longest wait for every recorded event to reach ClickHouse")
	fs.DurationVar(&cfg.ReadyTimeout, "ready-timeout", 2*time.Minute, "longest wait for the node to become ready")
	fs.StringVar(&cfg.LogLevel, "log-level", "warn", "the node's -log-level (its log is <dir>/node.log)")
	fs.StringVar(&cfg.JSON, "json", "", "write the result as JSON to this file")
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	for _, f := range strings.Split(*faults, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		m, err := parseMode(f)
		if err != nil {
			return cfg, fmt.Errorf("-faults: %w", err)
		}
		if m == ModePass {
			return cfg, fmt.Errorf("-faults: %q is not a fault", f)
		}
		cfg.Faults = append(cfg.Faults, m)
		cfg.FaultNames = append(cfg.FaultNames, m.String())
	}
	return cfg, cfg.validate()
}

func (cfg *Config) validate() error {
	switch {
	case len(cfg.Faults) == 0:
		return errors.New("-faults must name at least one fault")
	case cfg.Campaigns <= 0:
		return fmt.Errorf("-campaigns must be > 0, got %d", cfg.Campaigns)
	case cfg.Rate < 0:
		return fmt.Errorf("-rate must be >= 0, got %v", cfg.Rate)
	case cfg.Rate == 0 && (cfg.RateFraction <= 0 || cfg.RateFraction > 1):
		return fmt.Errorf("-rate-fraction must be in (0, 1], got %v", cfg.RateFraction)
	case cfg.Rate == 0 && cfg.Calibrate <= 0:
		return fmt.Errorf("-calibrate must be > 0 with -rate 0, got %v", cfg.Calibrate)
	case cfg.Phase <= 0:
		return fmt.Errorf("-phase must be > 0, got %v", cfg.Phase)
	case cfg.Rounds < 1:
		return fmt.Errorf("-rounds must be >= 1, got %d", cfg.Rounds)
	case cfg.Delay <= 0:
		return fmt.Errorf("-delay must be > 0, got %v", cfg.Delay)
	case cfg.Bound <= 0 || cfg.Bound >= 1:
		return fmt.Errorf("-bound must be in (0, 1), got %v", cfg.Bound)
	case cfg.ReportRate < 0 || cfg.ReportWorkers < 1:
		return fmt.Errorf("-report-rate must be >= 0 and -report-workers >= 1")
	case cfg.Warmup < 0 || cfg.Catchup < 0 || cfg.ShipTimeout < 0:
		return errors.New("durations must be >= 0")
	case cfg.PortBase != 0 && (cfg.PortBase < 1024 || cfg.PortBase > 65533):
		return fmt.Errorf("-port-base must be 0 or in 1024..65533, got %d", cfg.PortBase)
	}
	if cfg.Database == "" {
		cfg.Database = fmt.Sprintf("bulkhead_%d", time.Now().UnixNano())
	}
	for _, r := range cfg.Database {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return fmt.Errorf("-database %q: letters, digits and '_' only", cfg.Database)
		}
	}
	if cfg.Advertisers <= 0 {
		cfg.Advertisers = max(1, cfg.Campaigns/10)
	}
	if cfg.Adserver != "" {
		abs, err := adproc.Executable("-adserver", cfg.Adserver)
		if err != nil {
			return err
		}
		cfg.Adserver = abs
	}
	return nil
}
