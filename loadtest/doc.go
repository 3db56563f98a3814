// Package loadtest is the ad server's load-test harness: a traffic model,
// an open-loop request generator, HDR latency histograms, result files and
// charts, and the catalog seeder. cmd/loadtest is a thin main over Main.
//
// # Traffic
//
// A [Scenario] (JSON, with a built-in default printed by `loadtest
// scenario`) describes users drawn from a Zipf law, placements and slot
// sizes, country/region/city, device/OS/browser and language mixes, per-user
// segments, per-request keywords, and a 24-hour day shape (the embedded
// testdata/traffic-hourly.json). A [Generator] compiles it into tables and
// fills a reusable [Request] with indices, which AppendAdRequest and
// AppendOpenRTB encode into caller-owned buffers without allocating. A
// user's attributes derive from the user id, so a returning user looks the
// same. [BuildCatalog] draws campaigns from the same distributions, sized so
// that the targeting of an estimated 1-5% of the catalog matches a request
// (the index's answer; about 1% also has a creative of the slot's size).
//
// # Models and measurement
//
// With Rate > 0 ([Config]) the run is an open model: a [Schedule] plans
// the intended send time of every request (constant rate, optional linear
// ramp, optional day shape compressed into the run). Concurrency workers
// claim requests in order; a worker waits for the request's intended time
// and sends it. When every worker is busy (the server is slow or stalled),
// requests whose time has come wait for a free worker: they are sent as soon
// as one frees up, counted late if more than LateThreshold (10ms) behind,
// and their latency is measured from the intended time (as wrk2 does), so a
// stall shows in the tail for every request due during it. (A request whose
// worker was idle and waiting for it is timed from its actual send instead:
// its only delay is Go's ~1ms timer slop, which is the harness's, not the
// server's; Result.MaxLagMs shows it.) The in-flight count never exceeds
// Concurrency. Requests still unclaimed when
// the duration ends are never sent: they are counted dropped and reported,
// and are not in the latency figures. With Rate 0 the run is a closed model:
// Concurrency workers send back to back, latency from the actual send.
//
// Requests go round-robin over the targets through one fasthttp.HostClient
// per target (MaxConns = Concurrency, no retries). Fills are followed by
// impression beacons (ImpRate), impressions by clicks (CTR; the 302 is not
// followed) and clicks by conversions (ConvRate): the ad's conversion_url
// when it has one, else the signed postback the click's 302 carries in its
// landing URL (ConversionParam), as the advertiser's page would call it;
// a click with neither counts its conversion as skipped. Beacons are sent by their
// own workers from a bounded queue (overflow is dropped and counted) to the
// node that served the ad, whatever host the tracking URL names. For OpenRTB
// the impression is the bid's burl with ${AUCTION_PRICE} replaced by the
// price, and clicks/conversions follow bid.ext.click_url/conversion_url.
//
// An answer is read with a reused fastjson parser that validates it whole
// but decodes only what the beacons need, so that the harness's own cost per
// request stays close to what it pays for the baseline's empty answers.
//
// With Baseline, the same schedule first runs against an empty fasthttp
// server on 127.0.0.1:0 ([BaselineServer], 204 to everything), then against
// the targets; the result carries both and their ratios. The baseline server
// runs inside the harness's process, so on a small machine the two share
// the cores just as the harness and a local ad server do; do not pin them
// apart (the ad server's share of the cores would differ between phases).
//
// # Concurrency
//
// [Scenario], [Generator] and [Schedule] are immutable once built and safe
// for concurrent use. A [Source] and a [Request] belong to one goroutine.
// [Run] and [Seed] are safe to call concurrently with each other; each run's
// recorder serialises its updates under one mutex, which also keeps
// completions in time order for the per-second series.
package loadtest
