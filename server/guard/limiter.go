package guard

import (
	"fmt"
	"hash/maphash"
	"math"
	"regexp"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// DefaultMaxKeys is the default LimiterConfig.MaxKeys.
const DefaultMaxKeys = 1 << 16

// LimiterConfig configures a Limiter. The zero value is valid and limits
// nothing.
type LimiterConfig struct {
	// Name labels the limiter's metrics, adserver_ratelimited_total and
	// adserver_ratelimit_evicted_total, as {limit="<Name>"}: "ip",
	// "placement". Lowercase letters, digits and underscores. Default
	// "default".
	Name string
	// Rate is the sustained number of requests per second allowed per key.
	// 0 (the default) means unlimited: Allow always answers true and keeps
	// no state.
	Rate float64
	// Burst is the number of requests a key may make at once after being
	// idle; the bucket starts full. Default: one second's worth of Rate,
	// and at least 1.
	Burst int
	// MaxKeys bounds the keys tracked, 16 bytes each; default 65,536
	// (1 MB). A key that has been idle long enough to refill its burst
	// takes no memory in effect: its slot is free. When every slot of a new
	// key's bucket (8 slots) holds a key still refilling, the new key takes
	// the slot of the one closest to full, which thereby gets a full burst
	// early; adserver_ratelimit_evicted_total counts it. Size it above the
	// number of keys active within Burst/Rate seconds. Rounded up to a
	// multiple of 8 times the shard count.
	MaxKeys int
}

var labelValue = regexp.MustCompile(`^[a-z0-9_]+$`)

// Validate reports the first invalid field.
func (c LimiterConfig) Validate() error {
	switch {
	case c.Name != "" && !labelValue.MatchString(c.Name):
		return fmt.Errorf("guard: invalid limiter Name %q: use lowercase letters, digits and underscores", c.Name)
	case math.IsNaN(c.Rate) || c.Rate < 0 || c.Rate > 1e9:
		return fmt.Errorf("guard: invalid limiter %q Rate %v: must be between 0 (unlimited) and 1e9 per second", c.name(), c.Rate)
	case c.Burst < 0:
		return fmt.Errorf("guard: invalid limiter %q Burst %d: must be positive (0 for one second's worth of Rate)", c.name(), c.Burst)
	case c.Rate > 0 && float64(c.burst())/c.Rate > 1e9:
		return fmt.Errorf("guard: invalid limiter %q Burst %d at Rate %v: refilling it would take over 30 years", c.name(), c.burst(), c.Rate)
	case c.MaxKeys < 0 || c.MaxKeys > maxEntries:
		return fmt.Errorf("guard: invalid limiter %q MaxKeys %d: must be between 1 and %d (0 for the default %d)",
			c.name(), c.MaxKeys, maxEntries, DefaultMaxKeys)
	}
	return nil
}

func (c LimiterConfig) name() string {
	if c.Name == "" {
		return "default"
	}
	return c.Name
}

func (c LimiterConfig) burst() int {
	if c.Burst > 0 {
		return c.Burst
	}
	return max(1, int(math.Ceil(c.Rate)))
}

// Limiter is a token-bucket rate limiter per key: each key may make Burst
// requests at once and Rate per second sustained. It runs the bucket as
// GCRA (the generic cell rate algorithm): one int64 per key, the time at
// which its bucket will be full again, so a key whose bucket is full needs
// no state and its slot is free for another key.
//
// Create it with NewLimiter. A nil *Limiter is valid and allows everything.
type Limiter struct {
	seed      maphash.Seed
	interval  int64 // nanoseconds per token; 0: unlimited
	tolerance int64 // Burst*interval
	mask      uint64
	shards    []limiterShard
	rejected  *metrics.Counter
	evicted   *metrics.Counter
}

type limiterShard struct {
	mu sync.Mutex
	// t maps a key to its theoretical arrival time (UnixNano): the time at
	// which its bucket is full again. A slot whose time has passed is as
	// good as free.
	t table
	_ [pad]byte
}

// NewLimiter returns a Limiter configured by c, with all its memory
// allocated.
func NewLimiter(c LimiterConfig) (*Limiter, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	name := c.name()
	l := &Limiter{
		rejected: metrics.GetOrCreateCounter(`adserver_ratelimited_total{limit="` + name + `"}`),
		evicted:  metrics.GetOrCreateCounter(`adserver_ratelimit_evicted_total{limit="` + name + `"}`),
	}
	if c.Rate == 0 {
		return l, nil
	}
	l.seed = maphash.MakeSeed()
	l.interval = max(1, int64(math.Round(1e9/c.Rate)))
	l.tolerance = int64(c.burst()) * l.interval
	shards, buckets := layout(orDefault(c.MaxKeys, DefaultMaxKeys))
	l.mask = uint64(shards - 1)
	l.shards = make([]limiterShard, shards)
	for i := range l.shards {
		l.shards[i].t = newTable(buckets)
	}
	return l, nil
}

// Allow takes one token from key's bucket at now and reports whether there
// was one. An empty key is not limited (there is nothing to key on).
func (l *Limiter) Allow(key string, now time.Time) bool {
	if l == nil || l.interval == 0 || key == "" {
		return true
	}
	ok, _ := l.take(hashKey(l.seed, key), now)
	return ok
}

// Check is Allow that also says, when it refuses, how long until key's
// next token: the caller's Retry-After (round it up to whole seconds).
func (l *Limiter) Check(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil || l.interval == 0 || key == "" {
		return true, 0
	}
	return l.take(hashKey(l.seed, key), now)
}

// CheckBytes is Check for a key held in bytes, such as fasthttp's borrowed
// buffers or a net.IP; key is not retained.
func (l *Limiter) CheckBytes(key []byte, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil || l.interval == 0 || len(key) == 0 {
		return true, 0
	}
	return l.take(hashKeyBytes(l.seed, key), now)
}

func (l *Limiter) take(h uint64, now time.Time) (bool, time.Duration) {
	n := now.UnixNano()
	s := &l.shards[h&l.mask]
	s.mu.Lock()
	i, found := s.t.lookup(h)
	tat := n
	if found {
		tat = max(tat, s.t.val(i))
	}
	next := tat + l.interval
	if next-n > l.tolerance {
		s.mu.Unlock()
		l.rejected.Inc()
		return false, time.Duration(next - l.tolerance - n)
	}
	evicted := false
	if !found {
		// A fresh key is never refused (interval <= tolerance), so only an
		// admitted key takes a slot.
		evicted = s.t.key(i) != 0 && s.t.val(i) > n
	}
	s.t.set(i, h, next)
	s.mu.Unlock()
	if evicted {
		l.evicted.Inc()
	}
	return true, 0
}
