package server

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/loadtest"
	"github.com/adserver/adserver/pacing"
	"github.com/adserver/adserver/targeting"
	"github.com/adserver/adserver/targeting/feed"
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
	benchServeAd(b, testServer(b, benchCatalog(b, 10000)...))
}

// benchServeAd sends adReq to s's serving handler b.N times (no network),
// after checking that it fills.
func benchServeAd(b *testing.B, s *Server) {
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
	b.StopTimer()
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

// seededBench is the load test's world in miniature: the catalog `loadtest
// seed` creates and the request stream `loadtest` sends, with the
// production wiring of pacing, frequency caps, the CTR model and URL
// signing.
type seededBench struct {
	s      *Server
	bodies [][]byte
}

func newSeededBench(b testing.TB, campaigns int) *seededBench {
	b.Helper()
	sc := loadtest.DefaultScenario()
	now := testNow
	cat := loadtest.BuildCatalog(sc, campaigns, max(1, campaigns/10), 1, now)

	cs := make([]*campaign.Campaign, len(cat.Campaigns))
	for i := range cat.Campaigns {
		js, err := json.Marshal(cat.Campaigns[i])
		if err != nil {
			b.Fatal(err)
		}
		cs[i] = mustCampaign(b, string(js))
	}
	pls := make(map[string]*campaign.Placement, len(cat.Placements))
	for i := range cat.Placements {
		js, _ := json.Marshal(cat.Placements[i])
		p, err := campaign.DecodePlacement(js)
		if err != nil {
			b.Fatal(err)
		}
		pls[p.ID] = p
	}
	f := &feed.Feed{}
	f.Replace(&feed.Snapshot{Index: targeting.Build(cs), Placements: pls})
	p, err := pacing.New(pacing.Config{Clock: fixedClock{now}})
	if err != nil {
		b.Fatal(err)
	}
	ctr, err := auction.NewCTRModel(auction.CTRConfig{})
	if err != nil {
		b.Fatal(err)
	}
	signer, err := events.ParseSigner("k1:0123456789abcdef0123456789abcdef")
	if err != nil {
		b.Fatal(err)
	}
	s := &Server{
		Config: config.Default(),
		Feed:   f,
		Engine: &decision.Engine{NodeID: "n1", Seed: 42, CTR: ctr,
			Pacer: benchPacer{p}, Capper: benchCapper{p}, Sign: TrackingSigner(signer, "http://127.0.0.1:8080")},
		Now: func() time.Time { return now },
	}
	g := loadtest.NewGenerator(sc, 1)
	src := g.NewSource(0)
	var r loadtest.Request
	sb := &seededBench{s: s}
	for range 4096 {
		g.Next(src, &r)
		sb.bodies = append(sb.bodies, g.AppendAdRequest(nil, &r))
	}
	return sb
}

var (
	seededOnce sync.Once
	seeded     *seededBench
)

type fixedClock struct{ t time.Time }

func (c fixedClock) Now() time.Time { return c.t }

type benchPacer struct{ p *pacing.Pacer }

func (a benchPacer) Allow(c *campaign.Campaign, now time.Time) (bool, string) {
	return a.p.Allow(c, now)
}

// Reserve holds nothing: the benchmark replays the same requests many times
// over, which would otherwise exhaust the budgets (reservations expire only
// with time, and the clock is fixed).
func (a benchPacer) Reserve(c *campaign.Campaign, cost campaign.Micros, now time.Time) bool {
	return true
}
func (a benchPacer) Observe(placementID string, now time.Time) { a.p.Observe(placementID, now) }

type benchCapper struct{ p *pacing.Pacer }

func (a benchCapper) Allows(userID string, c *campaign.Campaign, now time.Time) bool {
	return a.p.CapAllows(userID, c, now)
}

// Record records nothing, for the same reason: replayed users would end up
// capped by every capped campaign.
func (a benchCapper) Record(userID string, c *campaign.Campaign, now time.Time) {}

// BenchmarkDecisionSeeded is BenchmarkDecision with the load test's catalog
// (10,000 campaigns from loadtest.BuildCatalog) and its varied request
// stream, with pacing, caps, CTR and signing wired as in production: the
// server's share of what `loadtest` measures.
func BenchmarkDecisionSeeded(b *testing.B) {
	seededOnce.Do(func() { seeded = newSeededBench(b, 10000) })
	sb := seeded
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/ad")
	var fills int
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ctx.Request.SetBodyRaw(sb.bodies[i%len(sb.bodies)])
		ctx.Response.Reset()
		sb.s.serveServing(&ctx)
		if ctx.Response.StatusCode() == 200 {
			fills++
		}
	}
	b.ReportMetric(float64(fills)/float64(b.N), "fill")
}
