package reports

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/events/clickhouse"
)

// rollupCase is a report asked of every rollup that can answer it.
type rollupCase struct {
	params string // group_by, tz, filters
	key    string // "" for the admin
}

var rollupCases = []rollupCase{
	{params: "group_by=country"},
	{params: "group_by=creative&tz=America/New_York"},
	{params: "group_by=campaign,creative&tz=Asia/Seoul", key: "adv-a"},
	{params: "group_by=placement"},
	{params: "group_by=day,placement,country&tz=America/New_York"},
	{params: "group_by=hour,country&tz=America/New_York", key: "adv-a"},
	{params: "group_by=campaign,country&tz=Asia/Seoul"},
	{params: "group_by=day,campaign,placement,country&tz=Europe/Berlin"},
	{params: "group_by=day,country&campaign_id=ca-1&campaign_id=cb-2&tz=Asia/Seoul"},
	{params: "group_by=hour,placement&campaign_id=ca-2&tz=America/New_York", key: "adv-a"},
	{params: "group_by=day&tz=America/New_York", key: "adv-b"},
	{params: "group_by=creative,country&tz=America/New_York"},
	{params: ""},
}

// TestRollupsAgree asks each report of rollups that can answer it (the
// one chooseTable picks and every larger one, rollup_hourly last) and
// requires the same rows to the unit and the micro, over data shipped
// through the real pipeline, with time zones on both sides of UTC and
// across a DST change; and it checks chooseTable picks the first
// (smallest) rollup that has every dimension a report needs.
func TestRollupsAgree(t *testing.T) {
	conn, addr, db := testDB(t)
	f := newExactFixture(t, addr, db)
	h, err := New(Config{Conn: conn, Database: db, AdminToken: testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rs := h.rollupState(ctx)
	if !rs.ready || len(rs.gaps) != 0 {
		t.Fatalf("fresh database: rollup state %+v, want ready without gaps", rs)
	}
	ny, _ := time.LoadLocation("America/New_York")
	seen := map[string]bool{}
	for _, c := range rollupCases {
		q := parseTestQuery(t, c, ny)
		segs := zoneSegments(q.Loc, q.From, q.To)
		chosen := chooseTable(q, segs, true)
		seen[chosen] = true
		var want *Report
		first := ""
		for i := len(rollups) - 1; i >= 0; i-- { // rollup_hourly first: the reference
			r := rollups[i]
			if needs(q)&^r.dims != 0 {
				continue
			}
			first = r.table
			rep, err := h.execute(ctx, q, planOn(db, q, 1000, h.limits(), rs, segs, r.table))
			if err != nil {
				t.Fatalf("%s on %s: %v", c.params, r.table, err)
			}
			if want == nil {
				want = rep
				if len(rep.Rows) == 0 || rep.Totals.Impressions == 0 || rep.Totals.Clicks == 0 || rep.Totals.SpendMicros == 0 {
					t.Fatalf("BUG: %s covers too little data: %+v", c.params, rep)
				}
				continue
			}
			if !slices.EqualFunc(rep.Rows, want.Rows, func(a, b Row) bool { return slices.Equal(a.Keys, b.Keys) && a.Metrics == b.Metrics }) ||
				rep.Totals != want.Totals {
				t.Errorf("%s: %s says %+v, rollup_hourly %+v", c.params, r.table, rep, want)
			}
		}
		if chosen != first {
			t.Errorf("%s: chose %s, the smallest rollup that answers is %s", c.params, chosen, first)
		}
		// The model agrees too (through the API in TestReportExact; here
		// on the totals).
		_, tot := model(f.evs, modelQueryOf(q))
		if want.Totals != tot {
			t.Errorf("%s: totals %+v, model %+v", c.params, want.Totals, tot)
		}
	}
	for _, r := range rollups {
		if !seen[r.table] {
			t.Errorf("no case reads %s", r.table)
		}
	}
}

// needs is the set of dimensions q groups or filters by.
func needs(q *Query) dimSet {
	var s dimSet
	for _, d := range q.GroupBy {
		if !d.isTime() {
			s |= dims(d)
		}
	}
	if len(q.Campaigns) > 0 {
		s |= dims(DimCampaign)
	}
	return s
}

// parseTestQuery parses a case over the exact fixture's days.
func parseTestQuery(t *testing.T, c rollupCase, ny *time.Location) *Query {
	t.Helper()
	v, err := url.ParseQuery(c.params)
	if err != nil {
		t.Fatal(err)
	}
	v.Set("from", "2026-10-31")
	v.Set("to", "2026-11-02")
	var ps []param
	for k, vs := range v {
		for _, x := range vs {
			ps = append(ps, param{key: k, value: x})
		}
	}
	p := principal{admin: true}
	if c.key != "" {
		p = principal{advertiserID: c.key, timezone: "UTC"}
	}
	q, aerr := parseQuery(ps, p, time.Date(2026, 11, 10, 0, 0, 0, 0, ny), DefaultMaxRange)
	if aerr != nil {
		t.Fatalf("%s: %v", c.params, aerr)
	}
	return q
}

func modelQueryOf(q *Query) modelQuery {
	m := modelQuery{loc: q.Loc, from: q.From, to: q.To, scope: q.Scope, advs: q.Advertisers, camps: q.Campaigns}
	for _, d := range q.GroupBy {
		m.groupBy = append(m.groupBy, d.String())
	}
	return m
}

// TestReportsReadGapHours: in the hours of the backfill's gap log the
// version-2 rollups are not trusted, whatever they hold; rollup_hourly
// answers for those hours, the smaller table for the others. Here the
// gap hours of the new tables hold garbage, and the reports still agree
// with the model.
func TestReportsReadGapHours(t *testing.T) {
	conn, addr, db := testDB(t)
	f := newExactFixture(t, addr, db)
	ctx := context.Background()
	gapHours := []time.Time{edgeNYFallBack, edgeNYFallBack.Add(time.Hour), edgeSeoulDay, edgeSeoulDay.Add(-5 * time.Hour)}
	for _, h := range gapHours {
		if err := conn.Exec(ctx, "INSERT INTO `"+db+"`."+gapsTable+" SELECT toDateTime(?)", h.Unix()); err != nil {
			t.Fatal(err)
		}
		for _, r := range rollups {
			if r.backfilled {
				garbage(t, conn, db, r.table, h)
			}
		}
	}
	a := newAdvertiser("adv-a", "America/New_York")
	h, err := New(Config{Conn: conn, Database: db, AdminToken: testAdminToken, Advertisers: advertiserLookup(a)})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	ny, _ := time.LoadLocation("America/New_York")
	for _, c := range rollupCases {
		q := parseTestQuery(t, c, ny)
		table := chooseTable(q, zoneSegments(q.Loc, q.From, q.To), true)
		key := testAdminToken
		if c.key == "adv-a" {
			key = a.key
		} else if c.key != "" {
			continue // only adv-a has a key here
		}
		res := get(t, base, "/v1/reports?from=2026-10-31&to=2026-11-02&"+c.params, key)
		rows, tot := model(f.evs, modelQueryOf(q))
		checkReport(t, c.params, decodeReport(t, res), modelQueryOf(q).groupBy, rows, tot)
		want := table
		if isBackfilled(table) {
			want += "," + tableHourly
		}
		if src := res.header.Get("X-Report-Source"); src != want {
			t.Errorf("%s: read %s, want %s", c.params, src, want)
		}
	}

	// Too many separate gap ranges in the range: rollup_hourly alone.
	for i := range 36 { // every other hour of the 72
		at := time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC).Add(time.Duration(2*i) * time.Hour)
		if err := conn.Exec(ctx, "INSERT INTO `"+db+"`."+gapsTable+" SELECT toDateTime(?)", at.Unix()); err != nil {
			t.Fatal(err)
		}
	}
	h.rollups.Store(nil)
	res := get(t, base, "/v1/reports?from=2026-10-31&to=2026-11-02&group_by=country", testAdminToken)
	q := parseTestQuery(t, rollupCase{params: "group_by=country"}, ny)
	rows, tot := model(f.evs, modelQueryOf(q))
	checkReport(t, "many gaps", decodeReport(t, res), []string{"country"}, rows, tot)
	if src := res.header.Get("X-Report-Source"); src != tableHourly {
		t.Errorf("many gaps: read %s, want %s", src, tableHourly)
	}
}

// garbage adds a row to table in hour h that no event stands for.
func garbage(t *testing.T, conn driver.Conn, db, table string, h time.Time) {
	t.Helper()
	var cols []string
	var vals []any
	for _, r := range rollups {
		if r.table != table {
			continue
		}
		for d := DimCampaign; d < dimEnd; d++ {
			if r.dims&dims(d) != 0 {
				cols = append(cols, dimInfo[d].column)
				vals = append(vals, "ca-1")
			}
		}
	}
	sql := "INSERT INTO `" + db + "`." + table + " (hour, advertiser_id, " + strings.Join(cols, ", ") +
		", impressions, clicks, conversions, wins, billings, losses, spend_micros)"
	b, err := conn.PrepareBatch(context.Background(), sql)
	if err != nil {
		t.Fatal(err)
	}
	for _, adv := range []string{"adv-a", "adv-b"} {
		args := append([]any{h, adv}, vals...)
		args = append(args, uint64(1_000_000), uint64(1000), uint64(10), uint64(0), uint64(0), uint64(0), int64(777_000_000))
		if err := b.Append(args...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// TestReportsAcrossUpgrade: a database at schema version 1 with events
// answers from rollup_hourly (the handler does not read tables that are
// not complete); after Migrate (backfill) the same handler, once it looks
// again, answers from the smaller rollups, identically, and so does
// new data that arrives through their views.
func TestReportsAcrossUpgrade(t *testing.T) {
	conn, _, db := testDBAt(t, 1)
	evs, mevs := upgradeEvents(1, 3000, time.Date(2026, 10, 30, 20, 0, 0, 0, time.UTC))
	insertEvents(t, conn, db, evs)
	h, err := New(Config{Conn: conn, Database: db, AdminToken: testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	ny, _ := time.LoadLocation("America/New_York")
	check := func(label string, mevs []modelEvent, upgraded bool) {
		t.Helper()
		for _, c := range rollupCases {
			if c.key != "" {
				continue
			}
			q := parseTestQuery(t, c, ny)
			res := get(t, base, "/v1/reports?from=2026-10-31&to=2026-11-02&"+c.params, testAdminToken)
			rows, tot := model(mevs, modelQueryOf(q))
			checkReport(t, label+" "+c.params, decodeReport(t, res), modelQueryOf(q).groupBy, rows, tot)
			want := chooseTable(q, zoneSegments(q.Loc, q.From, q.To), upgraded)
			if src := res.header.Get("X-Report-Source"); src != want {
				t.Errorf("%s %s: read %s, want %s", label, c.params, src, want)
			}
		}
	}
	check("version 1", mevs, false)
	if err := clickhouse.Migrate(context.Background(), conn, db); err != nil {
		t.Fatal(err)
	}
	// Still version 1 for this handler until it looks again.
	check("migrated, not looked again", mevs, false)
	h.rollups.Store(&rollupState{read: time.Now().Add(-schemaRecheck)})
	check("version 2", mevs, true)
	more, mmore := upgradeEvents(2, 1000, time.Date(2026, 10, 31, 0, 0, 0, 0, time.UTC))
	insertEvents(t, conn, db, more)
	check("version 2, more data", append(mevs, mmore...), true)
}

// upgradeEvents makes n events from start on (one every 2-3 minutes),
// with their model twins.
func upgradeEvents(seed uint64, n int, start time.Time) ([]events.Event, []modelEvent) {
	rng := rand.New(rand.NewPCG(seed, 5))
	camps := []struct{ adv, id string }{{"adv-a", "ca-1"}, {"adv-a", "ca-2"}, {"adv-b", "cb-1"}, {"adv-b", "cb-2"}}
	types := []events.Type{events.TypeImpression, events.TypeImpression, events.TypeImpression, events.TypeClick,
		events.TypeConversion, events.TypeWin}
	var evs []events.Event
	var mevs []modelEvent
	at := start
	for i := range n {
		at = at.Add(time.Duration(120+rng.IntN(60)) * time.Second)
		c := camps[rng.IntN(len(camps))]
		e := events.Event{Type: types[rng.IntN(len(types))], Time: at, NodeID: "node-u", Seq: seed<<32 | uint64(i+1),
			AuctionID: fmt.Sprintf("u%d-%d", seed, i), SlotID: "s1", AdvertiserID: c.adv, CampaignID: c.id,
			CreativeID: fmt.Sprintf("%s-cr-%d", c.id, rng.IntN(3)), PlacementID: fmt.Sprintf("p-%d", rng.IntN(4)),
			PublisherID: "pub-1", Country: []string{"KR", "US", "DE"}[rng.IntN(3)], CostMicros: int64(rng.IntN(3000)),
			Test: i%29 == 3}
		e.ID = events.EventID(e.AuctionID, e.SlotID, e.Type)
		evs = append(evs, e)
		mevs = append(mevs, modelEvent{t: at, typ: e.Type, adv: e.AdvertiserID, camp: e.CampaignID, creative: e.CreativeID,
			placement: e.PlacementID, country: e.Country, cost: e.CostMicros, test: e.Test})
	}
	return evs, mevs
}
