package reports

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/valyala/fasthttp"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/events/clickhouse"
	"github.com/adserver/adserver/internal/chtest"
)

const testAdminToken = "admin-secret-token"

// testDB opens a connection and creates the schema in a database of the
// test's own, dropped at the end (unless ADSERVER_TEST_KEEP_DB is set).
func testDB(t testing.TB) (driver.Conn, string, string) {
	t.Helper()
	return testDBAt(t, clickhouse.SchemaVersion())
}

// testDBAt is testDB with the schema at version (to test upgrades).
func testDBAt(t testing.TB, version uint32) (driver.Conn, string, string) {
	t.Helper()
	addr := chtest.Reachable(t)
	conn, err := clickhouse.Open(addr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := chtest.Database(t, conn, "adserver_test_reports_")
	if err := clickhouse.MigrateTo(ctx, conn, db, version); err != nil {
		t.Fatal(err)
	}
	return conn, addr, db
}

// countingConn counts the queries that reach ClickHouse.
type countingConn struct {
	driver.Conn
	queries atomic.Int64
}

func (c *countingConn) Query(ctx context.Context, q string, args ...any) (driver.Rows, error) {
	c.queries.Add(1)
	return c.Conn.Query(ctx, q, args...)
}

func (c *countingConn) QueryRow(ctx context.Context, q string, args ...any) driver.Row {
	c.queries.Add(1)
	return c.Conn.QueryRow(ctx, q, args...)
}

func (c *countingConn) Select(ctx context.Context, dest any, q string, args ...any) error {
	c.queries.Add(1)
	return c.Conn.Select(ctx, dest, q, args...)
}

func (c *countingConn) Exec(ctx context.Context, q string, args ...any) error {
	c.queries.Add(1)
	return c.Conn.Exec(ctx, q, args...)
}

func (c *countingConn) PrepareBatch(ctx context.Context, q string, opts ...driver.PrepareBatchOption) (driver.Batch, error) {
	c.queries.Add(1)
	return c.Conn.PrepareBatch(ctx, q, opts...)
}

// testAdvertiser is an advertiser with its plain API key.
type testAdvertiser struct {
	campaign.Advertiser
	key string
}

func newAdvertiser(id, tz string) *testAdvertiser {
	key := "key-" + id + "-" + strings.Repeat("x", 8)
	sum := sha256.Sum256([]byte(key))
	return &testAdvertiser{Advertiser: campaign.Advertiser{ID: id, Name: id, Timezone: tz, APIKeyHash: hex.EncodeToString(sum[:])}, key: key}
}

// advertiserLookup is Config.Advertisers over a fixed list.
func advertiserLookup(advs ...*testAdvertiser) func(string) *campaign.Advertiser {
	m := map[string]*campaign.Advertiser{}
	for _, a := range advs {
		m[a.APIKeyHash] = &a.Advertiser
	}
	return func(h string) *campaign.Advertiser { return m[h] }
}

// serve runs h's handlers on a real fasthttp server on 127.0.0.1 and
// returns its base URL.
func serve(t testing.TB, h *Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &fasthttp.Server{
		Handler: func(ctx *fasthttp.RequestCtx) {
			switch p := string(ctx.Path()); {
			case p == "/v1/reports":
				h.ServeReports(ctx)
			case p == "/dashboard" || strings.HasPrefix(p, "/dashboard/"):
				h.ServeDashboard(ctx)
			default:
				ctx.Error("not found", fasthttp.StatusNotFound)
			}
		},
		ReadTimeout:  10 * time.Second,
		WriteTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() { srv.Serve(ln); close(done) }()
	t.Cleanup(func() { srv.Shutdown(); <-done })
	return "http://" + ln.Addr().String()
}

// answer is one HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

var httpClient = &http.Client{Timeout: 30 * time.Second}

// get requests base+path with a bearer token (none when key is "").
func get(t testing.TB, base, path, key string) answer {
	t.Helper()
	if key == "" {
		return getWithAuth(t, base, path, "")
	}
	return getWithAuth(t, base, path, "Bearer "+key)
}

// postAuth POSTs to base+path with a bearer token.
func postAuth(t testing.TB, base, path, key string) answer {
	t.Helper()
	return do(t, "POST", base+path, "Bearer "+key)
}

// getWithAuth requests base+path with an Authorization header (none when
// auth is "").
func getWithAuth(t testing.TB, base, path, auth string) answer {
	t.Helper()
	return do(t, "GET", base+path, auth)
}

func do(t testing.TB, method, url, auth string) answer {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: body}
}

// reportJSON is a decoded report with every number kept as its text.
type reportJSON struct {
	Rows   []map[string]any `json:"rows"`
	Totals map[string]any   `json:"totals"`
}

func decodeReport(t testing.TB, a answer) reportJSON {
	t.Helper()
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var r reportJSON
	d := json.NewDecoder(strings.NewReader(string(a.body)))
	d.UseNumber()
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		t.Fatalf("cannot decode %s: %v", a.body, err)
	}
	return r
}

// insertEvents writes events straight into the events table (the
// materialized views fill the rollups), naming the columns as 18.16
// requires.
func insertEvents(t testing.TB, conn driver.Conn, db string, evs []events.Event) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO `"+db+"`.events (event_id, type, time, node_id, seq, auction_id, slot_id, "+
		"advertiser_id, campaign_id, creative_id, placement_id, publisher_id, country, user_id, price_micros, cost_micros, test)")
	if err != nil {
		t.Fatal(err)
	}
	for i := range evs {
		e := &evs[i]
		test := uint8(0)
		if e.Test {
			test = 1
		}
		if err := b.Append(string(e.ID[:]), int8(e.Type), e.Time.UTC(), e.NodeID, e.Seq, e.AuctionID, e.SlotID,
			e.AdvertiserID, e.CampaignID, e.CreativeID, e.PlacementID, e.PublisherID, e.Country, e.UserID,
			e.PriceMicros, e.CostMicros, test); err != nil {
			b.Abort()
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}
