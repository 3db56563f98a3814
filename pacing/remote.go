package pacing

import (
	"strings"
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
	days     [2]daySum // the node's two newest days
}

type daySum struct {
	day   Day
	spend int64
}

// remoteView sums the other nodes' records for one campaign. Immutable;
// rebuilt under campState.mu and read by the decision path. A nil view is
// empty.
type remoteView struct {
	days     [2]daySum // the two newest days any node reported
	total    int64     // lifetime spend
	reserved int64     // reservations younger than ReservationExpiry
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
	day      Day
	daySpend int64
	total    int64
}

// refreshViewLocked rebuilds s.view from s.remotes at now; s.mu is held.
func (s *campState) refreshViewLocked(now, expiry int64) {
	var v remoteView
	for _, rn := range s.remotes {
		v.total += rn.total
		if now-rn.at < expiry {
			v.reserved += rn.reserved
		}
		for _, d := range rn.days {
			if d.day == 0 || d.day == v.days[0].day || d.day == v.days[1].day {
				continue
			}
			switch {
			case d.day > v.days[0].day:
				v.days[1], v.days[0] = v.days[0], daySum{day: d.day}
			case d.day > v.days[1].day:
				v.days[1] = daySum{day: d.day}
			}
		}
	}
	for _, rn := range s.remotes {
		for _, d := range rn.days {
			for i := range v.days {
				if d.day != 0 && d.day == v.days[i].day {
					v.days[i].spend += d.spend
				}
			}
		}
	}
	if old := s.view.Load(); old == nil || *old != v {
		s.view.Store(&v)
	}
}

func (rn *remoteNode) setDay(d Day, spend int64) {
	switch {
	case rn.days[0].day == d:
		rn.days[0].spend = spend
	case rn.days[1].day == d:
		rn.days[1].spend = spend
	case d > rn.days[0].day:
		rn.days[1], rn.days[0] = rn.days[0], daySum{d, spend}
	case d > rn.days[1].day:
		rn.days[1] = daySum{d, spend}
	}
}

// BeginRebuild marks the pacer not ready: a spend sync is about to replay
// the spend topic. Records of this node's own id read until EndRebuild
// restore its spend counters and sequence number.
func (p *Pacer) BeginRebuild() {
	p.peersMu.Lock()
	p.synced = true
	p.peersMu.Unlock()
	p.rebuilding.Store(true)
	p.ready.Store(false)
}

// EndRebuild marks the pacer ready: the spend sync has applied every record
// that was on the topic when it started.
func (p *Pacer) EndRebuild(now time.Time) {
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
// day whose spend, reservations or lifetime spend changed since the last
// Published, and returns dst. Reservations are republished every half
// ReservationExpiry while outstanding so that other nodes keep counting
// them. The spend sync calls it once per flush, from one goroutine.
func (p *Pacer) AppendDeltas(dst []Delta, now time.Time) []Delta {
	dst = append(dst, Delta{Node: p.node, Seq: p.nextSeq(now), Time: now})
	t := now.UnixNano()
	p.campaigns.each(func(id string, s *campState) {
		cur := s.cur.Load()
		if cur == nil {
			return
		}
		res, total := s.res.total.Load(), s.total.Load()
		if prev := cur.prev.Load(); prev != nil {
			if sp := prev.spent.Load(); sp != prev.pubSpent.Load() {
				dst = append(dst, p.delta(id, prev, sp, total, res, now))
			}
		}
		sp := cur.spent.Load()
		if sp != cur.pubSpent.Load() || total != s.pubTotal.Load() || res != s.pubReserved.Load() ||
			(res > 0 && t-s.pubAt.Load() >= p.expiry/2) {
			dst = append(dst, p.delta(id, cur, sp, total, res, now))
		}
	})
	return dst
}

func (p *Pacer) delta(id string, ds *dayState, spent, total, res int64, now time.Time) Delta {
	return Delta{Node: p.node, Campaign: id, Day: ds.day, DaySpend: campaign.Micros(spent),
		Delta: campaign.Micros(spent - ds.pubSpent.Load()), Total: campaign.Micros(total),
		Reserved: campaign.Micros(res), Seq: p.nextSeq(now), Time: now}
}

// Published tells the pacer that the records ds (from AppendDeltas) are on
// the spend topic: the other nodes will hear them. The share rule in the
// budget checks measures this node's usage from these values.
func (p *Pacer) Published(ds []Delta) {
	for i := range ds {
		d := &ds[i]
		if d.Campaign == "" {
			continue
		}
		s, ok := p.campaigns.get(d.Campaign)
		if !ok {
			continue
		}
		for day, n := s.cur.Load(), 0; day != nil && n < 2; day, n = day.prev.Load(), n+1 {
			if day.day == d.Day {
				day.pubSpent.Store(int64(d.DaySpend))
			}
		}
		s.pubTotal.Store(int64(d.Total))
		s.pubReserved.Store(int64(d.Reserved))
		s.pubAt.Store(d.Time.UnixNano())
	}
}

// ApplyRemote applies one record read from the spend topic at now. Records
// of other nodes update the global view; this node's own records restore
// its counters while rebuilding and are otherwise only a sign that the
// consumer keeps up. Safe for concurrent use (one goroutine per partition).
func (p *Pacer) ApplyRemote(d *Delta, now time.Time) {
	if d.Node == p.node {
		if p.rebuilding.Load() {
			p.restoreOwn(d)
			return
		}
		p.peersMu.Lock()
		p.lastEcho = max(p.lastEcho, now.UnixNano())
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
		rn = new(remoteNode)
		s.remotes[strings.Clone(d.Node)] = rn
	} else if d.Seq <= rn.seq {
		return // older than what was applied
	}
	rn.seq, rn.at = d.Seq, d.Time.UnixNano()
	rn.reserved, rn.total = int64(d.Reserved), int64(d.Total)
	rn.setDay(d.Day, int64(d.DaySpend))
	s.refreshViewLocked(now.UnixNano(), p.expiry)
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

// restoreOwn takes back this node's spend from its own record. Records of
// a campaign arrive in order (one key, one partition) and are cumulative:
// each adds what it has over the previous one, so that charges this node
// took while rebuilding are kept on top.
func (p *Pacer) restoreOwn(d *Delta) {
	for {
		cur := p.seq.Load()
		if cur >= d.Seq || p.seq.CompareAndSwap(cur, d.Seq) {
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
	rec := &ownRecord{seq: d.Seq, day: d.Day, daySpend: int64(d.DaySpend), total: int64(d.Total)}
	var prevDaySpend, prevTotal int64
	if old != nil {
		prevTotal = old.total
		switch {
		case old.day == d.Day:
			prevDaySpend = old.daySpend
		case old.day > d.Day:
			// A late record of an older day: keep the newer day as the one
			// a day state created later starts from.
			rec.day, rec.daySpend = old.day, old.daySpend
		}
	}
	s.own.Store(rec)
	s.total.Add(rec.total - prevTotal)
	s.pubTotal.Store(rec.total)
	for ds, n := s.cur.Load(), 0; ds != nil && n < 2; ds, n = ds.prev.Load(), n+1 {
		if ds.day == d.Day {
			ds.spent.Add(int64(d.DaySpend) - prevDaySpend)
			ds.pubSpent.Store(int64(d.DaySpend))
		}
	}
}
