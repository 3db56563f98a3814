package events

import (
	"net/url"
	"time"
)

// ChargeModel says what firing a beacon charges the campaign.
type ChargeModel uint8

// Charge models. The server puts ChargeCPM on the beacon that bills a CPM
// campaign (the impression, or an OpenRTB billing notice) and ChargeCPC on
// the click beacon of a CPC campaign; every other beacon charges nothing.
const (
	ChargeNone ChargeModel = 0
	ChargeCPM  ChargeModel = 1 // cost = PriceMicros / 1000 (one impression at a CPM)
	ChargeCPC  ChargeModel = 2 // cost = PriceMicros
)

// Beacon is what a tracking URL carries. Every field is covered by the
// signature except, in OpenRTB mode (CeilingMicros > 0), the exchange-filled
// price.
type Beacon struct {
	Type         Type
	AuctionID    string
	SlotID       string
	AdvertiserID string
	CampaignID   string
	CreativeID   string
	PlacementID  string
	PublisherID  string // optional
	Country      string
	UserID       string // optional
	// Redirect is an optional landing URL for click beacons. It is signed,
	// so a click handler may redirect to it without being an open redirect.
	Redirect string

	Charge ChargeModel
	// PriceMicros is the clearing price (CPM micros, or the click price for
	// CPC). In OpenRTB mode AppendURL ignores it and Verify fills it from the
	// exchange's ${AUCTION_PRICE} substitution.
	PriceMicros int64
	// CeilingMicros, when positive, selects OpenRTB mode: the URL carries
	// price=${AUCTION_PRICE} (unsigned, filled by the exchange in currency
	// units) and ceil=CeilingMicros (signed, normally the bid), and Verify
	// rejects a price above the ceiling.
	CeilingMicros int64
	// Issued is the issue time, second precision. AppendURL uses the
	// Signer's clock when it is zero.
	Issued time.Time
	Test   bool
}

// CostMicros is what this beacon charges: PriceMicros/1000 for ChargeCPM
// (truncated to the micro), PriceMicros for ChargeCPC, else 0. Test beacons
// cost nothing.
func (b *Beacon) CostMicros() int64 {
	if b.Test || b.PriceMicros <= 0 {
		return 0
	}
	switch b.Charge {
	case ChargeCPM:
		return b.PriceMicros / 1000
	case ChargeCPC:
		return b.PriceMicros
	}
	return 0
}

// Conversion returns the conversion beacon attributed to click b: same
// auction, slot and dimensions, type conversion, no charge, no redirect,
// issued at the click's issue time so ConversionMaxAge is the attribution
// window. Its event ID derives from the click's auction and slot, so one
// click converts at most once. Sign it (AppendURL) and hand it to the
// advertiser, e.g. as a parameter of the landing URL.
func (b *Beacon) Conversion() Beacon {
	c := *b
	c.Type = TypeConversion
	c.Charge = ChargeNone
	c.Redirect = ""
	c.CeilingMicros = 0
	return c
}

// EventID returns the ID of the event this beacon records.
func (b *Beacon) EventID() ID { return EventID(b.AuctionID, b.SlotID, b.Type) }

// ToEvent fills e from b. It leaves Time, NodeID and Seq to the caller.
// The strings are shared with b.
func (b *Beacon) ToEvent(e *Event) {
	*e = Event{
		Type:         b.Type,
		ID:           b.EventID(),
		AuctionID:    b.AuctionID,
		SlotID:       b.SlotID,
		AdvertiserID: b.AdvertiserID,
		CampaignID:   b.CampaignID,
		CreativeID:   b.CreativeID,
		PlacementID:  b.PlacementID,
		PublisherID:  b.PublisherID,
		Country:      b.Country,
		UserID:       b.UserID,
		PriceMicros:  b.PriceMicros,
		CostMicros:   b.CostMicros(),
		Test:         b.Test,
	}
}

// Args gives Verify the query arguments of a tracking request.
// *fasthttp.Args satisfies it (Peek returns the unescaped value, nil when
// absent); URLValues adapts net/url.
type Args interface {
	Peek(key string) []byte
}

// URLValues adapts url.Values to Args.
type URLValues url.Values

// Peek returns the first value of key, nil when absent.
func (v URLValues) Peek(key string) []byte {
	vs := v[key]
	if len(vs) == 0 {
		return nil
	}
	return []byte(vs[0])
}

// Reason classifies a beacon rejection; it is the label of
// adserver_beacon_rejected_total.
type Reason string

// Rejection reasons.
const (
	ReasonMalformed         Reason = "malformed"
	ReasonUnknownKey        Reason = "unknown_key"
	ReasonForged            Reason = "forged"
	ReasonExpired           Reason = "expired"
	ReasonPriceAboveCeiling Reason = "price_above_ceiling"
)

// VerifyError is the error Verify returns. Message is safe to show to the
// caller; it never contains secrets.
type VerifyError struct {
	Reason Reason
	// Field is the query parameter at fault, if any.
	Field   string
	Message string
}

func (e *VerifyError) Error() string {
	if e.Field != "" {
		return "beacon " + string(e.Reason) + ": " + e.Field + ": " + e.Message
	}
	return "beacon " + string(e.Reason) + ": " + e.Message
}

// ReasonOf returns the Reason of a Verify error, "" for nil or other errors.
func ReasonOf(err error) Reason {
	if ve, ok := err.(*VerifyError); ok {
		return ve.Reason
	}
	return ""
}
