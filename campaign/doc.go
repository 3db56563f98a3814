// Package campaign is the ad server's shared vocabulary: advertisers,
// campaigns, creatives, placements and targeting expressions, their JSON
// codec (the management API body and the Kafka record value are the same
// JSON), and their validation.
//
// Money is parsed straight from the JSON decimal into integer [Micros]; no
// float ever holds money. Decoding is strict: unknown fields, wrong types and
// invalid values are reported with their field path, and [Validate] returns
// every problem at once rather than the first.
//
// Values of these types are immutable once decoded and validated: the
// targeting index, the auction and the pacer share them between goroutines
// without locks. Never modify a *Campaign reachable from a snapshot; decode
// a new one instead.
package campaign
