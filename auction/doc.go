// Package auction ranks the candidates of an ad request and prices the
// winners. It owns:
//
//   - eCPM: what a bid is worth per thousand impressions ([ECPM]);
//   - ranking: priority tiers first, eCPM within a tier, ties broken by an
//     injected random source ([Rand]);
//   - floors: a candidate whose eCPM is below the slot's reserve is dropped;
//   - pricing: second price (the default) or first price per placement
//     ([Rule]), and the bid an OpenRTB response carries ([RTBBidPrice]);
//   - multi-slot filling with competitive exclusion (one ad per advertiser
//     per request);
//   - creative rotation by weight ([PickCreative]);
//   - the predicted click-through rate of CPC bids, learned online from
//     impression and click beacons ([CTRModel]);
//   - an explanation of every candidate's outcome ([Outcome]).
//
// It does not choose candidates: the targeting index, budget pacing,
// frequency caps and blocks run before it, and the caller passes the
// survivors, one list per slot, each with a creative that fits the slot.
//
// # Money
//
// Money is integer [campaign.Micros] throughout. A CPM bid's eCPM is its
// amount. A CPC bid's eCPM is amount × pCTR × 1000, where pCTR, a float64
// estimate, is first quantised to whole parts per billion (truncated), and
// the product is computed in integers and rounded down to a whole micro. A
// CPC clearing price (micros per click) is clearing eCPM / (pCTR × 1000)
// rounded up to a whole micro and then capped at the bid, so the price never
// exceeds the bid and its eCPM is never below the clearing eCPM (and so
// never below the reserve). Floats never hold a money result.
//
// # Pricing
//
// The reserve of a slot is the larger of the placement floor
// ([Request.Floor]) and the slot's own floor ([Slot.Floor]), both CPM
// micros. Under [SecondPrice] the winner pays
//
//	min(max(runner-up eCPM, reserve) + OneCent, winner eCPM)
//
// converted to its own bid unit. The runner-up is the next candidate in the
// same slot's ranking that could have won the slot instead: above the
// reserve, of another advertiser, and whose advertiser had not already won
// an earlier-filled slot. A runner-up in a lower priority tier still sets
// the price; when its eCPM is above the winner's, the cap makes the winner
// pay its own eCPM. With no runner-up the winner pays reserve + OneCent,
// capped at its eCPM; with a reserve of 0 that is one cent (or the bid, if
// smaller). Under [FirstPrice] the winner pays its bid.
//
// # Multi-slot requests
//
// Slots are filled greedily in descending value: at each step the unfilled
// slot whose best still-eligible candidate ranks highest (priority, then
// eCPM, then the random tie key) is filled next, and that winner's
// advertiser is excluded from every other slot. Value is re-evaluated after
// each fill because exclusion can change a slot's best candidate. One
// campaign may be listed in several slots' candidate lists (with the
// creative that fits each); it wins at most one of them.
//
// # Concurrency
//
// [Auction] holds reusable scratch buffers: it is not safe for concurrent
// use; take one per goroutine or from [AcquireAuction]/[ReleaseAuction]. Its
// results alias its buffers and the [Request]: they are valid until the next
// Run or Reset. The functions of the package are pure: no I/O, no clock,
// randomness only from the [Rand] passed in, and the campaigns passed in are
// only read. [CTRModel] is safe for concurrent use: reads take no lock and
// do not allocate, and counters are updated atomically.
package auction
