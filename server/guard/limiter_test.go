package guard

import (
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestLimiter(t testing.TB, c LimiterConfig) *Limiter {
	t.Helper()
	l, err := NewLimiter(c)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLimiterBurstThenRefill(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{Name: "test_burst", Rate: 10, Burst: 5}) // a token every 100ms
	for i := range 5 {
		if !l.Allow("k", t0) {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.Check("k", t0)
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("after the burst: Check = %v, %v; want false, 100ms", ok, wait)
	}
	ok, wait = l.Check("k", t0.Add(40*time.Millisecond))
	if ok || wait != 60*time.Millisecond {
		t.Fatalf("40ms later: Check = %v, %v; want false, 60ms", ok, wait)
	}
	if l.Allow("k", t0.Add(100*time.Millisecond-1)) {
		t.Fatal("a token 1ns before it refilled")
	}
	if !l.Allow("k", t0.Add(100*time.Millisecond)) {
		t.Fatal("no token after 100ms")
	}
	if l.Allow("k", t0.Add(100*time.Millisecond)) {
		t.Fatal("two tokens after 100ms")
	}
	// Sustained: exactly one per 100ms.
	got := 0
	for ms := 101; ms <= 1100; ms++ {
		if l.Allow("k", t0.Add(time.Duration(ms)*time.Millisecond)) {
			got++
		}
	}
	if got != 10 {
		t.Fatalf("%d requests allowed in one second at Rate 10", got)
	}
	// Idle long enough, the bucket is full again, and no fuller.
	later := t0.Add(time.Hour)
	for i := range 5 {
		if !l.Allow("k", later) {
			t.Fatalf("request %d of the refilled burst refused", i+1)
		}
	}
	if l.Allow("k", later) {
		t.Fatal("burst grew beyond Burst while idle")
	}
}

func TestLimiterKeysIndependent(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{Name: "test_keys", Rate: 1, Burst: 2})
	for _, k := range []string{"a", "b", "c"} {
		if !l.Allow(k, t0) || !l.Allow(k, t0) {
			t.Fatalf("key %q: burst refused", k)
		}
		if l.Allow(k, t0) {
			t.Fatalf("key %q: beyond burst allowed", k)
		}
	}
	// Bytes and strings name the same key.
	if ok, _ := l.CheckBytes([]byte("a"), t0); ok {
		t.Fatal("CheckBytes does not share the bucket of Allow")
	}
	if ok, _ := l.CheckBytes([]byte("d"), t0); !ok {
		t.Fatal("CheckBytes refused a fresh key")
	}
	// An empty key is not limited.
	for range 10 {
		if !l.Allow("", t0) {
			t.Fatal("empty key limited")
		}
		if ok, _ := l.CheckBytes(nil, t0); !ok {
			t.Fatal("empty key limited")
		}
	}
}

func TestLimiterDefaults(t *testing.T) {
	for _, l := range []*Limiter{nil, newTestLimiter(t, LimiterConfig{})} {
		for range 1000 {
			if ok, wait := l.Check("k", t0); !ok || wait != 0 {
				t.Fatal("an unlimited limiter refused")
			}
		}
	}
	// Burst defaults to one second of Rate.
	l := newTestLimiter(t, LimiterConfig{Name: "test_default_burst", Rate: 2.5})
	n := 0
	for n < 100 && l.Allow("k", t0) {
		n++
	}
	if n != 3 {
		t.Fatalf("default burst at Rate 2.5 is %d, want 3", n)
	}
	l = newTestLimiter(t, LimiterConfig{Name: "test_default_burst", Rate: 0.1})
	if !l.Allow("k", t0) || l.Allow("k", t0) {
		t.Fatal("default burst at Rate 0.1 is not 1")
	}
	if ok, wait := l.Check("k", t0); ok || wait != 10*time.Second {
		t.Fatalf("Rate 0.1: Check = %v, %v; want false, 10s", ok, wait)
	}
}

func TestLimiterEvictionBoundsMemory(t *testing.T) {
	const maxKeys = 512
	l := newTestLimiter(t, LimiterConfig{Name: "test_evict", Rate: 1, Burst: 1, MaxKeys: maxKeys})
	size := 0
	for i := range l.shards {
		size += l.shards[i].t.size()
	}
	if size < maxKeys || size >= maxKeys+len(l.shards)*ways {
		t.Fatalf("capacity %d for MaxKeys %d", size, maxKeys)
	}
	before := l.evicted.Get()
	for i := range 100 * maxKeys {
		if !l.Allow("k"+strconv.Itoa(i), t0) {
			t.Fatalf("fresh key %d refused", i)
		}
	}
	if got, want := l.evicted.Get()-before, uint64(100*maxKeys-size); got < want {
		t.Fatalf("adserver_ratelimit_evicted_total moved by %d, want at least %d", got, want)
	}
	after := 0
	for i := range l.shards {
		after += l.shards[i].t.size()
	}
	if after != size {
		t.Fatalf("table grew from %d to %d", size, after)
	}
	// Keys whose bucket has refilled are free slots: no eviction counted.
	before = l.evicted.Get()
	for i := range maxKeys / 16 {
		l.Allow("late"+strconv.Itoa(i), t0.Add(time.Minute))
	}
	if got := l.evicted.Get() - before; got != 0 {
		t.Fatalf("evicted %d full buckets as live", got)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	const burst, goroutines, each = 1000, 8, 500
	l := newTestLimiter(t, LimiterConfig{Name: "test_concurrent", Rate: 1, Burst: burst})
	var allowed, other atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				if l.Allow("shared", t0) { // frozen clock: no refill
					allowed.Add(1)
				}
				if l.Allow("own"+strconv.Itoa(g), t0.Add(time.Duration(i)*time.Second)) {
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := allowed.Load(); got != burst {
		t.Fatalf("%d of %d concurrent requests allowed on one key, want exactly the burst %d", got, goroutines*each, burst)
	}
	if got := other.Load(); got != goroutines*each {
		t.Fatalf("%d of %d requests on keys within their rate allowed", got, goroutines*each)
	}
}

func TestLimiterMetrics(t *testing.T) {
	l := newTestLimiter(t, LimiterConfig{Name: "placement", Rate: 1, Burst: 1})
	before := l.rejected.Get()
	l.Allow("p-1", t0)
	l.Allow("p-1", t0)
	l.Check("p-1", t0)
	if got := l.rejected.Get() - before; got != 2 {
		t.Fatalf("adserver_ratelimited_total moved by %d, want 2", got)
	}
	text := metricsText()
	for _, name := range []string{
		`adserver_ratelimited_total{limit="placement"}`,
		`adserver_ratelimit_evicted_total{limit="placement"}`,
	} {
		if !strings.Contains(text, name+" ") {
			t.Errorf("metric %s not exported", name)
		}
	}
	// A second limiter of the same name shares the counters.
	if _, err := NewLimiter(LimiterConfig{Name: "placement", Rate: 5}); err != nil {
		t.Fatal(err)
	}
}

func TestLimiterConfigValidate(t *testing.T) {
	bad := []LimiterConfig{
		{Name: "IP"},
		{Name: `a"b`},
		{Rate: -1},
		{Rate: 2e9},
		{Burst: -1},
		{Rate: 1e-9, Burst: 100},
		{MaxKeys: -1},
		{MaxKeys: 1 << 30},
	}
	for _, c := range bad {
		if _, err := NewLimiter(c); err == nil {
			t.Errorf("NewLimiter(%+v) accepted", c)
		} else if !strings.HasPrefix(err.Error(), "guard: invalid ") {
			t.Errorf("unclear error %q", err)
		}
	}
}
