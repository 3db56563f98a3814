// Package events owns what happens after an ad is served: the event model,
// signed tracking URLs (beacons), de-duplication and charging of verified
// beacons, and the durable local event log that the ClickHouse shipper
// (package events/clickhouse) drains.
//
// The pieces, in the order a beacon meets them:
//
//   - Signer builds tracking URLs (AppendURL) and verifies them (Verify):
//     HMAC-SHA256 over every signed field, key ids so keys rotate, expiry,
//     and the OpenRTB ${AUCTION_PRICE} macro checked against a signed ceiling.
//   - Recorder turns a verified Beacon into an Event, drops repeats (an exact
//     recent-id set plus a bounded ristretto cache), appends the event to the
//     Log and then calls the Charger. It knows no HTTP.
//   - Log is a segmented, CRC32C-checked, group-fsynced append-only file set
//     with a persisted "acked" position; it assigns every record a per-node
//     monotonically increasing sequence number, which the shipper uses to
//     make delivery to ClickHouse exactly once.
//
// Money is an int64 count of micros everywhere. Time comes from injectable
// clocks (Now fields defaulting to time.Now).
//
// Concurrency: Signer, Recorder and Log are safe for concurrent use by many
// goroutines once constructed; their configuration fields must not change
// after first use. A Reader (from Log.NewReader) and a Beacon or Event value
// are not safe for concurrent use. Hot paths take no global lock: Signer
// uses pooled HMAC states, Recorder de-duplicates under one of 64 striped
// locks, and Log.Append holds its mutex only to copy bytes into memory (the
// disk write and fsync happen in a background goroutine).
package events
