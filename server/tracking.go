package server

import (
	"net/url"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/valyala/fasthttp"
)

// Tracking endpoint paths on the serving listener.
const (
	PathImpression = "/v1/t/imp"
	PathClick      = "/v1/t/click"
	PathConversion = "/v1/t/conv"
	PathWin        = "/v1/t/win"
	PathBilling    = "/v1/t/bill"
	PathLoss       = "/v1/t/loss"
)

// TrackingSigner adapts an events.Signer to the decision engine: each ad
// gets impression and click URLs (and, for OpenRTB, win, billing and loss
// notices with the exchange's ${AUCTION_PRICE} macro) under publicURL.
//
// The beacon that charges: for a CPC campaign the click, at the auction's
// click price; for a CPM campaign served through /v1/ad the impression; for
// a CPM campaign served through OpenRTB the bid's billing beacon, at the
// price the exchange reports, never above the bid. An OpenRTB bid's win
// notice (nurl) and billing notice (burl) carry the same billing beacon,
// under PathWin and PathBilling: whichever the exchange fires first charges,
// once (see [Tracker.Serve]).
func TrackingSigner(s *events.Signer, publicURL string) decision.Signer {
	var bases [decision.URLLoss + 1]string
	var types [decision.URLLoss + 1]events.Type
	bases[decision.URLImpression], types[decision.URLImpression] = publicURL+PathImpression, events.TypeImpression
	bases[decision.URLClick], types[decision.URLClick] = publicURL+PathClick, events.TypeClick
	// nurl carries the billing beacon too: it records the win and, if the
	// burl has not yet, the billing event (Tracker.Serve).
	bases[decision.URLWin], types[decision.URLWin] = publicURL+PathWin, events.TypeBilling
	bases[decision.URLBilling], types[decision.URLBilling] = publicURL+PathBilling, events.TypeBilling
	bases[decision.URLLoss], types[decision.URLLoss] = publicURL+PathLoss, events.TypeLoss
	return func(dst []byte, kind decision.URLKind, req *decision.Request, res *decision.Result, ad *decision.Ad, now time.Time) []byte {
		b := events.Beacon{
			Type:         types[kind],
			AuctionID:    res.AuctionID,
			SlotID:       ad.SlotID,
			AdvertiserID: ad.Campaign.AdvertiserID,
			CampaignID:   ad.Campaign.ID,
			CreativeID:   ad.Creative.ID,
			PlacementID:  req.SlotPlacement(ad.SlotIndex),
			PublisherID:  ad.PublisherID,
			Country:      req.Country,
			UserID:       req.UserID,
			PriceMicros:  int64(ad.Price),
			Issued:       now,
			Test:         req.Test,
		}
		rtb := req.AuctionType != 0
		cpc := ad.Campaign.Bid.Model == campaign.BidCPC
		charge := !req.NoCharge
		switch kind {
		case decision.URLImpression:
			if !cpc && !rtb && charge {
				b.Charge = events.ChargeCPM
			}
		case decision.URLClick:
			b.Redirect = ad.Creative.LandingURL
			if cpc && charge {
				b.Charge = events.ChargeCPC
			}
		case decision.URLWin, decision.URLBilling:
			if !cpc && charge {
				b.Charge = events.ChargeCPM
			}
			b.CeilingMicros = int64(ad.RTBBid)
		case decision.URLLoss:
			b.CeilingMicros = int64(ad.RTBBid)
		}
		return s.AppendURL(dst, bases[kind], &b)
	}
}

// ConversionParam is the query parameter a click's redirect adds to the
// landing URL: the signed conversion postback URL for that click. The
// advertiser calls it (GET) when the visitor converts.
const ConversionParam = "adserver_conv"

// Tracker answers the tracking endpoints of the serving listener. Set its
// fields before the first request; it is then safe for concurrent use.
type Tracker struct {
	Signer   *events.Signer
	Recorder *events.Recorder
	// CTR learns from recorded impressions and clicks; nil: no learning.
	CTR *auction.CTRModel
	// PublicURL is this node's public base URL, for conversion postbacks.
	PublicURL string
	// Switches returns the operators' switches (nil: all on). With
	// charging off, beacons are recorded but charge nothing.
	Switches func() *decision.Switches
	// NoCharge, when set, reports whether a user's events must not charge
	// (flagged by abuse detection).
	NoCharge func(userID string, now time.Time) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

var (
	beaconWrongEndpoint = metrics.NewCounter(`adserver_beacon_rejected_total{reason="wrong_endpoint"}`)
	beaconLogFailed     = metrics.NewCounter(`adserver_beacon_failed_total{reason="event_log"}`)
	beaconUncharged     = metrics.NewCounter(`adserver_beacon_uncharged_total`)
	// beaconWinBilled counts billing events recorded by a win notice: the
	// exchange fired nurl before burl, or fires no burl.
	beaconWinBilled = metrics.NewCounter(`adserver_beacon_billed_by_win_notice_total`)
	beaconRecorded  [7]*metrics.Counter
	beaconDuplicate [7]*metrics.Counter
)

func init() {
	for t := events.TypeImpression; t <= events.TypeLoss; t++ {
		beaconRecorded[t] = metrics.NewCounter(`adserver_beacon_requests_total{type="` + t.String() + `",result="recorded"}`)
		beaconDuplicate[t] = metrics.NewCounter(`adserver_beacon_requests_total{type="` + t.String() + `",result="duplicate"}`)
	}
}

// Serve answers a tracking request of type want: it verifies the beacon,
// records it once (de-duplicated by event id), charges it and answers 204,
// or for a click 302 to the signed landing URL.
//
// OpenRTB notices and the charge. A bid's nurl (win notice, PathWin) and
// burl (billing notice, PathBilling) carry the same signed billing beacon
// (e=b, with the charge of a CPM campaign and ${AUCTION_PRICE}, checked
// against the signed bid, ceil). The charge is that one event, the bid's
// billing event, whose id derives from (auction, slot, billing):
//
//   - burl records the billing event;
//   - nurl records a win event, which charges nothing, and the billing
//     event.
//
// So an exchange that fires only nurl is charged once, at nurl's price; one
// that fires both is charged once, by the first to arrive (the other finds
// the billing event recorded: a duplicate, charged nothing); a repeated
// notice is a duplicate. The billing event's id is the same on every node,
// so ClickHouse, which keeps one row per event id, also counts it once. A
// win beacon (e=w, as issued before this rule) on PathWin records the win
// only; a node that predates the rule answers the new nurl 400 (wrong
// endpoint) and records nothing, so a rolling upgrade never charges a bid
// twice. A CPC campaign's billing beacon carries no charge (its click
// does); a test request's costs nothing.
//
// Errors: 405 for a method other than GET or HEAD; 400 for a malformed
// beacon, a beacon of another type than the endpoint's, or a price above
// the signed ceiling (nothing is recorded or charged); 403 for a forged
// signature or an unknown key; 410 for an expired beacon; 503 when the
// event log refuses an event (what was not recorded is not charged, and a
// retry records only what is missing). A repeated beacon is answered as
// the first one was, and records and charges nothing.
func (t *Tracker) Serve(ctx *fasthttp.RequestCtx, want events.Type) {
	if !ctx.IsGet() && !ctx.IsHead() {
		methodNotAllowed(ctx, "GET, HEAD")
		return
	}
	now := time.Now()
	if t.Now != nil {
		now = t.Now()
	}
	b, err := t.Signer.Verify(ctx.QueryArgs(), now)
	if err != nil {
		ve, _ := err.(*events.VerifyError)
		status := fasthttp.StatusBadRequest
		switch ve.Reason {
		case events.ReasonForged, events.ReasonUnknownKey:
			status = fasthttp.StatusForbidden
		case events.ReasonExpired:
			status = fasthttp.StatusGone
		}
		writeError(ctx, status, "beacon_"+string(ve.Reason), ve.Message, ve.Field)
		return
	}
	// bills: a win notice carrying the bid's billing beacon.
	bills := want == events.TypeWin && b.Type == events.TypeBilling
	if b.Type != want && !bills {
		beaconWrongEndpoint.Inc()
		writeError(ctx, fasthttp.StatusBadRequest, "beacon_wrong_endpoint",
			"this is a "+b.Type.String()+" beacon; send it to its own endpoint", "e")
		return
	}
	if b.Charge != events.ChargeNone && !t.charging(b.UserID, now) {
		b.Charge = events.ChargeNone
		beaconUncharged.Inc()
	}
	if bills {
		win := b
		win.Type, win.Charge = events.TypeWin, events.ChargeNone
		if _, ok := t.record(ctx, &win); !ok {
			return
		}
		res, ok := t.record(ctx, &b)
		if !ok {
			return
		}
		if res == events.Recorded {
			beaconWinBilled.Inc()
		}
	} else if _, ok := t.record(ctx, &b); !ok {
		return
	}
	if b.Type == events.TypeClick && b.Redirect != "" {
		ctx.Response.Header.Set("Location", t.landingURL(&b))
		ctx.Response.Header.Set("Cache-Control", "no-store")
		ctx.SetStatusCode(fasthttp.StatusFound)
		return
	}
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// record records b's event and counts it; it answers 503 and returns false
// when the event log refuses it.
func (t *Tracker) record(ctx *fasthttp.RequestCtx, b *events.Beacon) (events.Result, bool) {
	res, err := t.Recorder.Record(b)
	if err != nil {
		beaconLogFailed.Inc()
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "event_log_unavailable",
			"the event could not be stored; it was not recorded or charged, retry later", "")
		return 0, false
	}
	if res != events.Recorded {
		beaconDuplicate[b.Type].Inc()
		return res, true
	}
	beaconRecorded[b.Type].Inc()
	if t.CTR != nil && !b.Test {
		switch b.Type {
		case events.TypeImpression:
			t.CTR.RecordImpression(b.CreativeID, b.PlacementID)
		case events.TypeClick:
			t.CTR.RecordClick(b.CreativeID, b.PlacementID)
		}
	}
	return res, true
}

// charging reports whether events of userID charge now.
func (t *Tracker) charging(userID string, now time.Time) bool {
	if t.Switches != nil {
		if sw := t.Switches(); sw != nil && !sw.Charging {
			return false
		}
	}
	return t.NoCharge == nil || !t.NoCharge(userID, now)
}

// landingURL is the click's signed landing URL with the conversion
// postback for this click added as ConversionParam.
func (t *Tracker) landingURL(click *events.Beacon) string {
	u, err := url.Parse(click.Redirect)
	if err != nil || t.PublicURL == "" {
		return click.Redirect
	}
	conv := click.Conversion()
	postback := t.Signer.AppendURL(nil, t.PublicURL+PathConversion, &conv)
	q := u.Query()
	q.Set(ConversionParam, string(postback))
	u.RawQuery = q.Encode()
	return u.String()
}
