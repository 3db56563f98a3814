// Package clickhouse ships the durable event log (package events) to
// ClickHouse and owns the ClickHouse schema.
//
// # Schema
//
// Migrate creates, idempotently and versioned through a schema_migrations
// table: the raw events table (ReplacingMergeTree keyed by event id,
// partitioned by UTC day), the sampled decisions table, and hourly
// SummingMergeTree rollups fed by materialized views on events. Version 1:
// rollup_hourly (advertiser, campaign, creative, placement, publisher,
// country) and rollup_campaign_hourly (advertiser, campaign). Version 2:
// rollup_creative_hourly (campaign, creative),
// rollup_campaign_country_hourly, rollup_campaign_placement_hourly and
// rollup_placement_country_hourly, each by advertiser too, so a report
// grouped by one or two dimensions reads far fewer rows; and
// rollup_backfill_gaps. It runs on ClickHouse 18.16 (Debian) and on
// current releases; see deploy/clickhouse-schema.md.
//
// An upgrade to version 2 copies rollup_hourly into the new rollups while
// other nodes may go on inserting (see addDimRollups). An insert that
// reached rollup_hourly after the copy read it, yet started before the new
// views existed, is in neither; no insert is in both. A view that logs the
// hour of every insert during the upgrade puts the hours of such inserts
// in rollup_backfill_gaps. Readers use the new rollups only once version 2
// is recorded, and read rollup_hourly for the gap hours. A new database
// has no gap hours unless events arrive while it is created.
//
// # Delivery guarantee
//
// Every row carries (node_id, seq): seq is the Log's per-node sequence
// number, strictly increasing in log order. The Shipper reads the log in
// order from the acked position, inserts contiguous batches in seq order
// with named columns, and acknowledges a batch in the log (which lets the
// log delete it) only after the insert succeeded. Each insert holds rows
// of a single UTC day, hence a single partition of a single table, and is
// sent as one block, so ClickHouse applies it atomically: all rows or none.
//
// Materialized views count every insert (every rollup has one, all fed
// from events alike), so re-sending a batch that did land would double
// the rollups. Whenever the outcome of an insert is
// unknown (connection cut after the data was sent, timeout, server
// restart) and once at start-up, the shipper first waits until no insert
// of its own is still running on the server (system.processes, by query
// id prefix) and then asks
//
//	SELECT max(seq) FROM events WHERE node_id = ? AND seq >= ? AND time >= ?
//
// Rows with seq at or below the answer landed (batches land atomically and
// in order) and are dropped; the rest are sent again. Together this gives
// exactly-once rows in events and exactly-once counts in the rollups for
// every event the Recorder accepted, provided that:
//
//   - node ids are unique among nodes writing to the same database, and
//     stable across restarts of a node;
//   - the log's sequence numbers never go back (events.Log guarantees it,
//     even across a wiped data directory, while the clock does not jump
//     back by more than the time since the last start);
//   - an event whose time lies more than Config.Lookback before the first
//     unacknowledged record is not relied upon to be found (it is used only
//     to prune partitions).
//
// Decisions (sampled auctions) have no rollups; after an uncertain failure
// they may be inserted twice, and ReplacingMergeTree collapses the copies
// on merge (query them with FINAL for exact counts). Repeated beacons are
// de-duplicated upstream by the Recorder; copies that escape it (repeats
// after its memory window, or on two different nodes) share an event_id and
// collapse in the events table on merge, but each copy counts in the
// rollups.
//
// A batch ClickHouse rejects as invalid (a server exception that is not
// about connectivity, capacity or the schema) is bisected; the rows that
// fail on their own go to a dead-letter file (JSON lines with the reason)
// and the rest ship. Transient failures are retried with exponential
// backoff behind a circuit breaker (adserver_shipper_breaker_state).
// Nothing on the request path ever waits for the shipper: when ClickHouse
// is away the log grows up to its MaxBytes.
//
// # Concurrency
//
// A Shipper runs on the goroutine that calls Run, one Run per Shipper and
// one Shipper per Log. WaitShipped and Stats may be called from any
// goroutine.
package clickhouse
