package guard

import (
	"testing"
	"time"
)

func TestAbuseAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	a := newTestAbuse(t, AbuseConfig{MaxUsers: 1024})
	users := benchKeys("user-", 4096) // more than MaxUsers: eviction included
	ips := benchKeys("198.51.100.", 7)
	i := 0
	now := t0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		now = now.Add(time.Microsecond)
		a.Observe(users[i%len(users)], ips[i%len(ips)], "Mozilla/5.0 (Linux; Android 14)", now)
	}); n != 0 {
		t.Fatalf("Observe allocates %v times", n)
	}
	if n := testing.AllocsPerRun(1000, func() {
		i++
		a.Flagged(users[i%len(users)], now)
	}); n != 0 {
		t.Fatalf("Flagged allocates %v times", n)
	}
}

func TestLimiterAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	l := newTestLimiter(t, LimiterConfig{Name: "test_allocs", Rate: 100, MaxKeys: 1024})
	keys := benchKeys("203.0.113.", 4096)
	bkeys := make([][]byte, len(keys))
	for i, k := range keys {
		bkeys[i] = []byte(k)
	}
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		l.Allow(keys[i%len(keys)], t0)
		l.Check(keys[i%7], t0) // refused: the rejection path too
		l.CheckBytes(bkeys[i%len(bkeys)], t0)
	}); n != 0 {
		t.Fatalf("Limiter allocates %v times", n)
	}
}
