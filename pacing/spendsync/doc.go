// Package spendsync shares budget spend between ad server nodes over the
// Kafka topic adserver.spend (kafka-go client). Each node publishes its
// own spend and reads everyone's, so that every node's pacer sees the
// fleet's spend; see the pacing package doc for how the pacer uses it and
// the overspend bound.
//
// # Records
//
// A record describes one node's state for one campaign and local day:
//
//	key:   "<campaign id>/<node id>"   ("<node id>" for a heartbeat)
//	value: {"v":1,"node":"n1","campaign":"c-1","day":"2026-11-24",
//	        "day_spend_micros":1200000,"delta_micros":2000,
//	        "total_spend_micros":5400000,"reserved_micros":3000,
//	        "day_ceiling_micros":1250000,"total_ceiling_micros":5450000,
//	        "seq":1795000000000123,"ts":"2026-11-24T10:00:01.5Z"}
//
// Amounts are cumulative integer micros: the node's spend on that day, its
// lifetime spend, its outstanding reservations, and its ceilings: the
// most its spend plus reservations may reach under the daily and the
// lifetime budget (the pacing package's share rule). The ceilings are
// optional: a node holding none leaves them out, and so do records of
// nodes that predate them, which the others then count by their spend
// alone. delta_micros (the change since its previous record for the day)
// is informational. Cumulative
// values make the stream idempotent: a record applied twice, replayed or
// duplicated by a producer retry changes nothing, and a failed publish is
// simply superseded by the next one. Receivers keep, per campaign and
// node, the record with the highest seq (which grows across restarts: it
// is at least the clock in microseconds).
//
// Key choice: campaign plus node. One key's records stay in order in one
// partition; campaigns spread over partitions; and a compacted topic keeps
// exactly the newest record of every (campaign, node), which is all a
// restarted node needs, lifetime spend included. Create the topic with
// cleanup.policy=compact (any partition count; adding partitions later
// needs a restart of the nodes). With time retention instead, set
// Config.RebuildFrom and keep retention above the longest flight, or
// lifetime budgets forget older spend.
//
// Every FlushInterval (default and maximum 1s) a node publishes one record
// per campaign and day whose spend, reservations, lifetime spend or
// ceilings changed, republishes outstanding reservations every half
// ReservationExpiry, and always sends a heartbeat (the pacer counts live
// nodes from them, and counts their ceilings while they are heard). One
// produce request per partition, acks=all; a raised ceiling takes effect
// on the node only once its record is acknowledged (Flush calls
// Published), and the node raises nothing until it has read back its
// previous heartbeat, so the flush interval must stay well above the
// topic's publish-to-apply latency.
//
// # Start and readiness
//
// New marks the pacer not ready. Run reads every partition from its first
// offset (or the offsets at now-RebuildFrom) up to the end offsets it
// found at start, applying the other nodes' records and taking this node's
// own back (same node id: its spend of today and lifetime continue where
// they were; charges taken meanwhile add on top), then marks the pacer
// ready and starts publishing. It never publishes before: its records must
// not go back in time. WaitReady blocks until then.
//
// # Failures
//
// Kafka errors are retried without end: metadata and offsets every
// second until the topic answers (the node stays not ready), reads by the
// readers with backoff, publishes at the next flush. A malformed record
// (bad JSON, unknown version, missing or negative amounts, bad day, time
// or node id) is skipped and counted, never fatal. Logs are rate-limited
// to one line per loop per 10s.
//
// Metrics (VictoriaMetrics/metrics, default set):
// adserver_spend_sync_records_published_total,
// adserver_spend_sync_records_applied_total,
// adserver_spend_sync_records_malformed_total,
// adserver_spend_sync_publish_errors_total.
//
// # Cost
//
// Records per second = nodes x campaigns spending; every node decodes all
// of them (0.5 to 1µs each on the fast path for this package's own
// encoding). At 20 nodes x 5,000 active campaigns that is 100k records/s
// per node, 50 to 100ms of CPU per second: past that, batch a node's
// campaigns into one record per flush.
//
// # Concurrency
//
// Run starts one reader goroutine per partition, which call
// Local.ApplyRemote concurrently; Flush is serialized by a mutex (the
// flush loop and a caller may both call it). All methods are safe for
// concurrent use. Call Run once; Close after it returned.
package spendsync
