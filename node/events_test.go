package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/events/clickhouse"
	"github.com/adserver/adserver/internal/chtest"
	"github.com/adserver/adserver/server"
)

// testClickHouse returns the ClickHouse address the tests use and a fresh
// database name, dropped at the end of the test. A missing server fails the
// test: CI starts one with scripts/clickhouse.sh.
func testClickHouse(t testing.TB) (addr, db string) {
	t.Helper()
	addr = chtest.Addr()
	conn, err := clickhouse.Open(addr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return addr, chtest.Database(t, conn, "adserver_test_node_")
}

// noRedirect is an HTTP client that reports redirects instead of following
// them.
var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error {
	return http.ErrUseLastResponse
}}

func get(t *testing.T, u string) (int, http.Header) {
	t.Helper()
	r, err := noRedirect.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	return r.StatusCode, r.Header
}

type servedAd struct {
	CampaignID    string `json:"campaign_id"`
	Price         json.Number
	ImpressionURL string `json:"impression_url"`
	ClickURL      string `json:"click_url"`
}

func requestAd(t *testing.T, n *Node, user string) servedAd {
	t.Helper()
	body := `{"id":"r","placement_id":"p-1","user":{"id":"` + user + `"},"geo":{"country":"KR"},
		"slots":[{"id":"s1","w":300,"h":250}]}`
	return adFrom(t, call(t, "POST", serving(n)+"/v1/ad", "", body))
}

// adFrom returns the one ad of a 200 answer of /v1/ad.
func adFrom(t *testing.T, r resp) servedAd {
	t.Helper()
	if r.status != 200 {
		t.Fatalf("/v1/ad: %d %s", r.status, r.body)
	}
	var ans struct{ Ads []servedAd }
	if err := json.Unmarshal([]byte(r.body), &ans); err != nil || len(ans.Ads) != 1 {
		t.Fatalf("/v1/ad answer %s: %v", r.body, err)
	}
	return ans.Ads[0]
}

// TestEventsEndToEnd sends decisions, their impressions (each twice),
// some clicks (twice) and conversions, and forged beacons through a real
// node, and checks that ClickHouse holds every valid event exactly once
// with the spend to the micro, that the pacer was charged the same, and
// that the forged beacons changed nothing.
func TestEventsEndToEnd(t *testing.T) {
	chAddr, db := testClickHouse(t)
	n := startNodeWith(t, t.TempDir(), "", func(c *config.Config) {
		c.ClickHouse = chAddr
		c.ClickHouseDatabase = db
		c.Shipper.BatchInterval = 50 * time.Millisecond
	})
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	call(t, "PUT", admin(n)+"/v1/placements/p-1", testToken, `{"id":"p-1","publisher_id":"pub-1","format":"banner","sizes":[[300,250]],"floor":0.5}`)
	if r := call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5")); r.status != 200 {
		t.Fatalf("PUT campaign: %d %s", r.status, r.body)
	}

	const decisions, clicks, conversions = 40, 10, 4
	var wantSpend int64
	var ads []servedAd
	for i := range decisions {
		ad := requestAd(t, n, "u-"+string(rune('a'+i%26)))
		price, err := campaign.ParseMicros(ad.Price.String())
		if err != nil {
			t.Fatal(err)
		}
		wantSpend += int64(price) / 1000
		ads = append(ads, ad)
	}
	for _, ad := range ads {
		for range 2 { // the repeat is accepted and recorded once
			if st, _ := get(t, ad.ImpressionURL); st != 204 {
				t.Fatalf("impression beacon: %d", st)
			}
		}
	}
	for i, ad := range ads[:clicks] {
		var landing string
		for range 2 {
			st, h := get(t, ad.ClickURL)
			if st != 302 {
				t.Fatalf("click beacon: %d", st)
			}
			landing = h.Get("Location")
		}
		u, err := url.Parse(landing)
		if err != nil || u.Host != "example.com" {
			t.Fatalf("click redirects to %q, want the creative's landing page", landing)
		}
		if i < conversions {
			conv := u.Query().Get(server.ConversionParam)
			if !strings.Contains(conv, server.PathConversion) {
				t.Fatalf("landing URL %q carries no conversion postback", landing)
			}
			if st, _ := get(t, conv); st != 204 {
				t.Fatalf("conversion postback: %d", st)
			}
		}
	}

	// Forged and misused beacons: rejected, nothing recorded or charged.
	imp := ads[0].ImpressionURL
	for _, c := range []struct {
		name, url string
		status    int
	}{
		{"altered price", strings.Replace(imp, "&pr=", "&pr=9", 1), 403},
		{"altered campaign", strings.Replace(imp, "&c=c-1", "&c=c-2", 1), 403},
		{"no signature", imp[:strings.Index(imp, "&sig=")], 400},
		{"impression at the click endpoint", strings.Replace(imp, server.PathImpression, server.PathClick, 1), 400},
		{"unknown key", strings.Replace(imp, "&k=", "&k=zz", 1), 403},
	} {
		if c.url == imp {
			t.Fatalf("%s: the test did not alter the URL: %s", c.name, c.url)
		}
		if st, _ := get(t, c.url); st != c.status {
			t.Errorf("%s: status %d, want %d", c.name, st, c.status)
		}
	}
	// An open redirect is impossible: the landing URL is signed.
	evil := strings.Replace(ads[0].ClickURL, "example.com", "evil.example", 1)
	if evil == ads[0].ClickURL {
		t.Fatal("click URL does not carry the landing URL")
	}
	if st, h := get(t, evil); st != 403 || h.Get("Location") != "" {
		t.Errorf("altered click redirect: %d %q", st, h.Get("Location"))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.Shipper.WaitShipped(ctx, n.Events.LastSeq()); err != nil {
		t.Fatalf("shipping: %v", err)
	}
	conn, err := clickhouse.Open(chAddr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var imps, clk, conv, spend, rollImps, rollSpend int64
	row := conn.QueryRow(ctx, `SELECT toInt64(countIf(type = 'impression')), toInt64(countIf(type = 'click')),
		toInt64(countIf(type = 'conversion')), toInt64(sum(cost_micros)) FROM `+db+`.events FINAL`)
	if err := row.Scan(&imps, &clk, &conv, &spend); err != nil {
		t.Fatal(err)
	}
	if imps != decisions || clk != clicks || conv != conversions || spend != wantSpend {
		t.Errorf("events table: %d impressions, %d clicks, %d conversions, spend %d µ; want %d, %d, %d, %d µ",
			imps, clk, conv, spend, decisions, clicks, conversions, wantSpend)
	}
	row = conn.QueryRow(ctx, `SELECT toInt64(sum(impressions)), toInt64(sum(spend_micros)) FROM `+db+`.rollup_hourly WHERE campaign_id = 'c-1'`)
	if err := row.Scan(&rollImps, &rollSpend); err != nil {
		t.Fatal(err)
	}
	if rollImps != decisions || rollSpend != wantSpend {
		t.Errorf("rollup: %d impressions, spend %d µ; want %d, %d µ", rollImps, rollSpend, decisions, wantSpend)
	}
	st, ok := n.Pacer.Status("c-1", time.Now())
	if !ok || int64(st.TotalSpend) != wantSpend {
		t.Errorf("pacer charged %d µ (known %v), want %d µ", st.TotalSpend, ok, wantSpend)
	}
	t.Logf("%d impressions, %d clicks, %d conversions, spend %d µ in ClickHouse and the pacer", imps, clk, conv, spend)

	// The advertiser reads the same figures from the node's management
	// listener, where the dashboard is served too.
	today := time.Now().UTC()
	q := "/v1/reports?group_by=campaign&from=" + today.AddDate(0, 0, -1).Format(time.DateOnly) + "&to=" + today.Format(time.DateOnly)
	if r := call(t, "GET", admin(n)+q, "not-a-key", ""); r.status != 401 {
		t.Errorf("report with a wrong key: %d %s", r.status, r.body)
	}
	r := call(t, "GET", admin(n)+q, "acme-key-0123456789abcdef", "")
	if r.status != 200 {
		t.Fatalf("report: %d %s", r.status, r.body)
	}
	var rep struct {
		Rows []struct {
			CampaignID string `json:"campaign_id"`
		} `json:"rows"`
		Totals struct {
			Impressions, Clicks, Conversions int64
			Spend                            json.Number
		} `json:"totals"`
	}
	dec := json.NewDecoder(strings.NewReader(r.body))
	dec.UseNumber()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("report body %s: %v", r.body, err)
	}
	repSpend, err := campaign.ParseMicros(rep.Totals.Spend.String())
	if err != nil || len(rep.Rows) != 1 || rep.Rows[0].CampaignID != "c-1" || rep.Totals.Impressions != decisions ||
		rep.Totals.Clicks != clicks || rep.Totals.Conversions != conversions || int64(repSpend) != wantSpend {
		t.Errorf("report %s; want c-1 with %d impressions, %d clicks, %d conversions, spend %d µ", r.body, decisions, clicks, conversions, wantSpend)
	}
	if r := call(t, "GET", admin(n)+"/dashboard/", "", ""); r.status != 200 || !strings.Contains(r.body, "<html") {
		t.Errorf("dashboard: %d %.200s", r.status, r.body)
	}
}
