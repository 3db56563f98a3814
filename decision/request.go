// Package decision turns one ad request into ads: it asks the targeting
// index for eligible campaigns per slot, removes those that pacing,
// frequency caps, switches, floors, formats and blocks exclude, runs the
// auction, and signs the tracking URLs of the winners. It knows no HTTP:
// the server parses /v1/ad and OpenRTB bodies into a [Request] and writes
// the [Result] back in its own format.
//
// An [Engine] is safe for concurrent use. A Request and a Result are owned
// by one goroutine and reused through [AcquireRequest]/[ReleaseRequest];
// strings in a Request may alias the request body (see Request).
package decision

import (
	"sync"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Request is one ad request in the server's own terms, whatever endpoint
// it came through.
//
// Strings and slices may alias the HTTP request body and the parser's
// memory: they are valid until the request is released. Copy to keep.
type Request struct {
	ID          string
	PlacementID string
	PublisherID string
	UserID      string
	IP          string
	UA          string
	// Targeting attributes as the request states them; the engine
	// normalizes them.
	Country, Region, City string
	DeviceType, OS        string
	Browser, Language     string
	Domain, Bundle        string
	Segments, Keywords    []string

	Slots []Slot
	// Floor is the request-wide floor, applied with each slot's own.
	Floor campaign.Micros

	// Test requests are answered but never charged (and are left out of
	// reports).
	Test bool
	// NoCharge requests are served and reported, but their beacons charge
	// nothing (a user flagged by abuse detection).
	NoCharge bool
	// Debug asks for the explanation of every candidate; the server
	// accepts it only with the admin token.
	Debug bool

	// OpenRTB only.
	AuctionType int // 1 first price, 2 second price (at); 0 for /v1/ad
	// BlockedCats and BlockedDomains (bcat, badv) are sorted in place by
	// Decide.
	BlockedCats    []string
	BlockedDomains []string
	// Deadline is when the answer stops being useful (tmax); zero: none.
	Deadline time.Time
}

// Slot is one ad slot to fill.
type Slot struct {
	ID string
	// PlacementID is the slot's own placement (an OpenRTB imp's tagid);
	// empty: the request's. See [Request.SlotPlacement].
	PlacementID string
	// Sizes the slot accepts, the first being its primary size.
	Sizes []Size
	// Video slots take video creatives; others banners.
	Video bool
	// MinDuration and MaxDuration bound video creatives (seconds); 0: none.
	MinDuration, MaxDuration int
	Floor                    campaign.Micros
	// Ineligible marks a slot that cannot be filled (e.g. a floor in a
	// foreign currency); IneligibleReason says why.
	Ineligible       bool
	IneligibleReason string
	// PrivateAuction admits only campaigns set up for one of Deals, the
	// slot's deal ids (OpenRTB imp.pmp: each imp has its own).
	PrivateAuction bool
	Deals          []string
	// DealFloors holds each deal's own floor (CPM micros; 0: none),
	// parallel to Deals: a campaign bidding through deals must reach the
	// lowest floor of the slot's deals it is set up for, and pays at
	// least that floor if it wins.
	DealFloors []campaign.Micros
}

// SlotPlacement returns the placement of slot i: its own, or the
// request's.
func (r *Request) SlotPlacement(i int) string {
	if p := r.Slots[i].PlacementID; p != "" {
		return p
	}
	return r.PlacementID
}

// Placements yields each distinct placement of the request once, in slot
// order (for p := range req.Placements), skipping empty ones; a request
// without slots yields its PlacementID.
func (r *Request) Placements(yield func(string) bool) {
	if len(r.Slots) == 0 {
		if r.PlacementID != "" {
			yield(r.PlacementID)
		}
		return
	}
outer:
	for i := range r.Slots {
		p := r.SlotPlacement(i)
		if p == "" {
			continue
		}
		for j := range i {
			if r.SlotPlacement(j) == p {
				continue outer
			}
		}
		if !yield(p) {
			return
		}
	}
}

// Size is a width and height in pixels.
type Size struct{ W, H int }

var requestPool = sync.Pool{New: func() any { return new(Request) }}

// AcquireRequest returns an empty Request from a pool.
func AcquireRequest() *Request { return requestPool.Get().(*Request) }

// ReleaseRequest resets r and returns it to the pool. r must not be used
// afterwards.
func ReleaseRequest(r *Request) {
	r.Reset()
	requestPool.Put(r)
}

// Reset clears r, keeping its slices' capacity.
func (r *Request) Reset() {
	*r = Request{
		Slots:          r.Slots[:0], // AddSlot clears each reused slot
		Segments:       r.Segments[:0],
		Keywords:       r.Keywords[:0],
		BlockedCats:    r.BlockedCats[:0],
		BlockedDomains: r.BlockedDomains[:0],
	}
}

// AddSlot appends a slot, reusing memory from earlier requests, and returns
// it for filling in.
func (r *Request) AddSlot() *Slot {
	if len(r.Slots) < cap(r.Slots) {
		r.Slots = r.Slots[:len(r.Slots)+1]
		s := &r.Slots[len(r.Slots)-1]
		*s = Slot{Sizes: s.Sizes[:0], Deals: s.Deals[:0], DealFloors: s.DealFloors[:0]}
		return s
	}
	r.Slots = append(r.Slots, Slot{})
	return &r.Slots[len(r.Slots)-1]
}
