package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/pacing"
)

// Three nodes share every budget through the Kafka spend sync over a
// simulated day (38 hours of traffic, so that every time zone's
// 2026-11-01 is covered, New York's 25-hour day included). Each node
// flushes its spend every 30 simulated seconds, one node every 10 seconds
// (staggered, as separate processes on their own tickers do), and the
// traffic is light to keep the test short under -race; staler views make
// the budgets harder to hold, not easier: a budget spent within a few
// flush intervals is where a share rule that misses what the others
// committed since their last flush overspends. The hourly RMSE is checked where the volume makes it meaningful
// (at least 150 charges an hour: Poisson noise alone is 1/sqrt(n)).
func TestSimulatedDayThreeNodes(t *testing.T) {
	start, _ := pacing.ParseDay("2026-11-01")
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	rep, err := Run(ctx, Config{Nodes: 3, Days: 1, Campaigns: 12, RPS: 8, Seed: 1, Start: start,
		SyncEvery: 30 * time.Second, Stagger: true, Kafka: true, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	rep.printTable(&table)
	t.Log("\n" + table.String())

	sufficient, even, asap, cpc := 0, 0, 0, 0
	for _, c := range rep.Campaigns {
		for _, d := range c.Days {
			if d.OverspendPct > 1 {
				t.Errorf("%s %s: overspend %.2f%% of the daily budget, want <= 1%%", c.ID, d.Day, d.OverspendPct)
			}
			if !d.TrafficSufficient {
				continue
			}
			sufficient++
			if d.UtilisationPct < 98 {
				t.Errorf("%s %s: utilisation %.2f%% with enough traffic, want >= 98%%", c.ID, d.Day, d.UtilisationPct)
			}
			switch {
			case c.Pacing == campaign.PacingEven:
				even++
				if d.Charges >= int64(150*d.Hours) && d.RMSEPct > 10 {
					t.Errorf("%s %s: hourly RMSE %.2f%% of the plan, want <= 10%%", c.ID, d.Day, d.RMSEPct)
				}
			case c.Pacing == campaign.PacingASAP:
				asap++
			}
			if c.Model == campaign.BidCPC {
				cpc++
			}
		}
	}
	if sufficient < 10 || even < 5 || asap < 3 || cpc < 2 {
		t.Fatalf("catalog too thin to judge: %d campaigns with enough traffic (%d even, %d asap, %d cpc)", sufficient, even, asap, cpc)
	}
	st := rep.Stats
	if st.Malformed != 0 || st.Published == 0 || st.Applied != 3*st.Published {
		t.Errorf("sync stats %+v: want every record applied by all 3 nodes, none malformed", st)
	}
	if !strings.Contains(table.String(), "America/New_York") {
		t.Error("no New York campaign: the DST day is not exercised")
	}
	for _, c := range rep.Campaigns {
		if c.Timezone == "America/New_York" && c.Days[0].Hours != 25 {
			t.Errorf("%s: 2026-11-01 in New York has %d hours, want 25", c.ID, c.Days[0].Hours)
		}
	}
	// The report's files.
	var svg bytes.Buffer
	if err := rep.writeSVG(&svg); err != nil || !strings.HasPrefix(svg.String(), "<svg") || !strings.HasSuffix(svg.String(), "</svg>\n") {
		t.Errorf("SVG: %v", err)
	}
	if _, err := json.Marshal(rep); err != nil {
		t.Errorf("JSON: %v", err)
	}
}
