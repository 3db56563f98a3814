package node

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/server"
	"github.com/valyala/fasthttp"
)

// BenchmarkBeaconsToClickHouse measures sustained events per second from
// the beacon handler into ClickHouse on a real node: b.N distinct signed
// impression beacons go through the tracking handler (no network) from
// GOMAXPROCS goroutines while the shipper drains the log; the clock stops
// when ClickHouse holds the last one. It reports events/s.
//
//	go test ./node -run '^$' -bench BeaconsToClickHouse -benchtime 1000000x
func BenchmarkBeaconsToClickHouse(b *testing.B) {
	chAddr, db := testClickHouse(b)
	n := startNodeWith(b, b.TempDir(), "", func(c *config.Config) {
		c.ClickHouse = chAddr
		c.ClickHouseDatabase = db
		c.EventLog.MaxBytes = 1 << 40
	})
	defer stopNode(b, n)
	now := time.Now()
	uris := make([][]byte, b.N)
	for i := range uris {
		bc := events.Beacon{Type: events.TypeImpression, AuctionID: "bench-" + strconv.Itoa(i), SlotID: "s1",
			AdvertiserID: "adv-1", CampaignID: "c-" + strconv.Itoa(i%100), CreativeID: "cr-1", PlacementID: "p-1",
			Country: "KR", UserID: "u-" + strconv.Itoa(i%5000), Charge: events.ChargeCPM, PriceMicros: 1_510_000, Issued: now}
		uris[i] = n.Signer.AppendURL(nil, server.PathImpression, &bc)
	}
	var next atomic.Int64
	var failed atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		for pb.Next() {
			i := next.Add(1) - 1
			ctx.Request.Reset()
			ctx.Response.Reset()
			ctx.Request.SetRequestURIBytes(uris[i])
			n.Server.Tracker.Serve(&ctx, events.TypeImpression)
			if ctx.Response.StatusCode() != fasthttp.StatusNoContent {
				failed.Add(1)
			}
		}
	})
	handled := time.Since(start)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := n.Shipper.WaitShipped(ctx, n.Events.LastSeq()); err != nil {
		b.Fatal(err)
	}
	shipped := time.Since(start)
	b.StopTimer()
	if failed.Load() > 0 {
		b.Fatalf("%d beacons failed", failed.Load())
	}
	b.ReportMetric(float64(b.N)/shipped.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/handled.Seconds(), "handled/s")
}
