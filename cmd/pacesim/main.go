// Command pacesim replays days of ad traffic in seconds against the pacing
// package, on an injected clock, with one or several nodes that share
// spend through the production spend sync (pacing/spendsync) over an
// in-process Kafka-protocol broker (kfake).
//
// Traffic follows a real diurnal curve (pacing.ReferenceTraffic, 8.6x peak
// to trough) with Poisson arrivals; a catalog of campaigns (even and asap,
// CPM and CPC with random clicks, tight, loose and traffic-starved budgets,
// five time zones, some frequency caps, some placement targeting) competes
// in a second-price auction. A warm-up day before the first reported day
// teaches the nodes the traffic profile and measures what each campaign
// could win, which sets its budget.
//
// For every campaign and local day it prints the budget, the spend, the
// overspend and utilisation as percentages of the daily budget and, for
// even campaigns, the hourly RMSE against the plan as a percentage of the
// mean hourly plan; then whether the targets are met.
//
//	pacesim -nodes 3 -days 1 -json out.json -svg out.svg
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"time"

	"github.com/adserver/adserver/pacing"
)

func main() {
	cfg := Config{}
	start := flag.String("start", "2026-11-01", "first reported local day (2026-11-01 is a 25-hour day in New York)")
	flag.IntVar(&cfg.Nodes, "nodes", 1, "serving nodes sharing the budgets")
	flag.IntVar(&cfg.Days, "days", 1, "local days to report")
	flag.IntVar(&cfg.Campaigns, "campaigns", 24, "campaigns in the catalog")
	flag.Float64Var(&cfg.RPS, "rps", 100, "mean ad requests per second over the day, all nodes")
	flag.Uint64Var(&cfg.Seed, "seed", 1, "random seed")
	flag.DurationVar(&cfg.SyncEvery, "sync-every", time.Second, "simulated time between spend flushes")
	flag.BoolVar(&cfg.Stagger, "stagger", false, "nodes flush one at a time, at (i+1)/nodes of each -sync-every, as separate processes do (default: all at its end)")
	flag.BoolVar(&cfg.Kafka, "kafka", true, "share spend over the Kafka sync (required with -nodes > 1)")
	flag.IntVar(&cfg.Partitions, "partitions", 1, "partitions of the spend topic")
	flag.BoolVar(&cfg.RouteUser, "route-user", false, "route requests and beacons by user id (default: at random)")
	jsonFile := flag.String("json", "", "write the report as JSON to this file")
	svgFile := flag.String("svg", "", "write a chart of planned vs actual spend to this SVG file")
	quiet := flag.Bool("q", false, "no progress lines")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fail(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			fail(err)
		}
		defer pprof.StopCPUProfile()
	}
	d, err := pacing.ParseDay(*start)
	if err != nil {
		fail(err)
	}
	cfg.Start = d
	if !*quiet {
		began := time.Now()
		cfg.Progress = func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "pacesim: %5.1fs: "+format+"\n", append([]any{time.Since(began).Seconds()}, args...)...)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	rep, err := Run(ctx, cfg)
	if err != nil {
		fail(err)
	}
	rep.printTable(os.Stdout)
	if *jsonFile != "" {
		if err := writeJSON(*jsonFile, rep); err != nil {
			fail(err)
		}
	}
	if *svgFile != "" {
		f, err := os.Create(*svgFile)
		if err == nil {
			err = rep.writeSVG(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}
		if err != nil {
			fail(fmt.Errorf("cannot write %s: %w", *svgFile, err))
		}
	}
	if !rep.Summary.OverspendOK || !rep.Summary.UtilisationOK || !rep.Summary.RMSEOK {
		pprof.StopCPUProfile()
		os.Exit(3)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "pacesim:", err)
	os.Exit(2)
}
