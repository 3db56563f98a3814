package node

import (
	"fmt"
	"strings"
	"testing"

	"github.com/adserver/adserver/config"
)

// TestAbuseFlaggedUserNotCharged: a user id seen from more than 5 distinct
// IPs within 10 s is still served, but its impressions charge nothing; the
// 5th IP is not flagged yet.
func TestAbuseFlaggedUserNotCharged(t *testing.T) {
	n := startNode(t, t.TempDir(), "")
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5"))
	before := scrape(t, n)["adserver_beacon_uncharged_total"]
	var charged, uncharged int
	for i := 1; i <= 7; i++ {
		body := fmt.Sprintf(`{"id":"r","placement_id":"p-1","user":{"id":"roamer"},"device":{"ip":"198.51.100.%d"},
			"geo":{"country":"KR"},"slots":[{"id":"s1","w":300,"h":250}]}`, i)
		r := call(t, "POST", serving(n)+"/v1/ad", "", body)
		if r.status != 200 {
			t.Fatalf("request %d: %d %s", i, r.status, r.body)
		}
		if strings.Contains(r.body, "m=1") { // the impression URL charges CPM
			charged++
			if uncharged > 0 {
				t.Fatalf("request %d charged again after the flag", i)
			}
		} else {
			uncharged++
		}
	}
	if charged != 5 || uncharged != 2 {
		t.Fatalf("%d charged and %d uncharged impressions, want 5 and 2 (flag at the 6th distinct IP)", charged, uncharged)
	}
	// Late beacons of the flagged user, even from a URL signed before the
	// flag, charge nothing.
	early := requestAdFor(t, n, "roamer2", "203.0.113.1")
	for i := 2; i <= 6; i++ {
		requestAdFor(t, n, "roamer2", fmt.Sprintf("203.0.113.%d", i))
	}
	if !strings.Contains(early.ImpressionURL, "m=1") {
		t.Fatal("the first request of roamer2 should still be charged")
	}
	if st, _ := get(t, early.ImpressionURL); st != 204 {
		t.Fatalf("impression: %d", st)
	}
	if after := scrape(t, n)["adserver_beacon_uncharged_total"]; after != before+1 {
		t.Fatalf("uncharged beacons %v -> %v, want +1", before, after)
	}
}

func requestAdFor(t *testing.T, n *Node, user, ip string) servedAd {
	t.Helper()
	body := `{"id":"r","placement_id":"p-1","user":{"id":"` + user + `"},"device":{"ip":"` + ip + `"},
		"geo":{"country":"KR"},"slots":[{"id":"s1","w":300,"h":250}]}`
	return adFrom(t, call(t, "POST", serving(n)+"/v1/ad", "", body))
}

// TestRateLimits: per-placement and per-IP limits answer 429 with
// Retry-After once the burst is spent.
func TestRateLimits(t *testing.T) {
	n := startNodeWith(t, t.TempDir(), "", func(c *config.Config) {
		c.Limits.PlacementRate, c.Limits.PlacementBurst = 0.001, 3
	})
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5"))
	body := `{"id":"r","placement_id":"p-9","geo":{"country":"KR"},"slots":[{"id":"s1","w":300,"h":250}]}`
	for i := 1; i <= 3; i++ {
		if r := call(t, "POST", serving(n)+"/v1/ad", "", body); r.status != 200 {
			t.Fatalf("request %d within the burst: %d %s", i, r.status, r.body)
		}
	}
	r := call(t, "POST", serving(n)+"/v1/ad", "", body)
	if r.status != 429 || !strings.Contains(r.body, "rate_limited_placement") {
		t.Fatalf("4th request: %d %s, want 429 rate_limited_placement", r.status, r.body)
	}
	other := strings.Replace(body, "p-9", "p-8", 1)
	if r := call(t, "POST", serving(n)+"/v1/ad", "", other); r.status != 200 {
		t.Fatalf("another placement: %d", r.status)
	}

	m := startNodeWith(t, t.TempDir(), "", func(c *config.Config) {
		c.Limits.IPRate, c.Limits.IPBurst = 0.001, 2
	})
	defer stopNode(t, m)
	for i := 1; i <= 2; i++ {
		if r := call(t, "POST", serving(m)+"/v1/ad", "", body); r.status == 429 {
			t.Fatalf("request %d within the IP burst: 429", i)
		}
	}
	r = call(t, "POST", serving(m)+"/openrtb2/bid", "", `{"id":"x","imp":[{"id":"1","banner":{"w":300,"h":250}}]}`)
	if r.status != 429 || !strings.Contains(r.body, "rate_limited_ip") {
		t.Fatalf("3rd request from the IP: %d %s, want 429 rate_limited_ip", r.status, r.body)
	}
}
