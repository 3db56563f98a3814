package loadtest

import (
	"net"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/valyala/fasthttp"
)

// startServer serves h on a loopback port until the test ends and returns
// its base URL.
func startServer(t testing.TB, h fasthttp.RequestHandler) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{Handler: h, NoDefaultDate: true, NoDefaultServerHeader: true}
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	t.Cleanup(func() {
		_ = ln.Close()
		_ = srv.Shutdown()
		<-done
	})
	return "http://" + ln.Addr().String()
}

// sleepHandler answers 204 after d.
func sleepHandler(d time.Duration) fasthttp.RequestHandler {
	return func(ctx *fasthttp.RequestCtx) {
		time.Sleep(d)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// stallServer answers 204 at once, except that from arm after its first
// request it stalls once for stall: every request arriving during the stall
// is held until it ends, as a GC pause or a lock would.
type stallServer struct {
	arm, stall time.Duration
	mu         sync.Mutex
	first      time.Time
	stallEnd   time.Time
	stalled    atomic.Int64
}

func (s *stallServer) handle(ctx *fasthttp.RequestCtx) {
	now := time.Now()
	s.mu.Lock()
	if s.first.IsZero() {
		s.first = now
	}
	if s.stallEnd.IsZero() && now.Sub(s.first) >= s.arm {
		s.stallEnd = now.Add(s.stall)
	}
	end := s.stallEnd
	s.mu.Unlock()
	if now.Before(end) {
		s.stalled.Add(1)
		time.Sleep(end.Sub(now))
	}
	ctx.SetStatusCode(fasthttp.StatusNoContent)
}

// fakeAdServer fills every other ad request (odd request numbers) with one
// ad whose tracking URLs name a foreign host (the harness must send them to
// the target anyway), and counts beacons.
type fakeAdServer struct {
	n, imps, clicks, convs, ortb atomic.Int64
	withConv                     bool
	// postback makes clicks redirect to a landing URL that carries a
	// conversion postback (ConversionParam), as the ad server does.
	postback      bool
	lastBurlPrice atomic.Value
}

func (s *fakeAdServer) handle(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Path()) {
	case PathAd:
		k := s.n.Add(1)
		if k%2 == 0 {
			ctx.SetStatusCode(fasthttp.StatusNoContent)
			return
		}
		conv := ""
		if s.withConv {
			conv = `,"conversion_url":"/v1/t/conv?click=abc"`
		}
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"r","ads":[{"slot_id":"s1","campaign_id":"c-1","creative_id":"cr-1","html":"<a>","w":300,"h":250,"price":1.5,` +
			`"impression_url":"http://ads.invalid:8080/v1/t/imp?a=` + strconv.FormatInt(k, 10) + `&sig=x","click_url":"https://ads.invalid/v1/t/click?a=1"` + conv + `}]}`)
	case PathOpenRTB:
		s.ortb.Add(1)
		ctx.SetContentType("application/json")
		ctx.SetBodyString(`{"id":"r","seatbid":[{"bid":[{"id":"b1","impid":"1","price":2.25,"crid":"cr-1","adm":"<a>",` +
			`"burl":"http://ads.invalid/v1/t/imp?p=${AUCTION_PRICE}","ext":{"click_url":"/v1/t/click?b=1"}}]}]}`)
	case "/v1/t/imp":
		s.imps.Add(1)
		if p := ctx.QueryArgs().Peek("p"); p != nil {
			s.lastBurlPrice.Store(string(p))
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	case "/v1/t/click":
		s.clicks.Add(1)
		if s.postback {
			pb := url.QueryEscape("http://ads.invalid:8080/v1/t/conv?a=" + string(ctx.QueryArgs().Peek("a")) + "&sig=y")
			ctx.Redirect("https://landing.invalid/p?utm=x&"+ConversionParam+"="+pb, fasthttp.StatusFound)
			return
		}
		ctx.Redirect("https://landing.invalid/", fasthttp.StatusFound)
	case "/v1/t/conv":
		if s.postback && string(ctx.QueryArgs().Peek("sig")) != "y" {
			ctx.SetStatusCode(fasthttp.StatusForbidden)
			return
		}
		s.convs.Add(1)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	default:
		ctx.SetStatusCode(fasthttp.StatusNotFound)
	}
}

func sumStatus(r *Result) int64 {
	var n int64
	for _, c := range r.Status {
		n += c
	}
	return n
}
