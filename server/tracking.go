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
// The beacon that charges: for a CPM campaign the impression (or, for
// OpenRTB, the billing notice, at the price the exchange reports, never
// above the bid); for a CPC campaign the click, at the auction's click
// price.
func TrackingSigner(s *events.Signer, publicURL string) decision.Signer {
	var bases [decision.URLLoss + 1]string
	var types [decision.URLLoss + 1]events.Type
	bases[decision.URLImpression], types[decision.URLImpression] = publicURL+PathImpression, events.TypeImpression
	bases[decision.URLClick], types[decision.URLClick] = publicURL+PathClick, events.TypeClick
	bases[decision.URLWin], types[decision.URLWin] = publicURL+PathWin, events.TypeWin
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
			PlacementID:  req.PlacementID,
			PublisherID:  req.PublisherID,
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
		case decision.URLBilling:
			if !cpc && charge {
				b.Charge = events.ChargeCPM
			}
			b.CeilingMicros = int64(ad.RTBBid)
		case decision.URLWin, decision.URLLoss:
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
	beaconRecorded      [7]*metrics.Counter
	beaconDuplicate     [7]*metrics.Counter
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
// Errors: 405 for a method other than GET or HEAD; 400 for a malformed
// beacon, a beacon of another type than the endpoint's, or a price above
// the signed ceiling; 403 for a forged signature or an unknown key; 410 for
// an expired beacon; 503 when the event log refuses the event (nothing is
// recorded or charged, so the caller may retry). A repeated beacon is
// answered as the first one was, and records and charges nothing.
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
	if b.Type != want {
		beaconWrongEndpoint.Inc()
		writeError(ctx, fasthttp.StatusBadRequest, "beacon_wrong_endpoint",
			"this is a "+b.Type.String()+" beacon; send it to its own endpoint", "e")
		return
	}
	if b.Charge != events.ChargeNone && !t.charging(b.UserID, now) {
		b.Charge = events.ChargeNone
		beaconUncharged.Inc()
	}
	res, err := t.Recorder.Record(&b)
	if err != nil {
		beaconLogFailed.Inc()
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "event_log_unavailable",
			"the event could not be stored; nothing was recorded or charged, retry later", "")
		return
	}
	if res == events.Recorded {
		beaconRecorded[b.Type].Inc()
		if t.CTR != nil && !b.Test {
			switch b.Type {
			case events.TypeImpression:
				t.CTR.RecordImpression(b.CreativeID, b.PlacementID)
			case events.TypeClick:
				t.CTR.RecordClick(b.CreativeID, b.PlacementID)
			}
		}
	} else {
		beaconDuplicate[b.Type].Inc()
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
