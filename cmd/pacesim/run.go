package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/pacing"
)

// controlEvery is how often, in simulated time, each node runs Tick (the
// pacer's default ControlInterval).
const controlEvery = 5

// run simulates [from, to) second by second: the beacons due and the new
// requests of each second, in time order; every controlEvery seconds a Tick
// on every node; every SyncEvery a spend flush by every node, after which
// every node applies all records before simulated time moves on. The
// flushes happen together at the end of each SyncEvery, or with Stagger
// one node at a time, node i at (i+1)/Nodes of each SyncEvery, as separate
// processes flush on their own tickers: then each node publishes while the
// others keep serving on what they last heard.
func (e *engine) run(ctx context.Context, from, to time.Time) error {
	var offsets []int64
	next := make([]time.Time, len(e.nodes)) // each node's next flush
	for i := range next {
		next[i] = from.Add(e.cfg.SyncEvery - time.Nanosecond)
		if e.cfg.Stagger {
			next[i] = from.Add(e.cfg.SyncEvery*time.Duration(i+1)/time.Duration(len(e.nodes)) - time.Nanosecond)
		}
	}
	var due []flush
	nextReport := from.Add(6 * time.Hour)
	for t := from; t.Before(to); t = t.Add(time.Second) {
		if err := ctx.Err(); err != nil {
			return err
		}
		e.clock.Set(t)
		sec := t.Unix()
		slot := &e.queue[sec%queueSeconds]
		evs := *slot
		slices.SortFunc(evs, func(a, b event) int { return a.at.Compare(b.at) })
		reqs := e.requestsIn(t)
		due = e.flushesIn(t, next, due[:0])
		// flushUntil runs the flushes due at or before x.
		flushUntil := func(x time.Time) error {
			for len(due) > 0 && !due[0].at.After(x) {
				k := 1
				for k < len(due) && due[k].at.Equal(due[0].at) {
					k++
				}
				if err := e.syncRound(ctx, due[:k], &offsets); err != nil {
					return err
				}
				due = due[k:]
			}
			return nil
		}
		i := 0
		for _, r := range reqs {
			for ; i < len(evs) && !evs[i].at.After(r.at); i++ {
				if err := flushUntil(evs[i].at); err != nil {
					return err
				}
				e.deliver(&evs[i])
			}
			if err := flushUntil(r.at); err != nil {
				return err
			}
			e.decide(r)
		}
		for ; i < len(evs); i++ {
			if err := flushUntil(evs[i].at); err != nil {
				return err
			}
			e.deliver(&evs[i])
		}
		*slot = evs[:0]
		elapsed := sec - from.Unix()
		if elapsed%controlEvery == 0 {
			for _, n := range e.nodes {
				n.p.FreqCaps().Wait() // apply new cap entries (the cache does so asynchronously)
				n.p.Tick(t)
			}
			e.capturePlans()
		}
		if err := flushUntil(t.Add(time.Second)); err != nil {
			return err
		}
		if e.cluster != nil && elapsed%3600 == 3599 {
			e.cluster.Compact()
		}
		if !t.Before(nextReport) {
			e.progress("%s simulated, %d requests, %d wins", t.Sub(from), e.stats.Requests, e.stats.Wins)
			nextReport = nextReport.Add(6 * time.Hour)
		}
	}
	return nil
}

// flush is one node's spend flush due at a time.
type flush struct {
	at   time.Time
	node int
}

// flushesIn appends to dst the flushes due in the second starting at t, in
// time order, and moves next past them.
func (e *engine) flushesIn(t time.Time, next []time.Time, dst []flush) []flush {
	if !e.cfg.Kafka {
		return dst
	}
	end := t.Add(time.Second)
	for i := range next {
		for next[i].Before(end) {
			dst = append(dst, flush{next[i], i})
			next[i] = next[i].Add(e.cfg.SyncEvery)
		}
	}
	slices.SortFunc(dst, func(a, b flush) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.node - b.node
	})
	return dst
}

// syncRound has the nodes of fs publish their spend (concurrently, as
// separate processes would) at their time, then waits until every node has
// applied every record published.
func (e *engine) syncRound(ctx context.Context, fs []flush, offsets *[]int64) error {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	e.clock.Set(fs[0].at)
	errs := make([]error, len(fs))
	var wg sync.WaitGroup
	for k, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[k] = e.nodes[f.node].s.Flush(sctx)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("spend flush: %w", err)
		}
	}
	*offsets = (*offsets)[:0]
	for _, n := range e.nodes {
		var own [64]int64
		for i, o := range n.s.ProducedOffsets(own[:0]) {
			if i >= len(*offsets) {
				*offsets = append(*offsets, o)
			}
			(*offsets)[i] = max((*offsets)[i], o)
		}
	}
	for _, n := range e.nodes {
		if err := n.s.WaitApplied(sctx, *offsets); err != nil {
			return fmt.Errorf("spend apply: %w", err)
		}
	}
	e.stats.SyncRounds++
	return nil
}

// decide runs one ad request through a node: Observe, the eligibility
// checks of every targeted campaign, the auction, and, for the winner, the
// reservation, the cap count and the beacons to come.
func (e *engine) decide(r request) {
	e.stats.Requests++
	ni := e.route(r.user)
	p := e.nodes[ni].p
	p.Observe(placements[r.placement], r.at)
	user := e.users[r.user]
	floor := int64(placementFloor[r.placement])
	e.cands = e.cands[:0]
	for _, i := range e.w.eligible[r.placement][r.country] {
		sc := e.w.campaigns[i]
		b := e.w.candidate(i)
		if b.ecpm < floor {
			continue
		}
		if ok, reason := p.Allow(sc.c, r.at); !ok {
			switch reason {
			case pacing.ReasonThrottled:
				e.stats.Throttled++
			default:
				e.stats.Exhausted++
			}
			continue
		}
		if !p.CapAllows(user, sc.c, r.at) {
			e.stats.Capped++
			continue
		}
		e.cands = append(e.cands, b)
	}
	sortBids(e.cands)
	for j := range e.cands {
		sc := e.w.campaigns[e.cands[j].idx]
		price := secondPrice(e.cands, j, floor)
		if _, ok := p.Reserve(sc.c, campaign.Micros(e.expectedCost(sc, &e.cands[j], price)), r.at); !ok {
			e.stats.ReserveFailed++
			continue
		}
		p.CapRecord(user, sc.c, r.at)
		e.stats.Wins++
		if e.rng.Float64() >= renderRate {
			return // never rendered: the reservation expires
		}
		shown := r.at.Add(time.Duration(e.rng.Int64N(int64(maxBeaconLag))))
		if sc.c.Bid.Model == campaign.BidCPM {
			e.schedule(event{at: shown, node: e.route(r.user), camp: e.cands[j].idx, cost: price / 1000})
			return
		}
		if e.rng.Float64() < sc.ctr*e.cands[j].m {
			lag := min(time.Duration(e.rng.ExpFloat64()*float64(clickLagMean)), maxClickLag)
			e.schedule(event{at: shown.Add(lag), node: e.route(r.user), camp: e.cands[j].idx, cost: int64(sc.c.Bid.Amount)})
		}
		return
	}
}

func (e *engine) schedule(ev event) {
	s := &e.queue[ev.at.Unix()%queueSeconds]
	*s = append(*s, ev)
}

// deliver charges a beacon at its node and books it in the ledger.
func (e *engine) deliver(ev *event) {
	sc := e.w.campaigns[ev.camp]
	e.nodes[ev.node].p.Charge(sc.c.ID, campaign.Micros(ev.cost), ev.at)
	sc.spend[ev.at.Unix()/900] += ev.cost
	sc.charges[ev.at.Unix()/900]++
	e.stats.Charges++
}

// capturePlans keeps each even campaign's plan for each day, as node 1
// built it.
func (e *engine) capturePlans() {
	for _, sc := range e.w.campaigns {
		if sc.c.Pacing != campaign.PacingEven {
			continue
		}
		if pl, ok := e.nodes[0].p.Plan(sc.c.ID); ok && sc.plans[pl.Day] == nil {
			sc.plans[pl.Day] = pl
		}
	}
}
