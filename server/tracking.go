package server

import (
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
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
		switch kind {
		case decision.URLImpression:
			if !cpc && !rtb {
				b.Charge = events.ChargeCPM
			}
		case decision.URLClick:
			b.Redirect = ad.Creative.LandingURL
			if cpc {
				b.Charge = events.ChargeCPC
			}
		case decision.URLBilling:
			if !cpc {
				b.Charge = events.ChargeCPM
			}
			b.CeilingMicros = int64(ad.RTBBid)
		case decision.URLWin, decision.URLLoss:
			b.CeilingMicros = int64(ad.RTBBid)
		}
		return s.AppendURL(dst, bases[kind], &b)
	}
}
