package node

import (
	"context"
	"testing"
	"time"

	"github.com/adserver/adserver/loadtest"
	"github.com/adserver/adserver/server"
)

// TestHarnessDrivesNode runs the load harness against a real node: `loadtest
// seed` builds a catalog through the management API, and a run follows
// fills with impressions, clicks and conversions. Every beacon the harness
// reports sending must be one the node verified and recorded, conversions
// included (the harness takes their postbacks from the clicks' redirects).
func TestHarnessDrivesNode(t *testing.T) {
	if loadtest.ConversionParam != server.ConversionParam {
		t.Fatalf("loadtest.ConversionParam %q, server.ConversionParam %q", loadtest.ConversionParam, server.ConversionParam)
	}
	n := startNode(t, t.TempDir(), "")
	defer stopNode(t, n)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	seed, err := loadtest.Seed(ctx, loadtest.SeedConfig{Admin: admin(n), Token: testToken, Campaigns: 200, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if seed.Failed != 0 || seed.Created["campaigns"] != 200 {
		t.Fatalf("seed: created %v, failed %d: %v", seed.Created, seed.Failed, seed.Errors)
	}

	before := scrape(t, n)
	res, err := loadtest.Run(ctx, loadtest.Config{Targets: []string{serving(n)}, Rate: 300, Duration: 2 * time.Second,
		Concurrency: 8, ImpRate: 1, CTR: 0.5, ConvRate: 0.5, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	after := scrape(t, n)
	delta := func(series string) int64 { return int64(after[series] - before[series]) }
	b := res.Beacons
	t.Logf("requests %d filled %d (%.0f%%), beacons %+v", res.Requests, res.Filled, 100*res.FillRate, b)

	if res.Errors != 0 || res.BadResponses != 0 {
		t.Errorf("errors %d (%s), bad responses %d", res.Errors, res.LastError, res.BadResponses)
	}
	if got := delta(`adserver_http_requests_total{listener="serving",endpoint="ad",status="200"}`); got != res.Filled {
		t.Errorf("node answered %d ads, harness counted %d fills", got, res.Filled)
	}
	if res.Filled < 100 || b.Clicks < 20 || b.Conversions < 5 {
		t.Fatalf("too little traffic to check: %d fills, %d clicks, %d conversions", res.Filled, b.Clicks, b.Conversions)
	}
	if b.Failed != 0 || b.Dropped != 0 || b.ClicksSkipped != 0 || b.ConversionsSkipped != 0 {
		t.Errorf("beacons failed %d (%s), dropped %d, clicks skipped %d, conversions skipped %d",
			b.Failed, b.LastFailure, b.Dropped, b.ClicksSkipped, b.ConversionsSkipped)
	}
	for _, c := range []struct {
		typ  string
		sent int64
	}{{"impression", b.Impressions}, {"click", b.Clicks}, {"conversion", b.Conversions}} {
		if got := delta(`adserver_beacon_requests_total{type="` + c.typ + `",result="recorded"}`); got != c.sent {
			t.Errorf("%s: node recorded %d, harness sent %d", c.typ, got, c.sent)
		}
	}
}
