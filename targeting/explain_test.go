package targeting

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

func TestExplain(t *testing.T) {
	paused := mk(t, "paused", "", "country in us")
	paused.Status = campaign.StatusPaused
	cs := []*campaign.Campaign{
		mk(t, "geo", "", "country in KR,US & os !in ios | segment in sports"),
		mk(t, "seoul-9", "Asia/Seoul", "hour in 9 & weekday in mon"),
		mk(t, "ron", "", ""),
		paused,
	}
	ix := Build(cs)
	at := time.Date(2026, 6, 1, 18, 0, 0, 0, time.UTC) // Tue 03:00 in Seoul
	a := attrs("country=jp os=ios")
	tests := []struct {
		id      string
		a       *Attrs
		at      time.Time
		match   bool
		reasons []string
		failed  []string // per conjunction, "" where it holds
	}{
		{"geo", a, at, false, []string{"no conjunction matches"},
			[]string{"country in [kr us]: request has [jp]", "segment in [sports]: request has none"}},
		{"geo", attrs("country=us os=ios"), at, false, []string{"no conjunction matches"},
			[]string{"os not_in [ios]: request has [ios]", "segment in [sports]: request has none"}},
		{"geo", attrs("country=us os=android"), at, true, nil,
			[]string{"", "segment in [sports]: request has none"}},
		{"seoul-9", a, at, false, []string{"no conjunction matches"},
			[]string{"hour in [9] (Asia/Seoul): request hour 3"}},
		{"seoul-9", a, time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC), true, nil, []string{""}},
		{"seoul-9", a, time.Date(2026, 6, 2, 0, 30, 0, 0, time.UTC), false, []string{"no conjunction matches"},
			[]string{"weekday in [mon] (Asia/Seoul): request weekday tue"}},
		{"ron", a, at, true, nil, nil},
		{"ron", a, flightStart.Add(-time.Hour), false,
			[]string{"outside flight: starts 2026-01-01T00:00:00Z, now 2025-12-31T23:00:00Z"}, nil},
		{"paused", attrs("country=us"), at, false, []string{"status paused"}, []string{""}},
		{"nope", a, at, false, []string{"unknown campaign"}, nil},
	}
	for _, tt := range tests {
		e := ix.Explain(tt.a, tt.at, tt.id)
		if e.Match != tt.match || !slices.Equal(e.Reasons, tt.reasons) {
			t.Errorf("%s: match %v reasons %q, want %v %q", tt.id, e.Match, e.Reasons, tt.match, tt.reasons)
		}
		if e.IndexMatch != e.Match {
			t.Errorf("%s: index says %v, evaluation %v", tt.id, e.IndexMatch, e.Match)
		}
		var failed []string
		for i, c := range e.Conjunctions {
			if c.Index != i || c.Match != (c.Failed == "") {
				t.Errorf("%s: inconsistent conjunction %+v", tt.id, c)
			}
			failed = append(failed, c.Failed)
		}
		if !slices.Equal(failed, tt.failed) {
			t.Errorf("%s: failed %q, want %q", tt.id, failed, tt.failed)
		}
	}
	e := ix.Explain(a, at, "geo")
	if s := e.String(); !strings.Contains(s, "geo: no match") || !strings.Contains(s, "any[0] fails at country in [kr us]: request has [jp]") {
		t.Errorf("String: %s", s)
	}
	if b, err := json.Marshal(e); err != nil || !strings.Contains(string(b), `"failed":"country in [kr us]: request has [jp]"`) {
		t.Errorf("JSON: %s %v", b, err)
	}
}

// TestExplainAgreesWithQuery checks Explain's verdict against the index
// on random catalogs.
func TestExplainAgreesWithQuery(t *testing.T) {
	r := newRand(5)
	a := new(Attrs)
	for trial := range 200 {
		var cs []*campaign.Campaign
		for i := range 20 {
			cs = append(cs, randCampaign(t, r, "c"+string(rune('a'+i))))
		}
		ix := Build(cs)
		randAttrs(r, a)
		now := randTime(r)
		got := ids(ix.Query(a, now, nil))
		for _, c := range cs {
			e := ix.Explain(a, now, c.ID)
			if e.Match != slices.Contains(got, c.ID) || e.IndexMatch != e.Match {
				t.Fatalf("trial %d %s: explain %+v, query %v", trial, c.ID, e, got)
			}
			if !e.Match && len(e.Reasons) == 0 {
				t.Fatalf("trial %d %s: no reason given", trial, c.ID)
			}
		}
	}
}

func TestList(t *testing.T) {
	long := make([]string, 12)
	for i := range long {
		long[i] = "v"
	}
	if got := list(long); got != "[v v v v v v v v v v … 2 more]" {
		t.Errorf("list: %s", got)
	}
}
