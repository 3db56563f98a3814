package reports

import (
	"fmt"
	"strings"
	"time"
)

// Dim is a group-by dimension.
type Dim uint8

// Dimensions, in the spelling of the group_by parameter.
const (
	DimDay Dim = iota + 1
	DimHour
	DimCampaign
	DimCreative
	DimPlacement
	DimCountry
	dimEnd
)

// dimInfo names each dimension: its group_by spelling, its key in report
// rows, and its column in the rollups and the events table (empty for
// the time buckets, which are computed).
var dimInfo = [dimEnd]struct{ param, key, column string }{
	DimDay:       {"day", "day", ""},
	DimHour:      {"hour", "hour", ""},
	DimCampaign:  {"campaign", "campaign_id", "campaign_id"},
	DimCreative:  {"creative", "creative_id", "creative_id"},
	DimPlacement: {"placement", "placement_id", "placement_id"},
	DimCountry:   {"country", "country", "country"},
}

func (d Dim) String() string { return dimInfo[d].param }

// Key is the name of d in report rows.
func (d Dim) Key() string { return dimInfo[d].key }

// isTime reports whether d buckets time.
func (d Dim) isTime() bool { return d == DimDay || d == DimHour }

// Output formats.
const (
	FormatJSON = "json"
	FormatCSV  = "csv"
)

// Query is a validated report request: everything the engine needs and
// nothing it would have to check again.
type Query struct {
	// From and To bound the report, [From, To), in Loc.
	From, To time.Time
	Loc      *time.Location
	GroupBy  []Dim
	// Scope, when not empty, is the only advertiser whose rows may be
	// read (the caller's own id). Empty only for the admin.
	Scope string
	// Advertisers and Campaigns filter rows when not empty.
	Advertisers []string
	Campaigns   []string
	Format      string
}

// Input limits.
const (
	maxParams    = 256
	maxIDs       = 100
	maxIDLen     = 128
	maxTZLen     = 64
	minYear      = 2000
	maxYearLimit = 2100 // exclusive
)

// param is one query-string argument, copied out of the request.
type param struct{ key, value string }

// principal is who asks: the admin, or one advertiser.
type principal struct {
	admin        bool
	advertiserID string
	timezone     string
}

// apiError is a caller's or the server's problem, in the shape of every
// error answer: {"error":{"code":"...","message":"...","field":"..."}}.
type apiError struct {
	status  int
	code    string
	message string
	field   string
	// retryAfter adds Retry-After: 1 (the condition is temporary).
	retryAfter bool
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func badParam(field, code, format string, args ...any) *apiError {
	return &apiError{status: 400, code: code, field: field, message: fmt.Sprintf(format, args...)}
}

// clip shortens a caller's value for an error message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// parseQuery validates a request's parameters. now is the current time;
// maxRange the longest span allowed. It never touches ClickHouse.
func parseQuery(params []param, p principal, now time.Time, maxRange time.Duration) (*Query, *apiError) {
	if len(params) > maxParams {
		return nil, badParam("", "too_many_parameters", "at most %d query parameters", maxParams)
	}
	var (
		single  = map[string]string{}
		groupBy []string
		q       = &Query{Format: FormatJSON}
	)
	for _, a := range params {
		switch a.key {
		case "from", "to", "tz", "format":
			if _, dup := single[a.key]; dup {
				return nil, badParam(a.key, "repeated_parameter", "%s may appear only once", a.key)
			}
			single[a.key] = a.value
		case "group_by":
			if a.value != "" {
				groupBy = append(groupBy, strings.Split(a.value, ",")...)
			}
		case "campaign_id", "advertiser_id":
			if err := checkID(a.key, a.value); err != nil {
				return nil, err
			}
			if a.key == "campaign_id" {
				q.Campaigns = append(q.Campaigns, a.value)
			} else {
				q.Advertisers = append(q.Advertisers, a.value)
			}
			if len(q.Campaigns) > maxIDs || len(q.Advertisers) > maxIDs {
				return nil, badParam(a.key, "too_many_values", "at most %d %s values", maxIDs, a.key)
			}
		default:
			return nil, badParam(clip(a.key), "unknown_parameter",
				"unknown parameter %q (use from, to, tz, group_by, campaign_id, advertiser_id, format)", clip(a.key))
		}
	}
	if !p.admin {
		q.Scope = p.advertiserID
	}

	switch f := single["format"]; f {
	case "", FormatJSON:
	case FormatCSV:
		q.Format = FormatCSV
	default:
		return nil, badParam("format", "invalid_format", "format must be json or csv, got %q", clip(f))
	}

	var err *apiError
	if q.GroupBy, err = parseGroupBy(groupBy); err != nil {
		return nil, err
	}

	if tz, ok := single["tz"]; ok {
		if q.Loc, err = parseTZ(tz); err != nil {
			return nil, err
		}
	} else {
		q.Loc = time.UTC
		if loc, err := parseTZ(p.timezone); p.timezone != "" && err == nil {
			q.Loc = loc
		}
	}

	if q.From, q.To, err = parseRange(single, q.Loc, now, maxRange); err != nil {
		return nil, err
	}
	return q, nil
}

func parseGroupBy(names []string) ([]Dim, *apiError) {
	if len(names) > int(dimEnd) {
		return nil, badParam("group_by", "invalid_group_by", "group_by names at most %d dimensions", dimEnd-1)
	}
	var dims []Dim
	seen := [dimEnd]bool{}
	for _, n := range names {
		n = strings.TrimSpace(n)
		d := Dim(0)
		for i := DimDay; i < dimEnd; i++ {
			if dimInfo[i].param == n {
				d = i
			}
		}
		if d == 0 {
			return nil, badParam("group_by", "invalid_group_by",
				"unknown group_by %q (use day, hour, campaign, creative, placement, country)", clip(n))
		}
		if seen[d] {
			return nil, badParam("group_by", "invalid_group_by", "group_by names %s twice", d)
		}
		seen[d] = true
		dims = append(dims, d)
	}
	if seen[DimDay] && seen[DimHour] {
		return nil, badParam("group_by", "invalid_group_by", "group_by takes day or hour, not both")
	}
	return dims, nil
}

// checkID accepts what campaign validation accepts as an id: 1-128 bytes
// of printable ASCII without spaces, '/', '?', '#' or '%'.
func checkID(field, v string) *apiError {
	if v == "" || len(v) > maxIDLen {
		return badParam(field, "invalid_id", "%s must be 1-%d bytes", field, maxIDLen)
	}
	for i := 0; i < len(v); i++ {
		b := v[i]
		if b <= ' ' || b == '/' || b == '?' || b == '#' || b == '%' || b >= 0x7f {
			return badParam(field, "invalid_id",
				"%s must be printable ASCII without spaces, '/', '?', '#' or '%%', got %q", field, clip(v))
		}
	}
	return nil
}

// parseTZ loads an IANA zone by name. Names are restricted to the
// characters IANA uses, so nothing but a zone name reaches the loader.
func parseTZ(name string) (*time.Location, *apiError) {
	bad := func() (*time.Location, *apiError) {
		return nil, badParam("tz", "invalid_timezone", "unknown time zone %q (use an IANA name such as Asia/Seoul)", clip(name))
	}
	if name == "" || len(name) > maxTZLen || name == "Local" || name[0] == '/' || strings.Contains(name, "..") {
		return bad()
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-' || c == '+') {
			return bad()
		}
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return bad()
	}
	return loc, nil
}

// parseRange resolves from and to into [from, to) in loc.
func parseRange(single map[string]string, loc *time.Location, now time.Time, maxRange time.Duration) (from, to time.Time, _ *apiError) {
	var toIsDate bool
	if s, ok := single["to"]; ok {
		t, isDate, err := parseWhen("to", s, loc)
		if err != nil {
			return from, to, err
		}
		to, toIsDate = t, isDate
		if isDate {
			to = addDays(t, 1, loc) // a date "to" includes its whole day
		}
	} else {
		to, toIsDate = addDays(now.In(loc), 1, loc), true
	}
	if s, ok := single["from"]; ok {
		t, _, err := parseWhen("from", s, loc)
		if err != nil {
			return from, to, err
		}
		from = t
	} else if toIsDate {
		from = addDays(to, -7, loc)
	} else {
		from = to.AddDate(0, 0, -7)
	}
	if y := from.Year(); y < minYear {
		return from, to, badParam("from", "invalid_date", "from must be in %d or later", minYear)
	}
	if y := to.Add(-time.Second).Year(); y >= maxYearLimit {
		return from, to, badParam("to", "invalid_date", "to must be before %d", maxYearLimit)
	}
	if !from.Before(to) {
		return from, to, badParam("from", "invalid_range", "from must be before to (a date to includes that day)")
	}
	if span := wall(to).Sub(wall(from)); span > maxRange {
		return from, to, badParam("to", "range_too_long", "the range covers %s; at most %s is allowed",
			humanDuration(span), humanDuration(maxRange))
	}
	return from, to, nil
}

// parseWhen parses a date (YYYY-MM-DD, midnight in loc) or a timestamp
// (RFC 3339 with an offset, or local to loc without one).
func parseWhen(field, s string, loc *time.Location) (t time.Time, isDate bool, _ *apiError) {
	bad := func() (time.Time, bool, *apiError) {
		return t, false, badParam(field, "invalid_date",
			"%s must be YYYY-MM-DD or a timestamp such as 2026-11-01T10:00:00Z, got %q", field, clip(s))
	}
	if len(s) < 10 || len(s) > 35 || !isDigits(s[0:4]) || s[4] != '-' || !isDigits(s[5:7]) || s[7] != '-' || !isDigits(s[8:10]) {
		return bad()
	}
	var err error
	switch {
	case len(s) == 10:
		t, err = time.ParseInLocation("2006-01-02", s, loc)
		isDate = true
	case strings.ContainsAny(s[10:], "Z+-"): // an explicit offset
		t, err = time.Parse(time.RFC3339, s)
	case len(s) == 16:
		t, err = time.ParseInLocation("2006-01-02T15:04", s, loc)
	default:
		t, err = time.ParseInLocation("2006-01-02T15:04:05", s, loc)
	}
	if err != nil {
		return bad()
	}
	if t.Nanosecond() != 0 {
		return t, false, badParam(field, "invalid_date", "%s must be a whole second", field)
	}
	return t.In(loc), isDate, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// addDays returns midnight in loc of t's date plus n days.
func addDays(t time.Time, n int, loc *time.Location) time.Time {
	y, m, d := t.In(loc).Date()
	return time.Date(y, m, d+n, 0, 0, 0, 0, loc)
}

// wall returns t's wall-clock reading as if it were UTC, so spans measured
// between two walls ignore DST.
func wall(t time.Time) time.Time {
	y, m, d := t.Date()
	hh, mm, ss := t.Clock()
	return time.Date(y, m, d, hh, mm, ss, 0, time.UTC)
}

func humanDuration(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}
