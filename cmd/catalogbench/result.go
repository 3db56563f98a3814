package main

import (
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Result is what a run measured.
type Result struct {
	Config       Config
	Dir          string
	NodeA, NodeB string // command lines
	EmptyReady   time.Duration
	Seed         SeedStats
	Bootstrap    []time.Duration
	Propagation  *PropStats
	Restart      time.Duration
}

func (r *Result) print(w io.Writer) {
	cfg := r.Config
	fmt.Fprintf(w, "\nnode A: %s\n", r.NodeA)
	if r.NodeB != "" {
		fmt.Fprintf(w, "node B: %s\n", r.NodeB)
	}
	if r.EmptyReady > 0 {
		fmt.Fprintf(w, "fresh node on an empty catalog, start to /readyz 200: %v\n", ms(r.EmptyReady))
	}
	if s := r.Seed; s.Write > 0 {
		fmt.Fprintf(w, "seed: %d advertisers, %d placements, %d campaigns (%.1f MB of JSON) written to Kafka in %v (%.0f campaigns/s); node A applied them %v after the write\n",
			s.Advertisers, s.Placements, s.Campaigns, float64(s.Bytes)/1e6, ms(s.Write), float64(s.Campaigns)/s.Write.Seconds(), ms(s.AppliedOnA))
	}
	if len(r.Bootstrap) > 0 {
		bs := slices.Clone(r.Bootstrap)
		slices.Sort(bs)
		fmt.Fprintf(w, "(a) bootstrap of %d campaigns, fresh node B (-kafka A) start to /readyz 200: median %v, min %v, max %v over %d runs %v\n",
			cfg.Campaigns, ms(bs[len(bs)/2]), ms(bs[0]), ms(bs[len(bs)-1]), len(bs), msList(r.Bootstrap))
	}
	if r.Restart > 0 {
		fmt.Fprintf(w, "    restart of node A on its data dir (embedded broker reloads %d campaigns from disk, then bootstrap) to /readyz 200: %v\n",
			cfg.Campaigns, ms(r.Restart))
	}
	if p := r.Propagation; p != nil && p.Updates > 0 {
		fmt.Fprintf(w, "(b) PUT on node A → visible on node B, %d sequential updates of random campaigns among %d (random pause 0..%v between updates, B polled every %v):\n",
			p.Updates, cfg.Campaigns, cfg.Gap, cfg.Poll)
		fmt.Fprintf(w, "    A→B:             %s\n", quantiles(p.Visible))
		fmt.Fprintf(w, "    PUT answered (applied on A): %s\n", quantiles(p.Put))
		for _, s := range p.Slow {
			fmt.Fprintf(w, "    slow: %s\n", s)
		}
	}
}

func quantiles(h *hdrhistogram.Histogram) string {
	q := func(p float64) string { return fmt.Sprintf("%.1f ms", float64(h.ValueAtQuantile(p))/1e3) }
	return fmt.Sprintf("p50 %s, p90 %s, p99 %s, max %.1f ms, mean %.1f ms", q(50), q(90), q(99),
		float64(h.Max())/1e3, h.Mean()/1e3)
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

func msList(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = ms(d)
	}
	return out
}
