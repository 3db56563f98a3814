package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/config"
	"github.com/segmentio/kafka-go"
)

const testToken = "test-admin-token-0123456789"

// startNode starts a node on free loopback ports. With brokers "" it runs
// the embedded broker.
func startNode(t *testing.T, dataDir, brokers string) *Node {
	t.Helper()
	return startNodeWith(t, dataDir, brokers, nil)
}

// startNodeWith is startNode with a chance to change the config. Events
// stay in the local log (-clickhouse off) unless edit sets ClickHouse.
func startNodeWith(t testing.TB, dataDir, brokers string, edit func(*config.Config)) *Node {
	t.Helper()
	cfg := config.Default()
	cfg.ClickHouse = "off"
	cfg.Listen = "127.0.0.1:0"
	cfg.AdminListen = "127.0.0.1:0"
	cfg.EmbeddedKafkaListen = "127.0.0.1:0"
	cfg.DataDir = dataDir
	cfg.AdminToken = testToken
	cfg.Admin.MaxBody = 64 << 10
	cfg.Drain = 0
	if brokers != "" {
		cfg.Kafka = brokers
	}
	if edit != nil {
		edit(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	n, err := Start(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := n.WaitReady(ctx); err != nil {
		n.Stop(context.Background())
		t.Fatalf("node not ready: %v", err)
	}
	return n
}

func stopNode(t testing.TB, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := n.Stop(ctx); err != nil {
		t.Logf("stop: %v", err)
	}
}

type resp struct {
	status int
	body   string
}

func call(t *testing.T, method, url, token, body string) resp {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	return resp{r.StatusCode, string(b)}
}

func admin(n *Node) string   { return "http://" + n.Server.AdminAddr() }
func serving(n *Node) string { return "http://" + n.Server.ServingAddr() }

const advertiserJSON = `{"id":"adv-1","name":"Acme","api_key":"acme-key-0123456789abcdef","timezone":"UTC"}`

func campaignJSON(id string, bid string) string {
	return fmt.Sprintf(`{"id":%q,"advertiser_id":"adv-1","status":"active",
 "start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z","timezone":"Asia/Seoul",
 "budget":{"daily":100.0,"total":5000.0},"pacing":"asap","bid":{"model":"cpm","amount":%s},
 "targeting":{"any":[{"all":[{"attr":"country","in":["KR","US"]}]}]},
 "creatives":[{"id":"cr-1","format":"banner","w":300,"h":250,"html":"<a href='{{CLICK_URL}}'>x</a>","landing_url":"https://example.com/"}]}`, id, bid)
}

// eventually polls f until it returns "" or the deadline passes.
func eventually(t *testing.T, d time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		msg := f()
		if msg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, msg)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCatalogRoundTripTwoNodes(t *testing.T) {
	a := startNode(t, t.TempDir(), "")
	defer stopNode(t, a)
	b := startNode(t, t.TempDir(), a.Brokers)
	defer stopNode(t, b)

	if r := call(t, "PUT", admin(a)+"/v1/advertisers/adv-1", testToken, advertiserJSON); r.status != 200 {
		t.Fatalf("PUT advertiser: %d %s", r.status, r.body)
	}
	if r := call(t, "PUT", admin(a)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5")); r.status != 200 {
		t.Fatalf("PUT campaign: %d %s", r.status, r.body)
	}
	// Read-your-writes on A: no wait needed.
	r := call(t, "GET", admin(a)+"/v1/campaigns/c-1", "", "")
	if r.status != 200 || !strings.Contains(r.body, `"amount":2.5`) {
		t.Fatalf("GET on A right after PUT: %d %s", r.status, r.body)
	}
	// B shares the broker and applies the change too.
	eventually(t, 5*time.Second, func() string {
		r := call(t, "GET", admin(b)+"/v1/campaigns/c-1", "", "")
		if r.status != 200 {
			return fmt.Sprintf("GET on B: %d %s", r.status, r.body)
		}
		return ""
	})
	// B applies each topic on its own; wait for the advertiser too, since a
	// campaign PUT checks that its advertiser exists on the receiving node.
	eventually(t, 5*time.Second, func() string {
		if r := call(t, "GET", admin(b)+"/v1/advertisers/adv-1", "", ""); r.status != 200 {
			return fmt.Sprintf("advertiser on B: %d", r.status)
		}
		return ""
	})
	// An update on B shows on A.
	if r := call(t, "PUT", admin(b)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "3.75")); r.status != 200 {
		t.Fatalf("PUT on B: %d %s", r.status, r.body)
	}
	eventually(t, 5*time.Second, func() string {
		if r := call(t, "GET", admin(a)+"/v1/campaigns/c-1", "", ""); !strings.Contains(r.body, `"amount":3.75`) {
			return "A did not apply B's update: " + r.body
		}
		return ""
	})
	r = call(t, "GET", admin(a)+"/v1/campaigns?advertiser_id=adv-1", "", "")
	var list struct{ Campaigns []struct{ ID string } }
	if json.Unmarshal([]byte(r.body), &list); len(list.Campaigns) != 1 || list.Campaigns[0].ID != "c-1" {
		t.Fatalf("list: %s", r.body)
	}
	if r := call(t, "DELETE", admin(a)+"/v1/campaigns/c-1", testToken, ""); r.status != 204 {
		t.Fatalf("DELETE: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", admin(a)+"/v1/campaigns/c-1", "", ""); r.status != 404 {
		t.Fatalf("GET on A after DELETE: %d", r.status)
	}
	eventually(t, 5*time.Second, func() string {
		if r := call(t, "GET", admin(b)+"/v1/campaigns/c-1", "", ""); r.status != 404 {
			return fmt.Sprintf("B still has the deleted campaign: %d", r.status)
		}
		return ""
	})
	// The advertiser's key is write-only.
	if r := call(t, "GET", admin(b)+"/v1/advertisers/adv-1", "", ""); r.status != 200 || strings.Contains(r.body, "acme-key") || strings.Contains(r.body, "sha256") {
		t.Fatalf("advertiser GET leaks the key or fails: %d %s", r.status, r.body)
	}
}

func TestRestartServesSameCatalog(t *testing.T) {
	dir := t.TempDir()
	n := startNode(t, dir, "")
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	for i := 0; i < 20; i++ {
		if r := call(t, "PUT", admin(n)+fmt.Sprintf("/v1/campaigns/c-%d", i), testToken, campaignJSON(fmt.Sprintf("c-%d", i), "1")); r.status != 200 {
			t.Fatalf("PUT: %d %s", r.status, r.body)
		}
	}
	call(t, "DELETE", admin(n)+"/v1/campaigns/c-3", testToken, "")
	stopNode(t, n)

	n = startNode(t, dir, "")
	defer stopNode(t, n)
	if got := n.Feed.Snapshot().Index.Len(); got != 19 {
		t.Fatalf("after restart the index holds %d campaigns, want 19", got)
	}
	if r := call(t, "GET", admin(n)+"/v1/campaigns/c-7", "", ""); r.status != 200 {
		t.Fatalf("GET after restart: %d %s", r.status, r.body)
	}
	if r := call(t, "GET", admin(n)+"/v1/campaigns/c-3", "", ""); r.status != 404 {
		t.Fatalf("deleted campaign back after restart: %d", r.status)
	}
	if r := call(t, "GET", serving(n)+"/readyz", "", ""); r.status != 200 {
		t.Fatalf("readyz after restart: %d", r.status)
	}
}

func TestRecordFromPlainKafkaWriter(t *testing.T) {
	n := startNode(t, t.TempDir(), "")
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)

	w := &kafka.Writer{Addr: kafka.TCP(n.Brokers), Topic: bus.TopicCampaigns, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	malformed := metrics.GetOrCreateCounter(`adserver_feed_malformed_records_total{topic="adserver.campaigns"}`)
	before := malformed.Get()
	ctx := context.Background()
	if err := w.WriteMessages(ctx,
		kafka.Message{Key: []byte("c-bad"), Value: []byte(`{"id":"c-bad","budget":`)},         // malformed JSON
		kafka.Message{Key: []byte("c-bad2"), Value: []byte(campaignJSON("c-bad2", "-1"))},     // invalid
		kafka.Message{Key: []byte("c-other"), Value: []byte(campaignJSON("c-mismatch", "1"))}, // key ≠ id
		kafka.Message{Key: []byte("c-9"), Value: []byte(campaignJSON("c-9", "4"))},
	); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if r := call(t, "GET", admin(n)+"/v1/campaigns/c-9", "", ""); r.status != 200 {
			return fmt.Sprintf("record from a plain writer not applied: %d", r.status)
		}
		return ""
	})
	if got := malformed.Get() - before; got != 3 {
		t.Errorf("malformed records counted: %d, want 3", got)
	}
	for _, id := range []string{"c-bad", "c-bad2", "c-other", "c-mismatch"} {
		if r := call(t, "GET", admin(n)+"/v1/campaigns/"+id, "", ""); r.status != 404 {
			t.Errorf("malformed record %s applied: %d", id, r.status)
		}
	}
	// A tombstone from a plain writer deletes.
	if err := w.WriteMessages(ctx, kafka.Message{Key: []byte("c-9")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, func() string {
		if r := call(t, "GET", admin(n)+"/v1/campaigns/c-9", "", ""); r.status != 404 {
			return "tombstone not applied"
		}
		return ""
	})
}

func TestManagementRejectsBadInput(t *testing.T) {
	n := startNode(t, t.TempDir(), "")
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	if r := call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2")); r.status != 200 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	valid := campaignJSON("c-1", "9")
	for _, tc := range []struct {
		name, token, path, body string
		status                  int
		field                   string
	}{
		{"no token", "", "/v1/campaigns/c-1", valid, 401, ""},
		{"wrong token", "wrong-token-0123456789", "/v1/campaigns/c-1", valid, 401, ""},
		{"malformed JSON", testToken, "/v1/campaigns/c-1", `{"id":"c-1",`, 400, ""},
		{"wrong type", testToken, "/v1/campaigns/c-1", strings.Replace(valid, `"amount":9`, `"amount":"9"`, 1), 400, "bid.amount"},
		{"invalid budget", testToken, "/v1/campaigns/c-1", strings.Replace(valid, `"daily":100.0,"total":5000.0`, `"daily":0,"total":0`, 1), 400, "budget.daily"},
		{"unknown field", testToken, "/v1/campaigns/c-1", strings.Replace(valid, `"pacing"`, `"pacingg"`, 1), 400, "pacingg"},
		{"id mismatch", testToken, "/v1/campaigns/c-2", valid, 400, "id"},
		{"unknown advertiser", testToken, "/v1/campaigns/c-1", strings.Replace(valid, `"adv-1"`, `"adv-404"`, 1), 400, "advertiser_id"},
		{"oversize body", testToken, "/v1/campaigns/c-1", valid[:len(valid)-1] + `,"x":"` + strings.Repeat("a", 70<<10) + `"}`, 413, ""},
		{"empty body", testToken, "/v1/campaigns/c-1", ``, 400, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, "PUT", admin(n)+tc.path, tc.token, tc.body)
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			var e struct {
				Error struct{ Code, Message, Field string }
			}
			if err := json.Unmarshal([]byte(r.body), &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("not a JSON error: %s", r.body)
			}
			if e.Error.Field != tc.field {
				t.Errorf("field %q, want %q (%s)", e.Error.Field, tc.field, r.body)
			}
		})
	}
	// Nothing changed.
	if r := call(t, "GET", admin(n)+"/v1/campaigns/c-1", "", ""); !strings.Contains(r.body, `"amount":2,`) && !strings.Contains(r.body, `"amount":2}`) {
		t.Fatalf("a rejected write changed the campaign: %s", r.body)
	}
	if r := call(t, "GET", admin(n)+"/v1/campaigns/c-2", "", ""); r.status != 404 {
		t.Fatalf("a rejected write created c-2: %d", r.status)
	}
	if r := call(t, "DELETE", admin(n)+"/v1/campaigns/c-1", "", ""); r.status != 401 {
		t.Fatalf("DELETE without token: %d", r.status)
	}
}
