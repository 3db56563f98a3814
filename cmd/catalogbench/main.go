// Command catalogbench measures the campaign catalog's two operational
// figures against real adserver processes and a real Kafka-protocol broker:
//
//   - bootstrap: the time from starting a fresh node to its /readyz
//     answering 200, with N campaigns in adserver.campaigns;
//   - propagation: the time from a PUT /v1/campaigns/{id} on node A to the
//     change being visible on node B (GET /v1/campaigns/{id} there shows
//     the new bid), over many sequential updates.
//
// It starts node A (the given adserver binary with its embedded broker,
// -clickhouse off, on non-default ports under a work directory), seeds the
// catalog of `loadtest seed` (advertisers, placements, N campaigns, as
// management-API JSON) straight into the catalog topics with a kafka-go
// writer (murmur2 partitioning, like every other client), and waits until
// A has applied it. Then:
//
//  1. it starts node B fresh (-kafka <A's broker>, its own data dir) and
//     times it to ready, -runs times (and once before seeding, on an empty
//     catalog, for the process's own start-up cost);
//  2. with A and the last B up, it runs -updates PUTs on A (the admin token
//     read from A's data dir), one at a time after a random pause of up to
//     -gap, each changing one random campaign's bid to a value never used
//     before, and polls B from the moment the PUT is sent until B shows
//     that bid; PUT latencies (which include A applying the change) and
//     A→B latencies go to HDR histograms;
//  3. it restarts A on its data dir and times it to ready: the embedded
//     broker reloads the topics from disk, then the catalog bootstraps.
//
// Every process it starts is stopped on exit; the work directory is
// removed unless -keep.
//
//	go build -o bin/adserver ./cmd/adserver
//	go run ./cmd/catalogbench -adserver bin/adserver -campaigns 100000 -updates 1000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/adserver/adserver/internal/adproc"
)

// Config is what one catalogbench run does.
type Config struct {
	Adserver     string
	Dir          string
	Keep         bool
	Campaigns    int
	Advertisers  int
	Updates      int
	Runs         int
	PortBase     int
	Restart      bool
	Seed         uint64
	ReadyTimeout time.Duration
	Poll         time.Duration
	Gap          time.Duration
	LogLevel     string
}

func main() {
	var cfg Config
	flag.StringVar(&cfg.Adserver, "adserver", "bin/adserver", "adserver binary to start (build it from this tree: go build -o bin/adserver ./cmd/adserver)")
	flag.StringVar(&cfg.Dir, "dir", "", "work directory for the nodes' data dirs and logs (default: a new temporary directory)")
	flag.BoolVar(&cfg.Keep, "keep", false, "keep the work directory")
	flag.IntVar(&cfg.Campaigns, "campaigns", 100000, "campaigns to seed into adserver.campaigns")
	flag.IntVar(&cfg.Advertisers, "advertisers", 0, "advertisers to seed (default campaigns/100, at least 1)")
	flag.IntVar(&cfg.Updates, "updates", 1000, "sequential PUTs on node A, each waited for on node B; 0 skips the propagation figure")
	flag.IntVar(&cfg.Runs, "runs", 3, "fresh-node bootstraps to time")
	flag.IntVar(&cfg.PortBase, "port-base", 27080, "first port: node A serves on base, admin base+1, broker base+12; node B on base+100, base+101 (keep them below the ephemeral range, 32768 on Linux)")
	flag.BoolVar(&cfg.Restart, "restart", true, "also time a restart of node A on its data dir (broker reload + bootstrap)")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "seed of the catalog and of the update sequence")
	flag.DurationVar(&cfg.ReadyTimeout, "ready-timeout", 10*time.Minute, "longest wait for a node to become ready")
	flag.DurationVar(&cfg.Poll, "poll", time.Millisecond, "interval between two polls of node B during an update")
	flag.DurationVar(&cfg.Gap, "gap", 100*time.Millisecond, "pause a random 0..gap between two updates, so that PUTs arrive at random moments of the nodes' 50ms batching; 0: back to back")
	flag.StringVar(&cfg.LogLevel, "log-level", "warn", "the nodes' -log-level (their logs are <dir>/<node>.log; see -keep)")
	flag.Parse()
	if cfg.Advertisers <= 0 {
		cfg.Advertisers = max(1, cfg.Campaigns/100)
	}
	if err := cfg.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "catalogbench:", err)
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Printf("command: %s\n", strings.Join(os.Args, " "))
	res, err := run(ctx, cfg)
	if res != nil {
		res.print(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "catalogbench:", err)
		os.Exit(1)
	}
}

func (cfg *Config) validate() error {
	switch {
	case cfg.Campaigns <= 0:
		return fmt.Errorf("-campaigns must be > 0, got %d", cfg.Campaigns)
	case cfg.Updates < 0:
		return fmt.Errorf("-updates must be >= 0, got %d", cfg.Updates)
	case cfg.Runs < 1:
		return fmt.Errorf("-runs must be >= 1, got %d", cfg.Runs)
	case cfg.PortBase < 1024 || cfg.PortBase > 65535-200:
		return fmt.Errorf("-port-base must be in 1024..65335, got %d", cfg.PortBase)
	case cfg.Poll <= 0:
		return fmt.Errorf("-poll must be > 0, got %v", cfg.Poll)
	case cfg.Gap < 0:
		return fmt.Errorf("-gap must be >= 0, got %v", cfg.Gap)
	}
	abs, err := adproc.Executable("-adserver", cfg.Adserver)
	if err != nil {
		return fmt.Errorf("%w (build it: go build -o bin/adserver ./cmd/adserver)", err)
	}
	cfg.Adserver = abs
	return nil
}

// run does the whole measurement and returns what it measured so far,
// even on error.
func run(ctx context.Context, cfg Config) (*Result, error) {
	dir, err := adproc.WorkDir(cfg.Dir, "catalogbench-")
	if err != nil {
		return nil, err
	}
	if !cfg.Keep {
		defer os.RemoveAll(dir)
	}
	res := &Result{Config: cfg, Dir: dir}

	a := &node{name: "A", bin: cfg.Adserver, logLevel: cfg.LogLevel, dir: filepath.Join(dir, "a"), port: cfg.PortBase,
		broker: fmt.Sprintf("127.0.0.1:%d", cfg.PortBase+12)}
	defer a.stop()
	if err := a.checkPorts(); err != nil {
		return res, err
	}
	if _, err := a.start(ctx, cfg.ReadyTimeout); err != nil {
		return res, err
	}
	res.NodeA = a.cmdline()

	// A fresh node on an empty catalog: the process's own start-up.
	b := bNode(cfg, dir, "b-empty", a.broker)
	if err := b.checkPorts(); err != nil {
		return res, err
	}
	d, err := b.start(ctx, cfg.ReadyTimeout)
	b.stop()
	if err != nil {
		return res, err
	}
	res.EmptyReady = d

	seed, err := seedCatalog(ctx, a.broker, cfg)
	res.Seed = seed
	if err != nil {
		return res, err
	}
	fmt.Printf("seeded %d campaigns in %v; waiting for node A to apply them\n", cfg.Campaigns, seed.Write.Round(time.Millisecond))
	t0 := time.Now()
	if err := a.waitCampaigns(ctx, cfg.Campaigns, cfg.ReadyTimeout); err != nil {
		return res, err
	}
	res.Seed.AppliedOnA = time.Since(t0)

	for i := range cfg.Runs {
		b.stop()
		b = bNode(cfg, dir, fmt.Sprintf("b%d", i+1), a.broker)
		d, err := b.start(ctx, cfg.ReadyTimeout)
		if err != nil {
			return res, err
		}
		n, err := b.indexCampaigns()
		if err != nil {
			return res, err
		}
		if n != cfg.Campaigns {
			return res, fmt.Errorf("node B ready with %d campaigns, want %d", n, cfg.Campaigns)
		}
		res.Bootstrap = append(res.Bootstrap, d)
		res.NodeB = b.cmdline()
		fmt.Printf("bootstrap run %d: node B ready with %d campaigns after %v\n", i+1, n, d.Round(time.Millisecond))
	}
	defer b.stop()

	if cfg.Updates > 0 {
		token, err := os.ReadFile(filepath.Join(a.dir, "admin-token"))
		if err != nil {
			return res, fmt.Errorf("cannot read node A's admin token: %w", err)
		}
		res.Propagation, err = propagate(ctx, cfg, seed.catalog, a, b, strings.TrimSpace(string(token)))
		if err != nil {
			return res, err
		}
	}

	if cfg.Restart {
		b.stop() // its broker is going away
		a.stop()
		d, err := a.start(ctx, cfg.ReadyTimeout)
		if err != nil {
			return res, err
		}
		n, err := a.indexCampaigns()
		if err != nil {
			return res, err
		}
		if n != cfg.Campaigns {
			return res, fmt.Errorf("node A restarted with %d campaigns, want %d", n, cfg.Campaigns)
		}
		res.Restart = d
	}
	return res, nil
}

func bNode(cfg Config, dir, name, broker string) *node {
	return &node{name: "B", bin: cfg.Adserver, logLevel: cfg.LogLevel, dir: filepath.Join(dir, name), port: cfg.PortBase + 100, kafka: broker}
}
