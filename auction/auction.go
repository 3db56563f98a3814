package auction

import (
	"slices"
	"sync"

	"github.com/adserver/adserver/campaign"
)

// Candidate is one campaign competing for one slot, with the creative it
// would show there.
type Candidate struct {
	// Campaign must be non-nil; it is only read.
	Campaign *campaign.Campaign
	// Creative is the campaign's creative that fits the slot, usually
	// chosen by [PickCreative]. The auction does not look at it.
	Creative *campaign.Creative
	// PCTR is the predicted click-through rate of Creative in this
	// placement ([CTRModel.Predict]). Only CPC bids use it.
	PCTR float64
	// Floor is the candidate's own reserve, in CPM micros, on top of the
	// slot's: the floor of the OpenRTB deal it bids through. A candidate
	// below it cannot win, and when it wins it pays at least it. 0: none.
	Floor campaign.Micros
}

// Slot is one ad position of a request and the candidates that fit it. A
// campaign may be a candidate of several slots.
type Slot struct {
	// ID is the request's slot id, echoed in explanations.
	ID string
	// Floor is the slot's (or request's) minimum eCPM, in CPM micros.
	Floor campaign.Micros
	// Rule is the price rule of the slot's own placement (an OpenRTB imp
	// has its own tagid): a slot is first price when either its Rule or
	// the Request's is [FirstPrice].
	Rule Rule
	// Candidates compete for this slot; their order only matters for
	// Outcome indexes and, with a nil Rand, for ties.
	Candidates []Candidate
}

// Request is the input of one auction.
type Request struct {
	// Rule is the price rule of the placement, see [RuleOf].
	Rule Rule
	// Floor is the placement's floor, in CPM micros. The reserve of each
	// slot is the larger of Floor and the slot's floor.
	Floor campaign.Micros
	// Slots are the positions to fill.
	Slots []Slot
}

// Win is a filled slot.
type Win struct {
	// Slot is the index of the slot in Request.Slots, SlotID its id.
	Slot   int
	SlotID string
	// Index is the winner's index in the slot's Candidates, Candidate a
	// pointer to it (into the Request).
	Index     int
	Candidate *Candidate
	// ECPM is the winner's eCPM (its first-price bid per thousand).
	ECPM campaign.Micros
	// ClearingECPM is what the winner pays, as eCPM micros.
	ClearingECPM campaign.Micros
	// Price is what the winner pays in its own bid unit: micros per
	// thousand impressions for a CPM bid, micros per click for a CPC bid.
	// It never exceeds the bid amount.
	Price campaign.Micros
	// Reserve is the slot's reserve (CPM micros).
	Reserve campaign.Micros
	// RunnerUp is the runner-up's index in the slot's Candidates, or -1;
	// RunnerUpECPM its eCPM (0 without one).
	RunnerUp     int
	RunnerUpECPM campaign.Micros
}

// RTBBid returns the CPM bid, in micros, for an OpenRTB response with
// auction type at; see [RTBBidPrice].
func (w *Win) RTBBid(at int) campaign.Micros {
	return RTBBidPrice(at, w.ECPM, w.RunnerUpECPM, w.Reserve)
}

// Auction runs auctions, reusing its buffers: after the first few runs a
// Run allocates nothing. The zero value is ready to use. It is not safe for
// concurrent use.
type Auction struct {
	_ noCopy

	req *Request
	rnd Rand // set during Run only
	// entries holds every (slot, candidate) pair in request order; slot i
	// owns entries[slots[i].lo:slots[i].hi].
	entries []entry
	slots   []slotState
	// placed lists the advertisers that won a slot, in fill order.
	placed []placed
	wins   []Win
}

type entry struct {
	cand *Candidate
	adv  string // cand.Campaign.AdvertiserID
	ecpm campaign.Micros
	// key breaks ties; 0 means not drawn yet (drawn keys are never 0).
	key  uint64
	ppb  uint64 // quantised pCTR, CPC only
	prio int32
	// fp is fingerprint(adv): unequal fingerprints spare a string compare.
	fp uint32
	// ok: the eCPM is positive and at or above the slot's reserve.
	ok bool
	// out: the advertiser has won a slot (set only in slots still open
	// when it won, and in the slot it won).
	out bool
}

type slotState struct {
	lo, hi  int
	reserve campaign.Micros
	// best is the best eligible entry whose advertiser is not placed
	// (kept only while the slot is unfilled); win and runner the filled
	// slot's winner and runner-up; -1 for none.
	best, win, runner int
	// seq is the slot's position in the fill order (index into placed).
	seq int
}

type placed struct {
	adv  string
	slot int
}

var auctionPool sync.Pool

// AcquireAuction returns an Auction from a pool.
func AcquireAuction() *Auction {
	if a, ok := auctionPool.Get().(*Auction); ok {
		return a
	}
	return new(Auction)
}

// ReleaseAuction resets a and returns it to the pool. Neither a nor any
// result it returned may be used afterwards.
func ReleaseAuction(a *Auction) {
	a.Reset()
	auctionPool.Put(a)
}

// Reset forgets the last run, dropping every reference to its request, and
// keeps the buffers.
func (a *Auction) Reset() {
	clear(a.entries)
	clear(a.wins)
	clear(a.placed)
	a.truncate()
}

func (a *Auction) truncate() {
	a.entries = a.entries[:0]
	a.slots = a.slots[:0]
	a.placed = a.placed[:0]
	a.wins = a.wins[:0]
	a.req = nil
	a.rnd = nil
}

// Run fills req's slots and returns the wins, in slot order. rnd breaks
// ties (between equal priority and eCPM); with a nil rnd the earlier
// candidate, then the earlier slot, wins a tie. The same request and the
// same random sequence give the same result.
//
// The result aliases a's buffers and req: it is valid until the next Run or
// Reset of a; req must not be modified meanwhile. Use [Auction.Outcome] or
// [Auction.AppendOutcomes] afterwards to explain the result.
func (a *Auction) Run(req *Request, rnd Rand) []Win {
	a.truncate() // every entry used below is overwritten
	a.req, a.rnd = req, rnd
	n := 0
	for i := range req.Slots {
		n += len(req.Slots[i].Candidates)
	}
	a.entries = slices.Grow(a.entries, n)[:n]
	a.slots = slices.Grow(a.slots, len(req.Slots))
	for i := range req.Slots {
		a.slots = append(a.slots, a.rank(i))
	}
	for {
		next := -1
		for i := range a.slots {
			s := &a.slots[i]
			if s.win < 0 && s.best >= 0 && (next < 0 || a.better(s.best, a.slots[next].best)) {
				next = i
			}
		}
		if next < 0 {
			break
		}
		a.fill(next)
	}
	for i := range a.slots {
		if a.slots[i].win >= 0 {
			a.wins = append(a.wins, a.win(i))
		}
	}
	a.rnd = nil
	return a.wins
}

// rank computes the entries of slot i, which start after those of the
// slots before it, and finds the best.
func (a *Auction) rank(i int) slotState {
	lo := 0
	if i > 0 {
		lo = a.slots[i-1].hi
	}
	s := &a.req.Slots[i]
	st := slotState{lo: lo, hi: lo + len(s.Candidates), reserve: clampMicros(max(a.req.Floor, s.Floor)), best: -1, win: -1, runner: -1, seq: -1}
	for j := range s.Candidates {
		c := &s.Candidates[j]
		var ppb uint64
		if c.Campaign.Bid.Model == campaign.BidCPC {
			ppb = quantizeCTR(c.PCTR)
		}
		// Field by field: building a literal and copying it in costs a
		// store-forwarding stall per entry.
		k := lo + j
		e := &a.entries[k]
		e.cand, e.adv, e.prio = c, c.Campaign.AdvertiserID, int32(c.Campaign.Priority)
		e.fp = fingerprint(e.adv)
		e.ecpm, e.ppb, e.key = ecpm(c.Campaign.Bid, ppb), ppb, 0
		e.ok, e.out = e.ecpm > 0 && e.ecpm >= st.reserve && e.ecpm >= c.Floor, false
		if e.ok && (st.best < 0 || a.better(k, st.best)) {
			st.best = k
		}
	}
	return st
}

// fill gives slot i to its best entry and excludes the winner's advertiser
// from slot i, where it finds the runner-up, and from every open slot,
// refreshing the best entry of those where it was the best.
func (a *Auction) fill(i int) {
	s := &a.slots[i]
	s.win, s.best, s.seq = s.best, -1, len(a.placed)
	adv := a.entries[s.win].adv
	a.placed = append(a.placed, placed{adv: adv, slot: i})
	s.runner = a.exclude(i, adv, true)
	for k := range a.slots {
		if t := &a.slots[k]; t.win < 0 && t.best >= 0 {
			stale := a.entries[t.best].adv == adv
			if best := a.exclude(k, adv, stale); stale {
				t.best = best
			}
		}
	}
}

// exclude marks out the entries of slot i of advertiser adv and, if find is
// set, returns the best eligible entry left (or -1).
func (a *Auction) exclude(i int, adv string, find bool) int {
	s := &a.slots[i]
	fp := fingerprint(adv)
	best := -1
	for j := s.lo; j < s.hi; j++ {
		e := &a.entries[j]
		switch {
		case !e.ok || e.out:
		case e.fp == fp && e.adv == adv:
			e.out = true
		case find && (best < 0 || a.better(j, best)):
			best = j
		}
	}
	return best
}

// better reports whether entry i ranks above entry j: higher priority, then
// higher eCPM, then the higher random key, then the earlier entry.
func (a *Auction) better(i, j int) bool {
	x, y := &a.entries[i], &a.entries[j]
	if x.prio != y.prio {
		return x.prio > y.prio
	}
	if x.ecpm != y.ecpm {
		return x.ecpm > y.ecpm
	}
	if a.rnd != nil {
		// Keys are drawn lazily, the first time an entry is in a tie; the
		// draw order is fixed by the scan order, so a seed replays.
		if x.key == 0 {
			x.key = a.drawKey()
		}
		if y.key == 0 {
			y.key = a.drawKey()
		}
		if x.key != y.key {
			return x.key > y.key
		}
	}
	return i < j
}

func (a *Auction) drawKey() uint64 {
	if k := a.rnd.Uint64(); k != 0 {
		return k
	}
	return 1
}

// placedIndex returns the fill-order index of the advertiser's win, or -1.
func (a *Auction) placedIndex(adv string) int {
	for k := range a.placed {
		if a.placed[k].adv == adv {
			return k
		}
	}
	return -1
}

// win builds the Win of filled slot i.
func (a *Auction) win(i int) Win {
	s := &a.slots[i]
	e := &a.entries[s.win]
	w := Win{
		Slot: i, SlotID: a.req.Slots[i].ID,
		Index: s.win - s.lo, Candidate: e.cand,
		ECPM: e.ecpm, Reserve: max(s.reserve, clampMicros(e.cand.Floor)), RunnerUp: -1,
	}
	if s.runner >= 0 {
		w.RunnerUp = s.runner - s.lo
		w.RunnerUpECPM = a.entries[s.runner].ecpm
	}
	bid := e.cand.Campaign.Bid
	switch {
	case a.req.Rule == FirstPrice || a.req.Slots[i].Rule == FirstPrice:
		w.ClearingECPM, w.Price = e.ecpm, bid.Amount
	case bid.Model == campaign.BidCPC:
		w.ClearingECPM = secondPriceECPM(e.ecpm, w.RunnerUpECPM, w.Reserve)
		w.Price = cpcPrice(w.ClearingECPM, bid.Amount, e.ppb)
	default:
		w.ClearingECPM = secondPriceECPM(e.ecpm, w.RunnerUpECPM, w.Reserve)
		w.Price = min(w.ClearingECPM, bid.Amount)
	}
	return w
}

// fingerprint summarises an id by its length and two of its bytes: ids of
// the same length often differ in their last byte.
func fingerprint(s string) uint32 {
	n := len(s)
	if n == 0 {
		return 0
	}
	return uint32(n)<<16 | uint32(s[n-1])<<8 | uint32(s[n/2])
}

// noCopy makes go vet's copylocks check report copies of an Auction.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}
