package decision

import (
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

// Catalog is what the engine reads of the current catalog snapshot.
type Catalog struct {
	Index      *targeting.Index
	Placements map[string]*campaign.Placement
}

// Pacer decides whether a campaign may spend now. The pacing package
// implements it; nil means no pacing.
type Pacer interface {
	// Allow reports whether c may serve at now and, if not, why
	// (budget_exhausted, throttled, ...).
	Allow(c *campaign.Campaign, now time.Time) (ok bool, reason string)
	// Reserve holds the expected cost of one ad about to be served; it
	// returns false when that would pass the budget.
	Reserve(c *campaign.Campaign, cost campaign.Micros, now time.Time) bool
	// Observe counts one ad request for placementID at now (the traffic
	// profile that shapes even pacing).
	Observe(placementID string, now time.Time)
}

// Capper applies frequency caps; nil means none.
type Capper interface {
	// Allows reports whether userID may see c once more at now.
	Allows(userID string, c *campaign.Campaign, now time.Time) bool
	// Record counts one exposure of userID to c at now; the engine calls
	// it for every ad it serves to a capped campaign.
	Record(userID string, c *campaign.Campaign, now time.Time)
}

// Switches is the operators' kill-switch state (DESIGN.md section 3). The
// engine obeys Serving and the pauses; the tracking handlers obey Charging;
// the decision log obeys DecisionLogSample. A nil *Switches means all on.
type Switches struct {
	Serving           bool
	Charging          bool
	PausedCampaigns   map[string]bool
	PausedAdvertisers map[string]bool
	// DecisionLogSample is the share of decisions shipped to the
	// decision log, in [0, 1].
	DecisionLogSample float64
}

// URLKind names a tracking URL of an ad.
type URLKind uint8

// Tracking URL kinds.
const (
	URLImpression URLKind = iota
	URLClick
	URLWin
	URLBilling
	URLLoss
	numURLKinds
)

// Signer appends the signed tracking URL of kind for ad to dst. The events
// package provides it.
type Signer func(dst []byte, kind URLKind, req *Request, res *Result, ad *Ad, now time.Time) []byte

// Engine makes decisions. Set its fields before the first Decide; it is
// then safe for concurrent use.
type Engine struct {
	Pacer  Pacer
	Capper Capper
	CTR    *auction.CTRModel
	Sign   Signer
	// NodeID prefixes auction ids, making them unique across nodes.
	NodeID string
	// Seed seeds tie-breaking and creative rotation; each goroutine's
	// generator derives from it. 0 uses the clock.
	Seed uint64
	// Boot stamps auction ids ("node.boot.seq", boot in base-36 Unix
	// seconds), so that a restarted node never repeats one. Zero uses the
	// wall clock at the first Decide.
	Boot time.Time

	seq  atomic.Uint64
	boot string
	once sync.Once
	rngs sync.Pool
}

// Metrics, with their final Prometheus names.
var (
	decisions     = metrics.NewCounter(`adserver_decisions_total`)
	filledSlots   = metrics.NewCounter(`adserver_decision_slots_filled_total`)
	emptySlots    = metrics.NewCounter(`adserver_decision_slots_unfilled_total`)
	candidatesSum = metrics.NewHistogram(`adserver_decision_candidates`)
)

func (e *Engine) init() {
	e.once.Do(func() {
		seed := e.Seed
		if seed == 0 {
			seed = uint64(time.Now().UnixNano())
		}
		boot := e.Boot
		if boot.IsZero() {
			boot = time.Now()
		}
		e.boot = strconv.FormatInt(boot.Unix(), 36)
		var n atomic.Uint64
		e.rngs.New = func() any {
			return newRand(seed + n.Add(1)*0x9E3779B97F4A7C15)
		}
	})
}

// Decide fills res for req against cat at now. res must be empty (see
// [Result.Reset]).
func (e *Engine) Decide(req *Request, cat *Catalog, sw *Switches, now time.Time, res *Result) {
	e.init()
	decisions.Inc()
	rnd := e.rngs.Get().(*rand)
	defer e.rngs.Put(rnd)
	res.appendAuctionID(e.NodeID, e.boot, e.seq.Add(1))
	res.debug = req.Debug

	if sw != nil && !sw.Serving {
		res.NoFill = NoFillServingOff
		return
	}
	if e.Pacer != nil {
		// Each placement of the request counts one ad request.
		for p := range req.Placements {
			e.Pacer.Observe(p, now)
		}
	}
	pl := cat.Placements[req.PlacementID]
	if !req.Deadline.IsZero() && !now.Before(req.Deadline) {
		res.NoFill = NoFillDeadline
		return
	}
	attrs := targeting.AcquireAttrs()
	defer targeting.ReleaseAttrs(attrs)
	fillAttrs(attrs, req, pl)
	sortBlocks(req)

	// Floors and price rules are the slots' own: a slot's placement may
	// not be the request's (OpenRTB imps with their own tagid).
	ar := &res.auction
	ar.Floor = 0
	ar.Rule = auction.SecondPrice
	ar.Slots = ar.Slots[:0]
	attrPlacement := req.PlacementID // the placement attrs target
	slots := 0
	for i := range req.Slots {
		if !req.Slots[i].Ineligible {
			slots++
		}
	}
	total := 0
	var st collectStats
	for i := range req.Slots {
		s := &req.Slots[i]
		sp, spl := req.PlacementID, pl
		if s.PlacementID != "" && s.PlacementID != req.PlacementID {
			sp, spl = s.PlacementID, cat.Placements[s.PlacementID]
		}
		as := res.addAuctionSlot(s.ID, max(s.Floor, req.Floor))
		if spl != nil {
			as.Floor = max(as.Floor, spl.Floor)
			as.Rule = auction.RuleOf(spl)
		}
		if s.Ineligible {
			res.Slots = append(res.Slots, SlotCounts{})
			res.exclude(nil, s.ID, StageRequest, s.IneligibleReason)
			continue
		}
		if sp != attrPlacement {
			attrs.Set(campaign.IDPlacement, sp)
			attrs.Set(campaign.IDPublisher, publisherOf(req, spl))
			attrPlacement = sp
		}
		for _, size := range s.Sizes {
			attrs.Set(campaign.IDSize, sizeString(size.W, size.H))
			break // the primary size targets; other sizes only fit creatives
		}
		res.cands = cat.Index.QueryMatches(attrs, now, res.cands[:0])
		total += len(res.cands)
		if req.Debug {
			e.collectAll(req, s, sp, as, res, sw, now, rnd, &st)
		} else {
			reserve := min(max(as.Floor, 0), auction.MaxECPM)
			e.collectLazy(req, s, sp, as, reserve, res, sw, now, rnd, slots, &st)
		}
		res.Slots = append(res.Slots, SlotCounts{Matched: len(res.cands), Auctioned: len(as.Candidates)})
	}
	blocked, passed := st.blocked, st.passed
	candidatesSum.Update(float64(total))
	if req.Debug {
		res.explainTargeting(cat.Index, attrs, now)
	}

	wins := res.runner.Run(ar, rnd)
	charging := e.Pacer != nil && !req.Test && (sw == nil || sw.Charging)
	reserved := false // wins[0]'s reservation is held
	if charging && len(req.Slots) == 1 && len(wins) == 1 {
		wins, reserved = e.reserveOrNext(req, sw, now, rnd, res, wins, &st)
	}
	if res.debug {
		res.appendOutcomes()
	}
	for i, w := range wins {
		c := w.Candidate.Campaign
		if charging && !(reserved && i == 0) {
			cost := expectedCost(c, w)
			if !e.Pacer.Reserve(c, cost, now) {
				res.exclude(c, w.SlotID, StagePacing, "budget_exhausted")
				continue
			}
		}
		if e.Capper != nil && c.FrequencyCap != nil && !req.Test {
			e.Capper.Record(req.UserID, c, now)
		}
		res.addAd(req, w, publisherOf(req, cat.Placements[req.SlotPlacement(w.Slot)]))
	}
	for i := range res.Ads {
		e.signAd(req, res, &res.Ads[i], now)
	}
	filledSlots.Add(len(res.Ads))
	emptySlots.Add(len(req.Slots) - len(res.Ads))
	if len(res.Ads) == 0 && res.NoFill == "" {
		switch {
		case total == 0:
			res.NoFill = NoFillNoCandidates
		case blocked > 0 && passed == 0:
			res.NoFill = NoFillBlocked
		default:
			res.NoFill = NoFillNoWinner
		}
	}
}

// maxRefusals bounds the winners of one request that reserveOrNext
// replaces after their reservation failed.
const maxRefusals = 3

// reserveOrNext reserves the expected cost of the winner of a one-slot
// request (wins holds its one win). A winner whose reservation fails (its
// spend plus reservations leave room for less than this ad: Allow let it
// through on a headroom above zero) is dropped from the slot's candidates,
// which are admitted again without it, and the auction runs again, up to
// maxRefusals times; so the slot goes to the next candidate, at the price
// an auction without the refused campaign sets, rather than unfilled. It
// returns the wins and whether the first one's reservation is held. The
// candidates admitted again are asked again for pacing (Allow), which may
// throttle them differently; it happens only near a campaign's budget.
// Requests with several slots keep the slot of a refused winner unfilled.
func (e *Engine) reserveOrNext(req *Request, sw *Switches, now time.Time, rnd *rand, res *Result, wins []auction.Win, st *collectStats) ([]auction.Win, bool) {
	as := &res.auction.Slots[0]
	for refusals := 0; len(wins) == 1; refusals++ {
		w := wins[0]
		c := w.Candidate.Campaign
		if e.Pacer.Reserve(c, expectedCost(c, w), now) {
			return wins, true
		}
		res.exclude(c, w.SlotID, StagePacing, "budget_exhausted")
		if refusals == maxRefusals {
			return nil, false
		}
		if req.Debug { // every eligible candidate is in the auction
			as.Candidates = slices.DeleteFunc(as.Candidates, func(x auction.Candidate) bool { return x.Campaign == c })
		} else {
			res.cands = slices.DeleteFunc(res.cands, func(m targeting.Match) bool { return m.Campaign == c })
			as.Candidates = as.Candidates[:0]
			reserve := min(max(as.Floor, 0), auction.MaxECPM)
			e.collectLazy(req, &req.Slots[0], req.SlotPlacement(0), as, reserve, res, sw, now, rnd, 1, st)
		}
		res.Slots[0].Auctioned = len(as.Candidates)
		wins = res.runner.Run(&res.auction, rnd)
	}
	return wins, false
}

// expectedCost is what one ad of w will likely cost: a thousandth of the
// CPM price, or for CPC the price times the predicted CTR (at least one
// micro).
func expectedCost(c *campaign.Campaign, w auction.Win) campaign.Micros {
	if c.Bid.Model == campaign.BidCPC {
		cost := campaign.Micros(float64(w.Price) * w.Candidate.PCTR)
		return max(cost, 1)
	}
	return max(w.Price/1000, 1)
}

// publisherOf returns the publisher a request for placement pl targets:
// the placement's, or the one the request names.
func publisherOf(req *Request, pl *campaign.Placement) string {
	if pl != nil && pl.PublisherID != "" {
		return pl.PublisherID
	}
	return req.PublisherID
}

func sharesDeal(have, want []string) bool { return intersects(have, want) }

// bestDeal returns the deal of s through which c bids at eCPM ecpm: of
// the slot's deals c is set up for, the one with the lowest floor that
// ecpm reaches (the first on a tie), and that floor; ok is false when there
// is none. In a private auction a campaign bids only through a deal; in an
// open one, without a deal it bids in the open market.
func bestDeal(c *campaign.Campaign, s *Slot, ecpm campaign.Micros) (deal string, floor campaign.Micros, ok bool) {
	if len(c.Deals) == 0 {
		return "", 0, false
	}
	for i, d := range s.Deals {
		if !slices.Contains(c.Deals, d) {
			continue
		}
		var f campaign.Micros
		if i < len(s.DealFloors) {
			f = max(s.DealFloors[i], 0)
		}
		if f <= ecpm && (!ok || f < floor) {
			deal, floor, ok = d, f, true
		}
	}
	return deal, floor, ok
}

func intersects(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return true
			}
		}
	}
	return false
}

// pickCreative rotates among c's creatives that fit s.
func pickCreative(c *campaign.Campaign, s *Slot, rnd *rand) *campaign.Creative {
	fit := fitter{s: s}
	return auction.PickCreative(c, fit.fits, rnd)
}

type fitter struct{ s *Slot }

func (f fitter) fits(cr *campaign.Creative) bool {
	s := f.s
	if s.Video != (cr.Format == campaign.FormatVideo) {
		return false
	}
	if s.Video {
		if (s.MinDuration > 0 && cr.Duration < s.MinDuration) || (s.MaxDuration > 0 && cr.Duration > s.MaxDuration) {
			return false
		}
		return true // players scale video; duration is what must fit
	}
	for _, z := range s.Sizes {
		if z.W == cr.W && z.H == cr.H {
			return true
		}
	}
	return false
}

// fillAttrs sets the request's targeting attributes (all but size).
func fillAttrs(a *targeting.Attrs, req *Request, pl *campaign.Placement) {
	add := func(id campaign.AttrID, v string) {
		if v != "" {
			a.Add(id, v)
		}
	}
	add(campaign.IDPlacement, req.PlacementID)
	add(campaign.IDPublisher, publisherOf(req, pl))
	add(campaign.IDCountry, req.Country)
	add(campaign.IDRegion, req.Region)
	add(campaign.IDCity, req.City)
	add(campaign.IDLanguage, req.Language)
	add(campaign.IDDomain, req.Domain)
	add(campaign.IDBundle, req.Bundle)
	os, browser, dev := req.OS, req.Browser, req.DeviceType
	if req.UA != "" && (os == "" || browser == "" || dev == "") {
		uos, ubr, udev := targeting.ParseUACached(req.UA)
		if os == "" {
			os = uos
		}
		if browser == "" {
			browser = ubr
		}
		if dev == "" {
			dev = udev
		}
	}
	add(campaign.IDOS, os)
	add(campaign.IDBrowser, browser)
	add(campaign.IDDeviceType, dev)
	for _, s := range req.Segments {
		add(campaign.IDSegment, s)
	}
	for _, k := range req.Keywords {
		add(campaign.IDKeyword, k)
	}
}
