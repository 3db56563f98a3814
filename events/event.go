package events

import (
	"crypto/sha256"
	"encoding/hex"
	"time"
)

// Type is the kind of an event. The numeric values are stored in the log
// and in ClickHouse (Enum8); never renumber them.
type Type uint8

// Event types.
const (
	TypeUnknown    Type = 0
	TypeImpression Type = 1
	TypeClick      Type = 2
	TypeConversion Type = 3
	TypeWin        Type = 4 // OpenRTB win notice (nurl)
	TypeBilling    Type = 5 // OpenRTB billing notice (burl)
	TypeLoss       Type = 6 // OpenRTB loss notice (lurl)
	typeEnd        Type = 7
)

var typeNames = [typeEnd]string{"unknown", "impression", "click", "conversion", "win", "billing", "loss"}

// typeCodes are the one-letter codes used in tracking URLs.
var typeCodes = [typeEnd]byte{'?', 'i', 'c', 'v', 'w', 'b', 'l'}

// String returns the lowercase name of t, as stored in ClickHouse.
func (t Type) String() string {
	if t < typeEnd {
		return typeNames[t]
	}
	return "unknown"
}

// Valid reports whether t is one of the defined event types.
func (t Type) Valid() bool { return t > TypeUnknown && t < typeEnd }

// ParseType parses a name as returned by Type.String.
func ParseType(s string) (Type, bool) {
	for i := TypeImpression; i < typeEnd; i++ {
		if typeNames[i] == s {
			return i, true
		}
	}
	return TypeUnknown, false
}

func typeFromCode(c byte) Type {
	for i := TypeImpression; i < typeEnd; i++ {
		if typeCodes[i] == c {
			return i
		}
	}
	return TypeUnknown
}

// ID identifies an event. It is derived deterministically from
// (auction id, slot id, event type), so the same beacon fired twice, on any
// node, has the same ID.
type ID [16]byte

// String returns the ID in hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// EventID derives the ID of the event of type t for the given auction and
// slot. A conversion's ID derives from the auction and slot of the click it
// is tied to, so at most one conversion is counted per click.
//
// It is SHA-256 over a length-prefixed encoding, truncated to 128 bits; it
// does not allocate for ids up to 200 bytes together.
func EventID(auctionID, slotID string, t Type) ID {
	var stack [256]byte
	b := stack[:0]
	b = appendString(b, auctionID)
	b = appendString(b, slotID)
	b = append(b, byte(t))
	sum := sha256.Sum256(b)
	var id ID
	copy(id[:], sum[:16])
	return id
}

// Event is one tracked event. Strings are owned by the Event (never
// borrowed from a request buffer) unless documented otherwise by the
// function that filled it.
type Event struct {
	Type Type
	ID   ID
	// Time is when the event was recorded (the Recorder's clock).
	Time time.Time
	// NodeID names the server node that recorded the event.
	NodeID string
	// Seq is the per-node sequence number the Log assigned to the record
	// carrying this event; zero until the event has been appended.
	Seq uint64

	AuctionID    string
	SlotID       string
	AdvertiserID string
	CampaignID   string
	CreativeID   string
	PlacementID  string
	PublisherID  string
	Country      string
	UserID       string // optional

	// PriceMicros is the clearing price: a CPM for impression-type events,
	// the click price for CPC clicks.
	PriceMicros int64
	// CostMicros is what was charged to the campaign for this event.
	CostMicros int64
	// Test marks test traffic: logged, but never charged and excluded from
	// the rollups.
	Test bool
}

// Reset zeroes e for reuse.
func (e *Event) Reset() { *e = Event{} }

// Decision is a sampled auction record, stored in the ClickHouse
// "decisions" table. It is not de-duplicated and never charges.
type Decision struct {
	Time   time.Time
	NodeID string
	Seq    uint64 // assigned by the Log

	AuctionID   string
	SlotID      string
	PlacementID string
	PublisherID string
	Country     string

	// Candidates is how many campaigns were eligible after targeting,
	// Bids how many entered the auction after pacing and caps.
	Candidates int32
	Bids       int32

	WinnerAdvertiserID string
	WinnerCampaignID   string
	WinnerCreativeID   string
	BidMicros          int64 // winner's bid (CPM micros)
	PriceMicros        int64 // clearing price (CPM micros)
	FloorMicros        int64
	// NoFillReason is empty when the slot filled.
	NoFillReason  string
	LatencyMicros int64
	Test          bool
}

// Reset zeroes d for reuse.
func (d *Decision) Reset() { *d = Decision{} }
