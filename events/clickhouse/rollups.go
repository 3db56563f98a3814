package clickhouse

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A dimRollup is an hourly SummingMergeTree rollup of version 2: the
// metrics of rollup_hourly by advertiser and fewer dimensions, so that a
// report grouped by those reads far fewer rows.
type dimRollup struct {
	table string
	dims  []string // besides hour and advertiser_id, in sort-key order
	// byCampaign puts campaign_id right after advertiser_id in the sort
	// key (campaign_id is then the first of dims).
	byCampaign bool
}

// dimRollups are the version-2 rollups. The reports package knows them by
// name; keep the two lists in step.
var dimRollups = []dimRollup{
	{table: "rollup_creative_hourly", dims: []string{"campaign_id", "creative_id"}, byCampaign: true},
	{table: "rollup_campaign_country_hourly", dims: []string{"campaign_id", "country"}, byCampaign: true},
	{table: "rollup_campaign_placement_hourly", dims: []string{"campaign_id", "placement_id"}, byCampaign: true},
	{table: "rollup_placement_country_hourly", dims: []string{"placement_id", "country"}},
}

// Names of the backfill gap log and the view that feeds it while version 2
// is being applied.
const (
	gapsTable = "rollup_backfill_gaps"
	gapsView  = "rollup_backfill_gaps_mv"
)

// dimRollupsVersion is the schema version that adds dimRollups.
const dimRollupsVersion = 2

// migrateHook, when set (by tests), is called at each step of
// addDimRollups: "copy" once the gap log is fed and the inserts that
// started before have finished, "views" once every view exists.
var migrateHook func(step string)

func hook(step string) {
	if migrateHook != nil {
		migrateHook(step)
	}
}

func (r *dimRollup) createTable(name string) string {
	var cols strings.Builder
	for _, d := range r.dims {
		cols.WriteString("\n\t" + d + " {lc},")
	}
	order := "advertiser_id, hour, " + strings.Join(r.dims, ", ")
	if r.byCampaign {
		order = "advertiser_id, campaign_id, hour, " + strings.Join(r.dims[1:], ", ")
	}
	return `CREATE TABLE {db}.` + quoteIdent(name) + ` (
	hour          DateTime('UTC'),
	advertiser_id {lc},` + cols.String() + rollupMetrics + `
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (` + order + `)`
}

// createView is the view that keeps r current; it reads events exactly as
// rollup_hourly_mv does, with fewer dimensions.
func (r *dimRollup) createView() string {
	dims := strings.Join(r.dims, ", ")
	return `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.` + r.table + `_mv TO {db}.` + r.table + ` AS
SELECT
	toStartOfHour(time) AS hour,
	advertiser_id, ` + dims + `,` + rollupSelect + `
FROM {db}.events
WHERE test = 0
GROUP BY hour, advertiser_id, ` + dims
}

// backfill copies one UTC month of rollup_hourly into table, summed down
// to r's dimensions (columns by position: no aliases).
func (r *dimRollup) backfill(table string) string {
	dims := strings.Join(r.dims, ", ")
	return `INSERT INTO {db}.` + quoteIdent(table) + ` (hour, advertiser_id, ` + dims + `,
	impressions, clicks, conversions, wins, billings, losses, spend_micros)
SELECT hour, advertiser_id, ` + dims + `,
	sum(impressions), sum(clicks), sum(conversions), sum(wins), sum(billings), sum(losses), sum(spend_micros)
FROM {db}.rollup_hourly
WHERE hour >= toDateTime(?) AND hour < toDateTime(?)
GROUP BY hour, advertiser_id, ` + dims
}

// migrator runs statements against one database.
type migrator struct {
	conn   driver.Conn
	db     string
	expand func(string) string
}

func (m *migrator) exec(ctx context.Context, q string, args ...any) error {
	return m.conn.Exec(ctx, m.expand(q), args...)
}

func (m *migrator) exists(ctx context.Context, table string) (bool, error) {
	var n uint8
	if err := m.conn.QueryRow(ctx, m.expand(`EXISTS TABLE {db}.`+quoteIdent(table))).Scan(&n); err != nil {
		return false, fmt.Errorf("cannot check whether %s exists: %w", table, err)
	}
	return n == 1, nil
}

// serverNow is the server's clock, in whole seconds (rounded down).
func (m *migrator) serverNow(ctx context.Context) (int64, error) {
	var now int64
	if err := m.conn.QueryRow(ctx, `SELECT toInt64(toUInt32(now()))`).Scan(&now); err != nil {
		return 0, fmt.Errorf("cannot read the ClickHouse server clock: %w", err)
	}
	return now, nil
}

// insertIntoEvents returns a pattern that matches the text of an insert
// into db's events table: qualified with db (as the shipper writes it), or
// unqualified (conservative: it may be another database's, and a wait for
// it costs only time). Inserts into other databases' events tables, such
// as other tests' on a shared server, are not waited for: one held open
// there would stall this migration. 18.16's system.processes has no
// current_database column, hence the text match. Case-insensitive by
// character classes: 18.16's match checks the literal prefix of a (?i)
// pattern case-sensitively.
func insertIntoEvents(db string) string {
	q := regexp.QuoteMeta(db)
	return "^\\s*[iI][nN][sS][eE][rR][tT]\\s+[iI][nN][tT][oO]\\s+(([`\"]" + q + "[`\"]|" + q + ")\\.)?[`\"]?events[`\"]?(\\s|\\(|$)"
}

// waitInserts returns once no insert into events that started before
// second since (server clock) still runs on the server. Each insert of a
// block pushes it to the views that existed when the insert started, so
// afterwards every insert that could have missed a view created before
// since has finished: it is in every table it will ever be in.
// system.processes counts elapsed time from the query's start; a query
// is taken as possibly older than since unless now()-elapsed, rounded
// down, leaves no doubt.
func (m *migrator) waitInserts(ctx context.Context, since int64) error {
	for {
		var n uint64
		err := m.conn.QueryRow(ctx,
			`SELECT count() FROM system.processes WHERE match(query, ?) AND elapsed + 1 > toFloat64(toInt64(toUInt32(now())) - ?)`,
			insertIntoEvents(m.db), since).Scan(&n)
		if err != nil {
			return fmt.Errorf("cannot list running inserts: %w", err)
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d inserts into events that started before the rollup views still run: %w", n, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// addDimRollups applies schema version 2: it creates dimRollups, fills
// them from rollup_hourly and attaches their views, so that they hold
// exactly what rollup_hourly holds, projected, except in the hours listed
// in rollup_backfill_gaps, where readers must use rollup_hourly. It is
// idempotent and safe to run from several nodes at once, and at any point
// of a previous run that died, while other nodes insert events.
//
// How. A view counts the inserts that start after it exists; a copy of
// rollup_hourly counts the inserts that finished before the copy read it.
// An insert between the two would be missed or counted twice, so first
// the gaps view (on events, like the rollups) starts logging the hour of
// every insert; then, once the inserts that started before it have
// finished, each table is built under a name of this run's own, one UTC
// month of rollup_hourly at a time, and published by RENAME, which fails
// if another run published first (that run's copy stands, this one is
// dropped): a table exists only complete, and is copied once. Then the
// views are created, and once the inserts that started before them have
// finished, the gaps view is dropped. Any insert that reached
// rollup_hourly after a copy read it and started before the view existed
// ran entirely while the gaps view existed, and has finished, so its
// hours are in the gap log. Those hours (usually the hour or two around
// the upgrade, plus any hour a late node shipped into meanwhile) read
// rollup_hourly, every other hour the new table, and both are exact.
//
// Limits: the same as the shipper's check of what landed. Inserts are
// seen through system.processes of the server Migrate talks to, so every
// insert must go to that server; an insert that fails after some of its
// views wrote their part is not covered (it leaves the existing rollups
// apart from each other as well).
func addDimRollups(ctx context.Context, m *migrator) error {
	if err := m.exec(ctx, `CREATE TABLE IF NOT EXISTS {db}.`+gapsTable+` (hour DateTime('UTC'))
ENGINE = ReplacingMergeTree() ORDER BY hour`); err != nil {
		return err
	}
	var missing []*dimRollup
	for i := range dimRollups {
		ok, err := m.exists(ctx, dimRollups[i].table)
		if err != nil {
			return err
		}
		if !ok {
			missing = append(missing, &dimRollups[i])
		}
	}
	if len(missing) > 0 {
		if err := m.exec(ctx, `CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.`+gapsView+` TO {db}.`+gapsTable+` AS
SELECT toStartOfHour(time) AS hour FROM {db}.events WHERE test = 0 GROUP BY hour`); err != nil {
			return err
		}
		since, err := m.serverNow(ctx)
		if err != nil {
			return err
		}
		if err := m.waitInserts(ctx, since); err != nil {
			return err
		}
		hook("copy")
		months, err := m.rollupMonths(ctx)
		if err != nil {
			return err
		}
		var run [6]byte
		rand.Read(run[:])
		for _, r := range missing {
			if err := m.publish(ctx, r, r.table+"_backfill_"+hex.EncodeToString(run[:]), months); err != nil {
				return fmt.Errorf("cannot backfill %s: %w", r.table, err)
			}
		}
	}
	for i := range dimRollups {
		if err := m.exec(ctx, dimRollups[i].createView()); err != nil {
			return err
		}
	}
	hook("views")
	since, err := m.serverNow(ctx)
	if err != nil {
		return err
	}
	if err := m.waitInserts(ctx, since); err != nil {
		return err
	}
	return m.exec(ctx, `DROP TABLE IF EXISTS {db}.`+gapsView)
}

// rollupMonths lists the UTC months rollup_hourly holds rows of (its
// partitions).
func (m *migrator) rollupMonths(ctx context.Context) ([]time.Time, error) {
	rows, err := m.conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
WHERE database = ? AND table = 'rollup_hourly' AND active ORDER BY partition`, m.db)
	if err != nil {
		return nil, fmt.Errorf("cannot list the partitions of rollup_hourly: %w", err)
	}
	defer rows.Close()
	var months []time.Time
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		ym, err := strconv.Atoi(strings.Trim(p, "'"))
		if err != nil || ym < 190001 || ym%100 < 1 || ym%100 > 12 {
			return nil, fmt.Errorf("BUG: rollup_hourly partition %q is not YYYYMM", p)
		}
		months = append(months, time.Date(ym/100, time.Month(ym%100), 1, 0, 0, 0, 0, time.UTC))
	}
	return months, rows.Err()
}

// dropBackfillLeftovers drops the copies of runs that died before
// publishing them (a run that fails drops its own) once they are older
// than age: nothing reads or writes them.
func (m *migrator) dropBackfillLeftovers(ctx context.Context, age time.Duration) error {
	rows, err := m.conn.Query(ctx, `SELECT name FROM system.tables WHERE database = ? AND match(name, ?)
AND metadata_modification_time <= now() - ?`, m.db, "^rollup_[a-z_]+_hourly_backfill_[0-9a-f]{12}$", int64(age.Seconds()))
	if err != nil {
		return fmt.Errorf("cannot list backfill leftovers: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		names = append(names, n)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, n := range names {
		if err := m.exec(ctx, `DROP TABLE IF EXISTS {db}.`+quoteIdent(n)); err != nil {
			return fmt.Errorf("cannot drop backfill leftover %s: %w", n, err)
		}
	}
	return nil
}

// codeTableAlreadyExists is ClickHouse's TABLE_ALREADY_EXISTS.
const codeTableAlreadyExists = 57

// publish builds r's table as tmp from rollup_hourly and renames it into
// place, unless another run did first.
func (m *migrator) publish(ctx context.Context, r *dimRollup, tmp string, months []time.Time) (err error) {
	if ok, err := m.exists(ctx, r.table); err != nil || ok {
		return err
	}
	if err := m.exec(ctx, r.createTable(tmp)); err != nil {
		return err
	}
	renamed := false
	defer func() {
		if !renamed {
			// Best effort: a table left by a run that died is inert
			// (nothing writes to it, nothing reads it).
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			m.exec(dctx, `DROP TABLE IF EXISTS {db}.`+quoteIdent(tmp))
		}
	}()
	for _, mo := range months {
		if err := m.exec(ctx, r.backfill(tmp), mo.Unix(), mo.AddDate(0, 1, 0).Unix()); err != nil {
			return err
		}
	}
	err = m.exec(ctx, `RENAME TABLE {db}.`+quoteIdent(tmp)+` TO {db}.`+r.table)
	var exc *chgo.Exception
	if errors.As(err, &exc) && exc.Code == codeTableAlreadyExists {
		return nil
	}
	renamed = err == nil
	return err
}
