package reports

import (
	"strconv"
	"strings"
	"time"
)

// Tables a report may read.
const (
	tableCampaignHourly = "rollup_campaign_hourly"
	tableHourly         = "rollup_hourly"
	tableEvents         = "events"
)

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
	sql   string
	args  []any
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

// chooseTable picks the smallest table that answers q exactly.
func chooseTable(q *Query, segs []zoneSegment) string {
	if !hourAligned(q, segs) {
		return tableEvents
	}
	for _, d := range q.GroupBy {
		if d != DimDay && d != DimHour && d != DimCampaign {
			return tableHourly
		}
	}
	return tableCampaignHourly
}

// buildPlan writes the SQL for q against database db (a validated
// identifier), returning at most limit rows. Every value from the request
// is a bound parameter; the text holds only constants and db.
func buildPlan(db string, q *Query, limit int, ls limitSettings) *plan {
	segs := zoneSegments(q.Loc, q.From, q.To)
	p := &plan{table: chooseTable(q, segs)}
	raw := p.table == tableEvents
	timeCol := "hour"
	if raw {
		timeCol = "time"
	}
	ts := "toInt64(toUInt32(" + timeCol + "))"

	var b strings.Builder
	b.WriteString("SELECT ")
	keys := make([]string, 0, len(q.GroupBy))
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
	b.WriteString("\nFROM `" + db + "`." + p.table + "\nWHERE ")
	if raw {
		b.WriteString("test = 0 AND ")
	}
	if q.Scope != "" {
		b.WriteString("advertiser_id = ? AND ")
		p.args = append(p.args, q.Scope)
	}
	p.in(&b, "advertiser_id", q.Advertisers)
	p.in(&b, "campaign_id", q.Campaigns)
	b.WriteString(timeCol + " >= toDateTime(?) AND " + timeCol + " < toDateTime(?)")
	p.args = append(p.args, q.From.Unix(), q.To.Unix())
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
