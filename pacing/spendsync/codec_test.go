package spendsync

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/pacing"
)

func TestCodecRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 24, 10, 0, 1, 500_000_000, time.UTC)
	for _, d := range []pacing.Delta{
		{Node: "n1", Campaign: "c-1", Day: 20261124, DaySpend: 1_200_000, Delta: 2000, Total: 5_400_000, Reserved: 3000, Seq: 42, Time: ts},
		{Node: "n-2", Seq: 7, Time: ts, DayCeiling: -1, TotalCeiling: -1}, // heartbeat
		{Node: "n\"3", Campaign: "c\\x", Day: 20261231, Seq: 1, Time: ts},
		{Node: "n4", Campaign: "c-4", Day: 20261124, DaySpend: 10, Total: 20, DayCeiling: 1_250_000, TotalCeiling: 7_000_000, Seq: 5, Time: ts},
		{Node: "n5", Campaign: "c-5", Day: 20261124, DaySpend: 10, Total: 20, DayCeiling: -1, TotalCeiling: -1, Seq: 6, Time: ts}, // no ceilings: left out
	} {
		v := AppendValue(nil, &d)
		var got pacing.Delta
		if err := Decode(v, &got); err != nil {
			t.Fatalf("Decode(%s): %v", v, err)
		}
		if got != d {
			t.Fatalf("round trip of %s:\n got %+v\nwant %+v", v, got, d)
		}
	}
	if k := string(AppendKey(nil, &pacing.Delta{Node: "n1", Campaign: "c-1"})); k != "c-1/n1" {
		t.Fatalf("key %q", k)
	}
}

func TestDecodeRejects(t *testing.T) {
	const ok = `"node":"n1","campaign":"c-1","day":"2026-11-24","day_spend_micros":5,"total_spend_micros":9,"seq":3,"ts":"2026-11-24T10:00:00Z"`
	var d pacing.Delta
	if err := Decode([]byte(`{"v":1,`+ok+`}`), &d); err != nil {
		t.Fatalf("valid record rejected: %v", err)
	}
	for name, v := range map[string]string{
		"not json":        `hello`,
		"empty":           ``,
		"array":           `[1,2]`,
		"no version":      `{` + ok + `}`,
		"version 2":       `{"v":2,` + ok + `}`,
		"trailing":        `{"v":1,` + ok + `} {}`,
		"no node":         `{"v":1,"seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		"node with slash": `{"v":1,"node":"a/b","seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		"no seq":          `{"v":1,"node":"n1","ts":"2026-11-24T10:00:00Z"}`,
		"bad ts":          `{"v":1,"node":"n1","seq":1,"ts":"yesterday"}`,
		"bad day":         `{"v":1,` + strings.Replace(ok, "2026-11-24\"", "2026-13-24\"", 1) + `}`,
		"negative spend":  `{"v":1,` + strings.Replace(ok, `"day_spend_micros":5`, `"day_spend_micros":-5`, 1) + `}`,
		"no total":        `{"v":1,` + strings.Replace(ok, `,"total_spend_micros":9`, ``, 1) + `}`,
		"total < day":     `{"v":1,` + strings.Replace(ok, `"total_spend_micros":9`, `"total_spend_micros":4`, 1) + `}`,
		"float money":     `{"v":1,` + strings.Replace(ok, `"day_spend_micros":5`, `"day_spend_micros":5.5`, 1) + `}`,
		"neg reserved":    `{"v":1,"reserved_micros":-1,` + ok + `}`,
		"neg day ceiling": `{"v":1,"day_ceiling_micros":-1,` + ok + `}`,
		"float ceiling":   `{"v":1,"total_ceiling_micros":1.5,` + ok + `}`,
		"heartbeat ceil":  `{"v":1,"node":"n1","day_ceiling_micros":5,"seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		"heartbeat spend": `{"v":1,"node":"n1","day_spend_micros":5,"seq":1,"ts":"2026-11-24T10:00:00Z"}`,
	} {
		if err := Decode([]byte(v), &d); err == nil {
			t.Errorf("%s: %s accepted", name, v)
		}
	}
}

// The fast path and encoding/json agree on every input: same verdict, same
// record.
func TestDecodeFastPathAgrees(t *testing.T) {
	base := `{"v":1,"node":"n1","campaign":"c-1","day":"2026-11-24","day_spend_micros":5,"delta_micros":1,"total_spend_micros":9,"reserved_micros":2,"seq":3,"ts":"2026-11-24T10:00:00Z"}`
	withCeilings := `{"v":1,"node":"n1","campaign":"c-1","day":"2026-11-24","day_spend_micros":5,"delta_micros":1,"total_spend_micros":9,"reserved_micros":2,"day_ceiling_micros":7,"total_ceiling_micros":11,"seq":3,"ts":"2026-11-24T10:00:00Z"}`
	inputs := []string{base, withCeilings, " " + base + "\n", `{}`, `{"v":1}`, `{"v":01,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		`{"v":1,"node":"n1","seq":-1,"ts":"2026-11-24T10:00:00Z"}`, `{"v":1,"node":"n\u0031","seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		`{"V":1,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z"}`, `{"v":1,"v":1,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		`{"v":1,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z","extra":{"a":[1]}}`, `{"v":1,"node":null,"seq":1,"ts":"x"}`,
		`{"v":1,"node":"n1","seq":1e3,"ts":"2026-11-24T10:00:00Z"}`, `{"v":1,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z"}x`,
		`{"v":1,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z",}`, `{"v":1 "node":"n1"}`, `{"v":-0,"node":"n1","seq":1,"ts":"2026-11-24T10:00:00Z"}`,
		`{"v":1,"node":"n1","seq":18446744073709551616,"ts":"2026-11-24T10:00:00Z"}`, `{"v":true}`, `{`, `{"v"`, `{"v":`, `"v"`,
	}
	for _, in := range inputs {
		var fast record
		fastOK := decodeFlat([]byte(in), &fast)
		var w wireRecord
		dec := json.NewDecoder(strings.NewReader(in))
		slowErr := dec.Decode(&w)
		if slowErr == nil && dec.More() {
			slowErr = errMalformed
		}
		var slow record
		slow.fromWire(&w)
		if fastOK && slowErr != nil {
			t.Errorf("%s: fast path accepts what encoding/json rejects (%v)", in, slowErr)
		}
		if fastOK && !reflect.DeepEqual(fast, slow) {
			t.Errorf("%s: fast %+v, encoding/json %+v", in, fast, slow)
		}
	}
	var w record
	if !decodeFlat([]byte(base), &w) {
		t.Error("the canonical record missed the fast path")
	}
	w = record{}
	if !decodeFlat([]byte(withCeilings), &w) {
		t.Error("the record with ceilings missed the fast path")
	}
	d := pacing.Delta{Node: "n1", Campaign: "c-1", Day: 20261124, DaySpend: 5, Total: 9, DayCeiling: 7, TotalCeiling: 9, Seq: 3, Time: time.Now()}
	w = record{}
	if !decodeFlat(AppendValue(nil, &d), &w) {
		t.Error("AppendValue's output missed the fast path")
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{}, "Brokers"},
		{Config{Brokers: []string{"localhost"}}, "host:port"},
		{Config{Brokers: []string{"a:1"}, FlushInterval: 2 * time.Second}, "FlushInterval"},
		{Config{Brokers: []string{"a:1"}, RebuildFrom: -time.Second}, "RebuildFrom"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: error %v, want one about %s", tc.cfg, err, tc.want)
		}
	}
	if err := (&Config{Brokers: []string{"a:1"}, FlushInterval: -1}).Validate(); err != nil {
		t.Errorf("manual flush rejected: %v", err)
	}
}
