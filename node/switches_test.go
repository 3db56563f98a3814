package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/bus"
	"github.com/segmentio/kafka-go"
)

// switchApplyBudget is the product requirement: every node applies a
// switch within one second.
const switchApplyBudget = time.Second

const swAdRequest = `{"id":"r-sw","placement_id":"p-1","geo":{"country":"KR"},"slots":[{"id":"s1","w":300,"h":250}]}`

// swAd asks n for an ad and returns the status and the winning campaign.
func swAd(t *testing.T, n *Node) (int, string) {
	t.Helper()
	r := call(t, "POST", serving(n)+"/v1/ad", "", swAdRequest)
	if r.status != http.StatusOK {
		return r.status, ""
	}
	var out struct {
		Ads []struct {
			CampaignID string `json:"campaign_id"`
		} `json:"ads"`
	}
	if err := json.Unmarshal([]byte(r.body), &out); err != nil || len(out.Ads) == 0 {
		t.Fatalf("200 without ads: %s", r.body)
	}
	return r.status, out.Ads[0].CampaignID
}

// swState returns n's GET /v1/switches answer.
func swState(t *testing.T, n *Node) string {
	t.Helper()
	r := call(t, "GET", admin(n)+"/v1/switches", "", "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /v1/switches: %d %s", r.status, r.body)
	}
	return r.body
}

// swPut PUTs a switch patch on n and fails unless it is accepted.
func swPut(t *testing.T, n *Node, body string) {
	t.Helper()
	if r := call(t, "PUT", admin(n)+"/v1/switches", testToken, body); r.status != http.StatusOK {
		t.Fatalf("PUT /v1/switches %s: %d %s", body, r.status, r.body)
	}
}

// swAppliedWithin polls cond (which returns "" once the change shows) and
// checks that it showed within the budget counted from since.
func swAppliedWithin(t *testing.T, what string, since time.Time, cond func() string) {
	t.Helper()
	eventually(t, 5*time.Second, cond)
	took := time.Since(since)
	t.Logf("%s: applied on the other node after %v", what, took.Round(time.Millisecond))
	if took > switchApplyBudget {
		t.Errorf("%s: applied after %v, the product requires %v", what, took, switchApplyBudget)
	}
}

func swControlHigh(t *testing.T, n *Node) []int64 {
	t.Helper()
	_, high, err := n.Kafka.Offsets(context.Background(), bus.TopicControl)
	if err != nil {
		t.Fatal(err)
	}
	return high
}

func TestSwitchesApplyOnEveryNode(t *testing.T) {
	a := startNode(t, t.TempDir(), "")
	defer stopNode(t, a)
	call(t, "PUT", admin(a)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	for _, c := range []struct{ id, bid string }{{"c-1", "3"}, {"c-2", "1"}} {
		body := strings.Replace(campaignJSON(c.id, c.bid), `"pacing":"even"`, `"pacing":"asap"`, 1)
		if r := call(t, "PUT", admin(a)+"/v1/campaigns/"+c.id, testToken, body); r.status != 200 {
			t.Fatalf("PUT campaign %s: %d %s", c.id, r.status, r.body)
		}
	}
	const defaults = `{"serving":true,"charging":true,"paused_advertisers":[],"paused_campaigns":[],"decision_log_sample":0.01}`
	if got := swState(t, a); got != defaults {
		t.Fatalf("initial state %s, want %s", got, defaults)
	}

	// Serving off before B starts: B's bootstrap covers the control topic,
	// so B never serves while serving is switched off.
	swPut(t, a, `{"serving":false}`)
	b := startNode(t, t.TempDir(), a.Brokers)
	defer stopNode(t, b)
	if got := swState(t, b); !strings.Contains(got, `"serving":false`) {
		t.Fatalf("B ready without the serving switch: %s", got)
	}
	if st, _ := swAd(t, b); st != http.StatusNoContent {
		t.Fatalf("B ready with serving off answers /v1/ad %d, want 204", st)
	}

	swPut(t, a, `{"serving":true}`)
	swAppliedWithin(t, "serving on", time.Now(), func() string {
		if st, c := swAd(t, b); st != 200 || c != "c-1" {
			return fmt.Sprintf("B /v1/ad: %d %q, want 200 c-1", st, c)
		}
		return ""
	})

	swPut(t, a, `{"serving":false}`)
	swAppliedWithin(t, "serving off", time.Now(), func() string {
		if st, _ := swAd(t, b); st != http.StatusNoContent {
			return fmt.Sprintf("B /v1/ad: %d, want 204", st)
		}
		if got := swState(t, b); !strings.Contains(got, `"serving":false`) {
			return "B state " + got
		}
		return ""
	})

	swPut(t, a, `{"serving":true,"paused_campaigns":["c-1"]}`)
	swAppliedWithin(t, "pause campaign", time.Now(), func() string {
		if st, c := swAd(t, b); st != 200 || c != "c-2" {
			return fmt.Sprintf("B /v1/ad: %d %q, want 200 c-2", st, c)
		}
		if got := swState(t, b); !strings.Contains(got, `"paused_campaigns":["c-1"]`) {
			return "B state " + got
		}
		return ""
	})

	swPut(t, a, `{"pause_advertisers":["adv-1"]}`)
	swAppliedWithin(t, "pause advertiser", time.Now(), func() string {
		if st, _ := swAd(t, b); st != http.StatusNoContent {
			return fmt.Sprintf("B /v1/ad: %d, want 204", st)
		}
		return ""
	})

	// Records from a plain Kafka client: malformed ones are skipped and
	// counted, later ones still apply.
	malformed := metrics.GetOrCreateCounter(`adserver_feed_malformed_records_total{topic="adserver.control"}`)
	before := malformed.Get()
	w := &kafka.Writer{Addr: kafka.TCP(a.Brokers), Topic: bus.TopicControl, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(context.Background(),
		kafka.Message{Key: []byte("serving"), Value: []byte(`"off"`)},                                          // wrong type
		kafka.Message{Key: []byte("decision_log_sample"), Value: []byte(`2`)},                                  // out of range
		kafka.Message{Key: []byte("bogus"), Value: []byte(`true`)},                                             // unknown key
		kafka.Message{Key: []byte("paused_advertisers/adv-1"), Value: []byte(`false`)},                         // unpause
		kafka.Message{Key: []byte("paused_campaigns/c-1"), Value: []byte(`false`)},                             // unpause
		kafka.Message{Key: []byte("ops-note"), Value: []byte(`{"charging":false,"decision_log_sample":0.25}`)}, // object form
	); err != nil {
		t.Fatal(err)
	}
	want := `{"serving":true,"charging":false,"paused_advertisers":[],"paused_campaigns":[],"decision_log_sample":0.25}`
	swAppliedWithin(t, "records from a plain Kafka writer", time.Now(), func() string {
		if got := swState(t, b); got != want {
			return "B state " + got
		}
		if st, c := swAd(t, b); st != 200 || c != "c-1" {
			return fmt.Sprintf("B /v1/ad: %d %q, want 200 c-1", st, c)
		}
		return ""
	})
	eventually(t, 5*time.Second, func() string {
		if got := swState(t, a); got != want {
			return "A state " + got
		}
		return ""
	})
	// Both nodes run in this process and share the counter.
	if got := malformed.Get() - before; got != 6 {
		t.Errorf("malformed control records counted %d times, want 3 per node (6)", got)
	}

	// Bad writes answer 4xx and change nothing, not even in Kafka.
	high := swControlHigh(t, a)
	for _, tc := range []struct {
		name, method, token, body string
		status                    int
		field                     string
	}{
		{"no token", "PUT", "", `{"serving":false}`, 401, ""},
		{"wrong token", "PUT", "wrong-token-0123456789", `{"serving":false}`, 401, ""},
		{"unknown field", "PUT", testToken, `{"serving":false,"servin":true}`, 400, "servin"},
		{"wrong type", "PUT", testToken, `{"serving":"false"}`, 400, "serving"},
		{"sample above 1", "PUT", testToken, `{"decision_log_sample":1.5}`, 400, "decision_log_sample"},
		{"sample below 0", "PUT", testToken, `{"decision_log_sample":-0.5}`, 400, "decision_log_sample"},
		{"id list of numbers", "PUT", testToken, `{"paused_campaigns":[1]}`, 400, "paused_campaigns[0]"},
		{"malformed JSON", "PUT", testToken, `{"serving":false`, 400, ""},
		{"empty body", "PUT", testToken, ``, 400, ""},
		{"method", "DELETE", testToken, ``, 405, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, tc.method, admin(a)+"/v1/switches", tc.token, tc.body)
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
	if got := swState(t, a); got != want {
		t.Fatalf("a rejected write changed the switches: %s", got)
	}
	if got := swControlHigh(t, a); fmt.Sprint(got) != fmt.Sprint(high) {
		t.Fatalf("a rejected write reached Kafka: high-water marks %v, then %v", high, got)
	}
}
