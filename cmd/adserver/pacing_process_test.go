package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestPacingThreeProcesses is issue 6's multi-process test: three real
// adserver processes share one Kafka broker (node 1's embedded one), a
// campaign with a small daily budget in asap mode gets ad requests
// round-robin on all three, and every returned impression is fired at the
// node that served it, until all three answer 204 for a while.
//
// What it checks:
//
//   - The campaign stops serving on every node, and stays stopped.
//   - Overspend: the charged spend (the sum of every node's
//     adserver_events_charged_micros_total, which must equal the sum of
//     price/1000 over the impression beacons answered 204) is at most
//     B + max(B/100, c), where B is the daily budget and c the cost of one
//     impression. The target is 1% of B; spend moves in whole
//     impressions, so the bound is never below one impression (here the
//     clearing price is the placement floor plus one increment, 0.51, so
//     c = 510 µ < B/100 = 600 µ and the bound is exactly the 1%).
//     The pacing package documents (pacing/doc.go, "the share rule") that
//     the n nodes' ceilings sum to at most B, records in flight included,
//     while a node's flush interval exceeds the publish-to-apply latency;
//     without sharing (each node spending B on its own) the fleet would
//     spend 3B and this fails, and so it did (+21% to +33%) with a rule
//     that counted only the spend the others had published.
//   - Underspend, as a check that the share rule lets the budget be used:
//     a node stops when its allowance cannot hold one more impression, and
//     a refused node keeps taking 1/n of what nobody holds, so the fleet
//     ends with less than n*c left: spend >= B - 3c. (The 98% utilisation target is not checked here: with
//     117 impressions in the budget, 3c is 2.6% of B.)
//
// The variant nodes=auto runs with -pacing.nodes 0: each node counts the
// nodes it hears on adserver.spend.
func TestPacingThreeProcesses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		nodes int
	}{{"nodes=3", 3}, {"nodes=auto", 0}} {
		t.Run(tc.name, func(t *testing.T) { testPacing(t, tc.nodes) })
	}
}

func testPacing(t *testing.T, pacingNodes int) {
	const (
		budgetMicros = 60_000 // daily budget 0.06
		quiet        = 3 * time.Second
		giveUp       = 60 * time.Second
	)
	c := newClient(t)
	args := func(i int) []string {
		return append(nodeArgs(t.TempDir(), fmt.Sprintf("pace-%d", i)),
			"-pacing.nodes", strconv.Itoa(pacingNodes), "-pacing.control-interval", "200ms", "-drain", "0s")
	}
	n1 := startProc(t, "node 1", args(1)...) // runs the embedded broker
	n2 := startProc(t, "node 2", append(args(2), "-kafka", n1.kafka)...)
	n3 := startProc(t, "node 3", append(args(3), "-kafka", n1.kafka)...)
	nodes := []*proc{n1, n2, n3}
	for _, n := range nodes {
		n.waitReady(c)
	}
	camp := campaignSpec{ID: "c-pace", Daily: "0.06", Bid: "2.5", Priority: 5}
	putCatalog(t, c, n1, camp)
	waitCatalog(t, c, n2, camp.ID)
	waitCatalog(t, c, n3, camp.ID)
	if pacingNodes == 0 {
		// Nodes heartbeat on adserver.spend every second; give each time to
		// hear the other two before the budget runs low.
		time.Sleep(2500 * time.Millisecond)
	}

	var (
		mu       sync.Mutex
		spent    int64 // price/1000 of every impression beacon answered 204
		maxCost  int64
		served   [3]int
		noFill   [3]int // 204s per node since the last fill anywhere
		lastFill = time.Now()
		failures []string
	)
	fail := func(format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(failures) < 10 {
			failures = append(failures, fmt.Sprintf(format, args...))
		}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				k := i % 3
				st, ad, err := requestAd(c, nodes[k].serving, fmt.Sprintf("r-%d-%d", w, i), fmt.Sprintf("u-%d", i))
				switch {
				case err != nil:
					fail("/v1/ad on %s: %d %v", nodes[k].name, st, err)
				case st == 204:
					mu.Lock()
					noFill[k]++
					mu.Unlock()
				case ad.CampaignID != camp.ID:
					fail("/v1/ad on %s served campaign %q", nodes[k].name, ad.CampaignID)
				default:
					cost, _, err := beaconCost(ad.ImpressionURL)
					if err != nil {
						fail("%v", err)
						break
					}
					bst, b, err := do(c, "GET", ad.ImpressionURL, "", "")
					if err != nil || bst != 204 {
						fail("impression beacon %s: %d %s %v", ad.ImpressionURL, bst, b, err)
						break
					}
					mu.Lock()
					spent += cost
					maxCost = max(maxCost, cost)
					served[k]++
					noFill = [3]int{}
					lastFill = time.Now()
					mu.Unlock()
				}
				time.Sleep(time.Millisecond)
			}
		}()
	}
	for {
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		done := len(failures) > 0 ||
			time.Since(lastFill) >= quiet && noFill[0] >= 5 && noFill[1] >= 5 && noFill[2] >= 5
		stillServing := time.Since(start) > giveUp
		mu.Unlock()
		if done || stillServing {
			close(stop)
			wg.Wait()
			if stillServing && len(failures) == 0 {
				t.Fatalf("the campaign still serves after %v: spent %d µ of %d µ, impressions per node %v",
					giveUp, spent, budgetMicros, served)
			}
			break
		}
	}
	for _, f := range failures {
		t.Error(f)
	}
	if t.Failed() {
		return
	}
	elapsed := time.Since(start)

	// Stopped on every node.
	for _, n := range nodes {
		for i := range 3 {
			st, ad, err := requestAd(c, n.serving, fmt.Sprintf("final-%d", i), fmt.Sprintf("final-u-%d", i))
			if err != nil || st != 204 {
				t.Errorf("after the budget ran out %s answers %d %+v %v, want 204", n.name, st, ad, err)
			}
		}
	}

	// What the nodes charged equals what the beacons answered 204 cost.
	var charged int64
	for _, n := range nodes {
		v, err := metric(c, n, "adserver_events_charged_micros_total")
		if err != nil {
			t.Fatal(err)
		}
		charged += int64(v)
	}
	if charged != spent {
		t.Errorf("nodes charged %d µ in all, but the impression beacons answered 204 cost %d µ", charged, spent)
	}

	bound := max(budgetMicros/100, maxCost)
	over := charged - budgetMicros
	t.Logf("budget %d µ, charged %d µ (%+.2f%% of budget; bound +%d µ), impressions per node %v, one impression %d µ, %v",
		budgetMicros, charged, 100*float64(over)/budgetMicros, bound, served, maxCost, elapsed.Round(time.Millisecond))
	if over > bound {
		t.Errorf("overspend: charged %d µ against a daily budget of %d µ: %d µ over, bound %d µ", charged, budgetMicros, over, bound)
		logSpendSync(t, c, nodes)
	}
	if floor := budgetMicros - 3*maxCost; charged < floor {
		t.Errorf("underspend: charged %d µ, want at least %d µ (budget less three impressions)", charged, floor)
	}
	for k, s := range served {
		if s == 0 {
			t.Errorf("%s served no impression: traffic did not reach all three nodes", nodes[k].name)
		}
	}
}

// TestFrequencyCapProcess is issue 6's frequency-cap test on a real
// process: a campaign capped at 3 per user per hour, at a higher priority
// and bid, and an uncapped one. The 4th request of a user gets the
// uncapped campaign (204 when the capped one is alone); another user still
// gets the capped one; a request without a user id never gets a capped
// campaign (pacing's documented choice: a cap cannot be enforced on an
// unknown user).
func TestFrequencyCapProcess(t *testing.T) {
	c := newClient(t)
	p := startProc(t, "node", append(nodeArgs(t.TempDir(), "cap-1"), "-drain", "0s")...)
	p.waitReady(c)
	putCatalog(t, c, p,
		campaignSpec{ID: "c-capped", Daily: "100", Bid: "3", Priority: 10, CapCount: 3, CapWindow: "1h"},
		campaignSpec{ID: "c-open", Daily: "100", Bid: "1", Priority: 1})

	n := 0
	winner := func(user string) string {
		t.Helper()
		n++
		st, ad, err := requestAd(c, p.serving, fmt.Sprintf("r-%d", n), user)
		switch {
		case err != nil:
			t.Fatalf("/v1/ad for user %q: %d %v", user, st, err)
		case st == 204:
			return "no fill"
		case st != 200:
			t.Fatalf("/v1/ad for user %q: %d", user, st)
		}
		return ad.CampaignID
	}
	expect := func(what, user, want string) {
		t.Helper()
		if got := winner(user); got != want {
			t.Errorf("%s: got %s, want %s", what, got, want)
		}
	}
	for i := 1; i <= 3; i++ {
		expect(fmt.Sprintf("request %d of u-1", i), "u-1", "c-capped")
	}
	expect("request 4 of u-1 (capped at 3)", "u-1", "c-open")
	expect("request 5 of u-1", "u-1", "c-open")
	expect("request 1 of u-2 (the cap is per user)", "u-2", "c-capped")
	for i := 1; i <= 4; i++ {
		expect(fmt.Sprintf("request %d without a user id", i), "", "c-open")
	}

	if st, b, err := do(c, "DELETE", p.adminURL()+"/v1/campaigns/c-open", procAdminToken, ""); err != nil || st != 204 {
		t.Fatalf("DELETE c-open: %d %s %v", st, b, err)
	}
	expect("request 6 of u-1 with the capped campaign alone", "u-1", "no fill")
	expect("request without a user id with the capped campaign alone", "", "no fill")
	expect("request 2 of u-2 with the capped campaign alone", "u-2", "c-capped")
}

// logSpendSync logs each node's spend-sync counters, to tell a sync that
// does not flow from a pacing rule that does not hold.
func logSpendSync(t *testing.T, c *http.Client, nodes []*proc) {
	for _, n := range nodes {
		var vals []string
		for _, m := range []string{"published", "applied", "malformed"} {
			v, err := metric(c, n, "adserver_spend_sync_records_"+m+"_total")
			if err != nil {
				vals = append(vals, err.Error())
				continue
			}
			vals = append(vals, fmt.Sprintf("%s %.0f", m, v))
		}
		t.Logf("%s spend-sync records: %s", n.name, strings.Join(vals, ", "))
	}
}
