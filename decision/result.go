package decision

import (
	"strconv"
	"time"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

// No-fill reasons.
const (
	NoFillServingOff   = "serving_off"
	NoFillDeadline     = "deadline"
	NoFillNoCandidates = "no_candidates"
	NoFillNoWinner     = "no_winner"
	NoFillBlocked      = "blocked"
)

// Debug stages: where a campaign dropped out.
const (
	StageRequest     = "request"
	StageTargeting   = "targeting"
	StageEligibility = "eligibility"
	StageCreative    = "creative"
	StageAuction     = "auction"
	StagePacing      = "pacing"
)

// Ad is one filled slot.
type Ad struct {
	SlotIndex int
	SlotID    string
	Campaign  *campaign.Campaign
	Creative  *campaign.Creative
	// Price is what the campaign pays in its bid unit: CPM micros for a CPM
	// bid, micros per click for a CPC bid. ClearingECPM is the same as an
	// eCPM; ECPM is the winner's own eCPM.
	Price        campaign.Micros
	ClearingECPM campaign.Micros
	ECPM         campaign.Micros
	// RTBBid is the CPM bid for an OpenRTB answer (see auction.RTBBidPrice).
	RTBBid campaign.Micros
	// DealID is the OpenRTB deal the bid is made through, or "" for the
	// open market (see bestDeal).
	DealID string
	// PublisherID is the publisher of the slot's placement, or the one the
	// request names when the placement has none (what targeting saw).
	PublisherID string
	// urls are [start, end) offsets into Result.buf, by URLKind.
	urls [numURLKinds][2]int32
}

// Debug is one line of a debug explanation.
type Debug struct {
	CampaignID string          `json:"campaign_id"`
	SlotID     string          `json:"slot_id,omitempty"`
	Stage      string          `json:"stage"`
	Reason     string          `json:"reason"`
	ECPM       campaign.Micros `json:"ecpm,omitempty"`
	Price      campaign.Micros `json:"price,omitempty"`
	// WinningPrice is, for a lost auction, the winner's eCPM.
	WinningPrice campaign.Micros `json:"winning_price,omitempty"`
	WinnerID     string          `json:"winner_campaign_id,omitempty"`
}

// Result is the engine's answer to one request. Reuse it with Reset.
type Result struct {
	AuctionID string
	Ads       []Ad
	// NoFill says why nothing filled when Ads is empty.
	NoFill string
	// Debug lists every candidate's fate when the request asked for it.
	Debug []Debug
	// Slots counts, per slot of the request (in its order), the campaigns
	// the targeting index matched and the candidates that entered the
	// auction: the best few that passed every filter (see admit.go), or
	// all of them for a debug request. For the decision log.
	Slots []SlotCounts

	debug    bool
	buf      []byte // auction id and URLs
	idLen    int
	auction  auction.Request
	runner   auction.Auction
	cands    []targeting.Match
	outcomes []auction.Outcome
	slotBuf  []auction.Slot
	// Candidate admission scratch (admit.go).
	pend, admitted []pending
	advs           []string
	checked        map[*campaign.Campaign]string
}

// SlotCounts are one slot's candidate counts; see Result.Slots.
type SlotCounts struct{ Matched, Auctioned int }

// Reset clears r for reuse, keeping its memory.
func (r *Result) Reset() {
	r.AuctionID = ""
	r.Ads = r.Ads[:0]
	r.Slots = r.Slots[:0]
	r.NoFill = ""
	r.Debug = r.Debug[:0]
	r.debug = false
	r.buf = r.buf[:0]
	r.outcomes = r.outcomes[:0]
	clear(r.checked)
	for i := range r.auction.Slots {
		r.auction.Slots[i].Candidates = r.auction.Slots[i].Candidates[:0]
	}
	r.auction.Slots = r.auction.Slots[:0]
}

// URL returns the tracking URL of kind for ad; it aliases r's memory and is
// valid until r is reset.
func (r *Result) URL(ad *Ad, kind URLKind) []byte {
	u := ad.urls[kind]
	return r.buf[u[0]:u[1]]
}

func (r *Result) appendAuctionID(node, boot string, seq uint64) {
	r.buf = append(r.buf[:0], node...)
	r.buf = append(r.buf, '.')
	r.buf = append(r.buf, boot...)
	r.buf = append(r.buf, '.')
	r.buf = strconv.AppendUint(r.buf, seq, 36)
	r.idLen = len(r.buf)
	r.AuctionID = b2s(r.buf[:r.idLen])
}

// addAuctionSlot appends an auction slot, reusing candidate slices.
func (r *Result) addAuctionSlot(id string, floor campaign.Micros) *auction.Slot {
	ar := &r.auction
	if len(ar.Slots) < cap(ar.Slots) {
		ar.Slots = ar.Slots[:len(ar.Slots)+1]
	} else {
		ar.Slots = append(ar.Slots, auction.Slot{})
	}
	s := &ar.Slots[len(ar.Slots)-1]
	s.ID, s.Floor, s.Candidates = id, floor, s.Candidates[:0]
	return s
}

func (r *Result) exclude(c *campaign.Campaign, slotID, stage, reason string) {
	if !r.debug {
		return
	}
	d := Debug{SlotID: slotID, Stage: stage, Reason: reason}
	if c != nil {
		d.CampaignID = c.ID
	}
	r.Debug = append(r.Debug, d)
}

func (r *Result) addAd(req *Request, w auction.Win, publisher string) {
	deal, _, _ := bestDeal(w.Candidate.Campaign, &req.Slots[w.Slot], w.ECPM)
	r.Ads = append(r.Ads, Ad{
		DealID:       deal,
		PublisherID:  publisher,
		SlotIndex:    w.Slot,
		SlotID:       w.SlotID,
		Campaign:     w.Candidate.Campaign,
		Creative:     w.Candidate.Creative,
		Price:        w.Price,
		ClearingECPM: w.ClearingECPM,
		ECPM:         w.ECPM,
		RTBBid:       w.RTBBid(req.AuctionType),
	})
}

// explainTargeting adds, for debug requests, why each campaign of the index
// that did not match was left out (at most 1000 of them).
func (r *Result) explainTargeting(ix *targeting.Index, a *targeting.Attrs, now time.Time) {
	matched := make(map[string]bool, len(r.cands))
	for i := range r.auction.Slots {
		for _, c := range r.auction.Slots[i].Candidates {
			matched[c.Campaign.ID] = true
		}
	}
	for _, d := range r.Debug {
		matched[d.CampaignID] = true
	}
	n := 0
	ix.All(func(c *campaign.Campaign) bool {
		if matched[c.ID] {
			return true
		}
		ex := ix.Explain(a, now, c.ID)
		if ex.Match {
			return true
		}
		r.Debug = append(r.Debug, Debug{CampaignID: c.ID, Stage: StageTargeting, Reason: ex.String()})
		n++
		return n < 1000
	})
}

// appendOutcomes turns the auction's outcomes into debug lines.
func (r *Result) appendOutcomes() {
	r.outcomes = r.runner.AppendOutcomes(r.outcomes[:0])
	for _, o := range r.outcomes {
		d := Debug{CampaignID: o.Campaign.ID, SlotID: o.SlotID, Stage: StageAuction, Reason: o.Reason.String(), ECPM: o.ECPM}
		switch o.Reason {
		case auction.Won:
			d.Price = o.Price
		case auction.Lost, auction.Excluded:
			if o.By != nil {
				d.WinnerID = o.By.ID
			}
			d.WinningPrice = o.ByECPM
		}
		r.Debug = append(r.Debug, d)
	}
}

// signAd appends the ad's tracking URLs to the result's buffer.
func (e *Engine) signAd(req *Request, res *Result, ad *Ad, now time.Time) {
	if e.Sign == nil {
		return
	}
	kinds := [...]URLKind{URLImpression, URLClick}
	if req.AuctionType != 0 {
		kinds = [...]URLKind{URLWin, URLBilling}
	}
	for _, k := range kinds {
		start := len(res.buf)
		res.buf = e.Sign(res.buf, k, req, res, ad, now)
		ad.urls[k] = [2]int32{int32(start), int32(len(res.buf))}
	}
	if req.AuctionType != 0 {
		for _, k := range [...]URLKind{URLClick, URLLoss, URLImpression} {
			start := len(res.buf)
			res.buf = e.Sign(res.buf, k, req, res, ad, now)
			ad.urls[k] = [2]int32{int32(start), int32(len(res.buf))}
		}
	}
	// The buffer may have moved; refresh the id's alias.
	res.AuctionID = b2s(res.buf[:res.idLen])
}
