package pacing

import (
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/campaign"
)

// campState is one campaign's pacing state on this node. The decision and
// beacon paths touch only its atomics; mu guards the rest, which only the
// spend sync and Tick use.
type campState struct {
	id   string
	conf atomic.Pointer[campaign.Campaign] // newest version seen; nil for a stub
	cur  atomic.Pointer[dayState]          // the current local day; nil before first use

	total atomic.Int64 // this node's lifetime spend, micros
	res   reservations
	pass  atomic.Uint64 // pass threshold (see passThreshold)
	rng   atomic.Uint64 // random stream state

	view atomic.Pointer[remoteView] // other nodes' spend, rebuilt under mu
	// totCeil is this node's ceiling under the lifetime budget (noCeiling
	// until taken); hungry has a bit per budget that refused this node
	// something since the last flush (see share.go).
	totCeil atomic.Int64
	hungry  atomic.Uint32
	// What the other nodes last heard from this node (set by Published).
	pubReserved atomic.Int64
	pubTotal    atomic.Int64
	pubTotCeil  atomic.Int64
	pubAt       atomic.Int64 // unix nanos of the last published record
	own         atomic.Pointer[ownRecord]

	mu      sync.Mutex
	remotes map[string]*remoteNode // other nodes' newest records, by node id
	ctl     controller
}

// dayState is one campaign's spend on this node during one local day.
type dayState struct {
	day        Day
	loc        *time.Location
	start, end int64 // unix nanos, [start, end)

	spent    atomic.Int64 // this node's spend on the day, micros
	pubSpent atomic.Int64 // spent as last published
	ceil     atomic.Int64 // this node's ceiling under the daily budget, or noCeiling
	pubCeil  atomic.Int64 // ceil as last published
	prev     atomic.Pointer[dayState]
	plan     atomic.Pointer[plan] // set by Tick for even campaigns
}

const noLimit = math.MaxInt64

// Allow reports whether c may take part in a decision at now, or why not.
// It refuses a campaign whose spend plus reservations leave no room under
// its daily or total budget (a hard stop), and skips an even campaign's
// requests with probability 1-pass. It neither allocates nor locks once the
// campaign is known.
func (p *Pacer) Allow(c *campaign.Campaign, now time.Time) (ok bool, reason string) {
	if !p.ready.Load() {
		return false, ReasonNotReady
	}
	s := p.state(c)
	ds := p.current(s, c.Location(), now)
	p.firstShares(s, ds, int64(c.Budget.Daily), int64(c.Budget.Total), now.UnixNano())
	daily, total := p.headroom(s, ds, c, s.res.total.Load())
	if daily <= 0 {
		s.markHungry(hungryDaily)
		if p.shared.Load() && ds.ceil.Load() == noCeiling {
			return false, ReasonSharePending
		}
		return false, ReasonBudgetExhausted
	}
	if total <= 0 {
		s.markHungry(hungryTotal)
		if p.shared.Load() && s.totCeil.Load() == noCeiling {
			return false, ReasonSharePending
		}
		return false, ReasonTotalBudgetExhausted
	}
	if c.Pacing != campaign.PacingASAP && mix64(s.rng.Add(golden))>>11 >= s.pass.Load() {
		return false, ReasonThrottled
	}
	return true, ""
}

// Reserve holds cost, the expected cost of a decision c just won (CPM: the
// clearing price / 1000; CPC: the bid times the predicted click rate),
// against c's budgets. It fails, holding nothing, when the cost does not fit
// under the daily or total budget, so the caller can move to the next
// candidate. The reservation is released by the charge of the beacon, by
// Cancel, or after ReservationExpiry.
func (p *Pacer) Reserve(c *campaign.Campaign, cost campaign.Micros, now time.Time) (Reservation, bool) {
	if !p.ready.Load() || cost < 0 {
		return Reservation{}, false
	}
	s := p.state(c)
	ds := p.current(s, c.Location(), now)
	p.firstShares(s, ds, int64(c.Budget.Daily), int64(c.Budget.Total), now.UnixNano())
	for {
		r := s.res.total.Load()
		daily, total := p.headroom(s, ds, c, r)
		if daily < int64(cost) || total < int64(cost) {
			if daily < int64(cost) {
				s.markHungry(hungryDaily)
			}
			if total < int64(cost) {
				s.markHungry(hungryTotal)
			}
			return Reservation{}, false
		}
		if s.res.total.CompareAndSwap(r, r+int64(cost)) {
			break
		}
	}
	slot := s.res.add(slotOf(now, p.resWidth), int64(cost))
	return Reservation{s: s, slot: slot, Cost: int64(cost)}, true
}

// Cancel releases a reservation whose decision was not served (the slot
// went to another bidder, the response was dropped). Cancelling twice, or
// after the charge or the expiry, releases nothing more than is left.
func (p *Pacer) Cancel(r Reservation) {
	if r.s == nil || r.Cost <= 0 || r.slot <= r.s.res.expired.Load() {
		return
	}
	r.s.res.take(r.slot, r.Cost)
}

// Charge records cost spent by campaignID at time at: an impression's
// clearing price / 1000 for CPM, the click price for CPC. The events
// package calls it for every valid, de-duplicated beacon. The spend counts
// against the local day containing at (the previous day for a beacon that
// arrives just after midnight) and against the lifetime budget, and frees
// as much of the campaign's oldest reservations on this node. Charges are
// never refused: the money is spent. Non-positive costs are ignored.
func (p *Pacer) Charge(campaignID string, cost campaign.Micros, at time.Time) {
	if cost <= 0 {
		return
	}
	if at.IsZero() {
		at = p.clock.Now()
	}
	s := p.stateByID(campaignID)
	loc := time.UTC
	if c := s.conf.Load(); c != nil {
		loc = c.Location()
	}
	if ds := p.dayForCharge(s, loc, at); ds != nil {
		ds.spent.Add(int64(cost))
	}
	s.total.Add(int64(cost))
	s.res.release(int64(cost), max(slotOf(at, p.resWidth), s.res.expired.Load()+slotsPerExpiry+1))
}

// headroom returns how much more this node may commit to c under the daily
// and the total budget (noLimit for a budget not set), given its own
// outstanding reservations res: what its ceiling leaves above its usage
// (see limit and the package doc's share rule).
func (p *Pacer) headroom(s *campState, ds *dayState, c *campaign.Campaign, res int64) (daily, total int64) {
	shared := p.shared.Load()
	n := p.nodes.Load()
	v := s.view.Load()
	daily, total = noLimit, noLimit
	if b := int64(c.Budget.Daily); b > 0 {
		daily = limit(shared, b, ds.ceil.Load(), v.heldDay(ds.day), n) - (ds.spent.Load() + res)
	}
	if b := int64(c.Budget.Total); b > 0 {
		total = limit(shared, b, s.totCeil.Load(), v.totalHeldSum(), n) - (s.total.Load() + res)
	}
	return daily, total
}

// current returns the campaign's day state for a decision at now, rolling to
// a new day at local midnight. It never rolls backwards.
func (p *Pacer) current(s *campState, loc *time.Location, now time.Time) *dayState {
	ds := s.cur.Load()
	t := now.UnixNano()
	if ds != nil && ds.loc == loc && t >= ds.start && t < ds.end {
		return ds
	}
	return p.roll(s, loc, now)
}

// dayForCharge returns the day state a charge at `at` counts against: the
// current day, the previous one for a late beacon, or nil when older.
func (p *Pacer) dayForCharge(s *campState, loc *time.Location, at time.Time) *dayState {
	ds := s.cur.Load()
	t := at.UnixNano()
	if ds == nil || ds.loc != loc || t >= ds.end {
		return p.roll(s, loc, at)
	}
	if t >= ds.start {
		return ds
	}
	if prev := ds.prev.Load(); prev != nil && t >= prev.start && t < prev.end {
		return prev
	}
	return nil
}

// roll installs the day state for the day containing t (once: concurrent
// callers get the same state). The previous day stays reachable for late
// charges; the one before is dropped. A change of time zone keeps the
// counters when the date is unchanged. It takes the campaign's mutex (once
// a day) so that a day state starts from this node's restored spend
// without racing restoreOwn.
func (p *Pacer) roll(s *campState, loc *time.Location, t time.Time) *dayState {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.cur.Load()
	d := DayOf(t, loc)
	if old != nil && old.day > d {
		if old.loc == loc {
			return old // t is before the current day: never roll back
		}
		d = old.day // nor through a change of time zone
	}
	if old != nil && old.day == d && old.loc == loc {
		return old
	}
	start, end := d.Bounds(loc)
	nd := &dayState{day: d, loc: loc, start: start.UnixNano(), end: end.UnixNano()}
	nd.ceil.Store(noCeiling)
	nd.pubCeil.Store(noCeiling)
	switch {
	case old != nil && old.day == d:
		nd.spent.Store(old.spent.Load())
		nd.pubSpent.Store(old.pubSpent.Load())
		nd.ceil.Store(old.ceil.Load())
		nd.pubCeil.Store(old.pubCeil.Load())
		nd.prev.Store(old.prev.Load())
		nd.plan.Store(old.plan.Load())
	default:
		if old != nil {
			nd.prev.Store(old)
			old.prev.Store(nil) // keep one day of history
		}
		if own := s.own.Load(); own != nil && own.day == d {
			nd.spent.Store(own.daySpend)
			nd.pubSpent.Store(own.daySpend)
			nd.ceil.Store(own.dayCeil)
			nd.pubCeil.Store(own.dayCeil)
		}
	}
	s.cur.Store(nd)
	return nd
}

// tickCampaign is Tick's work for one campaign.
func (p *Pacer) tickCampaign(s *campState, now time.Time) {
	s.res.expire(slotOf(now, p.resWidth))
	c := s.conf.Load()
	var ds *dayState
	if c != nil {
		ds = p.current(s, c.Location(), now) // may roll: before taking mu
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p.refreshViewLocked(s, now.UnixNano())
	if c == nil {
		return
	}
	if c.Pacing == campaign.PacingASAP {
		s.pass.Store(passScale)
		return
	}
	v := s.view.Load()
	g := ds.spent.Load() + s.res.total.Load() + v.spend(ds.day) + v.reservedSum()
	pl := ds.plan.Load()
	if pl == nil || pl.conf != c {
		var notBefore time.Time
		if !s.ctl.started && g == 0 {
			// First seen in the middle of its day with nothing spent yet
			// (just created or resumed): plan the day from now rather than
			// rush to catch up with the hours it missed.
			notBefore = now
		}
		pl = p.makePlan(s, ds, c, notBefore)
		ds.plan.Store(pl)
	}
	pass := s.ctl.update(now.UnixNano(), g, pl, p.cfg.catchUp().Seconds(),
		p.cfg.initialPassRate(), p.cfg.minPassRate())
	s.pass.Store(passThreshold(pass))
}

func (p *Pacer) makePlan(s *campState, ds *dayState, c *campaign.Campaign, notBefore time.Time) *plan {
	shape, source := p.profiles.campaignShape(c)
	return buildPlan(c, ds.day, time.Unix(0, ds.start), time.Unix(0, ds.end), &shape, source,
		p.dayBudget(s, ds, c), p.cfg.finishEarly(), notBefore)
}

// dayBudget is what an even campaign plans to spend on day ds: the daily
// budget, capped by what the total budget leaves; with a total budget only,
// what is left spread evenly over the flight's remaining days.
func (p *Pacer) dayBudget(s *campState, ds *dayState, c *campaign.Campaign) int64 {
	b := int64(c.Budget.Daily)
	t := int64(c.Budget.Total)
	if t <= 0 {
		return b
	}
	v := s.view.Load()
	before := s.total.Load() + v.totalSum() - ds.spent.Load() - v.spend(ds.day)
	left := max(t-before, 0)
	if b > 0 {
		return min(b, left)
	}
	days := int64(1)
	if !c.End.IsZero() {
		last := DayOf(c.End.Add(-time.Nanosecond), ds.loc)
		days = max(daysBetween(ds.day, last)+1, 1)
	}
	return left / days
}

func daysBetween(a, b Day) int64 {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	ta := time.Date(ay, am, ad, 0, 0, 0, 0, time.UTC)
	tb := time.Date(by, bm, bd, 0, 0, 0, 0, time.UTC)
	return int64(tb.Sub(ta) / (24 * time.Hour))
}
