package guard

import (
	"strconv"
	"sync/atomic"
	"testing"
	"time"
)

func benchKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = prefix + strconv.Itoa(i)
	}
	return keys
}

// Each benchmark cycles through 100,000 users (some evicted: MaxUsers is
// the default 131,072 rounded, and buckets fill unevenly), each seen from
// one of 3 IPs and a user agent, as a node sees ordinary traffic.

func BenchmarkAbuseObserve(b *testing.B) {
	a := newTestAbuse(b, AbuseConfig{})
	users := benchKeys("user-", 100_000)
	ips := benchKeys("198.51.100.", 3)
	const ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		a.Observe(users[i%len(users)], ips[i%len(ips)], ua, t0.Add(time.Duration(i)*time.Microsecond))
	}
}

// BenchmarkAbuseObserveFewUsers is the same with 1,000 users, whose
// entries stay in the CPU cache: the cost without memory misses.
func BenchmarkAbuseObserveFewUsers(b *testing.B) {
	a := newTestAbuse(b, AbuseConfig{})
	users := benchKeys("user-", 1000)
	ips := benchKeys("198.51.100.", 3)
	const ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		a.Observe(users[i%len(users)], ips[i%len(ips)], ua, t0.Add(time.Duration(i)*time.Microsecond))
	}
}

func BenchmarkAbuseObserveParallel(b *testing.B) {
	a := newTestAbuse(b, AbuseConfig{})
	users := benchKeys("user-", 100_000)
	ips := benchKeys("198.51.100.", 3)
	const ua = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36"
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 7919)
		for pb.Next() {
			i++
			a.Observe(users[i%len(users)], ips[i%len(ips)], ua, t0.Add(time.Duration(i)*time.Microsecond))
		}
	})
}

func BenchmarkAbuseFlagged(b *testing.B) {
	a := newTestAbuse(b, AbuseConfig{})
	users := benchKeys("user-", 100_000)
	for i, u := range users[:1000] {
		for j := range 6 {
			a.Observe(u, strconv.Itoa(j), "", t0.Add(time.Duration(i)))
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		a.Flagged(users[i%len(users)], t0)
	}
}
