package pacing

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Reasons Allow gives for refusing a campaign. They are stable strings, fit
// for metric labels and decision logs.
const (
	// ReasonNotReady: the node is still rebuilding today's spend from the
	// spend topic after a start.
	ReasonNotReady = "not_ready"
	// ReasonBudgetExhausted: spend plus reservations leave no room under
	// the daily budget (or under this node's share of what remains).
	ReasonBudgetExhausted = "budget_exhausted"
	// ReasonTotalBudgetExhausted: the same for the lifetime budget.
	ReasonTotalBudgetExhausted = "total_budget_exhausted"
	// ReasonThrottled: an even campaign's pacing skipped this request.
	ReasonThrottled = "throttled"
	// ReasonSharePending: this node may not take its share of the budget
	// yet: its spend sync has not read back its first heartbeat (in auto
	// mode) or its view of the others is stale; it may again after a
	// flush that is read back.
	ReasonSharePending = "share_pending"
)

// Pacer owns the budgets, pacing and frequency caps of the campaigns one
// node serves. Create it with New; all methods are safe for concurrent use.
type Pacer struct {
	cfg      Config
	node     string
	clock    Clock
	resWidth int64 // reservation slot width, nanoseconds
	expiry   int64 // ReservationExpiry, nanoseconds

	campaigns readMostly[*campState]
	profiles  profiles
	caps      *FreqCaps

	ready      atomic.Bool
	rebuilding atomic.Bool
	shared     atomic.Bool  // a spend sync is attached: budgets are shared by ceilings
	nodes      atomic.Int64 // share denominator, >= 1
	seq        atomic.Uint64
	hbSeq      atomic.Uint64 // seq of the heartbeat of the last flush published, 0 before
	hbAt       atomic.Int64  // its record time, unix nanos
	echoSeq    atomic.Uint64 // the newest seq of this node's records read back
	ownAt      atomic.Int64  // newest own record time replayed while rebuilding

	peersMu      sync.Mutex
	peers        map[string]int64 // other node id -> newest record time, unix nanos
	lastEcho     int64            // when this node last read its own record back
	healthySince int64            // since when it has done so without a gap over NodeTTL
	synced       bool             // a spend sync is attached

	tickMu sync.Mutex // serializes Tick
}

// New returns a Pacer. It is ready at once unless a spend sync attaches to
// it (see BeginRebuild). Close releases its frequency-cap cache.
func New(cfg Config) (*Pacer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	caps, err := NewFreqCaps(cfg.freqCapMaxCost())
	if err != nil {
		return nil, fmt.Errorf("pacing: cannot create the frequency-cap cache: %w", err)
	}
	p := &Pacer{
		cfg:      cfg,
		node:     cfg.nodeID(),
		clock:    cfg.clock(),
		resWidth: int64(cfg.reservationExpiry()) / slotsPerExpiry,
		expiry:   int64(cfg.reservationExpiry()),
		caps:     caps,
		peers:    make(map[string]int64),
	}
	p.nodes.Store(1)
	if cfg.Nodes > 0 {
		p.nodes.Store(int64(cfg.Nodes))
	}
	p.ready.Store(true)
	return p, nil
}

// Close stops the frequency-cap cache's goroutines. The Pacer must not be
// used afterwards.
func (p *Pacer) Close() { p.caps.Close() }

// NodeID returns the node's id on the spend topic.
func (p *Pacer) NodeID() string { return p.node }

// Ready reports whether the pacer may admit campaigns: false while a spend
// sync rebuilds today's spend after a start.
func (p *Pacer) Ready() bool { return p.ready.Load() }

// Run calls Tick every ControlInterval of wall time until ctx is done, and
// then returns nil.
func (p *Pacer) Run(ctx context.Context) error {
	t := time.NewTicker(p.cfg.controlInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			p.Tick(p.clock.Now())
		}
	}
}

// Update tells the pacer about a new or changed campaign. Optional: Allow
// and Reserve pick up the campaign they are given, but a campaign seen
// here first charges beacons against its own time zone's day even before
// its first decision on this node.
func (p *Pacer) Update(c *campaign.Campaign) { p.state(c) }

// Forget drops campaign id's state on this node: call it when a campaign is
// deleted, so that the state of campaigns long gone does not accumulate.
// Spend records of it that still arrive create a small stub again.
func (p *Pacer) Forget(id string) { p.campaigns.delete(id) }

// Observe counts one ad request for placementID at t, to learn the daily
// traffic profile that shapes even campaigns' plans. Call it once per ad
// request. Lock-free and allocation-free after a placement's first request.
func (p *Pacer) Observe(placementID string, t time.Time) { p.profiles.observe(placementID, t) }

// CapAllows reports whether c's frequency cap lets userID see c at now.
// See FreqCaps.Allows.
func (p *Pacer) CapAllows(userID string, c *campaign.Campaign, now time.Time) bool {
	return p.caps.Allows(userID, c, now)
}

// CapRecord counts one exposure of userID to c at now. Call it when c wins
// a slot (at decision time). See FreqCaps.Record.
func (p *Pacer) CapRecord(userID string, c *campaign.Campaign, now time.Time) {
	p.caps.Record(userID, c, now)
}

// FreqCaps returns the pacer's frequency-cap store.
func (p *Pacer) FreqCaps() *FreqCaps { return p.caps }

// Tick runs the periodic work at now: it rolls days, expires reservations,
// ages other nodes' reservations, folds the traffic profile at UTC
// midnight, recounts live nodes and updates the pass rate of every even
// campaign. Run calls it every ControlInterval; a simulation calls it on
// its own clock.
func (p *Pacer) Tick(now time.Time) {
	p.tickMu.Lock()
	defer p.tickMu.Unlock()
	p.campaigns.merge()
	p.profiles.byPlacement.merge()
	p.profiles.fold(now)
	p.recountNodes(now, false)
	p.campaigns.each(func(_ string, s *campState) { p.tickCampaign(s, now) })
}

// state returns c's state, creating it on first sight, and records c as the
// campaign's current version.
func (p *Pacer) state(c *campaign.Campaign) *campState {
	s := p.campaigns.getOrCreate(c.ID, p.newState)
	if s.conf.Load() != c {
		s.conf.Store(c)
	}
	return s
}

// stateByID returns the state of campaign id, creating a stub for a
// campaign not seen yet (a charge or a remote record arriving first).
func (p *Pacer) stateByID(id string) *campState {
	s := p.campaigns.getOrCreate(id, p.newState)
	if s.conf.Load() == nil && p.cfg.Lookup != nil {
		if c := p.cfg.Lookup(id); c != nil && c.ID == id {
			s.conf.CompareAndSwap(nil, c)
		}
	}
	return s
}

func (p *Pacer) newState(id string) *campState {
	s := &campState{id: id, remotes: make(map[string]*remoteNode)}
	s.totCeil.Store(noCeiling)
	s.pubTotCeil.Store(noCeiling)
	s.rng.Store(streamSeed(p.cfg.Seed^streamSeed(0, p.node), id))
	s.pass.Store(passThreshold(p.cfg.initialPassRate()))
	return s
}

// recountNodes sets the share denominator: Config.Nodes when set, else
// this node plus the peers heard from within NodeTTL. When onlyUp is set
// (a record from a new peer) the count may only grow. The count does not
// shrink while this node's own consumer is stalled (it has not read its own
// records back within NodeTTL): then silence proves nothing about peers.
func (p *Pacer) recountNodes(now time.Time, onlyUp bool) {
	if p.cfg.Nodes > 0 {
		return
	}
	ttl := int64(p.cfg.nodeTTL())
	t := now.UnixNano()
	p.peersMu.Lock()
	defer p.peersMu.Unlock()
	live := int64(1)
	for id, at := range p.peers {
		switch {
		case t-at <= ttl:
			live++
		case t-at > int64(24*time.Hour):
			delete(p.peers, id)
		}
	}
	cur := p.nodes.Load()
	if live < cur && (onlyUp || (p.synced && t-p.lastEcho > ttl)) {
		return
	}
	p.nodes.Store(live)
}

// Nodes returns the number of nodes this node currently assumes share each
// budget.
func (p *Pacer) Nodes() int { return int(p.nodes.Load()) }
