package server

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/adserver/adserver/campaign"
	"github.com/valyala/fasthttp"
)

// benchCatalog makes n campaigns with mixed geo/device/segment/keyword
// targeting; about 1% of them match adReq (country KR, android, sports,
// baseball).
func benchCatalog(b testing.TB, n int) []*campaign.Campaign {
	rng := rand.New(rand.NewPCG(1, 2))
	countries := []string{"US", "GB", "DE", "FR", "JP", "KR", "BR", "IN", "CA", "AU"}
	oses := []string{"android", "ios", "windows", "macos"}
	segs := []string{"sports", "travel", "finance", "autos", "fashion", "gaming", "food", "music"}
	cs := make([]*campaign.Campaign, n)
	for i := range cs {
		tgt := fmt.Sprintf(`{"any":[{"all":[{"attr":"country","in":[%q,%q]},{"attr":"os","in":[%q]},{"attr":"segment","in":[%q]}]}]}`,
			countries[rng.IntN(len(countries))], countries[rng.IntN(len(countries))], oses[rng.IntN(len(oses))], segs[rng.IntN(len(segs))])
		if i%10 == 0 {
			tgt = fmt.Sprintf(`{"any":[{"all":[{"attr":"keyword","in":["kw%d","baseball"]},{"attr":"country","in":[%q]},{"attr":"os","not_in":["ios"]},{"attr":"segment","in":[%q]}]}]}`,
				rng.IntN(1000), countries[rng.IntN(len(countries))], segs[rng.IntN(len(segs))])
		}
		bid := fmt.Sprintf("%d.%02d", 1+rng.IntN(5), rng.IntN(100))
		cs[i] = mustCampaign(b, camp(fmt.Sprintf("c-%d", i), fmt.Sprintf("adv-%d", i%500), bid, tgt, 0, 300, 250))
	}
	return cs
}

// BenchmarkDecision is a full /v1/ad request through the fasthttp handler,
// no network, against 10,000 campaigns.
func BenchmarkDecision(b *testing.B) {
	s := testServer(b, benchCatalog(b, 10000)...)
	var ctx fasthttp.RequestCtx
	body := []byte(adReq)
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/ad")
	ctx.Request.SetBody(body)
	s.serveServing(&ctx)
	if ctx.Response.StatusCode() != 200 {
		b.Fatalf("no fill: %d", ctx.Response.StatusCode())
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx.Response.Reset()
		s.serveServing(&ctx)
	}
}

func BenchmarkDecisionParallel(b *testing.B) {
	s := testServer(b, benchCatalog(b, 10000)...)
	body := []byte(adReq)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		var ctx fasthttp.RequestCtx
		ctx.Request.Header.SetMethod("POST")
		ctx.Request.SetRequestURI("/v1/ad")
		ctx.Request.SetBody(body)
		for pb.Next() {
			ctx.Response.Reset()
			s.serveServing(&ctx)
		}
	})
}
