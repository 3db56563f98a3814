package node

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/events/clickhouse"
	"github.com/adserver/adserver/server"
)

// logSeed is the engine seed of the decision-log tests' nodes; with it
// server.DecisionSampled tells which auctions belong in the log.
const logSeed = 20261124

// auctionAd is an ad answer with its auction id.
type auctionAd struct {
	AuctionID string `json:"auction_id"`
	Ads       []struct {
		CampaignID    string `json:"campaign_id"`
		Price         json.Number
		ImpressionURL string `json:"impression_url"`
		ClickURL      string `json:"click_url"`
	}
}

// adOrNoFill asks n for an ad for user in country and returns the answer
// (Ads empty on a 204).
func adOrNoFill(t *testing.T, n *Node, user, country string) auctionAd {
	t.Helper()
	body := `{"id":"r","placement_id":"p-1","user":{"id":"` + user + `"},"geo":{"country":"` + country + `"},
		"slots":[{"id":"s1","w":300,"h":250}]}`
	r := call(t, "POST", serving(n)+"/v1/ad", "", body)
	var a auctionAd
	switch r.status {
	case 204:
	case 200:
		if err := json.Unmarshal([]byte(r.body), &a); err != nil || len(a.Ads) != 1 || a.AuctionID == "" {
			t.Fatalf("/v1/ad answer %s: %v", r.body, err)
		}
	default:
		t.Fatalf("/v1/ad: %d %s", r.status, r.body)
	}
	return a
}

// loggedRow is a row of the decisions table.
type loggedRow struct {
	slot, winner, noFill string
	price, floor         int64
}

// decisionRows returns the decisions table (FINAL: an insert retried after
// an uncertain failure may have landed twice) by auction id, and the
// number of rows per no-fill reason.
func decisionRows(t *testing.T, conn driver.Conn, db string) (map[string]loggedRow, map[string]int) {
	t.Helper()
	rows, err := conn.Query(context.Background(), `SELECT auction_id, slot_id, winner_campaign_id, no_fill_reason,
		price_micros, floor_micros FROM `+db+`.decisions FINAL`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	byAuction, noFill := map[string]loggedRow{}, map[string]int{}
	for rows.Next() {
		var id string
		var r loggedRow
		if err := rows.Scan(&id, &r.slot, &r.winner, &r.noFill, &r.price, &r.floor); err != nil {
			t.Fatal(err)
		}
		if _, dup := byAuction[id]; dup {
			t.Fatalf("auction %s twice in decisions FINAL", id)
		}
		byAuction[id] = r
		if r.noFill != "" {
			noFill[r.noFill]++
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return byAuction, noFill
}

// startLogNode starts a node shipping to the test database db, with the
// catalog of one KR/US campaign on placement p-1 (floor 0.5).
func startLogNode(t *testing.T, chAddr, db string) *Node {
	t.Helper()
	n := startNodeWith(t, t.TempDir(), "", func(c *config.Config) {
		c.ClickHouse = chAddr
		c.ClickHouseDatabase = db
		c.Shipper.BatchInterval = 50 * time.Millisecond
		c.Seed = logSeed
	})
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	call(t, "PUT", admin(n)+"/v1/placements/p-1", testToken, `{"id":"p-1","publisher_id":"pub-1","format":"banner","sizes":[[300,250]],"floor":0.5}`)
	if r := call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5")); r.status != 200 {
		stopNode(t, n)
		t.Fatalf("PUT campaign: %d %s", r.status, r.body)
	}
	return n
}

func waitAllShipped(t *testing.T, n *Node) {
	t.Helper()
	if err := n.Events.Sync(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := n.Shipper.WaitShipped(ctx, n.Events.LastSeq()); err != nil {
		t.Fatalf("shipping: %v (stats %+v)", err, n.Shipper.Stats())
	}
}

// TestDecisionLogToClickHouse drives the decision_log_sample switch on a
// real node: at 0 no auction is logged; at 1 every auction, filled or not,
// lands in the event log and then in the ClickHouse decisions table with
// its winner, clearing price, floor and no-fill reason; at 0.25 exactly
// the auctions that server.DecisionSampled picks for the node's seed land
// there, and their number is within five standard deviations of a quarter.
func TestDecisionLogToClickHouse(t *testing.T) {
	chAddr, db := testClickHouse(t)
	n := startLogNode(t, chAddr, db)
	defer stopNode(t, n)
	conn, err := clickhouse.Open(chAddr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// Rate 0: nothing.
	swPut(t, n, `{"decision_log_sample":0}`)
	off := map[string]bool{}
	for i := range 50 {
		off[adOrNoFill(t, n, fmt.Sprintf("off-%d", i), "KR").AuctionID] = true
	}
	adOrNoFill(t, n, "off-nofill", "JP")

	// Rate 1: every auction, filled or not.
	swPut(t, n, `{"decision_log_sample":1}`)
	const filled, unfilled = 60, 15
	all := map[string]auctionAd{}
	for i := range filled {
		a := adOrNoFill(t, n, fmt.Sprintf("all-%d", i), "KR")
		all[a.AuctionID] = a
	}
	for i := range unfilled {
		if a := adOrNoFill(t, n, fmt.Sprintf("none-%d", i), "JP"); len(a.Ads) != 0 {
			t.Fatalf("JP is not targeted, yet filled: %+v", a)
		}
	}
	waitAllShipped(t, n)
	got, noFill := decisionRows(t, conn, db)
	if len(got) != filled+unfilled || noFill["no_candidates"] != unfilled || len(noFill) != 1 {
		t.Fatalf("rate 1: %d decisions (no-fill reasons %v), want %d of which %d no_candidates",
			len(got), noFill, filled+unfilled, unfilled)
	}
	for id, a := range all {
		r, ok := got[id]
		price, err := campaign.ParseMicros(a.Ads[0].Price.String())
		if err != nil {
			t.Fatal(err)
		}
		if !ok || r.slot != "s1" || r.winner != "c-1" || r.price != int64(price) || r.floor != 500_000 || r.noFill != "" {
			t.Fatalf("auction %s: logged %+v (found %v), answered %+v", id, r, ok, a)
		}
	}
	for id := range off {
		if _, ok := got[id]; ok {
			t.Fatalf("auction %s decided at rate 0 was logged", id)
		}
	}
	t.Logf("rate 0: 0 of %d auctions logged; rate 1: %d of %d (%d filled, %d no_candidates)",
		len(off)+1, len(got), filled+unfilled, filled, unfilled)

	// Rate 0.25: exactly the auctions the seed picks.
	swPut(t, n, `{"decision_log_sample":0.25}`)
	const sampled = 800
	want := map[string]bool{}
	for i := range sampled {
		a := adOrNoFill(t, n, fmt.Sprintf("q-%d", i), "KR")
		if server.DecisionSampled(logSeed, a.AuctionID, 0.25) {
			want[a.AuctionID] = true
		}
	}
	waitAllShipped(t, n)
	got, _ = decisionRows(t, conn, db)
	var extra []string
	for id, r := range got {
		if _, ok := all[id]; ok || r.noFill != "" {
			continue // logged at rate 1
		}
		if !want[id] {
			extra = append(extra, id)
		}
		delete(want, id)
	}
	if len(extra) > 0 || len(want) > 0 {
		t.Fatalf("rate 0.25: %d auctions logged that the seed does not pick (%v), %d picked and missing",
			len(extra), extra, len(want))
	}
	logged := len(got) - filled - unfilled
	mean, sd := 0.25*sampled, math.Sqrt(sampled*0.25*0.75)
	if math.Abs(float64(logged)-mean) > 5*sd {
		t.Fatalf("rate 0.25: %d of %d logged, want %.0f ± %.0f", logged, sampled, mean, 5*sd)
	}
	t.Logf("rate 0.25: %d of %d auctions logged (expected %.0f ± %.1f at 1σ), exactly those seed %d picks",
		logged, sampled, mean, sd, logSeed)
}
