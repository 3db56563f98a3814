// Package targeting finds the campaigns eligible for an ad request: a
// boolean-expression index over the campaigns' targeting, after Whang et
// al., "Indexing Boolean Expressions" (VLDB 2009), plus request attribute
// extraction ([ParseUA]).
//
// # Index
//
// A campaign's targeting is an OR of ANDs. Every conjunction of every
// active campaign gets an id and a size K, the number of distinct
// attributes among its IN predicates; conjunctions without IN predicates
// (run-of-network included) have size 0. For each interned key (attribute,
// value), and for each size, a posting list holds the sorted ids of the
// conjunctions that name the key: an ∈ entry, carrying the IN predicates
// the key satisfies, or an ∉ entry for a NOT IN predicate. Size-0
// conjunctions also have an ∈ entry in the Z list. [Index.Query] walks the
// posting lists of the request's keys per size, skipping by conjunction id,
// and never looks at campaigns the request cannot match.
//
// hour and weekday hold in each campaign's own time zone: their keys carry
// the zone, and a query adds, for every zone that hour or weekday
// predicates use, the hour and weekday of its time in that zone. Only
// active campaigns are indexed; the flight window [Start, End) is checked
// on the matches, so a snapshot stays correct as time passes.
//
// # Snapshots and concurrency
//
// An [Index] is immutable: any number of goroutines may query it without
// locks. [Build] makes one from scratch; [Index.Update] derives a new one
// from an old one, copying only the posting lists and the small chunks of
// its arrays and maps that the change touches (see update.go), so applying
// a batch costs far less than a rebuild. [Live] holds the current snapshot
// behind an atomic pointer: the feed calls Update then Store, request
// handlers call Load once per request and use that snapshot throughout.
// Campaigns handed to the index must have passed campaign.Validate and
// must never be modified afterwards.
//
// An [Attrs] holds one request's attribute values and the query's scratch
// buffers; it belongs to one goroutine at a time. With a reused Attrs and
// result slice, Query does not allocate.
package targeting
