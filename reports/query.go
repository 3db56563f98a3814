package reports

import (
	"strconv"
	"strings"
	"time"
)

// Tables a report may read.
const (
	tableCampaignHourly          = "rollup_campaign_hourly"
	tableCampaignCountryHourly   = "rollup_campaign_country_hourly"
	tableCreativeHourly          = "rollup_creative_hourly"
	tablePlacementCountryHourly  = "rollup_placement_country_hourly"
	tableCampaignPlacementHourly = "rollup_campaign_placement_hourly"
	tableHourly                  = "rollup_hourly"
	tableEvents                  = "events"
)

// dimSet is a set of non-time dimensions: bit d for Dim d.
type dimSet uint8

func dims(ds ...Dim) dimSet {
	var s dimSet
	for _, d := range ds {
		s |= 1 << d
	}
	return s
}

// A rollup is an hourly rollup table: UTC hours, advertiser_id and dims.
type rollup struct {
	table string
	dims  dimSet
	// backfilled marks the rollups of schema version 2, which answer only
	// once that version is recorded and, in the hours of the gap log,
	// leave the answer to rollup_hourly (see the package doc).
	backfilled bool
}

// rollups lists every rollup, smallest first for a typical catalog (fewer
// campaigns than countries or placements per advertiser); a report reads
// the first one that has every dimension it groups or filters by. The
// order matters only among rollups that all answer: no dimensions (the
// campaign rollup), country (campaign and country, not placement and
// country), placement (placement and country, not campaign and
// placement).
var rollups = []rollup{
	{table: tableCampaignHourly, dims: dims(DimCampaign)},
	{table: tableCampaignCountryHourly, dims: dims(DimCampaign, DimCountry), backfilled: true},
	{table: tableCreativeHourly, dims: dims(DimCampaign, DimCreative), backfilled: true},
	{table: tablePlacementCountryHourly, dims: dims(DimPlacement, DimCountry), backfilled: true},
	{table: tableCampaignPlacementHourly, dims: dims(DimCampaign, DimPlacement), backfilled: true},
	{table: tableHourly, dims: dims(DimCampaign, DimCreative, DimPlacement, DimCountry)},
}

func isBackfilled(table string) bool {
	for _, r := range rollups {
		if r.table == table {
			return r.backfilled
		}
	}
	return false
}

// zoneSegment says that from start (unix seconds) on, local time is UTC
// plus offset seconds.
type zoneSegment struct {
	start  int64
	offset int64
}

// maxZoneSegments bounds the offset changes a query spells out; real
// zones change at most a few times a year.
const maxZoneSegments = 64

// zoneSegments returns the UTC offsets loc uses in [from, to), in order,
// merging neighbours with equal offsets. The first segment starts at from.
func zoneSegments(loc *time.Location, from, to time.Time) []zoneSegment {
	var segs []zoneSegment
	t := from
	for len(segs) < maxZoneSegments {
		lt := t.In(loc)
		_, off := lt.Zone()
		if n := len(segs); n == 0 || segs[n-1].offset != int64(off) {
			segs = append(segs, zoneSegment{start: t.Unix(), offset: int64(off)})
		}
		_, end := lt.ZoneBounds()
		if end.IsZero() || !end.Before(to) || !end.After(t) {
			break
		}
		t = end
	}
	return segs
}

// limitSettings are the per-query server limits.
type limitSettings struct {
	maxExecutionSeconds int
	maxGroups           int
}

// plan is the SQL of one report and what it needs to read the answer.
type plan struct {
	table string
	// source names the tables read: table, or table and rollup_hourly
	// when gap hours of the backfill fall in the range.
	source string
	sql    string
	args   []any
}

// hourAligned reports whether the hourly rollups can answer q exactly:
// from and to fall on whole UTC hours and, when rows are bucketed by day
// or hour, every offset of the zone in the range is a whole hour and
// changes on a whole UTC hour (so no rollup hour straddles two local days).
func hourAligned(q *Query, segs []zoneSegment) bool {
	if q.From.Unix()%3600 != 0 || q.To.Unix()%3600 != 0 {
		return false
	}
	for _, d := range q.GroupBy {
		if d.isTime() {
			for _, s := range segs {
				if s.offset%3600 != 0 || s.start%3600 != 0 {
					return false
				}
			}
			break
		}
	}
	return true
}

// chooseTable picks the smallest table that answers q exactly; the
// rollups of schema version 2 only when dimReady.
func chooseTable(q *Query, segs []zoneSegment, dimReady bool) string {
	if !hourAligned(q, segs) {
		return tableEvents
	}
	var need dimSet
	for _, d := range q.GroupBy {
		if !d.isTime() {
			need |= dims(d)
		}
	}
	if len(q.Campaigns) > 0 {
		need |= dims(DimCampaign)
	}
	for _, r := range rollups {
		if need&^r.dims == 0 && (dimReady || !r.backfilled) {
			return r.table
		}
	}
	panic("BUG: rollup_hourly has every dimension")
}

// maxGapRanges bounds the gap-log ranges a query spells out; beyond it the
// report reads rollup_hourly alone.
const maxGapRanges = 32

// buildPlan writes the SQL for q against database db (a validated
// identifier), returning at most limit rows. Every value from the request
// is a bound parameter; the text holds only constants and db. rs is what
// is known of the schema (nil: nothing, so the rollups of version 2 are
// not read).
func buildPlan(db string, q *Query, limit int, ls limitSettings, rs *rollupState) *plan {
	segs := zoneSegments(q.Loc, q.From, q.To)
	return planOn(db, q, limit, ls, rs, segs, chooseTable(q, segs, rs != nil && rs.ready))
}

// planOn is buildPlan reading table, which must answer q exactly (the
// choice of chooseTable, or any rollup with more dimensions).
func planOn(db string, q *Query, limit int, ls limitSettings, rs *rollupState, segs []zoneSegment, table string) *plan {
	p := &plan{table: table}
	var gaps [][2]int64
	if isBackfilled(p.table) {
		gaps = rs.gapRanges(q.From.Unix(), q.To.Unix())
		if len(gaps) > maxGapRanges {
			p.table, gaps = tableHourly, nil
		}
	}
	p.source = p.table
	if len(gaps) > 0 {
		p.source += "," + tableHourly
	}
	raw := p.table == tableEvents
	timeCol := "hour"
	if raw {
		timeCol = "time"
	}
	ts := "toInt64(toUInt32(" + timeCol + "))"

	var b strings.Builder
	b.WriteString("SELECT ")
	keys := make([]string, 0, len(q.GroupBy))
	cols := make([]string, 0, len(q.GroupBy))
	for i, d := range q.GroupBy {
		var expr string
		switch {
		case d == DimDay:
			expr = "toInt64(intDiv(" + ts + " + " + p.offset(ts, segs) + ", 86400)) AS k_day"
			keys = append(keys, "k_day")
		case d == DimHour && !raw:
			// Whole-hour zone: the rollup's UTC hour is the local hour.
			expr = ts + " AS k_hour"
			keys = append(keys, "k_hour")
		case d == DimHour:
			expr = "toInt64(intDiv(" + ts + " + " + p.offset(ts, segs) + ", 3600) * 3600 - " + p.offset(ts, segs) + ") AS k_hour"
			keys = append(keys, "k_hour")
		default:
			expr = dimInfo[d].column
			keys = append(keys, expr)
			cols = append(cols, expr)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(expr)
	}
	if len(keys) > 0 {
		b.WriteString(", ")
	}
	if raw {
		b.WriteString("countIf(type = 'impression') AS m_imp, countIf(type = 'click') AS m_clk, " +
			"countIf(type = 'conversion') AS m_conv, sum(cost_micros) AS m_spend")
	} else {
		b.WriteString("sum(impressions) AS m_imp, sum(clicks) AS m_clk, sum(conversions) AS m_conv, sum(spend_micros) AS m_spend")
	}
	if len(gaps) == 0 {
		b.WriteString("\nFROM `" + db + "`." + p.table + "\nWHERE ")
		p.where(&b, q, timeCol, raw)
	} else {
		// The gap hours come from rollup_hourly, the others from the
		// smaller table; both filtered alike.
		sel := "SELECT hour, " + strings.Join(append(cols, "impressions, clicks, conversions, spend_micros"), ", ")
		b.WriteString("\nFROM (" + sel + " FROM `" + db + "`." + p.table + " WHERE ")
		p.where(&b, q, timeCol, raw)
		b.WriteString(" AND NOT (")
		p.gapCondition(&b, gaps)
		b.WriteString(")\n\tUNION ALL " + sel + " FROM `" + db + "`." + tableHourly + " WHERE ")
		p.where(&b, q, timeCol, raw)
		b.WriteString(" AND (")
		p.gapCondition(&b, gaps)
		b.WriteString("))")
	}
	if len(keys) > 0 {
		b.WriteString("\nGROUP BY " + strings.Join(keys, ", "))
	}
	// Rows of only wins, billings or losses carry none of our metrics.
	b.WriteString("\nHAVING m_imp > 0 OR m_clk > 0 OR m_conv > 0 OR m_spend != 0")
	if len(keys) > 0 {
		b.WriteString("\nORDER BY " + strings.Join(keys, ", "))
	}
	b.WriteString("\nLIMIT ?")
	p.args = append(p.args, int64(limit))
	// Settings go in the text: 18.16's native protocol takes only numeric
	// settings from the client. The numbers come from Config, not from
	// the request.
	b.WriteString("\nSETTINGS readonly = 2, max_execution_time = " + strconv.Itoa(ls.maxExecutionSeconds) +
		", max_rows_to_group_by = " + strconv.Itoa(ls.maxGroups) + ", group_by_overflow_mode = 'throw'")
	p.sql = b.String()
	return p
}

// where writes the row filter of q: scope, filters and time range.
func (p *plan) where(b *strings.Builder, q *Query, timeCol string, raw bool) {
	if raw {
		b.WriteString("test = 0 AND ")
	}
	if q.Scope != "" {
		b.WriteString("advertiser_id = ? AND ")
		p.args = append(p.args, q.Scope)
	}
	p.in(b, "advertiser_id", q.Advertisers)
	p.in(b, "campaign_id", q.Campaigns)
	b.WriteString(timeCol + " >= toDateTime(?) AND " + timeCol + " < toDateTime(?)")
	p.args = append(p.args, q.From.Unix(), q.To.Unix())
}

// gapCondition writes "hour in one of the ranges".
func (p *plan) gapCondition(b *strings.Builder, gaps [][2]int64) {
	for i, g := range gaps {
		if i > 0 {
			b.WriteString(" OR ")
		}
		b.WriteString("hour >= toDateTime(?) AND hour < toDateTime(?)")
		p.args = append(p.args, g[0], g[1])
	}
}

// offset returns an expression for the UTC offset (seconds) in effect at
// ts, binding the zone's segments as parameters.
func (p *plan) offset(ts string, segs []zoneSegment) string {
	if len(segs) == 1 {
		p.args = append(p.args, segs[0].offset)
		return "toInt64(?)"
	}
	var b strings.Builder
	b.WriteString("multiIf(")
	for i := 1; i < len(segs); i++ {
		b.WriteString(ts + " < ?, toInt64(?), ")
		p.args = append(p.args, segs[i].start, segs[i-1].offset)
	}
	b.WriteString("toInt64(?))")
	p.args = append(p.args, segs[len(segs)-1].offset)
	return b.String()
}

// in writes "col IN (?, ...) AND " for a non-empty filter.
func (p *plan) in(b *strings.Builder, col string, values []string) {
	if len(values) == 0 {
		return
	}
	b.WriteString(col + " IN (")
	for i, v := range values {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("?")
		p.args = append(p.args, v)
	}
	b.WriteString(") AND ")
}
