package campaign

import (
	"errors"
	"strings"
	"testing"
	"time"
)

const validCampaign = `{"id":"c-1","advertiser_id":"adv-1","status":"active",
 "start":"2026-11-01T00:00:00Z","end":"2026-12-31T00:00:00Z","timezone":"Asia/Seoul",
 "budget":{"daily":100.0,"total":5000.0},"pacing":"even",
 "bid":{"model":"cpm","amount":2.5},
 "frequency_cap":{"count":3,"window":"24h"},
 "priority":5,
 "targeting":{"any":[{"all":[{"attr":"country","in":["KR","US"]},{"attr":"os","not_in":["ios"]}]}]},
 "creatives":[{"id":"cr-1","format":"banner","w":300,"h":250,"html":"<a href='{{CLICK_URL}}'>...</a>",
   "landing_url":"https://example.com/","adomain":["example.com"]}]}`

func TestDecodeCampaignValid(t *testing.T) {
	c, err := DecodeCampaign([]byte(validCampaign))
	if err != nil {
		t.Fatal(err)
	}
	if c.Budget.Daily != 100*MicrosPerUnit || c.Budget.Total != 5000*MicrosPerUnit || c.Bid.Amount != 2_500_000 {
		t.Errorf("money not in micros: %+v %+v", c.Budget, c.Bid)
	}
	if c.Location().String() != "Asia/Seoul" {
		t.Errorf("location = %v", c.Location())
	}
	if got := c.Targeting.Any[0].All[0].In; got[0] != "kr" || got[1] != "us" {
		t.Errorf("values not normalized: %v", got)
	}
	if time.Duration(c.FrequencyCap.Window) != 24*time.Hour {
		t.Errorf("window = %v", c.FrequencyCap.Window)
	}
	if !c.Live(time.Date(2026, 11, 24, 0, 0, 0, 0, time.UTC)) || c.Live(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Error("Live is wrong about the flight")
	}
}

// TestValidationRules checks that each rule reports its field path and code.
func TestValidationRules(t *testing.T) {
	for _, tc := range []struct {
		name, from, to, field, code string
	}{
		{"budget zero", `"budget":{"daily":100.0,"total":5000.0}`, `"budget":{"daily":0}`, "budget.daily", "invalid_budget"},
		{"budget negative", `"budget":{"daily":100.0,"total":5000.0}`, `"budget":{"daily":-5}`, "budget.daily", "invalid_budget"},
		{"daily above total", `"budget":{"daily":100.0,"total":5000.0}`, `"budget":{"daily":100,"total":50}`, "budget.daily", "invalid_budget"},
		{"end before start", `"end":"2026-12-31T00:00:00Z"`, `"end":"2026-10-01T00:00:00Z"`, "end", "end_before_start"},
		{"unknown attribute", `"attr":"country"`, `"attr":"planet"`, "targeting.any[0].all[0].attr", "unknown_attribute"},
		{"in and not_in", `{"attr":"os","not_in":["ios"]}`, `{"attr":"os","in":["android"],"not_in":["ios"]}`, "targeting.any[0].all[1]", "invalid_value"},
		{"empty predicate", `{"attr":"os","not_in":["ios"]}`, `{"attr":"os"}`, "targeting.any[0].all[1]", "required"},
		{"bad hour", `{"attr":"os","not_in":["ios"]}`, `{"attr":"hour","in":[25]}`, "targeting.any[0].all[1].in[0]", "invalid_value"},
		{"bad size", `{"attr":"os","not_in":["ios"]}`, `{"attr":"size","in":["big"]}`, "targeting.any[0].all[1].in[0]", "invalid_value"},
		{"creative without size", `"w":300,"h":250`, `"w":0,"h":0`, "creatives[0].w", "invalid_size"},
		{"banner without html", `"html":"<a href='{{CLICK_URL}}'>...</a>",`, ``, "creatives[0].html", "required"},
		{"bad landing url", `"landing_url":"https://example.com/"`, `"landing_url":"javascript:alert(1)"`, "creatives[0].landing_url", "invalid_url"},
		{"no creatives", `"creatives":[{`, `"creatives":[],"x":[{`, "", ""},
		{"unknown timezone", `"timezone":"Asia/Seoul"`, `"timezone":"Mars/Olympus"`, "timezone", "unknown_timezone"},
		{"money with 7 decimals", `"amount":2.5`, `"amount":2.5000001`, "bid.amount", "invalid_money"},
		{"money as string", `"amount":2.5`, `"amount":"2.5"`, "bid.amount", "invalid_money"},
		{"bid zero", `"amount":2.5`, `"amount":0`, "bid.amount", "invalid_bid"},
		{"bad bid model", `"model":"cpm"`, `"model":"cpa"`, "bid.model", "invalid_value"},
		{"bad pacing", `"pacing":"even"`, `"pacing":"fast"`, "pacing", "invalid_value"},
		{"bad status", `"status":"active"`, `"status":"running"`, "status", "invalid_value"},
		{"bad cap", `"count":3`, `"count":0`, "frequency_cap.count", "invalid_value"},
		{"bad window", `"window":"24h"`, `"window":"soon"`, "frequency_cap.window", "invalid_duration"},
		{"bad id", `"id":"c-1"`, `"id":"c/1"`, "id", "invalid_id"},
		{"missing advertiser", `"advertiser_id":"adv-1",`, ``, "advertiser_id", "required"},
		{"unknown field", `"priority":5`, `"priority":5,"budgett":1`, "budgett", "unknown_field"},
		{"wrong type", `"priority":5`, `"priority":"high"`, "priority", "wrong_type"},
		{"bad time", `"start":"2026-11-01T00:00:00Z"`, `"start":"yesterday"`, "", "invalid_time"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(validCampaign, tc.from, tc.to, 1)
			if body == validCampaign {
				t.Fatalf("BUG: %q not found in the valid campaign", tc.from)
			}
			_, err := DecodeCampaign([]byte(body))
			var fes Errors
			if !errors.As(err, &fes) {
				t.Fatalf("err = %v, want Errors", err)
			}
			if tc.code == "" {
				return // only that it fails
			}
			for _, fe := range fes {
				if fe.Field == tc.field && fe.Code == tc.code {
					return
				}
			}
			t.Errorf("want %s (%s) among %v", tc.field, tc.code, fes)
		})
	}
}

func TestValidateReportsEveryProblem(t *testing.T) {
	_, err := DecodeCampaign([]byte(`{"id":"c","advertiser_id":"a","status":"active","start":"2026-11-01T00:00:00Z","end":"2026-10-01T00:00:00Z","budget":{"daily":0},"bid":{"model":"cpm","amount":0},"targeting":{},"creatives":[]}`))
	var fes Errors
	if !errors.As(err, &fes) || len(fes) < 4 {
		t.Fatalf("want at least 4 problems, got %v", err)
	}
}

func TestMalformedJSON(t *testing.T) {
	for _, body := range []string{``, `{`, `[]`, `{"id":1}`, `{"id":"c"} {"id":"d"}`, `null`} {
		if _, err := DecodeCampaign([]byte(body)); err == nil {
			t.Errorf("%q accepted", body)
		}
	}
}

func TestPlacementAndAdvertiser(t *testing.T) {
	p, err := DecodePlacement([]byte(`{"id":"p-1","publisher_id":"pub-1","name":"Front page","format":"banner","sizes":[[300,250],[728,90]],"floor":0.5}`))
	if err != nil || p.Floor != 500_000 || len(p.Sizes) != 2 {
		t.Fatalf("placement: %+v, %v", p, err)
	}
	if _, err := DecodePlacement([]byte(`{"id":"p-1","publisher_id":"pub-1","floor":-1}`)); err == nil {
		t.Error("negative floor accepted")
	}
	a, err := DecodeAdvertiser([]byte(`{"id":"adv-1","name":"Acme","api_key":"0123456789abcdef-secret","timezone":"UTC"}`))
	if err != nil {
		t.Fatal(err)
	}
	if a.APIKey != "" || a.APIKeyHash != HashAPIKey("0123456789abcdef-secret") {
		t.Errorf("api key not replaced by its hash: %+v", a)
	}
	if _, err := DecodeAdvertiser([]byte(`{"id":"adv-1","api_key":"short"}`)); err == nil {
		t.Error("short api key accepted")
	}
}

func FuzzDecodeCampaign(f *testing.F) {
	f.Add([]byte(validCampaign))
	f.Add([]byte(`{"targeting":{"any":[{"all":[{"attr":"hour","in":[9,"10"]}]}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCampaign(b)
		if err == nil && (c.ID == "" || c.Bid.Amount <= 0 || len(c.Creatives) == 0) {
			t.Fatalf("invalid campaign accepted: %+v", c)
		}
	})
}
