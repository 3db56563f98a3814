package pacing

import "sync/atomic"

// The share rule between nodes: every node holds a ceiling per budget (one
// per campaign and local day for the daily budget, one per campaign for the
// lifetime budget), publishes it with its spend, and counts the others'
// published ceilings. The package doc states the rule and proves its bound;
// this file holds its arithmetic.

// noCeiling marks a ceiling this node has not taken yet (or, in a record,
// one the publisher did not send).
const noCeiling = -1

// Bits of campState.hungry: a budget refused a request or a reservation on
// this node since the last flush.
const (
	hungryDaily uint32 = 1 << iota
	hungryTotal
)

// markHungry notes that budget bit refused this node something. It writes
// only when the bit is not set yet, so that a campaign refused on every
// request does not bounce its cache line between cores.
func (s *campState) markHungry(bit uint32) {
	if s.hungry.Load()&bit == 0 {
		s.hungry.Or(bit)
	}
}

// limit is the most this node's usage (spend + reservations) may reach
// under budget b, given its ceiling and what the other nodes hold as last
// heard (others). A pacer without a spend sync has no ceilings: it takes its
// static 1/n of what the others are known to hold. With a sync, its
// ceiling, and never more than the budget leaves beside the others (a
// budget cut, or another node's raise heard before this node's next
// flush, takes effect at once).
func limit(shared bool, b, ceil, others, n int64) int64 {
	if !shared {
		return (b - others) / n
	}
	return min(max(ceil, 0), b-others)
}

// nextCeiling is one flush's update of one ceiling under budget b: ceil is
// the current ceiling (noCeiling if none), usage this node's spend plus
// reservations, others what the other nodes hold as last heard, n the node
// count. held = max(ceil, usage) is what the others count for this node,
// free = b - held - others what nobody holds.
//
//   - A node that was refused for lack of room since its last flush
//     (hungry) keeps what it holds and takes 1/n of the free budget.
//   - Any other node keeps its usage and 1/n of what it does not use plus
//     the free budget: it hands back (n-1)/n of its idle allowance, so
//     budget moves to the nodes that have the traffic.
//
// Either way the new ceiling exceeds held by at most free/n, the property
// the overspend bound rests on. A raise needs raise (see canRaise); a
// lowering is always allowed. Outside the hungry case, changes smaller
// than 1/8 of the allowance are skipped, so that an idle campaign's
// ceilings settle instead of republishing every second.
func nextCeiling(b, ceil, usage, others, n int64, hungry, raise bool) int64 {
	held := max(ceil, usage)
	free := b - held - others
	var next int64
	if hungry {
		next = held + free/n
	} else {
		next = usage + (free+held-usage)/n
	}
	next = max(next, 0)
	switch {
	case ceil == noCeiling:
		if !raise {
			return noCeiling
		}
	case next > ceil:
		if !raise || (!hungry && next-ceil <= (next-usage)/8) {
			return ceil
		}
	case next < ceil:
		if !hungry && ceil-next <= (ceil-usage)/8 {
			return ceil
		}
	}
	return next
}

// canRaise reports whether this node may raise a ceiling at now (unix
// nanos): it has a spend sync, it is ready, and its view of the others is
// fresh: it has read back the heartbeat of its last flush (a node whose
// consumer lags does not raise against a stale view). In auto mode
// (Config.Nodes unset) it must also have published a heartbeat recently
// enough that every other node counts it: a new node, or one whose
// records stopped for a while, waits one flush before taking any share,
// so that no node's count leaves it out while it raises.
func (p *Pacer) canRaise(now int64) bool {
	if !p.shared.Load() || !p.ready.Load() {
		return false
	}
	hb := p.hbSeq.Load()
	if hb == 0 {
		return p.cfg.Nodes > 0
	}
	if p.echoSeq.Load() < hb {
		return false
	}
	return p.cfg.Nodes > 0 || now-p.hbAt.Load() <= int64(p.cfg.nodeTTL())*3/4
}

// peerAliveLocked reports whether the other node id may still be serving,
// so that its ceilings count in full: heard from within ReservationExpiry,
// or this node's own consumer has not been healthy that long (silence
// proves nothing then: after a Kafka outage, every node's records resume
// at its next flush). p.peersMu is held.
func (p *Pacer) peerAliveLocked(id string, now int64) bool {
	return now-p.peers[id] <= p.expiry || now-p.healthySince <= p.expiry
}

// firstShares gives c's budgets that have no ceiling on this node their
// first one at once, from the decision path, rather than at the next
// flush: a node that has just joined the fleet (its first heartbeat read
// back: see canRaise), a campaign just created or a new local day then
// serve from the first request. The share is the hungry rule's,
// usage + 1/n of what nobody holds, taken once (compare-and-swap from
// noCeiling); AppendDeltas publishes it at the next flush and raises it no
// further until then, so that, for the bound, it is one raise of this
// node's that takes effect up to a flush interval before the others hear
// it, the same window as a raise computed just before a flush. The cost
// when every budget has its ceiling is two atomic loads.
func (p *Pacer) firstShares(s *campState, ds *dayState, daily, total int64, now int64) {
	dayCeil, totCeil := ds.ceil.Load(), s.totCeil.Load()
	if (daily <= 0 || dayCeil != noCeiling) && (total <= 0 || totCeil != noCeiling) {
		return
	}
	if !p.shared.Load() || !p.canRaise(now) {
		return
	}
	n, v, res := p.nodes.Load(), s.view.Load(), s.res.total.Load()
	if daily > 0 && dayCeil == noCeiling {
		takeFirst(&ds.ceil, nextCeiling(daily, noCeiling, ds.spent.Load()+res, v.heldDay(ds.day), n, true, true))
	}
	if total > 0 && totCeil == noCeiling {
		takeFirst(&s.totCeil, nextCeiling(total, noCeiling, s.total.Load()+res, v.totalHeldSum(), n, true, true))
	}
}

// takeFirst sets a to ceil if a holds no ceiling yet.
func takeFirst(a *atomic.Int64, ceil int64) {
	if ceil != noCeiling {
		a.CompareAndSwap(noCeiling, ceil)
	}
}
