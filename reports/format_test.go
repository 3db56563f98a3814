package reports

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
)

func TestPerUnit(t *testing.T) {
	for _, c := range []struct {
		v    int64
		mul  uint64
		n    uint64
		want int64
	}{
		{2_400_000, 1000, 1200, 2_000_000}, // the DESIGN example: eCPM 2.0
		{2_400_000, 1, 30, 80_000},         // eCPC 0.08
		{1, 1, 2, 1},                       // half rounds up
		{1, 1, 3, 0},
		{2, 1, 3, 1},
		{-1, 1, 2, -1}, // and away from zero below it
		{5, 1, 0, 0},   // no denominator
		{math.MaxInt64, 1000, 1000, math.MaxInt64}, // no overflow in between
		{math.MaxInt64, 1000, 1, 0},                // result beyond int64
	} {
		if got := perUnit(c.v, c.mul, c.n); got != c.want {
			t.Errorf("perUnit(%d, %d, %d) = %d, want %d", c.v, c.mul, c.n, got, c.want)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	for _, s := range []string{"", "c-1", `quote " backslash \ slash /`, "<script>&amp;", "\x00\x01\n\r\t\x1f\x7f",
		"héllo 한국", "\u2028\u2029", "bad \xff utf8 \xc3", strings.Repeat("x", 300)} {
		got := appendJSONString(nil, s)
		want, _ := json.Marshal(s)
		if string(got) != string(want) {
			t.Errorf("%q: got %s, want %s", s, got, want)
		}
	}
}

func TestAppendJSONMatchesContract(t *testing.T) {
	q := &Query{GroupBy: []Dim{DimDay, DimCampaign}}
	rep := &Report{Rows: []Row{{Keys: []string{"2026-11-24", "c-1"}, Metrics: Metrics{Impressions: 1200, Clicks: 30, Conversions: 2, SpendMicros: 2_400_000}}}}
	rep.Totals = rep.Rows[0].Metrics
	got := string(appendJSON(nil, q, rep))
	row := `{"day":"2026-11-24","campaign_id":"c-1","impressions":1200,"clicks":30,"conversions":2,"spend":2.4,"ctr":0.025,` +
		`"ecpm":2,"ecpc":0.08,"conversion_rate":0.06666666666666667,"cpa":1.2}`
	want := `{"rows":[` + row + `],"totals":{` + strings.TrimPrefix(row, `{"day":"2026-11-24","campaign_id":"c-1",`) + "}\n"
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	if !json.Valid([]byte(got)) {
		t.Fatal("invalid JSON")
	}
	empty := string(appendJSON(nil, q, &Report{}))
	if empty != `{"rows":[],"totals":{"impressions":0,"clicks":0,"conversions":0,"spend":0,"ctr":0,"ecpm":0,"ecpc":0,"conversion_rate":0,"cpa":0}}`+"\n" {
		t.Fatalf("empty report: %s", empty)
	}
}

func TestWriteCSV(t *testing.T) {
	q := &Query{GroupBy: []Dim{DimCampaign, DimPlacement}}
	rep := &Report{Rows: []Row{
		{Keys: []string{"c-1", "=HYPERLINK(\"http://x\")"}, Metrics: Metrics{Impressions: 3, Clicks: 1, SpendMicros: 1_000_001}},
		{Keys: []string{"c,2", "-p"}, Metrics: Metrics{Impressions: 1}},
	}}
	var b strings.Builder
	if err := writeCSV(&b, q, rep); err != nil {
		t.Fatal(err)
	}
	want := "campaign_id,placement_id,impressions,clicks,conversions,spend,ctr,ecpm,ecpc,conversion_rate,cpa\n" +
		"c-1,\"'=HYPERLINK(\"\"http://x\"\")\",3,1,0,1.000001,0.3333333333333333,333.333667,1.000001,0,0\n" +
		"\"c,2\",'-p,1,0,0,0,0,0,0,0,0\n"
	if b.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", b.String(), want)
	}
}
