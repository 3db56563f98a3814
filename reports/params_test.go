package reports

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

func params(query string) []param {
	v, err := url.ParseQuery(query)
	if err != nil {
		panic(err)
	}
	var ps []param
	for k, vs := range v {
		for _, x := range vs {
			ps = append(ps, param{k, x})
		}
	}
	slices.SortStableFunc(ps, func(a, b param) int { return strings.Compare(a.key, b.key) })
	return ps
}

func TestParseQuery(t *testing.T) {
	now := time.Date(2026, 11, 24, 20, 0, 0, 0, time.UTC) // already Nov 25 in Seoul
	ny, _ := time.LoadLocation("America/New_York")
	seoul, _ := time.LoadLocation("Asia/Seoul")
	adv := principal{advertiserID: "adv-1", timezone: "Asia/Seoul"}
	admin := principal{admin: true}
	cases := []struct {
		name     string
		p        principal
		query    string
		from, to time.Time
		loc      *time.Location
		groupBy  []Dim
		scope    string
	}{
		{"a date to includes its day", admin, "from=2026-11-01&to=2026-11-24&group_by=day,campaign",
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.UTC,
			[]Dim{DimDay, DimCampaign}, ""},
		{"defaults: the advertiser's zone, the 7 days ending today there", adv, "",
			time.Date(2026, 11, 19, 0, 0, 0, 0, seoul), time.Date(2026, 11, 26, 0, 0, 0, 0, seoul), seoul, nil, "adv-1"},
		{"admin defaults to UTC", admin, "group_by=",
			time.Date(2026, 11, 18, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), time.UTC, nil, ""},
		{"tz overrides, dates across DST", adv, "tz=America/New_York&from=2026-10-31&to=2026-11-01&group_by=hour",
			time.Date(2026, 10, 31, 4, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC), ny, []Dim{DimHour}, "adv-1"},
		{"timestamps: RFC 3339 and local", admin, "tz=Asia/Seoul&from=2026-11-01T10:00:00Z&to=2026-11-02T09:30",
			time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 30, 0, 0, time.UTC), seoul, nil, ""},
		{"only to, a timestamp: 7 days before it", admin, "to=2026-11-20T12:00:00Z",
			time.Date(2026, 11, 13, 12, 0, 0, 0, time.UTC), time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC), time.UTC, nil, ""},
		{"group_by repeated and spaced", admin, "from=2026-11-01&to=2026-11-01&group_by=country&group_by=+creative+,placement",
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), time.UTC,
			[]Dim{DimCountry, DimCreative, DimPlacement}, ""},
		{"400 days across a DST change is 400 days", adv, "tz=America/New_York&from=2026-01-01&to=2027-02-04",
			time.Date(2026, 1, 1, 0, 0, 0, 0, ny), time.Date(2027, 2, 5, 0, 0, 0, 0, ny), ny, nil, "adv-1"},
		{"an advertiser with a bad zone falls back to UTC", principal{advertiserID: "x", timezone: "Nowhere/Land"}, "from=2026-11-01&to=2026-11-01",
			time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), time.UTC, nil, "x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, err := parseQuery(params(c.query), c.p, now, DefaultMaxRange)
			if err != nil {
				t.Fatal(err)
			}
			if !q.From.Equal(c.from) || !q.To.Equal(c.to) || q.Loc.String() != c.loc.String() || !slices.Equal(q.GroupBy, c.groupBy) || q.Scope != c.scope {
				t.Fatalf("got [%v, %v) %v %v scope %q\nwant [%v, %v) %v %v scope %q", q.From, q.To, q.Loc, q.GroupBy, q.Scope,
					c.from, c.to, c.loc, c.groupBy, c.scope)
			}
		})
	}
	// 401 days is too long.
	if _, err := parseQuery(params("tz=America/New_York&from=2026-01-01&to=2027-02-05"), adv, now, DefaultMaxRange); err == nil || err.code != "range_too_long" {
		t.Fatalf("401 days: %v", err)
	}
	// An advertiser's advertiser_id filter is kept, but the scope stays.
	q, err := parseQuery(params("advertiser_id=adv-2&campaign_id=c-1&campaign_id=c,2"), adv, now, DefaultMaxRange)
	if err != nil || q.Scope != "adv-1" || !slices.Equal(q.Advertisers, []string{"adv-2"}) || !slices.Equal(q.Campaigns, []string{"c-1", "c,2"}) {
		t.Fatalf("filters: %+v %v", q, err)
	}
}

func TestZoneSegments(t *testing.T) {
	ny, _ := time.LoadLocation("America/New_York")
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, ny)
	to := time.Date(2027, 1, 1, 0, 0, 0, 0, ny)
	segs := zoneSegments(ny, from, to)
	want := []zoneSegment{
		{from.Unix(), -5 * 3600},
		{time.Date(2026, 3, 8, 7, 0, 0, 0, time.UTC).Unix(), -4 * 3600},
		{time.Date(2026, 11, 1, 6, 0, 0, 0, time.UTC).Unix(), -5 * 3600},
	}
	if !slices.Equal(segs, want) {
		t.Fatalf("New York 2026: %v, want %v", segs, want)
	}
	if segs := zoneSegments(time.UTC, from, to); len(segs) != 1 || segs[0].offset != 0 {
		t.Fatalf("UTC: %v", segs)
	}
}

func TestChooseTable(t *testing.T) {
	kolkata, _ := time.LoadLocation("Asia/Kolkata")
	seoul, _ := time.LoadLocation("Asia/Seoul")
	day := func(loc *time.Location, d int) time.Time { return time.Date(2026, 11, d, 0, 0, 0, 0, loc) }
	for _, c := range []struct {
		q    Query
		want string
	}{
		{Query{From: day(seoul, 1), To: day(seoul, 2), Loc: seoul, GroupBy: []Dim{DimDay, DimCampaign}}, tableCampaignHourly},
		{Query{From: day(seoul, 1), To: day(seoul, 2), Loc: seoul, GroupBy: []Dim{DimHour, DimCountry}}, tableCampaignCountryHourly},
		{Query{From: day(seoul, 1), To: day(seoul, 2), Loc: seoul}, tableCampaignHourly},
		{Query{From: day(kolkata, 1), To: day(kolkata, 2), Loc: kolkata, GroupBy: []Dim{DimCampaign}}, tableEvents},
		{Query{From: day(time.UTC, 1), To: day(time.UTC, 2), Loc: kolkata, GroupBy: []Dim{DimCampaign}}, tableCampaignHourly},
		{Query{From: day(time.UTC, 1), To: day(time.UTC, 2), Loc: kolkata, GroupBy: []Dim{DimDay}}, tableEvents},
		{Query{From: day(time.UTC, 1).Add(time.Minute), To: day(time.UTC, 2), Loc: time.UTC}, tableEvents},
	} {
		p := buildPlan("db", &c.q, 10, limitSettings{1, 11}, &rollupState{ready: true})
		if p.table != c.want {
			t.Errorf("%v %v %v: %s, want %s", c.q.From, c.q.Loc, c.q.GroupBy, p.table, c.want)
		}
		// Nothing from the request is in the text: only placeholders.
		if strings.Count(p.sql, "?") != len(p.args) {
			t.Errorf("%d placeholders, %d args:\n%s", strings.Count(p.sql, "?"), len(p.args), p.sql)
		}
	}
}

func TestBuildPlanBindsValues(t *testing.T) {
	hostile := "c'); DROP TABLE events; --"
	q := &Query{From: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC), Loc: time.UTC,
		GroupBy: []Dim{DimDay, DimCreative}, Scope: hostile, Advertisers: []string{hostile}, Campaigns: []string{hostile, "x"}}
	p := buildPlan("adserver", q, 101, limitSettings{5, 101}, nil)
	if strings.Contains(p.sql, "DROP") || strings.Count(p.sql, "?") != len(p.args) {
		t.Fatalf("values in the SQL text or placeholders off:\n%s\n%v", p.sql, p.args)
	}
	n := 0
	for _, a := range p.args {
		if a == hostile {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("hostile value bound %d times, want 3: %v", n, p.args)
	}
}
