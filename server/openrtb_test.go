package server

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/adserver/adserver/events"
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
