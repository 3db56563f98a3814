package reports

import (
	"context"
	"encoding/csv"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/events/clickhouse"
)

// exactFixture fires beacons and sampled decisions through the real
// pipeline (Recorder → durable Log → Shipper → ClickHouse → views) and
// remembers every recorded event for the model.
type exactFixture struct {
	evs []modelEvent
}

// Time zone edges the events straddle.
var (
	edgeNYFallBack = time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC)    // 01:00 EST, the repeated hour
	edgeSeoulDay   = time.Date(2026, 10, 31, 15, 0, 0, 0, time.UTC)  // 2026-11-01 00:00 in Seoul
	edgeKolkataDay = time.Date(2026, 10, 31, 18, 30, 0, 0, time.UTC) // 2026-11-01 00:00 in Kolkata
	exactStart     = time.Date(2026, 10, 30, 20, 0, 0, 0, time.UTC)
	exactEnd       = time.Date(2026, 11, 3, 6, 0, 0, 0, time.UTC)
)

func newExactFixture(t *testing.T, addr, db string) *exactFixture {
	t.Helper()
	f := &exactFixture{}
	rng := rand.New(rand.NewPCG(7, 11))

	// Event times: random seconds in the window, plus each side of every
	// zone edge, in order (the log is written in time order, as a live
	// node does).
	var times []time.Time
	span := int64(exactEnd.Sub(exactStart) / time.Second)
	for range 700 {
		times = append(times, exactStart.Add(time.Duration(rng.Int64N(span))*time.Second))
	}
	for _, e := range []time.Time{edgeNYFallBack, edgeSeoulDay, edgeKolkataDay} {
		times = append(times, e.Add(-time.Second), e, e.Add(-time.Hour), e.Add(time.Hour-time.Second))
	}
	slices.SortFunc(times, time.Time.Compare)

	l, err := events.OpenLog(events.LogConfig{Dir: t.TempDir(), SyncInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec, err := events.NewRecorder(events.RecorderConfig{NodeID: "node-r", Log: l, DedupEntries: 1 << 16})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()

	type camp struct{ adv, id, model string }
	camps := []camp{{"adv-a", "ca-1", "cpm"}, {"adv-a", "ca-2", "cpc"}, {"adv-a", "ca'3", "cpm"}, {"adv-b", "cb-1", "cpm"}, {"adv-b", "cb-2", "cpc"}}
	countries := []string{"KR", "US", "DE", "IN"}
	record := func(b *events.Beacon, at time.Time) {
		var e events.Event
		b.ToEvent(&e)
		e.Time = at
		res, err := rec.RecordEvent(&e)
		if err != nil {
			t.Fatal(err)
		}
		// A repeated beacon is counted once: fire each one twice.
		e2 := e
		e2.Seq, e2.Time = 0, time.Time{}
		if again, err := rec.RecordEvent(&e2); err != nil || again != events.Duplicate {
			t.Fatalf("repeat of %s/%s: %v %v", b.AuctionID, b.Type, again, err)
		}
		if res == events.Recorded {
			f.evs = append(f.evs, modelEvent{t: at, typ: b.Type, adv: b.AdvertiserID, camp: b.CampaignID,
				creative: b.CreativeID, placement: b.PlacementID, country: b.Country, cost: e.CostMicros, test: b.Test})
		}
	}
	for i, at := range times {
		c := camps[rng.IntN(len(camps))]
		b := events.Beacon{AuctionID: fmt.Sprintf("auc-%d", i), SlotID: "s1", AdvertiserID: c.adv, CampaignID: c.id,
			CreativeID: fmt.Sprintf("%s-cr-%d", c.id, rng.IntN(3)), PlacementID: fmt.Sprintf("p-%d", rng.IntN(4)),
			PublisherID: "pub-1", Country: countries[rng.IntN(len(countries))], Test: i%37 == 5}
		imp := b
		imp.Type = events.TypeImpression
		if c.model == "cpm" {
			// Prices in odd micros, so the cost truncates: price/1000.
			imp.Charge, imp.PriceMicros = events.ChargeCPM, 1_000_000+rng.Int64N(4_000_000)
		}
		record(&imp, at)
		if rng.IntN(5) == 0 {
			clk := b
			clk.Type = events.TypeClick
			if c.model == "cpc" {
				clk.Charge, clk.PriceMicros = events.ChargeCPC, 10_000+rng.Int64N(900_000)
			}
			clickAt := at.Add(time.Duration(rng.IntN(90)) * time.Second)
			if clickAt.After(times[len(times)-1]) {
				clickAt = at
			}
			record(&clk, clickAt)
			if rng.IntN(3) == 0 {
				conv := clk.Conversion()
				record(&conv, clickAt)
			}
		}
		if i%50 == 0 {
			// An OpenRTB win notice alone: in the rollups, but no metric of ours.
			win := b
			win.Type, win.CreativeID = events.TypeWin, "win-only"
			record(&win, at)
		}
		if i%10 == 0 {
			d := events.Decision{Time: at, AuctionID: b.AuctionID, SlotID: "s1", PlacementID: b.PlacementID, Candidates: 3,
				Bids: 2, WinnerAdvertiserID: c.adv, WinnerCampaignID: c.id, PriceMicros: imp.PriceMicros}
			if err := rec.RecordDecision(&d); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}

	s, err := clickhouse.New(clickhouse.Config{Addr: addr, Database: db, NodeID: "node-r", BatchInterval: 20 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, Lookback: 30 * 24 * time.Hour}, l)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	wctx, wcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer wcancel()
	if err := s.WaitShipped(wctx, l.LastSeq()); err != nil {
		t.Fatalf("events not shipped: %v (stats %+v)", err, s.Stats())
	}
	return f
}

// TestReportExact checks reports against the model to the unit and the
// micro, for several group-bys, scopes, time zones (across a DST change,
// east and west of UTC, and a half-hour zone) and both tables.
func TestReportExact(t *testing.T) {
	conn, addr, db := testDB(t)
	f := newExactFixture(t, addr, db)
	a := newAdvertiser("adv-a", "America/New_York")
	b := newAdvertiser("adv-b", "Asia/Seoul")
	h, err := New(Config{Conn: conn, Database: db, AdminToken: testAdminToken, Advertisers: advertiserLookup(a, b)})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	ny, _ := time.LoadLocation("America/New_York")
	seoul, _ := time.LoadLocation("Asia/Seoul")
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	day := func(loc *time.Location, y, m, d int) time.Time {
		return time.Date(y, time.Month(m), d, 0, 0, 0, 0, loc)
	}

	cases := []struct {
		name   string
		key    string
		params string
		q      modelQuery
		table  string
	}{
		{"admin day,campaign UTC", testAdminToken, "from=2026-10-31&to=2026-11-02&group_by=day,campaign",
			modelQuery{loc: time.UTC, from: day(time.UTC, 2026, 10, 31), to: day(time.UTC, 2026, 11, 3), groupBy: []string{"day", "campaign"}},
			tableCampaignHourly},
		{"advertiser default tz (New York, DST ends) day,creative", a.key, "from=2026-10-31&to=2026-11-02&group_by=day,creative",
			modelQuery{loc: ny, from: day(ny, 2026, 10, 31), to: day(ny, 2026, 11, 3), groupBy: []string{"day", "creative"}, scope: "adv-a"},
			tableCreativeHourly},
		{"advertiser hour,campaign New York over the repeated hour", a.key, "from=2026-11-01&to=2026-11-01&group_by=hour,campaign",
			modelQuery{loc: ny, from: day(ny, 2026, 11, 1), to: day(ny, 2026, 11, 2), groupBy: []string{"hour", "campaign"}, scope: "adv-a"},
			tableCampaignHourly},
		{"advertiser tz=Asia/Seoul day,placement,country", a.key, "from=2026-10-31&to=2026-11-02&tz=Asia/Seoul&group_by=day,placement,country",
			modelQuery{loc: seoul, from: day(seoul, 2026, 10, 31), to: day(seoul, 2026, 11, 3), groupBy: []string{"day", "placement", "country"}, scope: "adv-a"},
			tablePlacementCountryHourly},
		{"advertiser B default tz (Seoul) campaign,creative", b.key, "from=2026-10-31&to=2026-11-02&group_by=campaign,creative",
			modelQuery{loc: seoul, from: day(seoul, 2026, 10, 31), to: day(seoul, 2026, 11, 3), groupBy: []string{"campaign", "creative"}, scope: "adv-b"},
			tableCreativeHourly},
		{"advertiser New York hour,creative,country over the repeated hour", a.key, "from=2026-10-31&to=2026-11-02&group_by=hour,creative,country",
			modelQuery{loc: ny, from: day(ny, 2026, 10, 31), to: day(ny, 2026, 11, 3), groupBy: []string{"hour", "creative", "country"}, scope: "adv-a"},
			tableHourly},
		{"advertiser New York country", a.key, "from=2026-10-31&to=2026-11-02&group_by=country",
			modelQuery{loc: ny, from: day(ny, 2026, 10, 31), to: day(ny, 2026, 11, 3), groupBy: []string{"country"}, scope: "adv-a"},
			tableCampaignCountryHourly},
		{"admin Seoul day,country for two campaigns", testAdminToken, "from=2026-10-31&to=2026-11-02&tz=Asia/Seoul&group_by=day,country&campaign_id=ca-1&campaign_id=cb-2",
			modelQuery{loc: seoul, from: day(seoul, 2026, 10, 31), to: day(seoul, 2026, 11, 3), groupBy: []string{"day", "country"}, camps: []string{"ca-1", "cb-2"}},
			tableCampaignCountryHourly},
		{"advertiser New York hour,placement for one campaign", a.key, "from=2026-10-31&to=2026-11-02&group_by=hour,placement&campaign_id=ca-2",
			modelQuery{loc: ny, from: day(ny, 2026, 10, 31), to: day(ny, 2026, 11, 3), groupBy: []string{"hour", "placement"}, scope: "adv-a", camps: []string{"ca-2"}},
			tableCampaignPlacementHourly},
		{"admin half-hour zone reads raw events", testAdminToken, "from=2026-10-31&to=2026-11-02&tz=Asia/Kolkata&group_by=day,campaign",
			modelQuery{loc: kolkata, from: day(kolkata, 2026, 10, 31), to: day(kolkata, 2026, 11, 3), groupBy: []string{"day", "campaign"}},
			tableEvents},
		{"admin half-hour zone hours", testAdminToken, "from=2026-10-31&to=2026-10-31&tz=Asia/Kolkata&group_by=hour",
			modelQuery{loc: kolkata, from: day(kolkata, 2026, 10, 31), to: day(kolkata, 2026, 11, 1), groupBy: []string{"hour"}},
			tableEvents},
		{"admin timestamps off the hour", testAdminToken, "from=2026-11-01T05:30:00Z&to=2026-11-02T10:15:30Z&group_by=campaign,country&tz=UTC",
			modelQuery{loc: time.UTC, from: time.Date(2026, 11, 1, 5, 30, 0, 0, time.UTC), to: time.Date(2026, 11, 2, 10, 15, 30, 0, time.UTC),
				groupBy: []string{"campaign", "country"}},
			tableEvents},
		{"advertiser local timestamps on the hour", a.key, "from=2026-11-01T00:00&to=2026-11-01T12:00:00&group_by=creative",
			modelQuery{loc: ny, from: time.Date(2026, 11, 1, 0, 0, 0, 0, ny), to: time.Date(2026, 11, 1, 12, 0, 0, 0, ny),
				groupBy: []string{"creative"}, scope: "adv-a"},
			tableCreativeHourly},
		{"admin advertiser filter, campaign filters, no group_by", testAdminToken,
			"from=2026-10-30&to=2026-11-03&advertiser_id=adv-a&campaign_id=ca-2&campaign_id=" + url.QueryEscape("ca'3") + "&campaign_id=cb-1",
			modelQuery{loc: time.UTC, from: day(time.UTC, 2026, 10, 30), to: day(time.UTC, 2026, 11, 4), advs: []string{"adv-a"}, camps: []string{"ca-2", "ca'3", "cb-1"}},
			tableCampaignHourly},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := get(t, base, "/v1/reports?"+c.params, c.key)
			got := decodeReport(t, res)
			rows, tot := model(f.evs, c.q)
			if len(rows) == 0 || tot.Impressions == 0 || tot.Clicks == 0 || tot.Conversions == 0 || tot.SpendMicros == 0 {
				t.Fatalf("BUG: the case covers too little data: %d rows, totals %+v", len(rows), tot)
			}
			checkReport(t, c.name, got, c.q.groupBy, rows, tot)
			if src := res.header.Get("X-Report-Source"); src != c.table {
				t.Errorf("read %s, want %s", src, c.table)
			}
			if tz := res.header.Get("X-Report-Timezone"); tz != c.q.loc.String() {
				t.Errorf("X-Report-Timezone %q, want %q", tz, c.q.loc)
			}

			// The CSV says the same, line for line.
			csvRes := get(t, base, "/v1/reports?format=csv&"+c.params, c.key)
			if csvRes.status != 200 || !strings.HasPrefix(csvRes.header.Get("Content-Type"), "text/csv") {
				t.Fatalf("csv: %d %s %s", csvRes.status, csvRes.header.Get("Content-Type"), csvRes.body)
			}
			recs, err := csv.NewReader(strings.NewReader(string(csvRes.body))).ReadAll()
			if err != nil {
				t.Fatal(err)
			}
			if len(recs) != len(rows)+1 {
				t.Fatalf("csv: %d lines, want header + %d", len(recs), len(rows))
			}
			header := recs[0]
			for i, r := range rows {
				want := append(slices.Clone(r.keys), metricsCSV(r.m)...)
				if !slices.Equal(recs[i+1], want) {
					t.Fatalf("csv line %d: %v, want %v (header %v)", i+1, recs[i+1], want, header)
				}
			}
		})
	}

	// The repeated hour of the New York fall-back shows as two rows.
	res := decodeReport(t, get(t, base, "/v1/reports?from=2026-11-01&to=2026-11-01&group_by=hour", a.key))
	var ones []string
	for _, r := range res.Rows {
		if h := r["hour"].(string); strings.HasPrefix(h, "2026-11-01T01:00:00") {
			ones = append(ones, h)
		}
	}
	if !slices.Equal(ones, []string{"2026-11-01T01:00:00-04:00", "2026-11-01T01:00:00-05:00"}) {
		t.Errorf("01:00 hours on the fall-back day: %v", ones)
	}
}

func metricsCSV(m Metrics) []string {
	w := modelMetrics(m)
	return []string{w["impressions"], w["clicks"], w["conversions"], w["spend"], w["ctr"], w["ecpm"], w["ecpc"], w["conversion_rate"], w["cpa"]}
}
