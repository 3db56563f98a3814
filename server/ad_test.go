package server

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/targeting"
	"github.com/adserver/adserver/targeting/feed"
	"github.com/valyala/fasthttp"
)

var testNow = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

const adminToken = "admin-token-0123456789"

func mustCampaign(t testing.TB, js string) *campaign.Campaign {
	t.Helper()
	c, err := campaign.DecodeCampaign([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func camp(id, adv, bid, targeting string, priority int, w, h int) string {
	return fmt.Sprintf(`{"id":%q,"advertiser_id":%q,"status":"active","start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z",
	"budget":{"daily":100},"bid":{"model":"cpm","amount":%s},"priority":%d,"targeting":%s,
	"creatives":[{"id":"cr-%s","format":"banner","w":%d,"h":%d,"html":"<a href='{{CLICK_URL}}'>ad</a>","landing_url":"https://example.com/%s","adomain":["%s.example"]}]}`,
		id, adv, bid, priority, targeting, id, w, h, id, adv)
}

// testServer builds a Server over a fixed catalog, without Kafka.
func testServer(t testing.TB, cs ...*campaign.Campaign) *Server {
	t.Helper()
	f := &feed.Feed{}
	pl, _ := campaign.DecodePlacement([]byte(`{"id":"p-1","publisher_id":"pub-1","sizes":[[300,250]],"floor":0.5}`))
	pfirst, _ := campaign.DecodePlacement([]byte(`{"id":"p-first","publisher_id":"pub-1","floor":0.5,"auction":"first"}`))
	f.Replace(&feed.Snapshot{
		Index:      targeting.Build(cs),
		Placements: map[string]*campaign.Placement{"p-1": pl, "p-first": pfirst},
	})
	s := &Server{
		Config: config.Default(),
		Feed:   f,
		Engine: &decision.Engine{NodeID: "n1", Seed: 42},
		Now:    func() time.Time { return testNow },
	}
	s.adminToken = adminToken
	return s
}

func doAd(s *Server, body, token string) (int, string) {
	var ctx fasthttp.RequestCtx
	ctx.Request.Header.SetMethod("POST")
	ctx.Request.SetRequestURI("/v1/ad")
	if token != "" {
		ctx.Request.Header.Set("Authorization", "Bearer "+token)
	}
	ctx.Request.SetBodyString(body)
	s.serveServing(&ctx)
	return ctx.Response.StatusCode(), string(ctx.Response.Body())
}

const adReq = `{"id":"r-1","placement_id":"p-1","user":{"id":"u-1","segments":["sports"]},
 "device":{"type":"mobile","os":"android","ip":"203.0.113.9","language":"ko"},
 "geo":{"country":"KR","region":"11","city":"Seoul"},"site":{"domain":"news.example"},"keywords":["baseball"],
 "slots":[{"id":"s1","w":300,"h":250,"floor":0.5}]}`

type adResp struct {
	ID  string
	Ads []struct {
		SlotID     string `json:"slot_id"`
		CampaignID string `json:"campaign_id"`
		CreativeID string `json:"creative_id"`
		HTML       string
		W, H       int
		Price      json.Number
		ImpURL     string `json:"impression_url"`
		ClickURL   string `json:"click_url"`
	}
	Debug []decision.Debug
}

func TestAdSecondPriceAndPriority(t *testing.T) {
	s := testServer(t,
		mustCampaign(t, camp("c-kr", "adv-1", "3.0", `{"any":[{"all":[{"attr":"country","in":["KR"]}]}]}`, 0, 300, 250)),
		mustCampaign(t, camp("c-ron", "adv-2", "2.0", `{}`, 0, 300, 250)),
		mustCampaign(t, camp("c-us", "adv-3", "9.0", `{"any":[{"all":[{"attr":"country","in":["US"]}]}]}`, 0, 300, 250)),
		mustCampaign(t, camp("c-small", "adv-4", "9.0", `{}`, 0, 728, 90)),
	)
	status, body := doAd(s, adReq, "")
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	var r adResp
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != "r-1" || len(r.Ads) != 1 {
		t.Fatalf("%s", body)
	}
	ad := r.Ads[0]
	// c-kr (3.00) beats c-ron (2.00) and pays the runner-up plus a cent.
	if ad.CampaignID != "c-kr" || ad.CreativeID != "cr-c-kr" || ad.Price.String() != "2.01" || ad.W != 300 || ad.SlotID != "s1" {
		t.Errorf("got %+v", ad)
	}
	if strings.Contains(ad.HTML, "{{CLICK_URL}}") {
		t.Errorf("click macro not replaced: %s", ad.HTML)
	}

	// A higher priority wins even with a lower bid.
	s = testServer(t,
		mustCampaign(t, camp("c-high", "adv-1", "3.0", `{}`, 0, 300, 250)),
		mustCampaign(t, camp("c-prio", "adv-2", "1.0", `{}`, 9, 300, 250)),
	)
	_, body = doAd(s, adReq, "")
	if !strings.Contains(body, `"campaign_id":"c-prio"`) {
		t.Errorf("priority did not win: %s", body)
	}
}

func TestAdNoFillAndFloors(t *testing.T) {
	s := testServer(t, mustCampaign(t, camp("c-cheap", "adv-1", "0.4", `{}`, 0, 300, 250)))
	if status, body := doAd(s, adReq, ""); status != 204 {
		t.Fatalf("below the placement floor should not fill: %d %s", status, body)
	}
	s = testServer(t, mustCampaign(t, camp("c-us", "adv-1", "5", `{"any":[{"all":[{"attr":"country","in":["US"]}]}]}`, 0, 300, 250)))
	if status, _ := doAd(s, adReq, ""); status != 204 {
		t.Fatalf("no matching campaign should be 204, got %d", status)
	}
}

func TestAdMultiSlotExclusion(t *testing.T) {
	s := testServer(t,
		mustCampaign(t, camp("a1", "adv-1", "5", `{}`, 0, 300, 250)),
		mustCampaign(t, camp("a2", "adv-1", "4", `{}`, 0, 300, 250)),
		mustCampaign(t, camp("b1", "adv-2", "3", `{}`, 0, 300, 250)),
	)
	req := strings.Replace(adReq, `"slots":[{"id":"s1","w":300,"h":250,"floor":0.5}]`,
		`"slots":[{"id":"s1","w":300,"h":250},{"id":"s2","w":300,"h":250}]`, 1)
	_, body := doAd(s, req, "")
	var r adResp
	json.Unmarshal([]byte(body), &r)
	if len(r.Ads) != 2 {
		t.Fatalf("want 2 ads: %s", body)
	}
	seen := map[string]bool{}
	for _, ad := range r.Ads {
		seen[ad.CampaignID] = true
	}
	if !seen["a1"] || !seen["b1"] || seen["a2"] {
		t.Errorf("one ad per advertiser: got %v", seen)
	}
}

func TestAdBadInput(t *testing.T) {
	s := testServer(t, mustCampaign(t, camp("c", "adv-1", "5", `{}`, 0, 300, 250)))
	for _, tc := range []struct{ body, field string }{
		{`{`, ""},
		{`[]`, ""},
		{`{"placement_id":"p-1","slots":[{"id":"s1","w":300,"h":250}]}`, "id"},
		{`{"id":"r","placement_id":"p-1"}`, "slots"},
		{`{"id":"r","placement_id":"p-1","slots":"x"}`, "slots"},
		{`{"id":"r","placement_id":"p-1","slots":[]}`, "slots"},
		{`{"id":"r","placement_id":"p-1","slots":[{"id":"s1","w":"300","h":250}]}`, "slots[0].w"},
		{`{"id":"r","placement_id":"p-1","slots":[{"id":"s1","w":300,"h":250,"floor":"1"}]}`, "slots[0].floor"},
		{`{"id":"r","placement_id":"p-1","slots":[{"id":"s1","w":300,"h":250,"floor":0.0000001}]}`, "slots[0].floor"},
		{`{"id":"r","placement_id":"p-1","user":"u","slots":[{"id":"s1","w":300,"h":250}]}`, "user"},
		{`{"id":"r","placement_id":"p-1","keywords":[1],"slots":[{"id":"s1","w":300,"h":250}]}`, "keywords[0]"},
		{`{"id":5,"placement_id":"p-1","slots":[{"id":"s1","w":300,"h":250}]}`, "id"},
	} {
		status, body := doAd(s, tc.body, "")
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		if status != 400 || json.Unmarshal([]byte(body), &e) != nil || e.Error.Field != tc.field || e.Error.Message == "" {
			t.Errorf("%s: %d %s (want 400, field %q)", tc.body, status, body, tc.field)
		}
	}
}

func TestAdDebugNeedsAdmin(t *testing.T) {
	s := testServer(t,
		mustCampaign(t, camp("c-kr", "adv-1", "3.0", `{"any":[{"all":[{"attr":"country","in":["KR"]}]}]}`, 0, 300, 250)),
		mustCampaign(t, camp("c-us", "adv-2", "3.0", `{"any":[{"all":[{"attr":"country","in":["US"]}]}]}`, 0, 300, 250)),
		mustCampaign(t, camp("c-ron", "adv-3", "1.0", `{}`, 0, 300, 250)),
	)
	req := strings.Replace(adReq, `"id":"r-1"`, `"id":"r-1","debug":true`, 1)
	if status, _ := doAd(s, req, ""); status != 403 {
		t.Fatalf("debug without admin token: %d", status)
	}
	status, body := doAd(s, req, adminToken)
	var r adResp
	if status != 200 || json.Unmarshal([]byte(body), &r) != nil {
		t.Fatalf("%d %s", status, body)
	}
	why := map[string]string{}
	for _, d := range r.Debug {
		why[d.CampaignID] = d.Stage + ":" + d.Reason
	}
	if why["c-kr"] != "auction:won" || why["c-ron"] != "auction:lost" || !strings.HasPrefix(why["c-us"], "targeting:") || !strings.Contains(why["c-us"], "country") {
		t.Errorf("debug explanations: %v", why)
	}
}

func TestAdTrackingURLsVerify(t *testing.T) {
	s := testServer(t, mustCampaign(t, camp("c-1", "adv-1", "3.0", `{}`, 0, 300, 250)))
	signer, err := events.ParseSigner("k1:0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	s.Engine.Sign = TrackingSigner(signer, "http://ads.example")
	status, body := doAd(s, adReq, "")
	var r adResp
	if status != 200 || json.Unmarshal([]byte(body), &r) != nil || len(r.Ads) != 1 {
		t.Fatalf("%d %s", status, body)
	}
	for _, raw := range []string{r.Ads[0].ImpURL, r.Ads[0].ClickURL} {
		u, err := url.Parse(raw)
		if err != nil || u.Host != "ads.example" {
			t.Fatalf("bad tracking URL %q", raw)
		}
		b, err := signer.Verify(events.URLValues(u.Query()), testNow)
		if err != nil {
			t.Fatalf("%s does not verify: %v", raw, err)
		}
		if b.CampaignID != "c-1" || b.SlotID != "s1" || b.PlacementID != "p-1" {
			t.Errorf("beacon %+v", b)
		}
		// Altering the price breaks the signature.
		q := u.Query()
		q.Set("pr", "999999999")
		if _, err := signer.Verify(events.URLValues(q), testNow); err == nil {
			t.Errorf("altered beacon verified: %s", raw)
		}
	}
	if !strings.Contains(r.Ads[0].HTML, "ads.example/v1/t/click") {
		t.Errorf("click URL not in the creative: %s", r.Ads[0].HTML)
	}
}

func mustCampaigns(t testing.TB, js []string) []*campaign.Campaign {
	var cs []*campaign.Campaign
	for _, j := range js {
		cs = append(cs, mustCampaign(t, j))
	}
	return cs
}
