package guard

import (
	"sync/atomic"
	"testing"
	"time"
)

// The keys are 10,000 client IPs (or placements) under a limit they stay
// within, so every call is admitted: the common case.

func BenchmarkLimiterAllow(b *testing.B) {
	l := newTestLimiter(b, LimiterConfig{Name: "bench", Rate: 1e6, Burst: 1000})
	keys := benchKeys("203.0.113.", 10_000)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		l.Allow(keys[i%len(keys)], t0.Add(time.Duration(i)*time.Microsecond))
	}
}

func BenchmarkLimiterAllowParallel(b *testing.B) {
	l := newTestLimiter(b, LimiterConfig{Name: "bench", Rate: 1e6, Burst: 1000})
	keys := benchKeys("203.0.113.", 10_000)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 7919)
		for pb.Next() {
			i++
			l.Allow(keys[i%len(keys)], t0.Add(time.Duration(i)*time.Microsecond))
		}
	})
}

// BenchmarkLimiterAllowOneKey is the worst case for contention: every
// goroutine on one key (one placement carrying all traffic).
func BenchmarkLimiterAllowOneKeyParallel(b *testing.B) {
	l := newTestLimiter(b, LimiterConfig{Name: "bench", Rate: 1e9, Burst: 1 << 20})
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1) * 7919)
		for pb.Next() {
			i++
			l.Allow("p-1", t0.Add(time.Duration(i)*time.Microsecond))
		}
	})
}

func BenchmarkLimiterUnlimited(b *testing.B) {
	l := newTestLimiter(b, LimiterConfig{})
	b.ReportAllocs()
	for b.Loop() {
		l.Allow("203.0.113.9", t0)
	}
}
