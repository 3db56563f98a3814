package pacing

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Delta is one node's spend state for one campaign and local day: the unit
// the spend sync publishes and applies. The amounts are cumulative, so
// applying a record twice, or an older one after a newer one, changes
// nothing; Delta is informational.
type Delta struct {
	// Node is the publishing node's id.
	Node string
	// Campaign is the campaign id; empty for a heartbeat, which only says
	// that Node is alive.
	Campaign string
	// Day is the local day (in the campaign's time zone) DaySpend is for.
	Day Day
	// DaySpend is Node's spend on Campaign during Day.
	DaySpend campaign.Micros
	// Delta is DaySpend minus what Node last published for Day.
	Delta campaign.Micros
	// Total is Node's lifetime spend on Campaign.
	Total campaign.Micros
	// Reserved is Node's outstanding reservations on Campaign when it
	// built the record; others count it until ReservationExpiry after Time.
	Reserved campaign.Micros
	// DayCeiling is the most Node's usage (spend plus reservations) may
	// reach on Campaign during Day, and TotalCeiling the same for the
	// lifetime budget (the share rule: see the package doc). -1 when Node
	// holds none (no such budget, not taken yet, or a publisher that
	// predates ceilings): the others then count its usage only.
	DayCeiling, TotalCeiling campaign.Micros
	// Seq increases with every record Node publishes, across restarts.
	Seq uint64
	// Time is when Node built the record, by its clock.
	Time time.Time
}

// remoteNode is the newest record of one other node for one campaign.
type remoteNode struct {
	seq      uint64
	at       int64 // record time, unix nanos
	reserved int64
	total    int64
	totCeil  int64      // lifetime ceiling, or noCeiling
	days     [2]nodeDay // the node's two newest days
}

type nodeDay struct {
	day   Day
	spend int64
	ceil  int64 // the node's ceiling for the day, or noCeiling
}

// day returns the node's spend and ceiling on d (0 and noCeiling when it
// reported none).
func (rn *remoteNode) day(d Day) (spend, ceil int64) {
	for i := range rn.days {
		if rn.days[i].day == d {
			return rn.days[i].spend, rn.days[i].ceil
		}
	}
	return 0, noCeiling
}

type viewDay struct {
	day   Day
	spend int64 // the others' spend on day
	held  int64 // what the others hold on day: see remoteView
}

// remoteView sums the other nodes' records for one campaign. Immutable;
// rebuilt under campState.mu and read by the decision path. A nil view is
// empty.
//
// What a node holds under a budget is its usage as last heard (spend plus
// reservations younger than ReservationExpiry) or, while it may still be
// serving (see peerAliveLocked), its ceiling if larger: the share rule
// counts the others' ceilings, not only what they have spent.
type remoteView struct {
	days      [2]viewDay // the two newest days any node reported
	total     int64      // lifetime spend
	totalHeld int64      // held under the lifetime budget
	reserved  int64      // reservations younger than ReservationExpiry
}

func (v *remoteView) spend(d Day) int64 {
	if v == nil {
		return 0
	}
	for i := range v.days {
		if v.days[i].day == d {
			return v.days[i].spend
		}
	}
	return 0
}

// heldDay is what the other nodes hold under the daily budget of day d.
func (v *remoteView) heldDay(d Day) int64 {
	if v == nil {
		return 0
	}
	for i := range v.days {
		if v.days[i].day == d {
			return v.days[i].held
		}
	}
	return v.reserved // no node reported d: only reservations count
}

func (v *remoteView) totalHeldSum() int64 {
	if v == nil {
		return 0
	}
	return v.totalHeld
}

func (v *remoteView) totalSum() int64 {
	if v == nil {
		return 0
	}
	return v.total
}

func (v *remoteView) reservedSum() int64 {
	if v == nil {
		return 0
	}
	return v.reserved
}

// ownRecord is this node's newest record for a campaign, read back from the
// spend topic while rebuilding after a start.
type ownRecord struct {
	seq      uint64
	at       int64 // record time, unix nanos
	day      Day
	daySpend int64
	dayCeil  int64
	total    int64
	totCeil  int64
	reserved int64
}

// refreshViewLocked rebuilds s.view from s.remotes at now (unix nanos);
// s.mu is held.
func (p *Pacer) refreshViewLocked(s *campState, now int64) {
	var v remoteView
	for _, rn := range s.remotes {
		for _, d := range rn.days {
			if d.day == 0 || d.day == v.days[0].day || d.day == v.days[1].day {
				continue
			}
			switch {
			case d.day > v.days[0].day:
				v.days[1], v.days[0] = v.days[0], viewDay{day: d.day}
			case d.day > v.days[1].day:
				v.days[1] = viewDay{day: d.day}
			}
		}
	}
	p.peersMu.Lock()
	for id, rn := range s.remotes {
		var res int64
		if now-rn.at < p.expiry {
			res = rn.reserved
		}
		alive := p.peerAliveLocked(id, now)
		v.total += rn.total
		v.reserved += res
		v.totalHeld += held(rn.total+res, rn.totCeil, alive)
		for i := range v.days {
			if v.days[i].day == 0 {
				continue
			}
			spend, ceil := rn.day(v.days[i].day)
			v.days[i].spend += spend
			v.days[i].held += held(spend+res, ceil, alive)
		}
	}
	p.peersMu.Unlock()
	if old := s.view.Load(); old == nil || *old != v {
		s.view.Store(&v)
	}
}

// held is what a node with this usage and ceiling holds: its ceiling too
// while it may be serving.
func held(usage, ceil int64, alive bool) int64 {
	if alive {
		return max(usage, ceil)
	}
	return usage
}

func (rn *remoteNode) setDay(d Day, spend, ceil int64) {
	switch {
	case rn.days[0].day == d:
		rn.days[0].spend, rn.days[0].ceil = spend, ceil
	case rn.days[1].day == d:
		rn.days[1].spend, rn.days[1].ceil = spend, ceil
	case d > rn.days[0].day:
		rn.days[1], rn.days[0] = rn.days[0], nodeDay{d, spend, ceil}
	case d > rn.days[1].day:
		rn.days[1] = nodeDay{d, spend, ceil}
	}
}

// BeginRebuild marks the pacer not ready: a spend sync is about to replay
// the spend topic. Records of this node's own id read until EndRebuild
// restore its spend counters, ceilings and sequence number. From then on
// the pacer shares its budgets by the share rule (see the package doc).
func (p *Pacer) BeginRebuild() {
	p.peersMu.Lock()
	p.synced = true
	p.peersMu.Unlock()
	p.shared.Store(true)
	p.rebuilding.Store(true)
	p.ready.Store(false)
}

// EndRebuild marks the pacer ready: the spend sync has applied every record
// that was on the topic when it started. A node that was silent for more
// than half a ReservationExpiry gives up the ceilings it took back (the
// others may have counted them free since); it keeps them otherwise. Its
// reservations still outstanding at its last record are held again until
// they expire, so that the beacons of its decisions before the restart
// settle them instead of adding to its usage.
func (p *Pacer) EndRebuild(now time.Time) {
	t := now.UnixNano()
	stale := t-p.ownAt.Load() > p.expiry/2
	p.campaigns.each(func(_ string, s *campState) {
		s.mu.Lock()
		defer s.mu.Unlock()
		own := s.own.Load()
		if own == nil {
			return
		}
		if stale {
			for ds, n := s.cur.Load(), 0; ds != nil && n < 2; ds, n = ds.prev.Load(), n+1 {
				ds.ceil.Store(noCeiling)
			}
			s.totCeil.Store(noCeiling)
			cp := *own
			cp.dayCeil, cp.totCeil = noCeiling, noCeiling
			s.own.Store(&cp)
		}
		if own.reserved > 0 && t-own.at < p.expiry {
			s.res.total.Add(own.reserved)
			s.res.add(own.at/p.resWidth, own.reserved)
		}
	})
	p.peersMu.Lock()
	p.healthySince = t
	p.peersMu.Unlock()
	p.rebuilding.Store(false)
	p.recountNodes(now, false)
	p.ready.Store(true)
}

// nextSeq returns a sequence number greater than every earlier one, and at
// least the clock in microseconds, so that numbering survives a restart
// even when the node's earlier records are no longer on the topic.
func (p *Pacer) nextSeq(now time.Time) uint64 {
	for {
		cur := p.seq.Load()
		next := max(cur+1, uint64(max(now.UnixMicro(), 0)))
		if p.seq.CompareAndSwap(cur, next) {
			return next
		}
	}
}

// AppendDeltas appends to dst a heartbeat and one record per campaign and
// day whose spend, reservations, lifetime spend or ceilings changed since
// the last Published, and returns dst. Reservations are republished every
// half ReservationExpiry while outstanding so that other nodes keep
// counting them. The spend sync calls it once per flush, from one
// goroutine.
//
// It also runs the share rule's update of every ceiling (nextCeiling): a
// lowered ceiling applies at once; a raised one only from Published, once
// the other nodes can hear it.
func (p *Pacer) AppendDeltas(dst []Delta, now time.Time) []Delta {
	dst = append(dst, Delta{Node: p.node, Seq: p.nextSeq(now), Time: now,
		DayCeiling: noCeiling, TotalCeiling: noCeiling})
	t := now.UnixNano()
	shared, raise, n := p.shared.Load(), p.canRaise(t), p.nodes.Load()
	p.campaigns.each(func(id string, s *campState) {
		cur := s.cur.Load()
		if cur == nil {
			return
		}
		res, total := s.res.total.Load(), s.total.Load()
		dayCeil, totCeil := cur.ceil.Load(), s.totCeil.Load()
		hungry := s.hungry.Swap(0)
		if c := s.conf.Load(); c != nil && shared {
			v := s.view.Load()
			if b := int64(c.Budget.Daily); b > 0 {
				// A ceiling not published yet (a first share taken on
				// the decision path) is published before it is raised.
				dayCeil = nextCeiling(b, dayCeil, cur.spent.Load()+res, v.heldDay(cur.day), n,
					hungry&hungryDaily != 0, raise && dayCeil == cur.pubCeil.Load())
				lower(&cur.ceil, dayCeil)
			}
			if b := int64(c.Budget.Total); b > 0 {
				totCeil = nextCeiling(b, totCeil, total+res, v.totalHeldSum(), n, hungry&hungryTotal != 0,
					raise && totCeil == s.pubTotCeil.Load())
				lower(&s.totCeil, totCeil)
			}
		}
		if prev := cur.prev.Load(); prev != nil {
			if sp := prev.spent.Load(); sp != prev.pubSpent.Load() {
				dst = append(dst, p.delta(id, prev, sp, prev.ceil.Load(), total, totCeil, res, now))
			}
		}
		sp := cur.spent.Load()
		if sp != cur.pubSpent.Load() || total != s.pubTotal.Load() || res != s.pubReserved.Load() ||
			dayCeil != cur.pubCeil.Load() || totCeil != s.pubTotCeil.Load() ||
			(res > 0 && t-s.pubAt.Load() >= p.expiry/2) {
			dst = append(dst, p.delta(id, cur, sp, dayCeil, total, totCeil, res, now))
		}
	})
	return dst
}

// lower stores ceil in a when it is below a's value (and set).
func lower(a *atomic.Int64, ceil int64) {
	for {
		cur := a.Load()
		if ceil == noCeiling || ceil >= cur || a.CompareAndSwap(cur, ceil) {
			return
		}
	}
}

func (p *Pacer) delta(id string, ds *dayState, spent, dayCeil, total, totCeil, res int64, now time.Time) Delta {
	return Delta{Node: p.node, Campaign: id, Day: ds.day, DaySpend: campaign.Micros(spent),
		Delta: campaign.Micros(spent - ds.pubSpent.Load()), Total: campaign.Micros(total),
		Reserved: campaign.Micros(res), DayCeiling: campaign.Micros(dayCeil),
		TotalCeiling: campaign.Micros(totCeil), Seq: p.nextSeq(now), Time: now}
}

// Published tells the pacer that the records ds (from AppendDeltas) are on
// the spend topic: the other nodes will hear them. The share rule measures
// this node's published state from these values, and the ceilings they
// carry take effect (raises wait for this).
func (p *Pacer) Published(ds []Delta) {
	for i := range ds {
		d := &ds[i]
		if d.Campaign == "" {
			p.hbSeq.Store(d.Seq)
			p.hbAt.Store(d.Time.UnixNano())
			continue
		}
		s, ok := p.campaigns.get(d.Campaign)
		if !ok {
			continue
		}
		for day, n := s.cur.Load(), 0; day != nil && n < 2; day, n = day.prev.Load(), n+1 {
			if day.day == d.Day {
				day.pubSpent.Store(int64(d.DaySpend))
				day.pubCeil.Store(int64(d.DayCeiling))
				if d.DayCeiling != noCeiling {
					day.ceil.Store(int64(d.DayCeiling))
				}
			}
		}
		s.pubTotal.Store(int64(d.Total))
		s.pubReserved.Store(int64(d.Reserved))
		s.pubTotCeil.Store(int64(d.TotalCeiling))
		if d.TotalCeiling != noCeiling {
			s.totCeil.Store(int64(d.TotalCeiling))
		}
		s.pubAt.Store(d.Time.UnixNano())
	}
}

// ApplyRemote applies one record read from the spend topic at now. Records
// of other nodes update the global view; this node's own records restore
// its counters while rebuilding and are otherwise the sign that its
// consumer keeps up (the share rule raises nothing until the heartbeat of
// the previous flush is read back). Safe for concurrent use (one goroutine
// per partition).
func (p *Pacer) ApplyRemote(d *Delta, now time.Time) {
	t := now.UnixNano()
	if d.Node == p.node {
		if p.rebuilding.Load() {
			p.restoreOwn(d)
			return
		}
		for {
			cur := p.echoSeq.Load()
			if cur >= d.Seq || p.echoSeq.CompareAndSwap(cur, d.Seq) {
				break
			}
		}
		p.peersMu.Lock()
		if t-p.lastEcho > int64(p.cfg.nodeTTL()) {
			p.healthySince = t // back after a stall (or the first echo)
		}
		p.lastEcho = max(p.lastEcho, t)
		p.peersMu.Unlock()
		return
	}
	p.notePeer(d.Node, d.Time, now)
	if d.Campaign == "" {
		return
	}
	s := p.stateByID(d.Campaign)
	s.mu.Lock()
	defer s.mu.Unlock()
	rn := s.remotes[d.Node]
	if rn == nil {
		rn = &remoteNode{totCeil: noCeiling}
		s.remotes[strings.Clone(d.Node)] = rn
	} else if d.Seq <= rn.seq {
		return // older than what was applied
	}
	rn.seq, rn.at = d.Seq, d.Time.UnixNano()
	rn.reserved, rn.total, rn.totCeil = int64(d.Reserved), int64(d.Total), int64(d.TotalCeiling)
	rn.setDay(d.Day, int64(d.DaySpend), int64(d.DayCeiling))
	p.refreshViewLocked(s, t)
}

func (p *Pacer) notePeer(node string, at, now time.Time) {
	t := at.UnixNano()
	p.peersMu.Lock()
	last, seen := p.peers[node]
	if t > last {
		if !seen {
			node = strings.Clone(node)
		}
		p.peers[node] = t
	}
	p.peersMu.Unlock()
	if !seen || now.UnixNano()-last > int64(p.cfg.nodeTTL()) {
		p.recountNodes(now, true)
	}
}

// restoreOwn takes back this node's spend and ceilings from its own record.
// Records of a campaign arrive in order (one key, one partition) and are
// cumulative: each adds what it has over the previous one, so that charges
// this node took while rebuilding are kept on top.
func (p *Pacer) restoreOwn(d *Delta) {
	for {
		cur := p.seq.Load()
		if cur >= d.Seq || p.seq.CompareAndSwap(cur, d.Seq) {
			break
		}
	}
	for at := d.Time.UnixNano(); ; {
		cur := p.ownAt.Load()
		if cur >= at || p.ownAt.CompareAndSwap(cur, at) {
			break
		}
	}
	if d.Campaign == "" {
		return
	}
	s := p.stateByID(d.Campaign)
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.own.Load()
	if old != nil && old.seq >= d.Seq {
		return
	}
	rec := &ownRecord{seq: d.Seq, at: d.Time.UnixNano(), day: d.Day, daySpend: int64(d.DaySpend),
		dayCeil: int64(d.DayCeiling), total: int64(d.Total), totCeil: int64(d.TotalCeiling),
		reserved: int64(d.Reserved)}
	var prevDaySpend, prevTotal int64
	if old != nil {
		prevTotal = old.total
		switch {
		case old.day == d.Day:
			prevDaySpend = old.daySpend
		case old.day > d.Day:
			// A late record of an older day: keep the newer day as the one
			// a day state created later starts from.
			rec.day, rec.daySpend, rec.dayCeil = old.day, old.daySpend, old.dayCeil
		}
	}
	s.own.Store(rec)
	s.total.Add(rec.total - prevTotal)
	s.pubTotal.Store(rec.total)
	s.totCeil.Store(rec.totCeil)
	s.pubTotCeil.Store(rec.totCeil)
	for ds, n := s.cur.Load(), 0; ds != nil && n < 2; ds, n = ds.prev.Load(), n+1 {
		if ds.day == d.Day {
			ds.spent.Add(int64(d.DaySpend) - prevDaySpend)
			ds.pubSpent.Store(int64(d.DaySpend))
			ds.ceil.Store(int64(d.DayCeiling))
			ds.pubCeil.Store(int64(d.DayCeiling))
		}
	}
}
