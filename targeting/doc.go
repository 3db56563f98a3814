// Package targeting finds the campaigns eligible for an ad request: a
// boolean-expression index over the campaigns' targeting, after Whang et
// al., "Indexing Boolean Expressions" (VLDB 2009), its brute-force twin
// [Scan], per-campaign explanations ([Index.Explain]) and request
// attribute extraction ([ParseUA]).
//
// # Index
//
// A campaign's targeting is an OR of ANDs. Every conjunction of every
// active campaign gets an id and a size K, the number of distinct
// attributes among its IN predicates; conjunctions without IN predicates
// (run-of-network included) have size 0. Attribute-value keys are
// interned to integer ids, and for each key and size a posting list holds
// the sorted ids of the conjunctions that name the key: ∈ entries for IN
// predicates (as a slice of ids, or a bitmap when dense), ∉ entries for
// NOT IN predicates. Size-0 conjunctions also have an ∈ entry in the Z
// list. [Index.Query] selects, size by size, the conjunctions found in
// the posting lists of the request's keys for K distinct attributes and in
// none of its ∉ lists, in one of two ways chosen per size by an estimate
// of their costs: the paper's Conjunction algorithm, which walks the lists
// in step skipping by conjunction id (walk.go), cheapest when the lists
// are sparse in a wide id range (a large catalog, a selective request);
// or counting, which adds the lists attribute by attribute into bitmaps
// of "found for at least j attributes" over the lists' id range
// (count.go), several times cheaper when they are dense, as in a broad
// catalog where a request's values each name hundreds of conjunctions.
// Either way it never looks at campaigns the request cannot match.
// [Build] numbers the conjunctions so that similar ones (same size, same
// attributes, same common values) are adjacent, which lets the walk skip
// whole runs of them and keeps the counted id ranges short.
// [Index.QueryMatches] also gives each match's priority and a digest of
// its creatives' formats and sizes ([CreativeBits]) from the index, so
// that a caller ranking by priority and creative fit need not load the
// campaigns it will not rank.
//
// hour and weekday hold in each campaign's own time zone: their keys carry
// the zone, and a query looks up, for every zone that hour or weekday
// predicates use, the hour and weekday of its time in that zone. Only
// active campaigns are indexed; the flight window [Start, End) is checked
// on the matches, so a snapshot stays correct as time passes.
//
// # Snapshots and concurrency
//
// An [Index] is immutable: any number of goroutines may query it without
// locks. [Build] makes one from scratch; [Index.Update] derives a new one
// from an old one, copying only the posting lists and the small chunks of
// its arrays and maps that the change touches (see update.go), so a batch
// costs far less than a rebuild. The occasional compaction that renumbers
// the index after many updates runs on a goroutine of its own, from a
// snapshot; a later Update catches it up with the batches applied
// meanwhile, a bounded number per call, and returns it (see compact.go):
// no Update does work of the catalog's size unless its own batch is of
// that size. [Live] holds the current snapshot behind
// an atomic pointer: the feed calls Update then Store, request handlers
// call Load once per request and use that snapshot throughout. Campaigns
// handed to the index must have passed campaign.Validate and must never be
// modified afterwards.
//
// An [Attrs] holds one request's attribute values and the query's scratch
// buffers; it belongs to one goroutine at a time (pool them with
// [AcquireAttrs] and [ReleaseAttrs]). With a reused Attrs and result
// slice, Query does not allocate.
package targeting
