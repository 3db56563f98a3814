package reports

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adserver/adserver/events/clickhouse"
)

// benchShape is the synthetic advertiser of the benchmark: 10 campaigns ×
// 3 creatives × 8 placements × 5 countries, every combination active every
// hour of 90 days (2,592,000 rollup_hourly rows for 10,000,000 events:
// impressions, clicks and conversions). Two other advertisers add
// 1,000,000 events each to the same tables, so the reads must skip them.
const (
	benchCampaigns  = 10
	benchCreatives  = 3
	benchPlacements = 8
	benchCountries  = 5
	benchDays       = 90
	benchEvents     = 10_000_000
)

var benchEnd = time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC)

// BenchmarkReport90Days answers 90-day reports over 10 million events'
// worth of rollups, end to end: HTTP request, parameter checks, the
// ClickHouse query, JSON encoding; at least one case per rollup, and two
// that only rollup_hourly answers: creative,country, and every dimension
// but time (1,200 rows, the heaviest shape measured). Setup (about
// 15-30 s) is an upgrade: it creates schema version 1, inserts the two
// rollups of version 1 directly, migrates to the current version (whose
// backfill fills every other rollup from rollup_hourly, the path an
// existing database takes) and merges every rollup (OPTIMIZE FINAL), as
// settled tables would be; it is not timed. (Inserting the 12 million
// raw events instead, through the views, would take minutes here and
// give the same tables: TestMigrateBackfillsExactly and TestRollupsAgree
// check the two paths agree.)
//
//	go test -run '^$' -bench BenchmarkReport90Days -benchtime 20x ./reports/
func BenchmarkReport90Days(b *testing.B) {
	conn, _, db := testDBAt(b, 1)
	ctx := context.Background()
	start := time.Now()
	total := insertBenchRollups(b, conn, db, "adv-bench", benchEvents)
	insertBenchRollups(b, conn, db, "adv-other-1", benchEvents/10)
	insertBenchRollups(b, conn, db, "adv-other-2", benchEvents/10)
	inserted := time.Now()
	if err := clickhouse.Migrate(ctx, conn, db); err != nil {
		b.Fatal(err)
	}
	migrated := time.Now()
	for _, r := range rollups {
		if err := conn.Exec(ctx, "OPTIMIZE TABLE `"+db+"`."+r.table+" FINAL"); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("setup: %d events' worth for adv-bench (plus 2M for others): inserts %v, migration (backfill) %v, merges %v",
		total, inserted.Sub(start).Round(time.Millisecond), migrated.Sub(inserted).Round(time.Millisecond),
		time.Since(migrated).Round(time.Millisecond))

	adv := newAdvertiser("adv-bench", "UTC")
	h, err := New(Config{Conn: conn, Database: db, AdminToken: testAdminToken, Advertisers: advertiserLookup(adv),
		Now: func() time.Time { return benchEnd.Add(-time.Hour) }})
	if err != nil {
		b.Fatal(err)
	}
	base := serve(b, h)
	from := benchEnd.AddDate(0, 0, -benchDays).Format(time.DateOnly)
	to := benchEnd.AddDate(0, 0, -1).Format(time.DateOnly)

	// The report counts every event once.
	sanity := decodeReport(b, get(b, base, "/v1/reports?from="+from+"&to="+to, adv.key))
	var sum int64
	for _, k := range []string{"impressions", "clicks", "conversions"} {
		n, _ := sanity.Totals[k].(json.Number).Int64()
		sum += n
	}
	if sum != benchEvents {
		b.Fatalf("the 90-day report counts %d events, want %d", sum, benchEvents)
	}

	for _, c := range []struct{ name, groupBy, tz string }{
		{"day", "day", ""},
		{"day,campaign", "day,campaign", ""},
		{"hour", "hour", ""},
		{"campaign,creative", "campaign,creative", ""},
		{"country", "country", ""},
		{"day,creative/America_New_York", "day,creative", "America/New_York"},
		{"placement,country/Asia_Seoul", "placement,country", "Asia/Seoul"},
		{"campaign,country", "campaign,country", ""},
		{"campaign,placement", "campaign,placement", ""},
		{"creative,country/Europe_Berlin", "creative,country", "Europe/Berlin"},
		{"campaign,creative,placement,country", "campaign,creative,placement,country", ""},
	} {
		v := url.Values{"from": {from}, "to": {to}, "group_by": {c.groupBy}}
		if c.tz != "" {
			v.Set("tz", c.tz)
		}
		path := "/v1/reports?" + v.Encode()
		b.Run(c.name, func(b *testing.B) {
			res := get(b, base, path, adv.key)
			rows := len(decodeReport(b, res).Rows)
			table := res.header.Get("X-Report-Source")
			b.ResetTimer()
			for b.Loop() {
				if r := get(b, base, path, adv.key); r.status != 200 {
					b.Fatalf("%d %s", r.status, r.body)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/report")
			b.ReportMetric(float64(rows), "rows")
			b.Logf("%s: %d rows from %s", c.name, rows, table)
		})
	}
}

// insertBenchRollups writes events' worth of rollup rows for adv into
// both rollup tables, every combination every hour of benchDays days
// before benchEnd, and returns the number of events they stand for.
func insertBenchRollups(b *testing.B, conn driver.Conn, db, adv string, events int64) int64 {
	b.Helper()
	ctx := context.Background()
	hours := benchDays * 24
	combos := benchCampaigns * benchCreatives * benchPlacements * benchCountries
	rowsTotal := int64(hours * combos)
	first := benchEnd.Add(-time.Duration(hours) * time.Hour)

	var (
		campaigns  = names(adv+"-c", benchCampaigns)
		creatives  = names("cr", benchCreatives)
		placements = names("p", benchPlacements)
		countries  = []string{"KR", "US", "JP", "DE", "BR"}
	)
	// Per row: impressions, and a click on some rows, a conversion on
	// fewer, with the row-to-row spread of a hash; the first rows take up
	// the remainder so the events add up exactly.
	perRow := events / rowsTotal
	extra := events - perRow*rowsTotal

	type camHour struct {
		c, h int
	}
	campSums := map[camHour]*[4]int64{}
	var n int64
	const chunk = 400_000
	cols := newBenchColumns(chunk)
	flush := func() {
		if cols.len() == 0 {
			return
		}
		batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.rollup_hourly (hour, advertiser_id, campaign_id, creative_id, placement_id, "+
			"publisher_id, country, impressions, clicks, conversions, wins, billings, losses, spend_micros)")
		if err != nil {
			b.Fatal(err)
		}
		for i, col := range cols.all() {
			if err := batch.Column(i).Append(col); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Send(); err != nil {
			b.Fatal(err)
		}
		cols.reset()
	}
	var row int64
	for h := range hours {
		at := first.Add(time.Duration(h) * time.Hour)
		for c := range benchCampaigns {
			cs := campSums[camHour{c, h}]
			if cs == nil {
				cs = &[4]int64{}
				campSums[camHour{c, h}] = cs
			}
			for cr := range benchCreatives {
				for p := range benchPlacements {
					for co := range benchCountries {
						x := uint64(row)*0x9E3779B97F4A7C15 + 1
						x ^= x >> 29
						evs := perRow
						if row < extra {
							evs++
						}
						if evs == 0 {
							row++
							continue
						}
						var clk, conv int64
						if evs > 1 && x%5 == 0 {
							clk = 1
							if evs > 2 && x%7 == 0 {
								conv = 1
							}
						}
						imp := evs - clk - conv
						spend := imp*int64(1000+x%3000) + clk*int64(x%500_000)
						cols.add(at, adv, campaigns[c], creatives[cr], placements[p], countries[co], imp, clk, conv, spend)
						cs[0] += imp
						cs[1] += clk
						cs[2] += conv
						cs[3] += spend
						n += evs
						row++
						if cols.len() == chunk {
							flush()
						}
					}
				}
			}
		}
	}
	flush()

	batch, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.rollup_campaign_hourly (hour, advertiser_id, campaign_id, "+
		"impressions, clicks, conversions, wins, billings, losses, spend_micros)")
	if err != nil {
		b.Fatal(err)
	}
	for k, s := range campSums {
		at := first.Add(time.Duration(k.h) * time.Hour)
		if err := batch.Append(at, adv, campaigns[k.c], uint64(s[0]), uint64(s[1]), uint64(s[2]), uint64(0), uint64(0), uint64(0), s[3]); err != nil {
			b.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		b.Fatal(err)
	}
	return n
}

func names(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// benchColumns holds one insert of rollup_hourly, column by column.
type benchColumns struct {
	hour                              []time.Time
	adv, camp, cr, pl, pub, country   []string
	imp, clk, conv, wins, bills, loss []uint64
	spend                             []int64
}

func newBenchColumns(n int) *benchColumns {
	return &benchColumns{hour: make([]time.Time, 0, n)}
}

func (c *benchColumns) len() int { return len(c.hour) }

func (c *benchColumns) add(at time.Time, adv, camp, cr, pl, country string, imp, clk, conv, spend int64) {
	c.hour = append(c.hour, at)
	c.adv, c.camp, c.cr, c.pl = append(c.adv, adv), append(c.camp, camp), append(c.cr, cr), append(c.pl, pl)
	c.pub, c.country = append(c.pub, "pub-1"), append(c.country, country)
	c.imp, c.clk, c.conv = append(c.imp, uint64(imp)), append(c.clk, uint64(clk)), append(c.conv, uint64(conv))
	c.wins, c.bills, c.loss = append(c.wins, 0), append(c.bills, 0), append(c.loss, 0)
	c.spend = append(c.spend, spend)
}

func (c *benchColumns) all() []any {
	return []any{c.hour, c.adv, c.camp, c.cr, c.pl, c.pub, c.country, c.imp, c.clk, c.conv, c.wins, c.bills, c.loss, c.spend}
}

func (c *benchColumns) reset() {
	*c = benchColumns{hour: c.hour[:0], adv: c.adv[:0], camp: c.camp[:0], cr: c.cr[:0], pl: c.pl[:0], pub: c.pub[:0],
		country: c.country[:0], imp: c.imp[:0], clk: c.clk[:0], conv: c.conv[:0], wins: c.wins[:0], bills: c.bills[:0],
		loss: c.loss[:0], spend: c.spend[:0]}
}
