package reports

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/events/clickhouse"
)

// TestBadInputReachesNoQuery: hostile or malformed group_by, dates, time
// zones, ids, formats and parameters get a 400 with a JSON error naming
// the field, and no query reaches ClickHouse.
func TestBadInputReachesNoQuery(t *testing.T) {
	conn, _, db := testDB(t)
	cc := &countingConn{Conn: conn}
	a := newAdvertiser("adv-a", "UTC")
	h, err := New(Config{Conn: cc, Database: db, AdminToken: testAdminToken, Advertisers: advertiserLookup(a),
		Now: func() time.Time { return time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC) }})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)
	long := strings.Repeat("c", 129)
	many := strings.Repeat("campaign_id=c&", 101)
	cases := []struct {
		query string
		field string
	}{
		{"group_by=" + url.QueryEscape("day;DROP TABLE events"), "group_by"},
		{"group_by=" + url.QueryEscape("day) FROM system.tables --"), "group_by"},
		{"group_by=campaign_id", "group_by"},
		{"group_by=DAY", "group_by"},
		{"group_by=day,day", "group_by"},
		{"group_by=day,hour", "group_by"},
		{"group_by=day,,campaign", "group_by"},
		{"group_by=day%00", "group_by"},
		{"group_by=day&group_by=campaign&group_by=day", "group_by"},
		{"group_by=" + url.QueryEscape("advertiser_id"), "group_by"},
		{"from=2026-13-01", "from"},
		{"from=2026-02-30", "from"},
		{"from=" + url.QueryEscape("2026-11-01' OR 1=1 --"), "from"},
		{"from=now()", "from"},
		{"from=1969-12-31", "from"},
		{"from=1999-12-31&to=2000-01-01", "from"},
		{"to=2100-01-01&from=2099-12-01", "to"},
		{"to=2100-01-01T00:00:01Z&from=2099-12-01", "to"},
		{"from=99999-01-01", "from"},
		{"from=2026-11-01T00:00:00.5Z", "from"},
		{"from=2026-11-01T00:00:00%2B25:00", "from"},
		{"from=2026-11-24&to=2026-11-01", "from"},
		{"from=2026-11-24T10:00:00Z&to=2026-11-24T10:00:00Z", "from"},
		{"from=2020-01-01&to=2026-01-01", "to"},
		{"from=2025-10-20&to=2026-11-24", "to"},
		{"to=" + url.QueryEscape("toDateTime(0)"), "to"},
		{"tz=" + url.QueryEscape("../../../../etc/passwd"), "tz"},
		{"tz=%2Fetc%2Flocaltime", "tz"},
		{"tz=Local", "tz"},
		{"tz=", "tz"},
		{"tz=Mars%2FOlympus_Mons", "tz"},
		{"tz=" + url.QueryEscape("UTC') --"), "tz"},
		{"tz=UTC&tz=Asia%2FSeoul", "tz"},
		{"campaign_id=", "campaign_id"},
		{"campaign_id=" + url.QueryEscape("c-1' OR '1'='1"), "campaign_id"},
		{"campaign_id=" + url.QueryEscape("c/1"), "campaign_id"},
		{"campaign_id=c%00", "campaign_id"},
		{"campaign_id=%C3%A9t%C3%A9", "campaign_id"},
		{"campaign_id=" + long, "campaign_id"},
		{strings.TrimSuffix(many, "&"), "campaign_id"},
		{"advertiser_id=" + url.QueryEscape("adv-b OR 1"), "advertiser_id"},
		{"advertiser_id=a%0Ab", "advertiser_id"},
		{"format=xml", "format"},
		{"format=JSON", "format"},
		{"format=csv&format=json", "format"},
		{"format=" + url.QueryEscape("csv'"), "format"},
		{"from=2026-11-01&from=2026-11-02", "from"},
		{"foo=1", "foo"},
		{"group-by=day", "group-by"},
		{"limit=1000000", "limit"},
		{"sql=" + url.QueryEscape("SELECT 1"), "sql"},
	}
	for _, key := range []string{a.key, testAdminToken} {
		for _, c := range cases {
			res := get(t, base, "/v1/reports?"+c.query, key)
			var body struct {
				Error struct{ Code, Message, Field string } `json:"error"`
			}
			if err := json.Unmarshal(res.body, &body); err != nil || res.status != 400 {
				t.Fatalf("%s: status %d %s (%v), want 400", c.query, res.status, res.body, err)
			}
			if body.Error.Field != c.field || body.Error.Code == "" || body.Error.Message == "" {
				t.Errorf("%s: error %+v, want field %q", c.query, body.Error, c.field)
			}
		}
	}
	if n := cc.queries.Load(); n != 0 {
		t.Fatalf("%d queries reached ClickHouse for bad input", n)
	}
	// Wrong method: 405, no query.
	req := "/v1/reports?from=2026-11-01"
	if res := postAuth(t, base, req, a.key); res.status != 405 || res.header.Get("Allow") != "GET" {
		t.Fatalf("POST: %d %v", res.status, res.header)
	}
	if n := cc.queries.Load(); n != 0 {
		t.Fatalf("%d queries reached ClickHouse for a POST", n)
	}
	// The same handler with good input does query: the counter works.
	if res := get(t, base, "/v1/reports?from=2026-11-01&to=2026-11-24&group_by=day,campaign", a.key); res.status != 200 {
		t.Fatalf("good request: %d %s", res.status, res.body)
	}
	if n := cc.queries.Load(); n != 1 {
		t.Fatalf("good request ran %d queries, want 1", n)
	}
	// The tables are all still there.
	var tables uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&tables); err != nil || tables < 5 {
		t.Fatalf("tables in %s: %d %v", db, tables, err)
	}
}

// TestLimits: busy answers 503 at once with Retry-After and no query; a
// report over MaxRows is a 400, never a truncated answer; a query out of
// time is a 504; ClickHouse away is a 503.
func TestLimits(t *testing.T) {
	conn, _, db := testDB(t)
	var evs []events.Event
	at := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	for i := range 48 {
		evs = append(evs, events.Event{Type: events.TypeImpression, ID: events.EventID("l", string(rune('a'+i)), events.TypeImpression),
			Time: at.Add(time.Duration(i) * time.Hour), NodeID: "n", Seq: uint64(i + 1), AdvertiserID: "adv-a", CampaignID: "c-1", CostMicros: 1000})
	}
	insertEvents(t, conn, db, evs)
	a := newAdvertiser("adv-a", "UTC")
	cc := &countingConn{Conn: conn}
	errBody := func(t *testing.T, res answer) (code, field string) {
		t.Helper()
		var body struct {
			Error struct{ Code, Field string } `json:"error"`
		}
		if err := json.Unmarshal(res.body, &body); err != nil {
			t.Fatalf("%d %s: %v", res.status, res.body, err)
		}
		return body.Error.Code, body.Error.Field
	}

	t.Run("busy", func(t *testing.T) {
		h, err := New(Config{Conn: cc, Database: db, Advertisers: advertiserLookup(a), MaxConcurrent: 1, MaxWait: -1})
		if err != nil {
			t.Fatal(err)
		}
		base := serve(t, h)
		if !h.acquire() { // a report that never ends holds the only slot
			t.Fatal("cannot take the slot")
		}
		before := cc.queries.Load()
		res := get(t, base, "/v1/reports?from=2026-11-20&to=2026-11-21", a.key)
		if code, _ := errBody(t, res); res.status != 503 || code != "busy" || res.header.Get("Retry-After") == "" {
			t.Fatalf("busy: %d %v %s", res.status, res.header, res.body)
		}
		if cc.queries.Load() != before {
			t.Fatal("a refused report ran a query")
		}
		h.release()
		if res := get(t, base, "/v1/reports?from=2026-11-20&to=2026-11-21", a.key); res.status != 200 {
			t.Fatalf("after release: %d %s", res.status, res.body)
		}
	})

	t.Run("too many rows", func(t *testing.T) {
		h, err := New(Config{Conn: conn, Database: db, Advertisers: advertiserLookup(a), MaxRows: 24})
		if err != nil {
			t.Fatal(err)
		}
		base := serve(t, h)
		// 48 hours of data: 24 rows is the limit, 48 is over it (both the
		// server's group limit and the reader's row count say so).
		res := get(t, base, "/v1/reports?from=2026-11-20&to=2026-11-21&group_by=hour", a.key)
		if code, field := errBody(t, res); res.status != 400 || code != "too_many_rows" || field != "group_by" {
			t.Fatalf("48 rows over a limit of 24: %d %s", res.status, res.body)
		}
		res = get(t, base, "/v1/reports?from=2026-11-20&to=2026-11-20&group_by=hour", a.key)
		if r := decodeReport(t, res); len(r.Rows) != 24 {
			t.Fatalf("24 rows at a limit of 24: %d", len(r.Rows))
		}
		// The reader's own check, below the server's group limit.
		h, err = New(Config{Conn: conn, Database: db, Advertisers: advertiserLookup(a), MaxRows: 47})
		if err != nil {
			t.Fatal(err)
		}
		res = get(t, serve(t, h), "/v1/reports?from=2026-11-20&to=2026-11-21&group_by=hour", a.key)
		if code, _ := errBody(t, res); res.status != 400 || code != "too_many_rows" {
			t.Fatalf("48 rows over a limit of 47: %d %s", res.status, res.body)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		h, err := New(Config{Conn: conn, Database: db, Advertisers: advertiserLookup(a), QueryTimeout: time.Nanosecond})
		if err != nil {
			t.Fatal(err)
		}
		res := get(t, serve(t, h), "/v1/reports?from=2026-11-20&to=2026-11-21", a.key)
		if code, _ := errBody(t, res); res.status != 504 || code != "timeout" {
			t.Fatalf("timeout: %d %s", res.status, res.body)
		}
	})

	t.Run("clickhouse away", func(t *testing.T) {
		away, err := clickhouse.Open("127.0.0.1:1", "default", "", time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer away.Close()
		h, err := New(Config{Conn: away, Database: db, Advertisers: advertiserLookup(a)})
		if err != nil {
			t.Fatal(err)
		}
		res := get(t, serve(t, h), "/v1/reports?from=2026-11-20&to=2026-11-21", a.key)
		if code, _ := errBody(t, res); res.status != 503 || code != "unavailable" || res.header.Get("Retry-After") == "" {
			t.Fatalf("ClickHouse away: %d %s", res.status, res.body)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	conn := &countingConn{}
	for _, c := range []Config{
		{},
		{Conn: conn, Database: "bad-name"},
		{Conn: conn, Database: "x`; DROP"},
		{Conn: conn, QueryTimeout: -1},
		{Conn: conn, MaxConcurrent: -1},
		{Conn: conn, MaxRange: -1},
		{Conn: conn, MaxRows: -1},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	h, err := New(Config{Conn: conn})
	if err != nil {
		t.Fatal(err)
	}
	if h.cfg.Database != DefaultDatabase || h.cfg.QueryTimeout != DefaultQueryTimeout || cap(h.sem) != DefaultMaxConcurrent ||
		h.cfg.MaxRows != DefaultMaxRows || h.cfg.MaxRange != DefaultMaxRange || h.cfg.MaxWait != DefaultMaxWait {
		t.Fatalf("defaults not applied: %+v", h.cfg)
	}
}
