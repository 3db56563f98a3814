package loadtest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

const usageRun = `usage:
  loadtest -target URL[,URL...] -rate N -duration D [-endpoint ad|openrtb] [-scenario F]
           [-json FILE] [-baseline] [-concurrency N] [-ramp D] [-warmup D] [-day-shape]
           [-imp-rate X] [-ctr X] [-conv-rate X] [-seed N] [-timeout D] [-chart FILE]
           [-cpuprofile FILE]
  loadtest seed -admin URL -token T -campaigns N [-advertisers M] [-placements P] [-seed S]
  loadtest scenario        print the built-in scenario (a template for -scenario)

-rate N > 0 is the open model: arrivals at N/s, latency measured from each request's
intended send time; -rate 0 is the closed model: -concurrency workers back to back.

`

// Main runs the command line (args without the program name) and returns
// the exit code: 0 done, 1 failed, 2 bad usage.
func Main(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(args) > 0 {
		switch args[0] {
		case "seed":
			return mainSeed(ctx, args[1:], stdout, stderr)
		case "scenario":
			_, _ = stdout.Write(DefaultScenarioJSON())
			return 0
		}
	}
	return mainRun(ctx, args, stdout, stderr)
}

// startCPUProfile profiles this process into file until stop.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("-cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func mainRun(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usageRun)
		fs.PrintDefaults()
	}
	var (
		cfg        Config
		targets    = fs.String("target", "", "comma-separated base URLs of the ad server nodes (round-robin)")
		scenario   = fs.String("scenario", "", "traffic scenario JSON file (default: built-in, see `loadtest scenario`)")
		placements = fs.Int("placements", 0, "replace the scenario's placements with N generated ones (must match `loadtest seed -placements`)")
		jsonOut    = fs.String("json", "", "write the result as JSON to this file")
		chart      = fs.String("chart", "", "write a latency/throughput chart: .html (inline SVG) or .svg")
		seed       = fs.Uint64("seed", 1, "random seed of the traffic")
		cpuProfile = fs.String("cpuprofile", "", "write the harness's own CPU profile to this file (to check its cost per request)")
	)
	fs.Float64Var(&cfg.Rate, "rate", 100, "open model arrival rate per second; 0 = closed model at full speed")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "measured run length")
	fs.StringVar(&cfg.Endpoint, "endpoint", "ad", "ad (POST /v1/ad) or openrtb (POST /openrtb2/bid)")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "first run the same schedule against an empty fasthttp server on 127.0.0.1:0 and report the ratio")
	fs.IntVar(&cfg.Concurrency, "concurrency", 64, "workers: closed-model parallelism, open-model bound on requests in flight")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "raise the rate linearly from 0 over this time (closed model: stagger worker starts)")
	fs.DurationVar(&cfg.Warmup, "warmup", 0, "run this long before measuring, results discarded")
	fs.BoolVar(&cfg.DayShape, "day-shape", false, "modulate the open-model rate by the scenario's day shape compressed into -duration (rate = mean)")
	fs.Float64Var(&cfg.ImpRate, "imp-rate", 0.9, "share of fills followed by an impression beacon")
	fs.Float64Var(&cfg.CTR, "ctr", 0.01, "share of impressions followed by a click (302 not followed)")
	fs.Float64Var(&cfg.ConvRate, "conv-rate", 0.05, "share of clicks followed by a conversion (the postback in the click redirect's landing URL, or the ad's conversion_url; skipped and counted when neither)")
	fs.DurationVar(&cfg.Timeout, "timeout", 2*time.Second, "per-request timeout")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "loadtest: unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return 2
	}
	for _, t := range strings.Split(*targets, ",") {
		if t = strings.TrimSpace(t); t != "" {
			cfg.Targets = append(cfg.Targets, t)
		}
	}
	if *chart != "" && chartFormat(*chart) == "" {
		fmt.Fprintf(stderr, "loadtest: -chart %q: use a .html or .svg file name\n", *chart)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 2
	}
	sc, err := LoadScenario(*scenario)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 1
	}
	if *placements > 0 {
		sc.SetPlacementCount(*placements)
	}
	cfg.Scenario = sc
	cfg.Seed = *seed
	if isTerminal(os.Stderr) {
		cfg.Progress = stderr
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			return 1
		}
		defer stop()
	}
	res, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "loadtest: %v\n", err)
		return 1
	}
	res.WriteSummary(stdout)
	code := 0
	if *jsonOut != "" {
		if err := res.WriteJSONFile(*jsonOut); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			code = 1
		}
	}
	if *chart != "" {
		if err := WriteChartFile(*chart, res); err != nil {
			fmt.Fprintf(stderr, "loadtest: %v\n", err)
			code = 1
		}
	}
	if res.Requests > 0 && res.Errors == res.Requests {
		fmt.Fprintf(stderr, "loadtest: every request failed (last error: %s)\n", res.LastError)
		code = 1
	}
	return code
}
