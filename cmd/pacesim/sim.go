package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/pacing"
	"github.com/adserver/adserver/pacing/spendsync"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Config is one simulation.
type Config struct {
	Nodes      int           // serving nodes (1..16)
	Days       int           // local days reported per campaign
	Campaigns  int           // catalog size
	RPS        float64       // mean ad requests per second, all nodes
	Seed       uint64        // everything random derives from it
	Start      pacing.Day    // the first reported local day
	SyncEvery  time.Duration // simulated time between spend flushes (whole seconds)
	Stagger    bool          // node i flushes at (i+1)/Nodes of each SyncEvery, not all at its end
	Kafka      bool          // share spend through spendsync over an in-process kfake broker
	Partitions int           // partitions of the spend topic
	RouteUser  bool          // route requests and beacons by user id instead of at random
	Progress   func(format string, args ...any)
}

func (c *Config) validate() error {
	switch {
	case c.Nodes < 1 || c.Nodes > 16:
		return fmt.Errorf("nodes %d: want 1..16", c.Nodes)
	case c.Days < 1 || c.Days > 31:
		return fmt.Errorf("days %d: want 1..31", c.Days)
	case c.Campaigns < 1 || c.Campaigns > 200:
		return fmt.Errorf("campaigns %d: want 1..200", c.Campaigns)
	case c.RPS <= 0 || c.RPS > 5000:
		return fmt.Errorf("rps %v: want (0, 5000]", c.RPS)
	case c.SyncEvery < time.Second || c.SyncEvery%time.Second != 0:
		return fmt.Errorf("sync-every %v: want whole seconds >= 1s", c.SyncEvery)
	case !c.Kafka && c.Nodes > 1:
		return fmt.Errorf("%d nodes need the Kafka sync to share spend", c.Nodes)
	case c.Partitions < 1:
		return fmt.Errorf("partitions %d: want >= 1", c.Partitions)
	}
	return nil
}

// simClock is the injected clock every node reads.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) Now() time.Time  { return time.Unix(0, c.ns.Load()) }
func (c *simClock) Set(t time.Time) { c.ns.Store(t.UnixNano()) }

type node struct {
	p    *pacing.Pacer
	s    *spendsync.Sync
	done chan struct{}
}

// event is a beacon due at a node: an impression (CPM) or a click (CPC).
type event struct {
	at   time.Time
	node int
	camp int
	cost int64
}

const queueSeconds = 64 // > maxBeaconLag + maxClickLag

type engine struct {
	cfg     Config
	w       *world
	clock   *simClock
	nodes   []*node
	cluster *kfake.Cluster
	cancel  context.CancelFunc // stops the syncs
	rng     *rand.Rand
	users   []string
	queue   [queueSeconds][]event
	cands   []bid
	reqs    []request
	stats   Stats
}

// Stats counts what happened in the measured run.
type Stats struct {
	Requests, Wins, Throttled, Exhausted, Capped, ReserveFailed, Charges int64
	SyncRounds                                                           int64
	Published, Applied, Malformed                                        int64
}

// Run simulates cfg and returns the report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	wall := time.Now()
	from, to := runWindow(cfg)
	w, err := newWorld(cfg.Seed, cfg.Campaigns, from.AddDate(0, 0, -7), to.AddDate(0, 0, 7))
	if err != nil {
		return nil, err
	}
	e := &engine{cfg: cfg, w: w, clock: new(simClock), rng: rand.New(rand.NewPCG(cfg.Seed, 0xe1e))}
	e.users = make([]string, userPool)
	for i := range e.users {
		e.users[i] = "u-" + strconv.Itoa(i)
	}
	// Warm-up: one full UTC day (and up to the run's start) of traffic
	// teaches the nodes the traffic profile and measures each campaign's
	// potential, which sets its budget.
	warm := time.Unix(from.Unix()/86400*86400, 0).Add(-24 * time.Hour)
	e.clock.Set(warm)
	defer e.stopNodes()
	if err := e.startNodes(ctx); err != nil {
		return nil, err
	}
	e.warmUp(warm, from)
	e.progress("warm-up done (%s of traffic); simulating %s .. %s on %d node(s)",
		from.Sub(warm), from.UTC().Format(time.RFC3339), to.UTC().Format(time.RFC3339), cfg.Nodes)
	if err := e.run(ctx, from, to.Add(time.Minute)); err != nil {
		return nil, err
	}
	for _, n := range e.nodes {
		if n.s != nil {
			st := n.s.Stats()
			e.stats.Published += st.Published
			e.stats.Applied += st.Applied
			e.stats.Malformed += st.Malformed
		}
	}
	return e.report(time.Since(wall)), nil
}

// runWindow covers every campaign time zone's reported days.
func runWindow(cfg Config) (from, to time.Time) {
	for i, tz := range timezones {
		loc, _ := time.LoadLocation(tz)
		s, _ := cfg.Start.Bounds(loc)
		last := cfg.Start
		for d := 1; d < cfg.Days; d++ {
			_, end := last.Bounds(loc)
			last = pacing.DayOf(end, loc)
		}
		_, en := last.Bounds(loc)
		if i == 0 || s.Before(from) {
			from = s
		}
		if i == 0 || en.After(to) {
			to = en
		}
	}
	return from, to
}

func (e *engine) progress(format string, args ...any) {
	if e.cfg.Progress != nil {
		e.cfg.Progress(format, args...)
	}
}

func (e *engine) startNodes(ctx context.Context) error {
	var brokers []string
	if e.cfg.Kafka {
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
		if err != nil {
			return fmt.Errorf("cannot start the embedded broker: %w", err)
		}
		e.cluster, brokers = cluster, cluster.ListenAddrs()
		// The spend topic is compacted, as nodes create it (see the
		// spendsync package doc), and run compacts it every simulated
		// hour, as the embedded broker does every hour: the broker then
		// holds about an hour of records, not the whole run's (a
		// week with 3 nodes publishes tens of millions).
		kc, err := bus.NewClient(strings.Join(brokers, ","))
		if err != nil {
			return err
		}
		if err := kc.EnsureTopics(ctx, bus.TopicSpec{Name: spendsync.DefaultTopic, Compacted: true, Partitions: e.cfg.Partitions}); err != nil {
			return err
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	e.cancel = cancel
	for i := 0; i < e.cfg.Nodes; i++ {
		id := fmt.Sprintf("node-%d", i+1)
		// NodeTTL must span several flushes (the default 10s does for the
		// production flush of 1s).
		p, err := pacing.New(pacing.Config{NodeID: id, Clock: e.clock, Seed: e.cfg.Seed*1000 + uint64(i),
			FreqCapMaxCost: 32 << 20, NodeTTL: max(10*time.Second, 4*e.cfg.SyncEvery)})
		if err != nil {
			return fmt.Errorf("BUG: pacing config: %w", err)
		}
		n := &node{p: p, done: make(chan struct{})}
		e.nodes = append(e.nodes, n)
		if !e.cfg.Kafka {
			close(n.done)
			continue
		}
		n.s, err = spendsync.New(spendsync.Config{Brokers: brokers, FlushInterval: -1, Clock: e.clock,
			MaxWait: 20 * time.Millisecond}, p)
		if err != nil {
			close(n.done)
			return err
		}
		go func() {
			defer close(n.done)
			n.s.Run(rctx)
		}()
		wctx, wcancel := context.WithTimeout(ctx, 30*time.Second)
		err = n.s.WaitReady(wctx)
		wcancel()
		if err != nil {
			return fmt.Errorf("node %s: spend sync not ready: %w", id, err)
		}
	}
	return nil
}

func (e *engine) stopNodes() {
	if e.cancel != nil {
		e.cancel()
	}
	for _, n := range e.nodes {
		<-n.done
		if n.s != nil {
			n.s.Close()
		}
		n.p.Close()
	}
	if e.cluster != nil {
		e.cluster.Close()
	}
}

// route picks the node that receives a request or a beacon of user u.
func (e *engine) route(u int) int {
	if e.cfg.RouteUser {
		return u % len(e.nodes)
	}
	return e.rng.IntN(len(e.nodes))
}

// requestsIn draws the requests of the second starting at t, sorted.
func (e *engine) requestsIn(t time.Time) []request {
	n := poisson(e.rng, e.w.rate(t, e.cfg.RPS))
	e.reqs = e.reqs[:0]
	for i := 0; i < n; i++ {
		e.reqs = append(e.reqs, e.w.newRequest(t.Add(time.Duration(e.rng.Int64N(int64(time.Second))))))
	}
	slices.SortFunc(e.reqs, func(a, b request) int { return a.at.Compare(b.at) })
	return e.reqs
}

// warmUp observes traffic on the nodes and measures, per campaign, the
// expected spend it would win per day if no campaign were paced, under its
// frequency cap (counted fleet-wide, per 24 hours).
func (e *engine) warmUp(from, to time.Time) {
	potential := make([]float64, len(e.w.campaigns))
	seen := make(map[[2]int]int)
	for t := from; t.Before(to); t = t.Add(time.Second) {
		if t.Sub(from)%(24*time.Hour) == 0 {
			clear(seen)
		}
		for _, r := range e.requestsIn(t) {
			e.nodes[e.route(r.user)].p.Observe(placements[r.placement], r.at)
			floor := int64(placementFloor[r.placement])
			e.cands = e.cands[:0]
			for _, i := range e.w.eligible[r.placement][r.country] {
				if fc := e.w.campaigns[i].c.FrequencyCap; fc != nil && seen[[2]int{r.user, i}] >= fc.Count {
					continue
				}
				if b := e.w.candidate(i); b.ecpm >= floor {
					e.cands = append(e.cands, b)
				}
			}
			if len(e.cands) == 0 {
				continue
			}
			sortBids(e.cands)
			win := e.cands[0].idx
			sc := e.w.campaigns[win]
			if sc.c.FrequencyCap != nil {
				seen[[2]int{r.user, win}]++
			}
			potential[win] += renderRate * float64(e.expectedCost(sc, &e.cands[0], secondPrice(e.cands, 0, floor)))
		}
	}
	days := to.Sub(from).Hours() / 24
	for i, sc := range e.w.campaigns {
		sc.potential = potential[i] / days
		for _, bc := range budgetClasses {
			if bc.name == sc.class {
				daily := campaign.Micros(sc.potential*bc.factor) / 10_000 * 10_000 // whole cents
				sc.c.Budget.Daily = max(daily, campaign.MicrosPerUnit/10)
			}
		}
	}
}

// expectedCost is what a win of sc at the CPM price costs in expectation:
// the price / 1000 for CPM, the bid times this request's click rate for CPC.
func (e *engine) expectedCost(sc *simCampaign, b *bid, price int64) int64 {
	if sc.c.Bid.Model == campaign.BidCPC {
		return int64(float64(sc.c.Bid.Amount) * sc.ctr * b.m)
	}
	return price / 1000
}
