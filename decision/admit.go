package decision

import (
	"math/bits"
	"slices"
	"time"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

// Candidate admission.
//
// The index typically answers hundreds of campaigns per slot, of which the
// auction needs only the best few: the winner and the runner-up that sets
// its price, after competitive exclusion has removed at most one advertiser
// per slot. The checks that cost (frequency caps, budget pacing) therefore
// run lazily, in rank order, and stop once the answer cannot change:
//
//  1. the candidates are taken by priority tier, highest first (the index
//     gives each one's priority, so the campaigns of the lower tiers, which
//     are rarely reached, are never loaded);
//  2. in a tier, a candidate must pass the pure, cheap filters (pauses,
//     private-auction deals, blocks) and have a creative that fits the
//     slot, and its eCPM is computed (a CPC campaign first picks its
//     creative, whose predicted CTR its eCPM depends on); one below the
//     slot's reserve, which can neither win nor set a price, is dropped;
//  3. the tier's candidates are taken best first (eCPM) through the costly
//     checks until n+1 distinct advertisers are admitted, n being the
//     number of slots in the request, and then also every candidate tied
//     with the last one admitted (ties are broken in the auction); lower
//     tiers are reached only if that has not happened yet.
//
// In an auction over all eligible candidates, a slot's winner is its best
// candidate whose advertiser has not won a slot filled earlier (at most
// n-1 advertisers), and its runner-up the best one left after excluding
// those and the winner's (at most n advertisers): both are among the
// candidates of the first n+1 distinct advertisers in rank order, ties
// included. So the auction over the admitted candidates picks the same
// winners at the same prices; only the random draws that break exact ties
// may fall differently. Debug requests, which explain every candidate,
// take every check eagerly instead (collectAll).

// pending is a candidate that passed the cheap filters of one slot.
type pending struct {
	c    *campaign.Campaign
	cr   *campaign.Creative // picked for CPC bids; nil until admitted for CPM
	pctr float64
	ecpm campaign.Micros
	prio int
	// floor is c's own reserve in the slot: the floor of the deal it bids
	// through (bestDeal), 0 in the open market.
	floor campaign.Micros
	idx   int    // arrival order in the slot
	fits  uint64 // the index's targeting.CreativeBits of c
}

// above reports whether p ranks above q: higher priority, then higher eCPM,
// then earlier arrival.
func (p *pending) above(q *pending) bool {
	if p.prio != q.prio {
		return p.prio > q.prio
	}
	if p.ecpm != q.ecpm {
		return p.ecpm > q.ecpm
	}
	return p.idx < q.idx
}

// collectAll fills as with every candidate of res.cands, running every
// check on each one and explaining each exclusion (debug requests).
func (e *Engine) collectAll(req *Request, s *Slot, placement string, as *auction.Slot, res *Result, sw *Switches, now time.Time, rnd *rand, st *collectStats) {
	for _, m := range res.cands {
		c := m.Campaign
		reason := cheapIneligible(req, s, c, sw)
		if reason == "" {
			reason = e.costlyIneligible(req, c, now)
		}
		if reason != "" {
			if reason == reasonBlockedCategory || reason == reasonBlockedDomain {
				st.blocked++
			}
			res.exclude(c, s.ID, StageEligibility, reason)
			continue
		}
		cr := pickCreative(c, s, rnd)
		if cr == nil {
			res.exclude(c, s.ID, StageCreative, "no creative fits the slot's format and size")
			continue
		}
		cand := auction.Candidate{Campaign: c, Creative: cr, PCTR: e.predict(c, cr, placement)}
		if _, f, ok := bestDeal(c, s, auction.ECPM(c.Bid, cand.PCTR)); ok {
			cand.Floor = f
		} else if s.PrivateAuction {
			res.exclude(c, s.ID, StageEligibility, "below_deal_floor")
			continue
		}
		st.passed++
		as.Candidates = append(as.Candidates, cand)
	}
}

// collectLazy fills as with the candidates of res.cands the auction needs,
// admitting them as the comment at the top of this file describes. slots is
// the number of slots the request may fill.
func (e *Engine) collectLazy(req *Request, s *Slot, placement string, as *auction.Slot, reserve campaign.Micros, res *Result, sw *Switches, now time.Time, rnd *rand, slots int, st *collectStats) {
	// Tier by tier from the highest priority: the cheap filters, whether a
	// candidate has a creative that fits, and its eCPM, are worked out only
	// when its tier is reached, usually the first one, sparing the memory
	// reads of the others. Every tier is reached unless slots+1
	// advertisers are admitted, so st.blocked and st.passed are exact
	// whenever st.passed is 0, the only case where the no-fill reason
	// reads st.blocked.
	ad := admission{e: e, req: req, res: res, now: now, slots: slots,
		admitted: res.admitted[:0], advs: res.advs[:0]}
	var prios prioSet
	for i := range res.cands {
		prios.add(res.cands[i].Priority)
	}
	fit, exact := slotBits(s)
	tier, used := res.pend[:0], 0
	for !ad.full {
		prio, ok := prios.popMax()
		if !ok {
			break
		}
		tier = appendTier(tier[:0], res.cands, prio)
		used = max(used, len(tier))
		ad.admit(e.priceTier(tier, req, s, placement, fit, exact, sw, reserve, rnd, st))
	}
	// Back to arrival order, which the auction's tie rules follow.
	admitted := ad.admitted
	slices.SortFunc(admitted, func(a, b pending) int { return a.idx - b.idx })
	for i := range admitted {
		p := &admitted[i]
		if p.cr == nil {
			p.cr = pickCreative(p.c, s, rnd)
		}
		as.Candidates = append(as.Candidates, auction.Candidate{Campaign: p.c, Creative: p.cr, PCTR: p.pctr, Floor: p.floor})
	}
	clear(tier[:used])
	clear(admitted)
	clear(ad.advs)
	res.pend, res.admitted, res.advs = tier[:0], admitted[:0], ad.advs[:0]
}

// prioSet is a set of priorities, which the index keeps in [0, 255].
type prioSet [4]uint64

func (ps *prioSet) add(p int) { ps[uint8(p)>>6] |= 1 << (uint8(p) & 63) }

// popMax removes and returns the highest priority of the set, if any.
func (ps *prioSet) popMax() (int, bool) {
	for w := len(ps) - 1; w >= 0; w-- {
		if x := ps[w]; x != 0 {
			b := 63 - bits.LeadingZeros64(x)
			ps[w] &^= 1 << b
			return w*64 + b, true
		}
	}
	return 0, false
}

// appendTier appends to tier the candidates of cands of priority prio,
// each with its index in cands (its arrival order). It reads only cands,
// not the campaigns.
func appendTier(tier []pending, cands []targeting.Match, prio int) []pending {
	for i := range cands {
		if cands[i].Priority == prio {
			tier = append(tier, pending{c: cands[i].Campaign, prio: prio, idx: i, fits: cands[i].Creatives})
		}
	}
	return tier
}

// priceTier keeps, in place, the candidates of tier that pass the cheap
// filters, with a creative that fits s and an eCPM at or above reserve,
// which it sets (a CPC campaign first picks its creative, whose predicted
// CTR its eCPM depends on). fit and exact are slotBits(s): a candidate
// whose creative bits miss fit cannot fit, and is dropped without a look
// at its creatives; if exact, one whose bits meet it fits.
func (e *Engine) priceTier(tier []pending, req *Request, s *Slot, placement string, fit uint64, exact bool, sw *Switches, reserve campaign.Micros, rnd *rand, st *collectStats) []pending {
	kept := tier[:0]
	for _, p := range tier {
		if reason := cheapIneligible(req, s, p.c, sw); reason != "" {
			if reason == reasonBlockedCategory || reason == reasonBlockedDomain {
				st.blocked++
			}
			continue
		}
		if p.fits&fit == 0 || !exact && !fitsAny(p.c, s) {
			continue
		}
		st.passed++
		if p.c.Bid.Model == campaign.BidCPC {
			p.cr = pickCreative(p.c, s, rnd)
			p.pctr = e.predict(p.c, p.cr, placement)
		}
		p.ecpm = auction.ECPM(p.c.Bid, p.pctr)
		if p.ecpm <= 0 || p.ecpm < reserve {
			continue // cannot win, cannot set a price
		}
		// In a private auction it must also reach the floor of one of its
		// deals; the floor of the deal it bids through is its own reserve.
		if _, f, ok := bestDeal(p.c, s, p.ecpm); ok {
			p.floor = f
		} else if s.PrivateAuction {
			continue
		}
		kept = append(kept, p)
	}
	return kept
}

// admission is the state of one slot's admission across tiers.
type admission struct {
	e     *Engine
	req   *Request
	res   *Result
	now   time.Time
	slots int
	// admitted are the candidates let through, advs their distinct
	// advertisers; full is set once there are slots+1 of those.
	admitted []pending
	advs     []string
	full     bool
}

// admit takes the candidates of one priced tier best first, through a
// binary heap (usually only a few pops are needed), through the costly
// checks, until the admission is full and the candidates tied with the one
// that filled it are in too.
func (ad *admission) admit(tier []pending) {
	heapify(tier)
	var last campaign.Micros // eCPM of the candidate that filled the admission
	for n := len(tier); n > 0; n-- {
		p := tier[0]
		if ad.full && p.ecpm != last {
			return
		}
		tier[0] = tier[n-1]
		siftDown(tier[:n-1], 0)
		if ad.e.costlyIneligibleCached(ad.req, p.c, ad.now, ad.res, ad.slots) != "" {
			continue
		}
		ad.admitted = append(ad.admitted, p)
		if !ad.full && !containsString(ad.advs, p.c.AdvertiserID) {
			ad.advs = append(ad.advs, p.c.AdvertiserID)
			if len(ad.advs) == ad.slots+1 {
				ad.full, last = true, p.ecpm
			}
		}
	}
}

// collectStats counts, over all slots, the candidates blocked and those that
// passed the filters, for the no-fill reason.
type collectStats struct{ blocked, passed int }

func (e *Engine) predict(c *campaign.Campaign, cr *campaign.Creative, placement string) float64 {
	if c.Bid.Model == campaign.BidCPC && e.CTR != nil && cr != nil {
		return e.CTR.Predict(cr.ID, placement)
	}
	return 0
}

// Exclusion reasons of the eligibility stage that count as blocks.
const (
	reasonBlockedCategory = "blocked_category"
	reasonBlockedDomain   = "blocked_domain"
)

// cheapIneligible returns why c may not serve req by the pure, cheap rules
// (switches, deals, blocks), or "".
func cheapIneligible(req *Request, s *Slot, c *campaign.Campaign, sw *Switches) string {
	// The length checks spare loading the ids (a cache miss per candidate)
	// when nothing is paused, the common case.
	if sw != nil && (len(sw.PausedCampaigns) > 0 && sw.PausedCampaigns[c.ID] ||
		len(sw.PausedAdvertisers) > 0 && sw.PausedAdvertisers[c.AdvertiserID]) {
		return "paused"
	}
	if s.PrivateAuction && !sharesDeal(c.Deals, s.Deals) {
		return "private_auction_no_deal"
	}
	if len(req.BlockedCats) > 0 && anyIn(c.Categories, req.BlockedCats) {
		return reasonBlockedCategory
	}
	if len(req.BlockedDomains) > 0 {
		for i := range c.Creatives {
			if anyIn(c.Creatives[i].Adomain, req.BlockedDomains) {
				return reasonBlockedDomain
			}
		}
	}
	return ""
}

// anyIn reports whether one of have is in sorted (see sortBlocks).
func anyIn(have, sorted []string) bool {
	for _, x := range have {
		if _, ok := slices.BinarySearch(sorted, x); ok {
			return true
		}
	}
	return false
}

// sortBlocks sorts the request's block lists, so that each candidate's
// check costs a binary search per category or domain however long the
// lists are (a 64 KiB bid request can carry thousands of entries).
func sortBlocks(req *Request) {
	if len(req.BlockedCats) > 1 {
		slices.Sort(req.BlockedCats)
	}
	if len(req.BlockedDomains) > 1 {
		slices.Sort(req.BlockedDomains)
	}
}

// costlyIneligible returns why c may not serve req by frequency cap or
// budget pacing, or "".
func (e *Engine) costlyIneligible(req *Request, c *campaign.Campaign, now time.Time) string {
	if e.Capper != nil && c.FrequencyCap != nil && !e.Capper.Allows(req.UserID, c, now) {
		return "frequency_cap"
	}
	if e.Pacer != nil {
		if ok, reason := e.Pacer.Allow(c, now); !ok {
			return reason
		}
	}
	return ""
}

// costlyIneligibleCached is costlyIneligible asked once per campaign and
// request: with several slots a campaign may be a candidate of each.
func (e *Engine) costlyIneligibleCached(req *Request, c *campaign.Campaign, now time.Time, res *Result, slots int) string {
	if slots <= 1 {
		return e.costlyIneligible(req, c, now)
	}
	if res.checked == nil {
		res.checked = make(map[*campaign.Campaign]string)
	}
	if reason, ok := res.checked[c]; ok {
		return reason
	}
	reason := e.costlyIneligible(req, c, now)
	res.checked[c] = reason
	return reason
}

// slotBits is the union of the targeting.CreativeBit of the formats s
// accepts: a campaign whose targeting.CreativeBits miss it has no creative
// that fits s. exact reports that every one of its bits is exact: then a
// campaign whose bits meet it has one.
func slotBits(s *Slot) (bits uint64, exact bool) {
	if s.Video {
		return targeting.CreativeBit(true, 0, 0)
	}
	exact = true
	for _, z := range s.Sizes {
		b, ex := targeting.CreativeBit(false, z.W, z.H)
		bits, exact = bits|b, exact && ex
	}
	return bits, exact
}

// fitsAny reports whether any creative of c fits s.
func fitsAny(c *campaign.Campaign, s *Slot) bool {
	f := fitter{s: s}
	for i := range c.Creatives {
		if f.fits(&c.Creatives[i]) {
			return true
		}
	}
	return false
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// heapify orders h as a binary max-heap by pending.above.
func heapify(h []pending) {
	for i := len(h)/2 - 1; i >= 0; i-- {
		siftDown(h, i)
	}
}

func siftDown(h []pending, i int) {
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h[r].above(&h[l]) {
			m = r
		}
		if !h[m].above(&h[i]) {
			return
		}
		h[i], h[m] = h[m], h[i]
		i = m
	}
}

// commonSizes are the IAB display sizes, spelled once so that a slot of one
// of them costs no allocation.
var commonSizes = func() map[Size]string {
	m := make(map[Size]string)
	for _, z := range [...]Size{{300, 250}, {728, 90}, {320, 50}, {300, 600}, {160, 600}, {970, 250},
		{970, 90}, {336, 280}, {468, 60}, {320, 100}, {300, 50}, {120, 600}, {250, 250}, {200, 200},
		{180, 150}, {125, 125}, {240, 400}, {300, 1050}, {640, 480}, {480, 320}, {320, 480}, {1024, 768}, {768, 1024}} {
		m[z] = campaign.SizeString(z.W, z.H)
	}
	return m
}()

// sizeString is campaign.SizeString, without allocating for common sizes.
func sizeString(w, h int) string {
	if s, ok := commonSizes[Size{w, h}]; ok {
		return s
	}
	return campaign.SizeString(w, h)
}
