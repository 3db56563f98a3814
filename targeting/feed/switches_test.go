package feed

import (
	"errors"
	"strings"
	"testing"

	"github.com/adserver/adserver/campaign"
)

func TestDecodeSwitchPatchRejects(t *testing.T) {
	for _, tc := range []struct{ body, field, code string }{
		{`{"servin":false}`, "servin", "unknown_field"},
		{`{"serving":"false"}`, "serving", "wrong_type"},
		{`{"serving":null}`, "serving", "wrong_type"},
		{`{"charging":1}`, "charging", "wrong_type"},
		{`{"decision_log_sample":1.5}`, "decision_log_sample", "out_of_range"},
		{`{"decision_log_sample":-0.01}`, "decision_log_sample", "out_of_range"},
		{`{"decision_log_sample":"0.1"}`, "decision_log_sample", "wrong_type"},
		{`{"paused_campaigns":"c-1"}`, "paused_campaigns", "wrong_type"},
		{`{"paused_campaigns":["c-1",2]}`, "paused_campaigns[1]", "wrong_type"},
		{`{"pause_advertisers":["a/b"]}`, "pause_advertisers[0]", "invalid_id"},
		{`{"paused_campaigns":[""]}`, "paused_campaigns[0]", "invalid_id"},
		{`{"paused_campaigns":[],"pause_campaigns":["c-1"]}`, "paused_campaigns", "conflict"},
		{`{"pause_campaigns":["c-1"],"unpause_campaigns":["c-1"]}`, "unpause_campaigns", "conflict"},
		{`{"serving":false`, "", "invalid_json"},
		{`{"serving":false} {}`, "", "invalid_json"},
		{`[]`, "", "wrong_type"},
		{`null`, "", "wrong_type"},
	} {
		_, err := DecodeSwitchPatch([]byte(tc.body))
		var fes campaign.Errors
		if !errors.As(err, &fes) || len(fes) == 0 {
			t.Errorf("%s: error %v, want campaign.Errors", tc.body, err)
			continue
		}
		if fes[0].Field != tc.field || fes[0].Code != tc.code {
			t.Errorf("%s: got %s %s (%s), want %s %s", tc.body, fes[0].Field, fes[0].Code, fes[0].Message, tc.field, tc.code)
		}
	}
}

func TestSwitchRecordsAndFold(t *testing.T) {
	p, err := DecodeSwitchPatch([]byte(`{"serving":false,"decision_log_sample":0.25,"paused_campaigns":["c-2","c-1","c-1"],"pause_advertisers":["adv-9"]}`))
	if err != nil {
		t.Fatal(err)
	}
	cur := foldSwitches(map[string]ctlEntry{"paused_campaigns/c-3": {1, &SwitchPatch{PauseCampaigns: []string{"c-3"}}}})
	var got []string
	for _, r := range p.switchRecords(cur) {
		got = append(got, r.key+"="+string(r.value))
	}
	want := "serving=false decision_log_sample=0.25 paused_campaigns/c-1=true paused_campaigns/c-2=true paused_campaigns/c-3=false paused_advertisers/adv-9=true"
	if strings.Join(got, " ") != want {
		t.Fatalf("records\n got %s\nwant %s", strings.Join(got, " "), want)
	}

	// Folding those records (as the feed decodes them) over the old state
	// gives the patched state, in whatever order the keys come.
	ctl := map[string]ctlEntry{"paused_campaigns/c-3": {1, &SwitchPatch{PauseCampaigns: []string{"c-3"}}}}
	for i, r := range p.switchRecords(cur) {
		rp, err := decodeControl(r.key, r.value)
		if err != nil {
			t.Fatalf("%s: %v", r.key, err)
		}
		ctl[r.key] = ctlEntry{uint64(10 - i), rp} // reverse order
	}
	if s := string(EncodeSwitches(foldSwitches(ctl))); s != `{"serving":false,"charging":true,"paused_advertisers":["adv-9"],"paused_campaigns":["c-1","c-2"],"decision_log_sample":0.25}` {
		t.Fatalf("state %s", s)
	}
	// A tombstone withdraws a key: serving is back to its default.
	delete(ctl, "serving")
	if sw := foldSwitches(ctl); !sw.Serving {
		t.Fatal("serving still off after its key was withdrawn")
	}
}

func TestDecodeControlRecords(t *testing.T) {
	ok := map[string]string{
		"serving":                  `false`,
		"decision_log_sample":      `0`,
		"paused_campaigns":         `["c-1"]`,
		"paused_advertisers/adv-1": `true`,
		"ops-2026-11-24":           `{"charging":false,"pause_campaigns":["c-7"]}`,
	}
	for k, v := range ok {
		if _, err := decodeControl(k, []byte(v)); err != nil {
			t.Errorf("%s=%s: %v", k, v, err)
		}
	}
	bad := map[string]string{
		"serving":                `"off"`,
		"decision_log_sample":    `2`,
		"paused_campaigns/":      `true`,
		"paused_campaigns/c-1":   `1`,
		"whatever":               `true`,
		"":                       `{"serving":false}`,
		"obj":                    `{"serving":false,"extra":1}`,
		"paused_advertisers/a b": `true`,
	}
	for k, v := range bad {
		if _, err := decodeControl(k, []byte(v)); err == nil {
			t.Errorf("%s=%s: accepted", k, v)
		}
	}
	if s := string(EncodeSwitches(nil)); s != `{"serving":true,"charging":true,"paused_advertisers":[],"paused_campaigns":[],"decision_log_sample":0.01}` {
		t.Fatalf("defaults %s", s)
	}
	// Before any control record, the gauges show the defaults, not "off".
	if switchServing.Get() != 1 || switchCharging.Get() != 1 || switchSample.Get() != DefaultDecisionLogSample {
		t.Fatalf("initial gauges: serving %v charging %v sample %v", switchServing.Get(), switchCharging.Get(), switchSample.Get())
	}
}
