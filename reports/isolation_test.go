package reports

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adserver/adserver/events"
)

// isolationData inserts events of two advertisers straight into the
// events table. B spends a thousand times more than A, so any leak shows
// in A's numbers. Campaign "moved" has events under both advertisers (it
// changed hands), and B reuses A's creative and placement ids.
func isolationData(t *testing.T, conn driver.Conn, db string) []modelEvent {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	start := time.Date(2026, 11, 10, 0, 0, 0, 0, time.UTC)
	var evs []events.Event
	var model []modelEvent
	add := func(i int, adv, camp string, typ events.Type, at time.Time, cost int64) {
		e := events.Event{Type: typ, ID: events.EventID(fmt.Sprintf("iso-%d", i), "s1", typ), Time: at, NodeID: "n", Seq: uint64(len(evs) + 1),
			AuctionID: fmt.Sprintf("iso-%d", i), SlotID: "s1", AdvertiserID: adv, CampaignID: camp,
			CreativeID: fmt.Sprintf("cr-%d", rng.IntN(3)), PlacementID: fmt.Sprintf("p-%d", rng.IntN(3)), Country: []string{"KR", "US"}[rng.IntN(2)],
			CostMicros: cost}
		evs = append(evs, e)
		model = append(model, modelEvent{t: at, typ: typ, adv: adv, camp: camp, creative: e.CreativeID, placement: e.PlacementID, country: e.Country, cost: cost})
	}
	for i := range 600 {
		at := start.Add(time.Duration(rng.IntN(3*24*3600)) * time.Second)
		var adv, camp string
		switch r := rng.IntN(10); {
		case r < 3:
			adv, camp = "adv-a", []string{"ca-1", "ca-2"}[rng.IntN(2)]
		case r < 4:
			adv, camp = []string{"adv-a", "adv-b"}[rng.IntN(2)], "moved"
		default:
			adv, camp = "adv-b", []string{"cb-1", "cb-2"}[rng.IntN(2)]
		}
		mult := int64(1)
		if adv == "adv-b" {
			mult = 1000
		}
		add(i, adv, camp, events.TypeImpression, at, mult*(1000+rng.Int64N(1000)))
		if i%4 == 0 {
			add(i, adv, camp, events.TypeClick, at, mult*rng.Int64N(50_000))
		}
		if i%12 == 0 {
			add(i, adv, camp, events.TypeConversion, at, 0)
		}
	}
	insertEvents(t, conn, db, evs)
	return model
}

// TestIsolation: advertiser A's key never yields B's rows, whatever the
// parameters, and asking about B's campaigns or advertiser id looks
// exactly like asking about ones that do not exist.
func TestIsolation(t *testing.T) {
	conn, _, db := testDB(t)
	evs := isolationData(t, conn, db)
	a := newAdvertiser("adv-a", "UTC")
	b := newAdvertiser("adv-b", "Asia/Seoul")
	cc := &countingConn{Conn: conn}
	h, err := New(Config{Conn: cc, Database: db, AdminToken: testAdminToken, Advertisers: advertiserLookup(a, b)})
	if err != nil {
		t.Fatal(err)
	}
	base := serve(t, h)

	groupBys := []string{"", "day", "hour", "campaign", "creative", "placement", "country", "day,campaign,creative,placement,country"}
	campFilters := [][]string{nil, {"ca-1"}, {"cb-1"}, {"moved"}, {"no-such-campaign"}, {"cb-1", "ca-2"},
		{"x'OR'1'='1"}, {"ca-1')OR('1'='1"}, {`cb-1\'`}}
	advFilters := [][]string{nil, {"adv-a"}, {"adv-b"}, {"adv-a", "adv-b"}, {"adv-b'OR'1'='1"}}
	tzs := []string{"", "UTC", "Asia/Kolkata", "America/New_York"}
	n := 0
	for _, gb := range groupBys {
		for _, cf := range campFilters {
			for _, af := range advFilters {
				n++
				tz := tzs[n%len(tzs)]
				v := url.Values{"from": {"2026-11-09"}, "to": {"2026-11-13"}, "group_by": {gb}}
				if tz != "" {
					v.Set("tz", tz)
				}
				v["campaign_id"], v["advertiser_id"] = cf, af
				res := get(t, base, "/v1/reports?"+v.Encode(), a.key)
				if bytes.Contains(res.body, []byte("cb-")) {
					t.Fatalf("%s: B's campaign in A's answer: %s", v.Encode(), res.body)
				}
				loc := time.UTC
				if tz != "" {
					loc, _ = time.LoadLocation(tz)
				}
				q := modelQuery{loc: loc, from: time.Date(2026, 11, 9, 0, 0, 0, 0, loc), to: time.Date(2026, 11, 14, 0, 0, 0, 0, loc),
					scope: "adv-a", advs: af, camps: cf}
				if gb != "" {
					q.groupBy = strings.Split(gb, ",")
				}
				rows, tot := model(evs, q)
				checkReport(t, v.Encode(), decodeReport(t, res), q.groupBy, rows, tot)
			}
		}
	}

	// Someone else's campaign or advertiser id answers byte for byte like
	// one that does not exist, in JSON and in CSV.
	same := func(p1, p2 string) {
		t.Helper()
		r1, r2 := get(t, base, "/v1/reports?"+p1, a.key), get(t, base, "/v1/reports?"+p2, a.key)
		r1.header.Del("Date")
		r2.header.Del("Date")
		if r1.status != r2.status || !bytes.Equal(r1.body, r2.body) || fmt.Sprint(r1.header) != fmt.Sprint(r2.header) {
			t.Fatalf("answers differ:\n%s: %d %v %s\n%s: %d %v %s", p1, r1.status, r1.header, r1.body, p2, r2.status, r2.header, r2.body)
		}
		if r1.status != 200 {
			t.Fatalf("%s: status %d", p1, r1.status)
		}
	}
	for _, gb := range []string{"", "day,campaign", "creative,country"} {
		for _, f := range []string{"", "&format=csv"} {
			same("from=2026-11-09&to=2026-11-13&campaign_id=cb-1&group_by="+gb+f, "from=2026-11-09&to=2026-11-13&campaign_id=cb-404&group_by="+gb+f)
			same("from=2026-11-09&to=2026-11-13&advertiser_id=adv-b&group_by="+gb+f, "from=2026-11-09&to=2026-11-13&advertiser_id=adv-404&group_by="+gb+f)
		}
	}

	// B sees B, the admin sees both.
	for _, c := range []struct {
		key   string
		scope string
	}{{b.key, "adv-b"}, {testAdminToken, ""}} {
		res := get(t, base, "/v1/reports?from=2026-11-09&to=2026-11-13&tz=UTC&group_by=campaign", c.key)
		rows, tot := model(evs, modelQuery{loc: time.UTC, from: time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC),
			to: time.Date(2026, 11, 14, 0, 0, 0, 0, time.UTC), groupBy: []string{"campaign"}, scope: c.scope})
		checkReport(t, "scope "+c.scope, decodeReport(t, res), []string{"campaign"}, rows, tot)
	}

	// Wrong, missing or malformed keys: 401, the same body every time,
	// and no query.
	before := cc.queries.Load()
	var first []byte
	for _, k := range []string{"", "nope", a.key + "x", strings.ToUpper(a.key), a.APIKeyHash, testAdminToken + "x", testAdminToken[1:], "Bearer " + a.key,
		strings.Repeat("k", 600), strings.ToUpper(testAdminToken)} {
		req := "/v1/reports?from=2026-11-09&to=2026-11-13&group_by=campaign"
		res := get(t, base, req, k)
		if res.status != 401 || res.header.Get("WWW-Authenticate") == "" {
			t.Fatalf("key %q: status %d %s", k, res.status, res.body)
		}
		if first == nil {
			first = res.body
		} else if !bytes.Equal(first, res.body) {
			t.Fatalf("401 bodies differ: %s vs %s", first, res.body)
		}
	}
	// Other schemes and a bad key with bad parameters: still 401 first.
	for _, hdr := range []string{"Basic " + a.key, "Token " + a.key, a.key} {
		res := getWithAuth(t, base, "/v1/reports?group_by=evil", hdr)
		if res.status != 401 {
			t.Fatalf("Authorization %q: %d %s", hdr, res.status, res.body)
		}
	}
	if q := cc.queries.Load(); q != before {
		t.Fatalf("%d queries ran for unauthorized requests", q-before)
	}
	t.Logf("%d parameter combinations checked", n)
}
