package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// A migration is a list of idempotent statements ({db} and {lc} are
// substituted), then optionally a function that must be idempotent too.
// Migrations are append-only: never edit one that shipped, add the next
// version.
type migration struct {
	version    uint32
	name       string
	statements []string
	apply      func(context.Context, *migrator) error
}

// eventTypeEnum must match events.Type numbering.
const eventTypeEnum = `Enum8('impression' = 1, 'click' = 2, 'conversion' = 3, 'win' = 4, 'billing' = 5, 'loss' = 6)`

// rollupMetrics are the measures of both rollup tables and of their views.
const rollupMetrics = `
	impressions  UInt64,
	clicks       UInt64,
	conversions  UInt64,
	wins         UInt64,
	billings     UInt64,
	losses       UInt64,
	spend_micros Int64`

const rollupSelect = `
	countIf(type = 'impression') AS impressions,
	countIf(type = 'click')      AS clicks,
	countIf(type = 'conversion') AS conversions,
	countIf(type = 'win')        AS wins,
	countIf(type = 'billing')    AS billings,
	countIf(type = 'loss')       AS losses,
	sum(cost_micros)             AS spend_micros`

var migrations = []migration{{
	version: 1,
	name:    "events, decisions, hourly rollups",
	statements: []string{
		`CREATE TABLE IF NOT EXISTS {db}.events (
	event_id      FixedString(16),
	type          ` + eventTypeEnum + `,
	time          DateTime('UTC'),
	node_id       {lc},
	seq           UInt64,
	auction_id    String,
	slot_id       String,
	advertiser_id {lc},
	campaign_id   {lc},
	creative_id   {lc},
	placement_id  {lc},
	publisher_id  {lc},
	country       {lc},
	user_id       String,
	price_micros  Int64,
	cost_micros   Int64,
	test          UInt8
) ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMMDD(time)
ORDER BY (advertiser_id, campaign_id, event_id)`,

		`CREATE TABLE IF NOT EXISTS {db}.decisions (
	time                 DateTime('UTC'),
	node_id              {lc},
	seq                  UInt64,
	auction_id           String,
	slot_id              String,
	placement_id         {lc},
	publisher_id         {lc},
	country              {lc},
	candidates           UInt32,
	bids                 UInt32,
	winner_advertiser_id {lc},
	winner_campaign_id   {lc},
	winner_creative_id   {lc},
	bid_micros           Int64,
	price_micros         Int64,
	floor_micros         Int64,
	no_fill_reason       {lc},
	latency_micros       Int64,
	test                 UInt8
) ENGINE = ReplacingMergeTree(seq)
PARTITION BY toYYYYMMDD(time)
ORDER BY (placement_id, auction_id, slot_id)`,

		`CREATE TABLE IF NOT EXISTS {db}.rollup_hourly (
	hour          DateTime('UTC'),
	advertiser_id {lc},
	campaign_id   {lc},
	creative_id   {lc},
	placement_id  {lc},
	publisher_id  {lc},
	country       {lc},` + rollupMetrics + `
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (advertiser_id, campaign_id, hour, creative_id, placement_id, publisher_id, country)`,

		`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_hourly_mv TO {db}.rollup_hourly AS
SELECT
	toStartOfHour(time) AS hour,
	advertiser_id, campaign_id, creative_id, placement_id, publisher_id, country,` + rollupSelect + `
FROM {db}.events
WHERE test = 0
GROUP BY hour, advertiser_id, campaign_id, creative_id, placement_id, publisher_id, country`,

		`CREATE TABLE IF NOT EXISTS {db}.rollup_campaign_hourly (
	hour          DateTime('UTC'),
	advertiser_id {lc},
	campaign_id   {lc},` + rollupMetrics + `
) ENGINE = SummingMergeTree()
PARTITION BY toYYYYMM(hour)
ORDER BY (advertiser_id, campaign_id, hour)`,

		`CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.rollup_campaign_hourly_mv TO {db}.rollup_campaign_hourly AS
SELECT
	toStartOfHour(time) AS hour,
	advertiser_id, campaign_id,` + rollupSelect + `
FROM {db}.events
WHERE test = 0
GROUP BY hour, advertiser_id, campaign_id`,
	},
}, {
	version: dimRollupsVersion,
	name:    "hourly rollups by campaign and creative, campaign and country, campaign and placement, placement and country; backfilled",
	apply:   addDimRollups,
}}

// SchemaVersion is the newest schema version Migrate creates.
func SchemaVersion() uint32 { return migrations[len(migrations)-1].version }

// lowCardinalityFrom is the first server version whose LowCardinality type
// is on by default and well supported by clickhouse-go.
var lowCardinalityFrom = [2]uint64{20, 1}

func supportsLowCardinality(v *driver.ServerVersion) bool {
	return v.Version.Major > lowCardinalityFrom[0] || v.Version.Major == lowCardinalityFrom[0] && v.Version.Minor >= lowCardinalityFrom[1]
}

// Migrate creates the database and brings its schema to SchemaVersion. It
// is idempotent and safe to run from several nodes at once, also while
// other nodes insert events: every statement is IF NOT EXISTS (or, for
// the backfill of version 2, built aside and renamed into place; see
// addDimRollups), and applied versions are recorded in
// {db}.schema_migrations once complete. String dimensions become
// LowCardinality(String) only when the server supports it (20.1+); on
// 18.16 they are String.
//
// On a database that already holds events, version 2 copies rollup_hourly
// into the new rollups: ctx must allow for it (3.4-6.5 s for 4.6 million
// rollup_hourly rows on a shared 2-core machine, about a second per
// million).
func Migrate(ctx context.Context, conn driver.Conn, db string) error {
	return MigrateTo(ctx, conn, db, SchemaVersion())
}

// MigrateTo is Migrate up to version only (at least 1, at most
// SchemaVersion), for staged upgrades and tests of upgrades.
func MigrateTo(ctx context.Context, conn driver.Conn, db string, version uint32) error {
	if err := validIdent(db); err != nil {
		return err
	}
	if version < 1 || version > SchemaVersion() {
		return fmt.Errorf("schema version %d does not exist (1 to %d)", version, SchemaVersion())
	}
	lc := "String"
	v, err := conn.ServerVersion()
	if err != nil {
		return fmt.Errorf("cannot read ClickHouse server version: %w", err)
	}
	if supportsLowCardinality(v) {
		lc = "LowCardinality(String)"
	}
	expand := strings.NewReplacer("{db}", quoteIdent(db), "{lc}", lc).Replace
	mig := &migrator{conn: conn, db: db, expand: expand}
	for _, q := range []string{
		`CREATE DATABASE IF NOT EXISTS {db}`,
		`CREATE TABLE IF NOT EXISTS {db}.schema_migrations (
	version    UInt32,
	name       String,
	applied_at DateTime('UTC')
) ENGINE = ReplacingMergeTree() ORDER BY version`,
	} {
		if err := conn.Exec(ctx, expand(q)); err != nil {
			return fmt.Errorf("cannot create schema_migrations in %q: %w", db, err)
		}
	}
	applied, err := appliedVersions(ctx, conn, expand)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if m.version > version {
			break
		}
		if applied[m.version] {
			continue
		}
		for _, q := range m.statements {
			if err := conn.Exec(ctx, expand(q)); err != nil {
				return fmt.Errorf("schema migration %d (%s) failed: %w", m.version, m.name, err)
			}
		}
		if m.apply != nil {
			if err := m.apply(ctx, mig); err != nil {
				return fmt.Errorf("schema migration %d (%s) failed: %w", m.version, m.name, err)
			}
		}
		b, err := conn.PrepareBatch(ctx, expand(`INSERT INTO {db}.schema_migrations (version, name, applied_at)`))
		if err != nil {
			return fmt.Errorf("cannot record schema migration %d: %w", m.version, err)
		}
		if err := b.Append(m.version, m.name, time.Now().UTC()); err != nil {
			b.Abort()
			return fmt.Errorf("cannot record schema migration %d: %w", m.version, err)
		}
		if err := b.Send(); err != nil {
			return fmt.Errorf("cannot record schema migration %d: %w", m.version, err)
		}
	}
	if applied[dimRollupsVersion] {
		// A run of version 2 that read schema_migrations before another
		// run recorded it may have created the gaps view again after that
		// run dropped it, and died before dropping it itself. Nothing
		// needs the view once version 2 is recorded.
		if err := mig.exec(ctx, `DROP TABLE IF EXISTS {db}.`+gapsView); err != nil {
			return fmt.Errorf("cannot drop %s: %w", gapsView, err)
		}
		if err := mig.dropBackfillLeftovers(ctx, 24*time.Hour); err != nil {
			return err
		}
	}
	return nil
}

func appliedVersions(ctx context.Context, conn driver.Conn, expand func(string) string) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, expand(`SELECT DISTINCT version FROM {db}.schema_migrations`))
	if err != nil {
		return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("cannot read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

// validIdent accepts plain identifiers only, so names can be spliced into
// SQL safely.
func validIdent(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("invalid ClickHouse database name %q: must be 1-64 characters", s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return fmt.Errorf("invalid ClickHouse database name %q: use letters, digits and '_'", s)
		}
	}
	return nil
}

func quoteIdent(s string) string { return "`" + s + "`" }

// Open connects to ClickHouse at addr (native protocol) with the settings
// the shipper and the reports use.
func Open(addr, user, password string, dialTimeout time.Duration) (driver.Conn, error) {
	conn, err := chgo.Open(&chgo.Options{
		Addr:             []string{addr},
		Auth:             chgo.Auth{Database: "default", Username: user, Password: password},
		DialTimeout:      dialTimeout,
		ReadTimeout:      30 * time.Second,
		MaxOpenConns:     4,
		MaxIdleConns:     2,
		ConnMaxLifetime:  time.Hour,
		Compression:      &chgo.Compression{Method: chgo.CompressionLZ4},
		ConnOpenStrategy: chgo.ConnOpenInOrder,
	})
	if err != nil {
		return nil, fmt.Errorf("cannot open ClickHouse connection to %s: %w", addr, err)
	}
	return conn, nil
}
