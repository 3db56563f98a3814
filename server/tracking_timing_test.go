package server

import (
	"strconv"
	"testing"
	"time"

	"github.com/adserver/adserver/events"
	"github.com/valyala/fasthttp"
)

// beaconURIs signs n distinct impression beacons (request URIs) with s.
func beaconURIs(s *events.Signer, n int, now time.Time) [][]byte {
	uris := make([][]byte, n)
	for i := range uris {
		b := events.Beacon{Type: events.TypeImpression, AuctionID: "n1-x-" + strconv.Itoa(i), SlotID: "s1",
			AdvertiserID: "adv-1", CampaignID: "c-1", CreativeID: "cr-1", PlacementID: "p-1", Country: "KR",
			UserID: "u-" + strconv.Itoa(i%1000), Charge: events.ChargeCPM, PriceMicros: 1_510_000, Issued: now}
		uris[i] = s.AppendURL(nil, PathImpression, &b)
	}
	return uris
}

// BenchmarkBeacon is one impression beacon through the tracking handler
// (no network): verify the signature, de-duplicate, append to a real event
// log on disk (group fsync in the background) and charge.
func BenchmarkBeacon(b *testing.B) {
	signer, err := events.NewSigner("k1:0123456789abcdef0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	l, err := events.OpenLog(events.LogConfig{Dir: b.TempDir(), MaxBytes: 1 << 40, MaxBuffered: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec, err := events.NewRecorder(events.RecorderConfig{NodeID: "bench", Log: l})
	if err != nil {
		b.Fatal(err)
	}
	defer rec.Close()
	now := time.Now()
	tr := &Tracker{Signer: signer, Recorder: rec, Now: func() time.Time { return now }}
	uris := beaconURIs(signer, b.N, now)
	var ctx fasthttp.RequestCtx
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		ctx.Request.Reset()
		ctx.Response.Reset()
		ctx.Request.SetRequestURIBytes(uris[i])
		tr.Serve(&ctx, events.TypeImpression)
		if ctx.Response.StatusCode() != fasthttp.StatusNoContent {
			b.Fatalf("status %d: %s", ctx.Response.StatusCode(), ctx.Response.Body())
		}
	}
}
