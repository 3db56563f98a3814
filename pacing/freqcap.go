package pacing

import (
	"fmt"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/dgraph-io/ristretto/v2"
)

// FreqCaps enforces campaigns' frequency caps: at most Count exposures of
// one user to one campaign per Window. A window opens at the user's first
// counted exposure and lasts Window; the next exposure after it opens a new
// one (a fixed window, not a sliding one).
//
// Counts live in a ristretto cache bounded by its MaxCost: under memory
// pressure the least valuable entries are evicted and those users' counts
// start again from zero (fail-open: a cap can be exceeded, a request is
// never refused for lack of memory). Entries also expire one Window (plus a
// minute) of wall time after they were created.
//
// Counts are per node: a cap holds across the fleet only when the load
// balancer routes each user to one node (consistent hashing on the user
// id); otherwise a user can see up to Count ads per node per window.
//
// All methods are safe for concurrent use. Two first exposures of the same
// user to the same campaign racing on two cores may count as one.
type FreqCaps struct {
	cache *ristretto.Cache[uint64, *capEntry]
	seed  maphash.Seed
}

// capEntry is the count of one (user, campaign).
type capEntry struct {
	// check is a second hash of the key: the cache is keyed by a 64-bit
	// hash alone, and a mismatch means another key collided.
	check uint64
	// state packs the window start (unix seconds) << capCountBits | count.
	state atomic.Uint64
}

const (
	capCountBits = 24
	capMaxCount  = 1<<capCountBits - 1
	// capEntryCost is what one entry is charged against MaxCost, in
	// bytes; ristretto adds its own per-item bookkeeping on top.
	capEntryCost = 64
	// capBytesPerEntry estimates all memory of one entry, for sizing the
	// admission counters.
	capBytesPerEntry = 120
)

// NewFreqCaps returns a frequency-cap store holding at most about maxCost
// bytes of counts (plus about 3 bytes per 12 bytes of maxCost for the
// admission policy's counters). Close releases its goroutines.
func NewFreqCaps(maxCost int64) (*FreqCaps, error) {
	if maxCost <= 0 {
		return nil, fmt.Errorf("frequency caps: MaxCost %d: must be > 0", maxCost)
	}
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, *capEntry]{
		NumCounters: max(10*maxCost/capBytesPerEntry, 100),
		MaxCost:     maxCost,
		BufferItems: 64,
	})
	if err != nil {
		return nil, err
	}
	return &FreqCaps{cache: cache, seed: maphash.MakeSeed()}, nil
}

// Close stops the cache's goroutines.
func (f *FreqCaps) Close() { f.cache.Close() }

// Wait blocks until every recorded exposure is visible to Allows. The
// cache applies new entries asynchronously (within microseconds); tests
// and simulations call Wait to be exact.
func (f *FreqCaps) Wait() { f.cache.Wait() }

func (f *FreqCaps) keys(userID, campaignID string) (key, check uint64) {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteString(userID)
	h.WriteByte(0)
	h.WriteString(campaignID)
	key = h.Sum64()
	h.WriteByte(1)
	return key, h.Sum64()
}

func capWindow(fc *campaign.FrequencyCap) int64 {
	return max(int64(time.Duration(fc.Window)/time.Second), 1)
}

// Allows reports whether userID may see c at now under c's frequency cap.
// A campaign without a cap always allows. A request without a user id
// cannot be counted, so it never passes a campaign that has a cap.
// Allocation-free.
func (f *FreqCaps) Allows(userID string, c *campaign.Campaign, now time.Time) bool {
	fc := c.FrequencyCap
	if fc == nil || fc.Count <= 0 {
		return true
	}
	if userID == "" {
		return false
	}
	key, check := f.keys(userID, c.ID)
	e, ok := f.cache.Get(key)
	if !ok || e.check != check {
		return true
	}
	st := e.state.Load()
	if now.Unix() >= int64(st>>capCountBits)+capWindow(fc) {
		return true
	}
	return int(st&capMaxCount) < fc.Count
}

// Record counts one exposure of userID to c at now. Call it when c wins a
// slot for userID, at decision time: the check and the count then happen
// on the same node without waiting for the beacon, so a burst of requests
// cannot slip past the cap (an unrendered ad counts too, erring on the side
// of the user). Allocation-free for a user already counted in the current
// window; the first exposure of a window allocates the entry.
func (f *FreqCaps) Record(userID string, c *campaign.Campaign, now time.Time) {
	fc := c.FrequencyCap
	if fc == nil || fc.Count <= 0 || userID == "" {
		return
	}
	key, check := f.keys(userID, c.ID)
	sec, win := now.Unix(), capWindow(fc)
	if e, ok := f.cache.Get(key); ok && e.check == check {
		for {
			st := e.state.Load()
			if sec >= int64(st>>capCountBits)+win {
				break // the window is over: start a new entry with a fresh TTL
			}
			next := st
			if st&capMaxCount < capMaxCount {
				next++
			}
			if e.state.CompareAndSwap(st, next) {
				return
			}
		}
	}
	e := &capEntry{check: check}
	e.state.Store(uint64(max(sec, 0))<<capCountBits | 1)
	f.cache.SetWithTTL(key, e, capEntryCost, time.Duration(win)*time.Second+time.Minute)
}
