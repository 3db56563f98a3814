package guard_test

import (
	"fmt"
	"math"
	"time"

	"github.com/adserver/adserver/server/guard"
)

// An ad request handler checks the limits first (429 with Retry-After when
// refused), then observes the user: a flagged user is served, and its
// events are recorded but not charged.
func Example() {
	perIP, _ := guard.NewLimiter(guard.LimiterConfig{Name: "ip", Rate: 2, Burst: 2})
	perPlacement, _ := guard.NewLimiter(guard.LimiterConfig{Name: "placement"}) // Rate 0: off
	abuse, _ := guard.NewAbuse(guard.AbuseConfig{})                             // 5 distinct IPs or devices per 10s

	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	serve := func(clientIP, placement, user, deviceIP, ua string) string {
		if ok, wait := perIP.Check(clientIP, now); !ok {
			return fmt.Sprintf("429 rate_limited (ip), Retry-After: %d", int(math.Ceil(wait.Seconds())))
		}
		if !perPlacement.Allow(placement, now) {
			return "429 rate_limited (placement)"
		}
		if abuse.Observe(user, deviceIP, ua, now) {
			return "200, not charged"
		}
		return "200"
	}
	fmt.Println(serve("198.51.100.1", "p-1", "u-1", "203.0.113.1", "ua"))
	fmt.Println(serve("198.51.100.1", "p-1", "u-1", "203.0.113.1", "ua"))
	fmt.Println(serve("198.51.100.1", "p-1", "u-1", "203.0.113.1", "ua"))
	for i := 2; i <= 6; i++ {
		fmt.Println(serve(fmt.Sprint("198.51.100.", i), "p-1", "u-1", fmt.Sprint("203.0.113.", i), "ua"))
	}
	// The beacon path:
	fmt.Println("charge u-1:", !abuse.Flagged("u-1", now.Add(time.Minute)))
	// Output:
	// 200
	// 200
	// 429 rate_limited (ip), Retry-After: 1
	// 200
	// 200
	// 200
	// 200
	// 200, not charged
	// charge u-1: false
}
