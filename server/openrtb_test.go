package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/server/guard"
	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/valyala/fasthttp"
)

func doRTB(s *Server, body, token string) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/openrtb2/bid")
	ctx.Request.Header.SetContentTypeBytes(nil) // as Prebid Server: no Content-Type
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	ctx.Request.SetBodyString(body)
	s.serveServing(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

// rtbServer has run-of-network campaigns in the common banner sizes and a
// video, so every example request with a fitting format gets a bid.
func rtbServer(t *testing.T) *Server {
	var js []string
	for i, size := range [][2]int{{300, 250}, {728, 90}, {320, 50}, {300, 600}, {160, 600}, {320, 480}, {300, 50}, {970, 250}} {
		js = append(js, camp("ron-"+string(rune('a'+i)), "adv-ron", "0.9", `{}`, 0, size[0], size[1]))
	}
	s := testServer(t)
	cs := []string{}
	cs = append(cs, js...)
	s2 := testServer(t, append(mustCampaigns(t, cs), mustCampaign(t, `{"id":"ron-video","advertiser_id":"adv-v","status":"active","start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z",
	"budget":{"daily":100},"bid":{"model":"cpm","amount":5},"targeting":{},
	"creatives":[{"id":"cr-v","format":"video","w":640,"h":480,"duration":15,"vast_url":"https://example.com/vast.xml","landing_url":"https://example.com/"}]}`))...)
	_ = s
	signer, _ := events.ParseSigner("k1:0123456789abcdef0123456789abcdef")
	s2.Engine.Sign = TrackingSigner(signer, "http://ads.example")
	return s2
}

func TestOpenRTBInterop(t *testing.T) {
	s := rtbServer(t)
	files, _ := filepath.Glob("testdata/openrtb/*/*.json")
	if len(files) < 30 {
		t.Fatalf("found %d request files, want 30", len(files))
	}
	bids := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		want := expectBid(t, b)
		status, body := doRTB(s, string(b), "")
		if want && status != 200 {
			t.Errorf("%s: a run-of-network campaign fits, but status %d", f, status)
		}
		switch status {
		case 204:
		case 200:
			var resp openrtb2.BidResponse
			if err := json.Unmarshal([]byte(body), &resp); err != nil {
				t.Errorf("%s: bad response %v: %s", f, err, body)
				continue
			}
			for _, sb := range resp.SeatBid {
				for _, bid := range sb.Bid {
					bids++
					if bid.CrID == "" || bid.ImpID == "" || bid.ID == "" || bid.Price <= 0 || bid.AdM == "" || bid.MType == 0 {
						t.Errorf("%s: incomplete bid %+v", f, bid)
					}
					if !strings.Contains(bid.BURL, "${AUCTION_PRICE}") || !strings.Contains(bid.NURL, "${AUCTION_PRICE}") {
						t.Errorf("%s: notice URLs without the price macro: %s", f, bid.BURL)
					}
				}
			}
		default:
			t.Errorf("%s: status %d: %s", f, status, body)
		}
	}
	if bids < 10 {
		t.Errorf("only %d bids over %d requests", bids, len(files))
	}
}

// expectBid reads a request the slow obvious way and says whether one of
// rtbServer's campaigns fits an imp: a banner in one of its sizes with a
// floor up to 0.9, or a video (15 s) with a floor up to 5, in USD, not in a
// private auction.
func expectBid(t *testing.T, b []byte) bool {
	var r struct {
		Imp []struct {
			BidFloor    float64 `json:"bidfloor"`
			BidFloorCur string  `json:"bidfloorcur"`
			PMP         *struct {
				PrivateAuction int `json:"private_auction"`
			} `json:"pmp"`
			Banner *struct {
				W, H   int
				Format []struct{ W, H int }
			} `json:"banner"`
			Video *struct {
				MinDuration int `json:"minduration"`
				MaxDuration int `json:"maxduration"`
			} `json:"video"`
		} `json:"imp"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	sizes := map[[2]int]bool{{300, 250}: true, {728, 90}: true, {320, 50}: true, {300, 600}: true, {160, 600}: true, {320, 480}: true, {300, 50}: true, {970, 250}: true}
	for _, imp := range r.Imp {
		if (imp.BidFloorCur != "" && imp.BidFloorCur != "USD") || (imp.PMP != nil && imp.PMP.PrivateAuction == 1) {
			continue
		}
		if v := imp.Video; v != nil && imp.BidFloor < 5 && (v.MinDuration <= 15) && (v.MaxDuration == 0 || v.MaxDuration >= 15) {
			return true
		}
		if bn := imp.Banner; bn != nil && imp.BidFloor < 0.9 {
			if sizes[[2]int{bn.W, bn.H}] {
				return true
			}
			for _, f := range bn.Format {
				if sizes[[2]int{f.W, f.H}] {
					return true
				}
			}
		}
	}
	return false
}

func TestOpenRTBRules(t *testing.T) {
	s := rtbServer(t)
	base := `{"id":"req-1","at":%AT%,"imp":[{"id":"1","tagid":"p-1","bidfloor":%FLOOR%,"bidfloorcur":"%CUR%","banner":{"w":300,"h":250}}],"site":{"domain":"news.example"}%EXTRA%}`
	mk := func(at, floor, cur, extra string) string {
		r := strings.NewReplacer("%AT%", at, "%FLOOR%", floor, "%CUR%", cur, "%EXTRA%", extra)
		return r.Replace(base)
	}
	price := func(body string) float64 {
		var resp openrtb2.BidResponse
		json.Unmarshal([]byte(body), &resp)
		if len(resp.SeatBid) == 0 || len(resp.SeatBid[0].Bid) == 0 {
			return -1
		}
		return resp.SeatBid[0].Bid[0].Price
	}
	// One campaign in size: at=2 bids its full eCPM, at=1 shades to floor + 1 cent.
	if _, body := doRTB(s, mk("2", "0.5", "USD", ""), ""); price(body) != 0.9 {
		t.Errorf("at=2 price %v, want 0.9: %s", price(body), body)
	}
	if _, body := doRTB(s, mk("1", "0.6", "USD", ""), ""); price(body) != 0.61 {
		t.Errorf("at=1 price %v, want 0.61: %s", price(body), body)
	}
	if status, _ := doRTB(s, mk("2", "0.95", "USD", ""), ""); status != 204 {
		t.Errorf("bid below bidfloor: %d", status)
	}
	if status, _ := doRTB(s, mk("2", "0.1", "EUR", ""), ""); status != 204 {
		t.Errorf("foreign bidfloorcur should make the imp ineligible: %d", status)
	}
	status, body := doRTB(s, mk("2", "0.1", "USD", `,"badv":["adv-ron.example"]`), "")
	if status != 200 || !strings.Contains(body, `"nbr"`) {
		t.Errorf("badv block: %d %s", status, body)
	}
	pmp := strings.Replace(mk("2", "0.1", "USD", ""), `"banner"`, `"pmp":{"private_auction":1,"deals":[{"id":"d-1"}]},"banner"`, 1)
	if status, _ := doRTB(s, pmp, ""); status != 204 {
		t.Errorf("private auction without a deal campaign: %d", status)
	}
	for _, bad := range []string{`{`, `{"imp":[{"id":"1"}]}`, `{"id":"x"}`, `{"id":"x","imp":[]}`, `{"id":"x","imp":[{"banner":{}}]}`, `{"id":1,"imp":[{"id":"1"}]}`} {
		if status, body := doRTB(s, bad, ""); status != 400 || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %s", bad, status, body)
		}
	}
}

func FuzzOpenRTB(f *testing.F) {
	files, _ := filepath.Glob("testdata/openrtb/*/*.json")
	for _, p := range files[:5] {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	s := testServer(f, mustCampaign(f, camp("c", "adv-1", "5", `{}`, 0, 300, 250)))
	f.Fuzz(func(t *testing.T, b []byte) {
		status, _ := doRTB(s, string(b), "")
		if status != 200 && status != 204 && status != 400 {
			t.Fatalf("status %d", status)
		}
	})
}

func FuzzAdRequest(f *testing.F) {
	f.Add([]byte(adReq))
	f.Add([]byte(`{"id":"r","placement_id":"p","slots":[{"id":"s","w":1,"h":1,"floor":1e-6}]}`))
	s := testServer(f, mustCampaign(f, camp("c", "adv-1", "5", `{}`, 0, 300, 250)))
	f.Fuzz(func(t *testing.T, b []byte) {
		status, body := doAd(s, string(b), "")
		if status != 200 && status != 204 && status != 400 && status != 403 {
			t.Fatalf("status %d", status)
		}
		if status == 200 && !json.Valid([]byte(body)) {
			t.Fatalf("invalid JSON answer: %s", body)
		}
	})
}

// memLog is an in-memory event log; fail makes the n-th append (from 1)
// fail, 0 never.
type memLog struct {
	mu     sync.Mutex
	events []events.Event
	n      int
	fail   int
}

func (l *memLog) Append(p []byte) (uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	if l.n == l.fail {
		return 0, errors.New("log full")
	}
	var e events.Event
	if err := e.Unmarshal(p); err != nil {
		return 0, err
	}
	l.events = append(l.events, e)
	return uint64(len(l.events)), nil
}

// recorded returns the types of the events logged, in order.
func (l *memLog) recorded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var ts []string
	for _, e := range l.events {
		ts = append(ts, e.Type.String())
	}
	return ts
}

// memCharger sums charges per campaign.
type memCharger struct {
	mu      sync.Mutex
	charges map[string][]int64
}

func (c *memCharger) Charge(campaignID string, cost int64, _ time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.charges == nil {
		c.charges = map[string][]int64{}
	}
	c.charges[campaignID] = append(c.charges[campaignID], cost)
}

func (c *memCharger) of(campaignID string) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.charges[campaignID])
}

// noticeServer serves cs with tracking URLs and a Tracker over a fresh
// in-memory log and charger.
func noticeServer(t *testing.T, cs ...*campaign.Campaign) (*Server, *memLog, *memCharger) {
	t.Helper()
	s := testServer(t, cs...)
	signer, err := events.ParseSigner("k1:0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	s.Engine.Sign = TrackingSigner(signer, "http://ads.example")
	log, ch := &memLog{}, &memCharger{}
	rec, err := events.NewRecorder(events.RecorderConfig{NodeID: "n1", Log: log, Charger: ch, DedupEntries: 1000,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rec.Close)
	s.Tracker = &Tracker{Signer: signer, Recorder: rec, Now: func() time.Time { return testNow }}
	return s, log, ch
}

// rtbBid asks s for one 300x250 bid and returns it.
func rtbBid(t *testing.T, s *Server, extra string) openrtb2.Bid {
	t.Helper()
	status, body := doRTB(s, `{"id":"req-n","at":2,"imp":[{"id":"1","tagid":"p-1","banner":{"w":300,"h":250}}]`+extra+`}`, "")
	var resp openrtb2.BidResponse
	if status != 200 || json.Unmarshal([]byte(body), &resp) != nil || len(resp.SeatBid) != 1 || len(resp.SeatBid[0].Bid) != 1 {
		t.Fatalf("want one bid: %d %s", status, body)
	}
	return resp.SeatBid[0].Bid[0]
}

// fire sends a notice URL, with ${AUCTION_PRICE} replaced by price, to s.
func fire(s *Server, notice, price string) (int, string) {
	u, err := url.Parse(strings.Replace(notice, "${AUCTION_PRICE}", price, 1))
	if err != nil {
		panic(err)
	}
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("GET")
	ctx.Request.SetRequestURI(u.RequestURI())
	s.serveServing(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

// TestOpenRTBNoticesChargeOnce pins the charging rule of the win (nurl)
// and billing (burl) notices: whichever of them arrives first records the
// bid's one billing event and charges the exchange's price (a CPM: a
// thousandth of it per impression), never above the bid; the other, and
// any repeat, charges nothing.
func TestOpenRTBNoticesChargeOnce(t *testing.T) {
	cpm := camp("c-cpm", "adv-1", "3.0", `{}`, 0, 300, 250)
	type step struct {
		notice string // "nurl", "burl" or "lurl"
		price  string
		status int
	}
	for _, tc := range []struct {
		name    string
		extra   string
		steps   []step
		charges []int64
		events  []string
	}{
		{name: "nurl only, at the macro price",
			steps:   []step{{"nurl", "2.5", 204}},
			charges: []int64{2500}, events: []string{"win", "billing"}},
		{name: "nurl only, replayed",
			steps:   []step{{"nurl", "2.5", 204}, {"nurl", "2.5", 204}, {"nurl", "2.5", 204}},
			charges: []int64{2500}, events: []string{"win", "billing"}},
		{name: "nurl then burl",
			steps:   []step{{"nurl", "2.5", 204}, {"burl", "2.5", 204}},
			charges: []int64{2500}, events: []string{"win", "billing"}},
		{name: "burl then nurl",
			steps:   []step{{"burl", "2.5", 204}, {"nurl", "2.5", 204}, {"burl", "2.5", 204}},
			charges: []int64{2500}, events: []string{"billing", "win"}},
		{name: "burl only",
			steps:   []step{{"burl", "1.234567", 204}},
			charges: []int64{1234}, events: []string{"billing"}},
		{name: "nurl at the bid",
			steps:   []step{{"nurl", "3.00", 204}},
			charges: []int64{3000}, events: []string{"win", "billing"}},
		{name: "nurl above the bid is rejected, then a true one charges",
			steps:   []step{{"nurl", "3.01", 400}, {"nurl", "99", 400}, {"nurl", "2.5", 204}},
			charges: []int64{2500}, events: []string{"win", "billing"}},
		{name: "burl above the bid is rejected",
			steps:  []step{{"burl", "3.000001", 400}},
			events: nil},
		{name: "nurl without the price substituted is rejected",
			steps:  []step{{"nurl", "${AUCTION_PRICE}", 400}},
			events: nil},
		{name: "loss notice charges nothing",
			steps:  []step{{"lurl", "2.9", 204}},
			events: []string{"loss"}},
		{name: "test request: nurl and burl record, never charge",
			extra:  `,"test":1`,
			steps:  []step{{"nurl", "2.5", 204}, {"burl", "2.5", 204}},
			events: []string{"win", "billing"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, log, ch := noticeServer(t, mustCampaign(t, cpm))
			bid := rtbBid(t, s, tc.extra)
			if bid.Price != 3 {
				t.Fatalf("bid %v, want 3", bid.Price)
			}
			urls := map[string]string{"nurl": bid.NURL, "burl": bid.BURL, "lurl": bid.LURL}
			for i, st := range tc.steps {
				if status, body := fire(s, urls[st.notice], st.price); status != st.status {
					t.Fatalf("step %d: %s at %s: %d %s, want %d", i, st.notice, st.price, status, body, st.status)
				}
			}
			if got := ch.of("c-cpm"); !slices.Equal(got, tc.charges) {
				t.Errorf("charges %v, want %v", got, tc.charges)
			}
			if got := log.recorded(); !slices.Equal(got, tc.events) {
				t.Errorf("events %v, want %v", got, tc.events)
			}
		})
	}
}

// A CPC campaign is charged by its click, so its win notice records the
// win only and its billing notice charges nothing.
func TestOpenRTBNoticesCPC(t *testing.T) {
	s, log, ch := noticeServer(t, mustCampaign(t, strings.Replace(camp("c-cpc", "adv-1", "0.5", `{}`, 0, 300, 250),
		`"model":"cpm"`, `"model":"cpc"`, 1)))
	ctr, _ := auction.NewCTRModel(auction.CTRConfig{PriorMean: 0.01})
	s.Engine.CTR = ctr
	bid := rtbBid(t, s, "")
	if strings.Contains(bid.NURL, "&m=") || strings.Contains(bid.BURL, "&m=") {
		t.Errorf("notices of a CPC bid carry a charge: %s %s", bid.NURL, bid.BURL)
	}
	fire(s, bid.NURL, "4")
	fire(s, bid.BURL, "4")
	if got := ch.of("c-cpc"); len(got) != 0 {
		t.Errorf("charges %v, want none", got)
	}
	if got := log.recorded(); !slices.Equal(got, []string{"win", "billing"}) {
		t.Errorf("events %v", got)
	}
}

// When the log refuses the billing event after the win was recorded, the
// exchange's retry records the billing event and charges once.
func TestOpenRTBNoticeRetryAfterLogFailure(t *testing.T) {
	s, log, ch := noticeServer(t, mustCampaign(t, camp("c-cpm", "adv-1", "3.0", `{}`, 0, 300, 250)))
	log.fail = 2 // the billing event of the first nurl
	bid := rtbBid(t, s, "")
	if status, _ := fire(s, bid.NURL, "2"); status != 503 {
		t.Fatalf("status %d, want 503", status)
	}
	if got := ch.of("c-cpm"); len(got) != 0 {
		t.Fatalf("charged %v before the billing event was stored", got)
	}
	if status, _ := fire(s, bid.NURL, "2"); status != 204 {
		t.Fatalf("retry: status %d", status)
	}
	fire(s, bid.BURL, "2")
	if got := ch.of("c-cpm"); !slices.Equal(got, []int64{2000}) {
		t.Errorf("charges %v, want [2000]", got)
	}
	if got := log.recorded(); !slices.Equal(got, []string{"win", "billing"}) {
		t.Errorf("events %v", got)
	}
}

// Notices fired at once, as an exchange's nurl and burl may be, and
// repeated, charge once.
func TestOpenRTBNoticesConcurrent(t *testing.T) {
	s, _, ch := noticeServer(t, mustCampaign(t, camp("c-cpm", "adv-1", "3.0", `{}`, 0, 300, 250)))
	for round := 0; round < 20; round++ {
		bid := rtbBid(t, s, "")
		var wg sync.WaitGroup
		for i := 0; i < 8; i++ {
			for _, u := range []string{bid.NURL, bid.BURL} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if status, body := fire(s, u, "1.5"); status != 204 {
						t.Errorf("%d %s", status, body)
					}
				}()
			}
		}
		wg.Wait()
		if got := ch.of("c-cpm"); len(got) != round+1 {
			t.Fatalf("round %d: %d charges, want %d", round, len(got), round+1)
		}
	}
}

// nurl and burl carry the same signed billing beacon; a win beacon (e=w,
// as issued before nurl carried the billing beacon) still verifies on the
// win endpoint and records the win only, and neither beacon is accepted on
// the other's endpoint otherwise.
func TestOpenRTBNoticeEndpoints(t *testing.T) {
	s, log, ch := noticeServer(t, mustCampaign(t, camp("c-cpm", "adv-1", "3.0", `{}`, 0, 300, 250)))
	bid := rtbBid(t, s, "")
	nq, bq := bid.NURL[strings.IndexByte(bid.NURL, '?'):], bid.BURL[strings.IndexByte(bid.BURL, '?'):]
	if !strings.HasPrefix(bid.NURL, "http://ads.example"+PathWin+"?e=b&") || nq != bq {
		t.Errorf("nurl %s does not carry burl's beacon %s", bid.NURL, bid.BURL)
	}
	signer, _ := events.ParseSigner("k1:0123456789abcdef0123456789abcdef")
	legacy := events.Beacon{Type: events.TypeWin, AuctionID: "n1.old.1", SlotID: "1", AdvertiserID: "adv-1",
		CampaignID: "c-cpm", CreativeID: "cr-c-cpm", CeilingMicros: 3_000_000, Issued: testNow}
	winURL := string(signer.AppendURL(nil, "http://ads.example"+PathWin, &legacy))
	if status, body := fire(s, winURL, "2"); status != 204 {
		t.Fatalf("legacy win notice: %d %s", status, body)
	}
	if status, _ := fire(s, strings.Replace(winURL, PathWin, PathBilling, 1), "2"); status != 400 {
		t.Errorf("a win beacon on the billing endpoint: %d, want 400", status)
	}
	if status, _ := fire(s, strings.Replace(bid.NURL, PathWin, PathLoss, 1), "2"); status != 400 {
		t.Errorf("a billing beacon on the loss endpoint: %d, want 400", status)
	}
	if got := ch.of("c-cpm"); len(got) != 0 {
		t.Errorf("charges %v, want none", got)
	}
	if got := log.recorded(); !slices.Equal(got, []string{"win"}) {
		t.Errorf("events %v, want [win]", got)
	}
}

// A banner bid's markup fires the impression beacon, which records the
// impression and charges nothing: the billing notice charges.
func TestOpenRTBBannerImpressionPixel(t *testing.T) {
	s, log, ch := noticeServer(t, mustCampaign(t, camp("c-cpm", "adv-1", "3.0", `{}`, 0, 300, 250)))
	bid := rtbBid(t, s, "")
	m := regexp.MustCompile(`<img src="(http://ads\.example/v1/t/imp\?[^"]+)" width="1" height="1"`).FindStringSubmatch(bid.AdM)
	if m == nil {
		t.Fatalf("no impression pixel in %s", bid.AdM)
	}
	if status, body := fire(s, html.UnescapeString(m[1]), ""); status != 204 {
		t.Fatalf("impression: %d %s", status, body)
	}
	fire(s, bid.BURL, "2")
	if got := ch.of("c-cpm"); !slices.Equal(got, []int64{2000}) {
		t.Errorf("charges %v, want [2000]", got)
	}
	if got := log.recorded(); !slices.Equal(got, []string{"impression", "billing"}) {
		t.Errorf("events %v", got)
	}
}

// Only the first maxImps imps of a bid request are decided; the others get
// no bid and are counted.
func TestOpenRTBImpCap(t *testing.T) {
	var js []string
	for i := range maxImps + 10 {
		js = append(js, camp(fmt.Sprintf("c-%d", i), fmt.Sprintf("adv-%d", i), "1", `{}`, 0, 300, 250))
	}
	s := testServer(t, mustCampaigns(t, js)...)
	var imps []string
	for i := range maxImps + 8 {
		imps = append(imps, fmt.Sprintf(`{"id":"%d","banner":{"w":300,"h":250}}`, i))
	}
	before := impsIgnored.Get()
	status, body := doRTB(s, `{"id":"many","at":2,"imp":[`+strings.Join(imps, ",")+`]}`, "")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var resp openrtb2.BidResponse
	if err := json.Unmarshal([]byte(body), &resp); err != nil || len(resp.SeatBid) != 1 {
		t.Fatalf("%v: %s", err, body)
	}
	seen := map[string]bool{}
	for _, b := range resp.SeatBid[0].Bid {
		n, _ := strconv.Atoi(b.ImpID)
		if n >= maxImps {
			t.Errorf("bid on imp %s, past the first %d", b.ImpID, maxImps)
		}
		seen[b.ImpID] = true
	}
	if len(seen) != maxImps {
		t.Errorf("bids on %d imps, want each of the first %d", len(seen), maxImps)
	}
	if got := impsIgnored.Get() - before; got != 8 {
		t.Errorf("adserver_openrtb_imps_ignored_total rose by %d, want 8", got)
	}
}

// The placement limit applies to every placement of a bid request, each
// once, whichever imp names it.
func TestOpenRTBPlacementLimitPerImp(t *testing.T) {
	s := rtbServer(t)
	lim, err := guard.NewLimiter(guard.LimiterConfig{Name: "placement", Rate: 0.001, Burst: 2})
	if err != nil {
		t.Fatal(err)
	}
	s.Guards = &Guards{Placement: lim}
	req := func(tagids ...string) string {
		var imps []string
		for i, tag := range tagids {
			imps = append(imps, fmt.Sprintf(`{"id":"%d","tagid":%q,"banner":{"w":300,"h":250}}`, i, tag))
		}
		return `{"id":"r","imp":[` + strings.Join(imps, ",") + `]}`
	}
	// Two imps of p-b in one request spend one of p-b's two tokens.
	if st, body := doRTB(s, req("p-b", "p-b"), ""); st == 429 {
		t.Fatalf("first request: %d %s", st, body)
	}
	if st, body := doRTB(s, req("p-b"), ""); st == 429 {
		t.Fatalf("second request of p-b: %d %s", st, body)
	}
	// p-b's burst is spent: a request whose second imp names it is refused.
	st, body := doRTB(s, req("p-a", "p-b"), "")
	if st != 429 || !strings.Contains(body, "rate_limited_placement") || !strings.Contains(body, `\"p-b\"`) {
		t.Fatalf("p-b in the second imp: %d %s, want 429 naming p-b", st, body)
	}
	if st, body := doRTB(s, req("p-a"), ""); st == 429 {
		t.Fatalf("p-a alone: %d %s", st, body)
	}
}
