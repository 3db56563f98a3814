package pacing

import (
	"sync/atomic"
	"time"
)

// Reservation ring geometry. A reservation lives in the bucket of its time
// slot; slots are ReservationExpiry/slotsPerExpiry wide. Tick expires whole
// slots once they are older than the expiry. The ring holds ringSlots
// slots, so Tick may run up to ringSlots-slotsPerExpiry-1 slots late before
// a bucket is reused while it still holds an unexpired amount.
const (
	slotsPerExpiry = 30
	ringSlots      = 128
)

// reservations tracks one campaign's outstanding reservations on this node.
// All fields are atomics: Reserve, release and Cancel run concurrently on
// the decision and beacon paths; expire runs only from Tick.
//
// Invariant (between operations): total == sum(buckets). total is what the
// budget checks read.
type reservations struct {
	total   atomic.Int64
	buckets [ringSlots]atomic.Int64
	// expired is the newest slot already expired: buckets of slots <=
	// expired are empty (or about to be emptied by the running expire).
	expired atomic.Int64
}

// Reservation is an amount held against a campaign's budget between the
// decision and its beacon. The zero Reservation holds nothing.
type Reservation struct {
	s    *campState
	slot int64
	// Cost is the amount reserved.
	Cost int64
}

func slotOf(t time.Time, width int64) int64 { return t.UnixNano() / width }

// bucket returns the ring bucket of slot.
func (r *reservations) bucket(slot int64) *atomic.Int64 {
	return &r.buckets[uint64(slot)%ringSlots]
}

// add records cost in the bucket of slot, or of the oldest live slot when
// slot is already expired (a caller's clock behind Tick's), and returns the
// slot used. The caller has already added cost to total.
func (r *reservations) add(slot, cost int64) int64 {
	exp := r.expired.Load()
	if exp == 0 {
		// First use: start the ring at this caller's time.
		r.expired.CompareAndSwap(0, slot-slotsPerExpiry)
		exp = r.expired.Load()
	}
	slot = max(slot, exp+1)
	r.bucket(slot).Add(cost)
	return slot
}

// take removes up to amount from the bucket of slot and from total; it
// returns what it removed.
func (r *reservations) take(slot, amount int64) int64 {
	b := r.bucket(slot)
	for {
		v := b.Load()
		if v <= 0 {
			return 0
		}
		t := min(v, amount)
		if b.CompareAndSwap(v, v-t) {
			r.total.Add(-t)
			return t
		}
	}
}

// release frees up to amount of the oldest outstanding reservations (first
// in, first out). A charge calls it: the beacon that charges an amount
// settles the reservation made for it, or, when that reservation lives on
// another node, an equal amount of this node's oldest ones, which in
// aggregate are what the beacons arriving here settle.
func (r *reservations) release(amount, nowSlot int64) {
	if amount <= 0 || r.total.Load() <= 0 {
		return
	}
	first := r.expired.Load() + 1
	last := min(nowSlot, first+ringSlots-1)
	for s := first; s <= last && amount > 0; s++ {
		amount -= r.take(s, amount)
	}
}

// expire drops the buckets of every slot older than the expiry and returns
// the amount dropped.
func (r *reservations) expire(nowSlot int64) int64 {
	cutoff := nowSlot - slotsPerExpiry
	from := r.expired.Load() + 1
	if cutoff < from {
		return 0
	}
	if cutoff-from >= ringSlots {
		from = cutoff - ringSlots + 1
	}
	var dropped int64
	for s := from; s <= cutoff; s++ {
		if v := r.bucket(s).Swap(0); v != 0 {
			r.total.Add(-v)
			dropped += v
		}
	}
	r.expired.Store(cutoff)
	return dropped
}
