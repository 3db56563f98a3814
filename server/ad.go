package server

import (
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fastjson"
)

// adState is the per-request memory of the ad endpoints, pooled.
type adState struct {
	parser fastjson.Parser
	req    decision.Request
	res    decision.Result
	out    []byte
}

var adStatePool = sync.Pool{New: func() any { return new(adState) }}

func acquireAdState() *adState { return adStatePool.Get().(*adState) }

func releaseAdState(st *adState) {
	st.req.Reset()
	st.res.Reset()
	st.out = st.out[:0]
	adStatePool.Put(st)
}

// handleAd serves POST /v1/ad.
func (s *Server) handleAd(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		methodNotAllowed(ctx, "POST")
		return
	}
	now := s.now()
	if !s.admitIP(ctx, now) {
		return
	}
	st := acquireAdState()
	defer releaseAdState(st)
	if err := parseAdRequest(&st.parser, ctx.PostBody(), &st.req); err != nil {
		writeError(ctx, fasthttp.StatusBadRequest, err.code, err.Error(), err.field)
		return
	}
	if st.req.Debug && !s.isAdmin(ctx) {
		writeError(ctx, fasthttp.StatusForbidden, "debug_forbidden", "debug requests need Authorization: Bearer <admin token>", "debug")
		return
	}
	if !s.admitRequest(ctx, &st.req, now) {
		return
	}
	s.decide(&st.req, &st.res)
	if len(st.res.Ads) == 0 && !st.req.Debug {
		ctx.Response.Header.Set("X-No-Fill-Reason", st.res.NoFill)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	st.out = appendAdResponse(st.out[:0], &st.req, &st.res)
	ctx.SetContentType("application/json")
	ctx.SetBody(st.out)
}

// decide runs the engine against the current catalog and switches, and
// ships the decision to the decision log when it is sampled (see
// DecisionSampled). Both /v1/ad and /openrtb2/bid decide here.
func (s *Server) decide(req *decision.Request, res *decision.Result) {
	snap := s.Feed.Snapshot()
	cat := decision.Catalog{Index: snap.Index, Placements: snap.Placements}
	sw := s.switches()
	now := s.now()
	s.Engine.Decide(req, &cat, sw, now, res)
	if res.NoFill != "" {
		if c := noFillCounters[res.NoFill]; c != nil {
			c.Inc()
		} else {
			noFillOther.Inc()
		}
	}
	// Not sampled costs a float compare, two nil checks and a hash of the
	// auction id (~20 bytes): no lock, no shared write, no allocation.
	if rate := sw.DecisionLogSample; rate > 0 && s.Tracker != nil && s.Tracker.Recorder != nil &&
		DecisionSampled(s.Engine.Seed, res.AuctionID, rate) {
		s.logDecision(s.Tracker.Recorder, req, res, snap.Placements, now)
	}
}

// DecisionSampled reports whether a node whose engine is seeded with seed
// ships the decision of auctionID to the decision log at the sample rate
// (decision_log_sample, in [0, 1]): rate 0 ships none, 1 every one, and
// in between a seeded 64-bit hash of the auction id is compared with rate
// times 2^64. The choice is a pure function of (seed, auction id, rate):
// it needs no shared state (no lock, no atomic counter), is the same on a
// retry of the check, and lets a test or an analyst tell exactly which
// auctions of a node belong in the log.
func DecisionSampled(seed uint64, auctionID string, rate float64) bool {
	switch {
	case !(rate > 0): // also NaN
		return false
	case rate >= 1:
		return true
	}
	return hashAuctionID(seed, auctionID) < uint64(rate*(1<<64))
}

// hashAuctionID is a seeded 64-bit hash of s: eight bytes at a time through
// the splitmix64 finalizer. Auction ids differ only in their last few
// characters (a per-node sequence number), which the finalizer spreads
// over all 64 bits.
func hashAuctionID(seed uint64, s string) uint64 {
	h := mix64(seed ^ uint64(len(s))*0x9E3779B97F4A7C15)
	for len(s) >= 8 {
		w := uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
			uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
		h = mix64(h ^ w)
		s = s[8:]
	}
	var w uint64
	for i := 0; i < len(s); i++ {
		w |= uint64(s[i]) << (8 * i)
	}
	return mix64(h ^ w ^ 0xFF51AFD7ED558CCD)
}

// mix64 is the splitmix64 output function.
func mix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// logDecision appends one events.Decision per slot of the request (one
// with an empty slot id if it had none) to the event log, from which the
// shipper inserts them into the ClickHouse decisions table. Candidates
// are the campaigns the index matched for the slot, Bids those that
// entered its auction (decision.Result.Slots). A log that refuses the
// record (full, closed) is counted by the Recorder
// (adserver_events_log_failed_total) and not reported per request.
//
// The records alias req and res; RecordDecision encodes them before it
// returns and keeps nothing.
func (s *Server) logDecision(rec *events.Recorder, req *decision.Request, res *decision.Result, placements map[string]*campaign.Placement, now time.Time) {
	d := events.Decision{
		Time:      now,
		AuctionID: res.AuctionID,
		Country:   req.Country,
		Test:      req.Test,
	}
	// place sets the record's placement, its publisher, and returns its floor.
	place := func(id string) campaign.Micros {
		d.PlacementID, d.PublisherID = id, req.PublisherID
		if pl := placements[id]; pl != nil {
			if pl.PublisherID != "" {
				d.PublisherID = pl.PublisherID
			}
			return pl.Floor
		}
		return 0
	}
	d.LatencyMicros = s.now().Sub(now).Microseconds()
	if len(req.Slots) == 0 {
		d.FloorMicros = int64(max(place(req.PlacementID), req.Floor, 0))
		d.NoFillReason = res.NoFill
		_ = rec.RecordDecision(&d)
		return
	}
	for i := range req.Slots {
		slot := &req.Slots[i]
		d.SlotID = slot.ID
		d.FloorMicros = int64(max(place(req.SlotPlacement(i)), slot.Floor, req.Floor, 0))
		d.WinnerAdvertiserID, d.WinnerCampaignID, d.WinnerCreativeID = "", "", ""
		d.BidMicros, d.PriceMicros, d.NoFillReason = 0, 0, ""
		d.Candidates, d.Bids = 0, 0
		if i < len(res.Slots) {
			d.Candidates, d.Bids = int32(res.Slots[i].Matched), int32(res.Slots[i].Auctioned)
		}
		if ad := adOfSlot(res, i); ad != nil {
			d.WinnerAdvertiserID = ad.Campaign.AdvertiserID
			d.WinnerCampaignID = ad.Campaign.ID
			d.WinnerCreativeID = ad.Creative.ID
			d.BidMicros = int64(ad.ECPM)
			if req.AuctionType != 0 {
				d.BidMicros = int64(ad.RTBBid) // what the exchange saw
			}
			d.PriceMicros = int64(ad.ClearingECPM)
		} else {
			switch {
			case res.NoFill != "":
				d.NoFillReason = res.NoFill
			case slot.Ineligible:
				d.NoFillReason = slot.IneligibleReason
			default: // another slot of the request filled
				d.NoFillReason = decision.NoFillNoWinner
			}
		}
		d.Time, d.NodeID, d.Seq = now, "", 0
		_ = rec.RecordDecision(&d)
	}
}

// adOfSlot returns the ad that filled req.Slots[i], or nil.
func adOfSlot(res *decision.Result, i int) *decision.Ad {
	for j := range res.Ads {
		if res.Ads[j].SlotIndex == i {
			return &res.Ads[j]
		}
	}
	return nil
}

// appendAdResponse writes the /v1/ad answer:
// {"id":"r-1","ads":[{"slot_id":...,"impression_url":...,"click_url":...}]}.
func appendAdResponse(b []byte, req *decision.Request, res *decision.Result) []byte {
	b = append(b, `{"id":`...)
	b = appendJSONString(b, req.ID)
	b = append(b, `,"auction_id":`...)
	b = appendJSONString(b, res.AuctionID)
	b = append(b, `,"ads":[`...)
	for i := range res.Ads {
		ad := &res.Ads[i]
		if i > 0 {
			b = append(b, ',')
		}
		cr := ad.Creative
		click := res.URL(ad, decision.URLClick)
		b = append(b, `{"slot_id":`...)
		b = appendJSONString(b, ad.SlotID)
		b = append(b, `,"campaign_id":`...)
		b = appendJSONString(b, ad.Campaign.ID)
		b = append(b, `,"creative_id":`...)
		b = appendJSONString(b, cr.ID)
		b = append(b, `,"advertiser_id":`...)
		b = appendJSONString(b, ad.Campaign.AdvertiserID)
		b = append(b, `,"format":`...)
		b = appendJSONString(b, cr.Format)
		switch {
		case cr.HTML != "":
			b = append(b, `,"html":`...)
			b = appendJSONStringReplacing(b, cr.HTML, "{{CLICK_URL}}", click)
		case cr.VASTURL != "":
			b = append(b, `,"vast_url":`...)
			b = appendJSONString(b, cr.VASTURL)
		case cr.VASTXML != "":
			b = append(b, `,"vast_xml":`...)
			b = appendJSONString(b, cr.VASTXML)
		}
		if cr.Duration > 0 {
			b = append(b, `,"duration":`...)
			b = strconv.AppendInt(b, int64(cr.Duration), 10)
		}
		b = append(b, `,"w":`...)
		b = strconv.AppendInt(b, int64(cr.W), 10)
		b = append(b, `,"h":`...)
		b = strconv.AppendInt(b, int64(cr.H), 10)
		b = append(b, `,"price":`...)
		b = ad.ClearingECPM.AppendDecimal(b)
		if len(cr.Adomain) > 0 {
			b = append(b, `,"adomain":[`...)
			for j, d := range cr.Adomain {
				if j > 0 {
					b = append(b, ',')
				}
				b = appendJSONString(b, d)
			}
			b = append(b, ']')
		}
		b = append(b, `,"impression_url":`...)
		b = appendJSONBytes(b, res.URL(ad, decision.URLImpression))
		b = append(b, `,"click_url":`...)
		b = appendJSONBytes(b, click)
		b = append(b, '}')
	}
	b = append(b, ']')
	if req.Debug {
		b = appendDebug(b, res)
	}
	return append(b, '}')
}

func appendDebug(b []byte, res *decision.Result) []byte {
	b = append(b, `,"no_fill_reason":`...)
	b = appendJSONString(b, res.NoFill)
	b = append(b, `,"debug":[`...)
	for i, d := range res.Debug {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"campaign_id":`...)
		b = appendJSONString(b, d.CampaignID)
		if d.SlotID != "" {
			b = append(b, `,"slot_id":`...)
			b = appendJSONString(b, d.SlotID)
		}
		b = append(b, `,"stage":`...)
		b = appendJSONString(b, d.Stage)
		b = append(b, `,"reason":`...)
		b = appendJSONString(b, d.Reason)
		if d.ECPM != 0 {
			b = append(b, `,"ecpm":`...)
			b = d.ECPM.AppendDecimal(b)
		}
		if d.Price != 0 {
			b = append(b, `,"price":`...)
			b = d.Price.AppendDecimal(b)
		}
		if d.WinnerID != "" {
			b = append(b, `,"winner_campaign_id":`...)
			b = appendJSONString(b, d.WinnerID)
			b = append(b, `,"winning_price":`...)
			b = d.WinningPrice.AppendDecimal(b)
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string, escaping what JSON needs and
// <, >, & so that the answer is safe to embed in HTML.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendEscaped(b, s)
	return append(b, '"')
}

func appendJSONBytes(b []byte, s []byte) []byte { return appendJSONString(b, b2s(s)) }

// appendJSONStringReplacing appends s with every old replaced by repl, as
// one JSON string.
func appendJSONStringReplacing(b []byte, s, old string, repl []byte) []byte {
	b = append(b, '"')
	for {
		i := strings.Index(s, old)
		if i < 0 {
			break
		}
		b = appendEscaped(b, s[:i])
		b = appendEscaped(b, b2s(repl))
		s = s[i+len(old):]
	}
	b = appendEscaped(b, s)
	return append(b, '"')
}

// jsonSafe holds the ASCII bytes a JSON string carries as they are: not
// control characters, quotes or backslashes, nor <, > and & (escaped as in
// HTML-safe JSON, since strings carry markup).
var jsonSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

func appendEscaped(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if jsonSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	return append(b, s[start:]...)
}
