// Package reports answers advertiser reports from the ClickHouse rollups
// and serves the reports dashboard.
//
// # API
//
// GET /v1/reports on the management listener, authorized by
// "Authorization: Bearer <key>" where the key is an advertiser's API key
// (the advertiser sees its own rows only) or the admin token (every row,
// optionally filtered by advertiser_id). Parameters:
//
//	from, to     YYYY-MM-DD (a day in tz) or a timestamp: RFC 3339 with an
//	             offset (2026-11-01T10:00:00Z) or local to tz
//	             (2026-11-01T10:00 or 2026-11-01T10:00:00). The report
//	             covers [from, to): a date "to" includes that whole day, a
//	             timestamp "to" is exclusive. Default: the 7 days ending
//	             today in tz. At most Config.MaxRange long.
//	tz           IANA time zone for dates, day and hour buckets. Default:
//	             the advertiser's time zone, UTC for the admin.
//	group_by     comma-separated (or repeated) subset of day, hour,
//	             campaign, creative, placement, country; rows come sorted
//	             by these keys in this order. Empty: one row of totals.
//	campaign_id  repeatable filter (up to 100).
//	advertiser_id repeatable filter (up to 100); an advertiser key only
//	             ever sees its own rows whatever this says.
//	format       json (default) or csv.
//
// Any other parameter, a repeated single-valued one, or an invalid value
// is a 400 that reaches no query. The JSON answer is
//
//	{"rows":[{"day":"2026-11-24","campaign_id":"c-1","impressions":1200,"clicks":30,
//	  "conversions":2,"spend":2.4,"ctr":0.025,"ecpm":2,"ecpc":0.08,
//	  "conversion_rate":0.06666666666666667,"cpa":1.2}],"totals":{...same metrics...}}
//
// Group-by keys appear under their own names (day, hour, campaign_id,
// creative_id, placement_id, country); day is YYYY-MM-DD in tz, hour the
// RFC 3339 start of the hour in tz. Money (spend, ecpm, ecpc, cpa) is a
// decimal formatted from integer micros: ecpm = spend*1000/impressions,
// ecpc = spend/clicks and cpa = spend/conversions are rounded half up to
// the micro. ctr = clicks/impressions and conversion_rate =
// conversions/clicks are floats (shortest round-trip form). A metric whose
// denominator is zero is 0. Totals are the exact sums of the rows. The
// CSV answer has a header line and the same rows (no totals line).
// Response headers X-Report-From and X-Report-To (RFC 3339, To exclusive),
// X-Report-Timezone and X-Report-Source (the tables read) describe what was
// answered.
//
// Asking for a campaign or advertiser that does not exist and asking for
// one that belongs to someone else give byte-identical answers: the
// advertiser scope is a condition of the query itself, so there is no
// existence check to leak through.
//
// # Where the numbers come from
//
// Reports read the hourly SummingMergeTree rollups with sum() and GROUP
// BY (rows are not collapsed until merges): the smallest rollup that has
// every dimension the report groups or filters by (advertiser_id is in
// all), in this order: rollup_campaign_hourly (campaign),
// rollup_campaign_country_hourly (campaign, country),
// rollup_creative_hourly (campaign, creative),
// rollup_placement_country_hourly (placement, country),
// rollup_campaign_placement_hourly (campaign, placement), rollup_hourly
// (all). Every report by one or two of campaign, creative, placement and
// country, with or without a campaign filter, reads one of the first
// five, except creative with placement or country, and placement with
// country under a campaign filter. Rollups are hourly in UTC, so they
// answer exactly only when from and to fall on whole UTC hours and, for
// day or hour buckets, the time zone's offset is a whole number of hours
// throughout the range. Otherwise (a timestamp like 10:30, or a zone such
// as Asia/Kolkata) the report reads the raw events table (test = 0, the
// rollups' own filter), which is exact but slower. Day and hour buckets
// are computed from UTC offsets that Go's time zone database gives for
// the range, passed to ClickHouse as bound numbers, so ClickHouse's own
// time zone data (and its version, down to 18.16) does not matter.
//
// The four middle rollups come with schema version 2
// (events/clickhouse.Migrate), which fills them from rollup_hourly on an
// existing database. A Handler reads them only once it has seen version 2
// recorded in schema_migrations (until then it asks again at most every
// 10 s and reads rollup_hourly), and then reads the upgrade's gap log
// (rollup_backfill_gaps) once: in those hours the new rollups may lack
// what was inserted during the upgrade, so a report whose range holds gap
// hours reads them from rollup_hourly and the rest from the smaller
// rollup (UNION ALL; X-Report-Source names both), or rollup_hourly alone
// beyond 32 separate gap ranges.
//
// # Safety
//
// Every value reaches ClickHouse as a bound parameter (clickhouse-go
// client-side binding escapes strings); identifiers are constants or the
// validated database name. Each query runs with Config.QueryTimeout (also
// sent as max_execution_time), readonly = 2, and a group-count limit of
// Config.MaxRows+1; at most Config.MaxConcurrent reports run at once and a
// request that cannot get a slot within Config.MaxWait is answered 503
// with Retry-After, so reports never queue without bound.
//
// # Dashboard
//
// ServeDashboard serves /dashboard/ from files embedded in the binary
// (dashboard/): sign-in with an API key (kept in sessionStorage), a date
// range, totals, a daily or hourly chart, a sortable table by campaign or
// creative and CSV downloads, all through /v1/reports.
//
// # Concurrency
//
// A Handler is safe for concurrent use; its Config must not change after
// New.
package reports
