package guard

import (
	"fmt"
	"hash/maphash"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// Abuse defaults.
const (
	DefaultMaxDistinct = 5
	DefaultWindow      = 10 * time.Second
	DefaultFlagFor     = 10 * time.Minute
	DefaultMaxUsers    = 1 << 17
	DefaultMaxFlagged  = 1 << 16

	maxMaxDistinct = 64
	maxEntries     = 1 << 28
)

var (
	abuseFlaggedUsers    = metrics.NewCounter(`adserver_abuse_flagged_users_total`)
	abuseFlaggedRequests = metrics.NewCounter(`adserver_abuse_flagged_requests_total`)
	abuseEvictedUsers    = metrics.NewCounter(`adserver_abuse_evicted_total{table="users"}`)
	abuseEvictedFlags    = metrics.NewCounter(`adserver_abuse_evicted_total{table="flagged"}`)
)

// AbuseConfig configures an Abuse detector. The zero value is valid: every
// field has a default.
type AbuseConfig struct {
	// MaxDistinct is the number of distinct IPs, and separately of distinct
	// devices, a user may show within Window without being flagged: the
	// sighting of distinct IP (or device) number MaxDistinct+1 within Window
	// flags the user. Default 5; at most 64.
	MaxDistinct int
	// Window is the length of the sliding window: at time now it covers
	// (now-Window, now]. Default 10s.
	Window time.Duration
	// FlagFor is how long a user stays flagged after the last sighting at
	// which the window held more than MaxDistinct IPs or devices. It must
	// be at least Window. The beacon path asks Flagged when a beacon
	// arrives, so FlagFor should cover the time until the last beacon of
	// the user's ads arrives; a beacon later than that is charged. Default
	// 10m.
	FlagFor time.Duration
	// MaxUsers bounds the users being tracked, that is seen within the last
	// Window. Each takes 16+24*(MaxDistinct+1) bytes (160 at the default),
	// so the default 131,072 takes about 21 MB. When full, a new user takes
	// the place of the least recently seen of the 8 users in its bucket,
	// and adserver_abuse_evicted_total{table="users"} counts it if that
	// user was seen within Window. Size it to the distinct users a node
	// sees in one Window; an abuser is seen often, so it is the last to be
	// evicted. Rounded up to a multiple of 8 times the shard count.
	MaxUsers int
	// MaxFlagged bounds the users currently flagged, 16 bytes each; default
	// 65,536 (1 MB). Flags are kept apart from the tracking table, so a
	// flood of new users cannot push them out. When full, a new flag takes
	// the place of the flag closest to expiry in its bucket, counted by
	// adserver_abuse_evicted_total{table="flagged"}.
	MaxFlagged int
}

// Validate reports the first invalid field.
func (c AbuseConfig) Validate() error {
	switch {
	case c.MaxDistinct < 0 || c.MaxDistinct > maxMaxDistinct:
		return fmt.Errorf("guard: invalid MaxDistinct %d: must be between 1 and %d (0 for the default %d)",
			c.MaxDistinct, maxMaxDistinct, DefaultMaxDistinct)
	case c.Window < 0:
		return fmt.Errorf("guard: invalid Window %s: must be positive (0 for the default %s)", c.Window, DefaultWindow)
	case c.FlagFor < 0:
		return fmt.Errorf("guard: invalid FlagFor %s: must be positive (0 for the default %s)", c.FlagFor, DefaultFlagFor)
	case c.flagFor() < c.window():
		return fmt.Errorf("guard: invalid FlagFor %s: must be at least Window (%s)", c.flagFor(), c.window())
	case c.MaxUsers < 0 || c.MaxUsers > maxEntries:
		return fmt.Errorf("guard: invalid MaxUsers %d: must be between 1 and %d (0 for the default %d)",
			c.MaxUsers, maxEntries, DefaultMaxUsers)
	case c.MaxFlagged < 0 || c.MaxFlagged > maxEntries:
		return fmt.Errorf("guard: invalid MaxFlagged %d: must be between 1 and %d (0 for the default %d)",
			c.MaxFlagged, maxEntries, DefaultMaxFlagged)
	}
	return nil
}

func (c AbuseConfig) maxDistinct() int       { return orDefault(c.MaxDistinct, DefaultMaxDistinct) }
func (c AbuseConfig) window() time.Duration  { return orDefault(c.Window, DefaultWindow) }
func (c AbuseConfig) flagFor() time.Duration { return orDefault(c.FlagFor, DefaultFlagFor) }
func (c AbuseConfig) maxUsers() int          { return orDefault(c.MaxUsers, DefaultMaxUsers) }
func (c AbuseConfig) maxFlagged() int        { return orDefault(c.MaxFlagged, DefaultMaxFlagged) }
func orDefault[T int | time.Duration](v, d T) T {
	if v == 0 {
		return d
	}
	return v
}

// Abuse flags users seen from more than MaxDistinct distinct IPs, or more
// than MaxDistinct distinct devices, within a sliding Window. A flagged
// user's requests are still served, but its events should not be charged.
//
// The window is exact and sliding: at time now it holds the sightings in
// (now-Window, now], so a sighting exactly Window old no longer counts. For
// each user it keeps the last MaxDistinct+1 distinct IPs and devices with
// the time each was last seen; a repeated IP refreshes its time and never
// counts twice. Values are compared by a 32-bit hash, so two of one user's
// IPs could be taken for one (odds about MaxDistinct²/2^33): that can only
// miss a flag, never raise one.
//
// Create it with NewAbuse. A nil *Abuse is valid and flags nobody.
type Abuse struct {
	seed        maphash.Seed
	maxDistinct int
	window      int64 // nanoseconds
	flagFor     int64 // nanoseconds
	mask        uint64
	shards      []abuseShard
}

type abuseShard struct {
	mu sync.Mutex
	// users maps a user to the time it was last seen (UnixNano). Slot i
	// owns elements [i*2k, (i+1)*2k), k = maxDistinct+1, of hash and seen:
	// the hash and last-seen time of its k most recent distinct IPs, then
	// of its k most recent distinct devices. A value whose time is at or
	// before now-window is a free slot; claiming a user slot sets all its
	// value times to empty.
	users table
	hash  []uint32
	seen  []int64
	// flags maps a flagged user to the end of its flag (UnixNano); a flag
	// that ended is a free slot.
	flags table
	_     [pad]byte
}

// NewAbuse returns an Abuse detector configured by c, with all its memory
// allocated.
func NewAbuse(c AbuseConfig) (*Abuse, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	shards, userBuckets := layout(c.maxUsers())
	flagBuckets := bucketsFor(c.maxFlagged(), shards)
	a := &Abuse{
		seed:        maphash.MakeSeed(),
		maxDistinct: c.maxDistinct(),
		window:      int64(c.window()),
		flagFor:     int64(c.flagFor()),
		mask:        uint64(shards - 1),
		shards:      make([]abuseShard, shards),
	}
	for i := range a.shards {
		s := &a.shards[i]
		s.users = newTable(userBuckets)
		s.flags = newTable(flagBuckets)
		n := s.users.size() * 2 * (a.maxDistinct + 1)
		s.hash, s.seen = make([]uint32, n), make([]int64, n)
	}
	return a, nil
}

// Observe records one ad request of userID from ip and device and reports
// whether the user is flagged. When, counting this sighting, the window
// holds more than MaxDistinct distinct IPs or more than MaxDistinct
// distinct devices of the user, the user is flagged until now+FlagFor (so
// sustained abuse keeps extending the flag); otherwise Observe reports a
// flag still running from before.
//
// device identifies the device: an advertising id, or else the user agent
// (hashed here; pass it as is). An empty ip or device is not counted; an
// empty userID is never flagged. Call it once per ad request.
func (a *Abuse) Observe(userID, ip, device string, now time.Time) bool {
	if a == nil || userID == "" {
		return false
	}
	h := hashKey(a.seed, userID)
	ih := uint32(maphash.String(a.seed, ip))
	dh := uint32(maphash.String(a.seed, device))
	n := now.UnixNano()
	s := &a.shards[h&a.mask]

	s.mu.Lock()
	over, evictedUser := false, false
	k := a.maxDistinct + 1
	i, found := -1, false
	if ip != "" || device != "" {
		i, evictedUser = s.user(h, n, a.window, k)
	} else if i, found = s.users.lookup(h); !found {
		i = -1 // nothing to record and nothing recorded: no slot taken
	}
	if i >= 0 {
		lo, mid, hi := i*2*k, i*2*k+k, (i+1)*2*k
		over = note(s.hash[lo:mid], s.seen[lo:mid], ip != "", ih, n, a.window)
		if note(s.hash[mid:hi], s.seen[mid:hi], device != "", dh, n, a.window) {
			over = true
		}
	}
	flagged, newly, evictedFlag := s.flag(h, n, over, a.flagFor)
	s.mu.Unlock()

	if evictedUser {
		abuseEvictedUsers.Inc()
	}
	if evictedFlag {
		abuseEvictedFlags.Inc()
	}
	if newly {
		abuseFlaggedUsers.Inc()
	}
	if flagged {
		abuseFlaggedRequests.Inc()
	}
	return flagged
}

// Flagged reports whether userID is flagged at now, without recording a
// sighting. The beacon path asks it before charging: the events of a
// flagged user are recorded but not charged. Its signature fits
// server.Tracker's NoCharge field.
func (a *Abuse) Flagged(userID string, now time.Time) bool {
	if a == nil || userID == "" {
		return false
	}
	h := hashKey(a.seed, userID)
	n := now.UnixNano()
	s := &a.shards[h&a.mask]
	s.mu.Lock()
	i, found := s.flags.lookup(h)
	flagged := found && s.flags.val(i) > n
	s.mu.Unlock()
	return flagged
}

// user returns the users slot of h, claiming one if h is absent, and
// whether claiming it evicted a user seen within the window.
func (s *abuseShard) user(h uint64, n, window int64, k int) (i int, evicted bool) {
	i, found := s.users.lookup(h)
	if found {
		s.users.setVal(i, max(s.users.val(i), n))
		return i, false
	}
	evicted = s.users.key(i) != 0 && s.users.val(i) > n-window
	s.users.set(i, h, n)
	seen := s.seen[i*2*k : (i+1)*2*k]
	for j := range seen {
		seen[j] = empty
	}
	return i, evicted
}

// note records, when record is set, a sighting of value v at n in one
// user's set of recent distinct values (hashes and last-seen times;
// MaxDistinct+1 slots), and reports whether the window (n-window, n], this
// sighting included, holds more than MaxDistinct distinct values.
//
// When every slot holds a value seen within the window and v is new, v
// replaces the least recently seen one. The slots thus always hold the
// most recently seen distinct values of the window, as many as fit: every
// value kept was seen after any value it replaced, so a replaced value
// leaves the window before any kept one does. With MaxDistinct+1 slots the
// answer is therefore exact.
func note(hashes []uint32, seen []int64, record bool, v uint32, n, window int64) bool {
	seen = seen[:len(hashes)]
	free, oldest, live, hit := -1, -1, 0, !record
	for j, t := range seen {
		if t <= n-window {
			if free < 0 {
				free = j
			}
			continue
		}
		live++
		if !hit && hashes[j] == v {
			seen[j] = max(t, n)
			hit = true
			continue
		}
		if oldest < 0 || t < seen[oldest] {
			oldest = j
		}
	}
	switch {
	case hit:
	case free >= 0:
		hashes[free], seen[free] = v, n
		live++
	default: // every slot in the window, and at least two slots
		hashes[oldest], seen[oldest] = v, n
	}
	return live >= len(hashes)
}

// flag looks h up in the flags table and, when over, flags it until
// n+flagFor (extending a current flag). It reports whether h is flagged at
// n, whether this call flagged it anew, and whether that evicted another
// user's current flag.
func (s *abuseShard) flag(h uint64, n int64, over bool, flagFor int64) (flagged, newly, evicted bool) {
	i, found := s.flags.lookup(h)
	flagged = found && s.flags.val(i) > n
	if !over {
		return flagged, false, false
	}
	if !found {
		evicted = s.flags.key(i) != 0 && s.flags.val(i) > n
		s.flags.set(i, h, empty)
	}
	s.flags.setVal(i, max(s.flags.val(i), n+flagFor))
	return true, !flagged, evicted
}
