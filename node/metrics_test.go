package node

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scrape returns every sample of GET /metrics by series.
func scrape(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	r := call(t, "GET", admin(n)+"/metrics", "", "")
	if r.status != 200 {
		t.Fatalf("/metrics: %d", r.status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(r.body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("bad metrics line %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// TestMetricsMove checks that the operational metrics exist under their
// documented names (deploy/ uses them) and move with traffic.
func TestMetricsMove(t *testing.T) {
	n := startNode(t, t.TempDir(), "")
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5"))

	before := scrape(t, n)
	ad := requestAd(t, n, "u-1")
	if st, _ := get(t, ad.ImpressionURL); st != 204 {
		t.Fatalf("impression: %d", st)
	}
	get(t, strings.Replace(ad.ImpressionURL, "&pr=", "&pr=1", 1)) // forged price
	call(t, "POST", serving(n)+"/v1/ad", "", `{"id":`)
	call(t, "POST", serving(n)+"/v1/ad", "", `{"id":"r","placement_id":"p-1","geo":{"country":"ZZ"},"slots":[{"id":"s1","w":300,"h":250}]}`)
	after := scrape(t, n)

	moved := []string{
		`adserver_http_requests_total{listener="serving",endpoint="ad",status="200"}`,
		`adserver_http_requests_total{listener="serving",endpoint="ad",status="400"}`,
		`adserver_http_requests_total{listener="serving",endpoint="imp",status="204"}`,
		`adserver_http_request_duration_seconds_count{listener="serving",endpoint="ad"}`,
		`adserver_decisions_total`,
		`adserver_decision_nofill_total{reason="no_candidates"}`,
		`adserver_decision_slots_filled_total`,
		`adserver_beacon_requests_total{type="impression",result="recorded"}`,
		`adserver_beacon_rejected_total{reason="forged"}`,
		`adserver_events_recorded_total`,
		`adserver_events_charged_micros_total`,
		`adserver_eventlog_appended_records_total`,
		`adserver_campaign_spend_micros_total{campaign_id="c-1"}`,
	}
	for _, name := range moved {
		if after[name] <= before[name] {
			t.Errorf("%s did not move: %v -> %v", name, before[name], after[name])
		}
	}
	for _, name := range []string{
		`adserver_index_campaigns`,
		`adserver_eventlog_bytes`,
	} {
		if _, ok := after[name]; !ok {
			t.Errorf("%s missing from /metrics", name)
		}
	}

	// Per-campaign pacing series, bounded to the top campaigns by spend.
	set := n.campaignMetricsSet(time.Now())
	var buf bytes.Buffer
	set.WritePrometheus(&buf)
	for _, want := range []string{`adserver_campaign_spend_today_micros{campaign_id="c-1"} `,
		`adserver_pacing_throttle_ratio{campaign_id="c-1"} 0`, `adserver_pacing_campaigns{state="known"} 1`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("campaign metrics lack %q:\n%s", want, buf.String())
		}
	}
	if strings.Contains(buf.String(), `adserver_campaign_spend_today_micros{campaign_id="c-1"} 0`+"\n") {
		t.Errorf("spend of c-1 not counted:\n%s", buf.String())
	}
}
