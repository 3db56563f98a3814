// Package pacing owns the spending side of a decision: daily and lifetime
// budgets with a hard stop, reservations between a decision and its
// beacon, the throttle that spreads an even campaign's budget over its
// day, and frequency caps. It knows no HTTP and no Kafka; the spend of the
// other nodes reaches it through [Pacer.ApplyRemote], fed by the
// pacing/spendsync package.
//
// # Wiring
//
//	p, err := pacing.New(pacing.Config{NodeID: host})      // defaults documented on Config
//	sync, err := spendsync.New(spendsync.Config{Brokers: brokers}, p) // optional: several nodes
//	go p.Run(ctx)    // Tick every ControlInterval
//	go sync.Run(ctx) // replay the spend topic, then publish and consume
//
//	// per ad request:  p.Observe(placementID, now)
//	// per candidate:   ok, reason := p.Allow(c, now); p.CapAllows(userID, c, now)
//	// per winner:      res, ok := p.Reserve(c, expectedCost, now); p.CapRecord(userID, c, now)
//	// slot not served: p.Cancel(res)
//	// per valid beacon (events package): p.Charge(campaignID, cost, at)
//
// /readyz should report p.Ready(): false while a restarted node replays
// today's spend, during which Allow answers ReasonNotReady.
//
// # Money and time
//
// Budgets, spend and reservations are integer micros ([campaign.Micros]);
// floating point appears only in the controller's pass probability, its
// demand estimate and the plan's fractions, never in what is charged. All
// times come from the caller (the decision and beacon paths take `now`) or
// from Config.Clock; randomness comes from one splitmix64 stream per
// campaign seeded from Config.Seed, so a simulation on an injected clock
// replays exactly.
//
// # Budgets
//
// A day is the campaign's local calendar day ([Day]): it starts at local
// midnight and lasts 23, 24 or 25 hours across daylight-saving changes
// (where a zone skips midnight, the day starts at the transition). Each
// node keeps, per campaign, its spend of the current and the previous day
// (a beacon charged just after midnight for an impression served before it
// counts against the previous day), its lifetime spend and its outstanding
// reservations.
//
// Allow refuses a campaign, ReasonBudgetExhausted or
// ReasonTotalBudgetExhausted, when spend plus reservations leave no room:
// a hard stop. Reserve holds a decision's expected cost (CPM: clearing
// price / 1000; CPC: bid times predicted click rate) and fails when it
// does not fit, atomically (compare-and-swap on the reserved sum). A
// reservation lives in a ring of ReservationExpiry/30 time slots; a charge
// releases the campaign's oldest reservations on the charging node up to
// the amount charged (first in, first out: the beacon that lands on another
// node than its decision settles that node's oldest ones, which on
// average are the same amount), Cancel releases one explicitly, and Tick
// drops slots older than ReservationExpiry (default 1m). Charges are never
// refused: a served ad is paid.
//
// With only a lifetime budget, an even campaign plans each day for what
// remains spread over the flight's remaining days.
//
// # Budgets across nodes: the share rule and the overspend bound
//
// Every node publishes, at least once a second, its usage U_i = spend +
// reservations per campaign and day; every node applies everyone's
// records. Node i admits a cost only while
//
//	own usage + cost <= P_i + (B - P_i - O_i) / n
//
// where P_i is its usage as last published (what the others know of it),
// O_i the others' usage as last heard, and n the node count (Config.Nodes,
// or the nodes heard within NodeTTL). Far from exhaustion the right side
// is large and nothing changes; as the remainder shrinks below about n
// times a node's spend per flush, each node may commit only its 1/n share
// of what remains until its next flush, and every flush hands out a share
// of the new remainder. The rule needs no separate mode and no rate
// estimate.
//
// Bound: when every node has heard every record, the n ceilings sum to
// exactly B, whatever the flush interval. Views differ only by records in
// flight (published, not yet applied), so the total committed exceeds B by
// at most (n-1)/n times the growth of the fleet's usage during one
// publish-to-apply latency (tens of milliseconds on a healthy cluster),
// instead of up to (n-1) times the remainder with a plain global check
// that lets every node take the whole remainder between flushes. During a
// Kafka outage P_i stops moving, so each node can add at most 1/n of what
// remained: the fleet cannot overspend, it only stalls near the end. With
// n taken from heartbeats instead of Config.Nodes, a node joining or
// leaving makes the shares disagree for up to NodeTTL; the count never
// shrinks while this node's own consumer is stalled. Spend not covered by
// a reservation adds to the bound: clicks on a CPC campaign beyond the
// expected cost reserved for them, and beacons later than
// ReservationExpiry. The simulator (cmd/pacesim) measures the result: with
// 3 nodes, overspend of at most 0.01% of a daily budget, all of it CPC
// clicks arriving after the stop.
//
// # Pacing
//
// An asap campaign passes every request until its budget is gone. An
// even campaign passes each request with probability pass (Allow draws
// from the campaign's random stream); Tick, every ControlInterval
// (default 5s), updates pass per campaign and node:
//
// Plan. At the first Tick of a local day the campaign gets a target curve:
// the day budget spread over the day in proportion to the expected traffic
// of each quarter-hour, compressed to end FinishEarly (default 30m) before
// midnight, so that a late shortfall can still be made up, and clipped to
// the flight. A campaign first seen mid-day with nothing spent plans from
// that moment instead of rushing to catch up. Expected traffic comes from
// the profiles Observe learns: request counts per UTC quarter-hour,
// folded at each UTC midnight into an exponential average across days
// (weight 1/2 for the newest day, smoothed with a [1/4 1/2 1/4] kernel,
// ignoring days with fewer than 384 requests or not observed from their
// start). A campaign whose targeting names placements in every conjunction
// uses the traffic-weighted mix of those placements' profiles; otherwise
// the profile of all traffic; with no complete day learnt yet, uniform.
//
// Controller. A feed-forward and feedback throttle in the family of
// Agarwal et al., "Budget pacing for targeted online advertisements at
// LinkedIn" (KDD 2014), which updates a pass-through probability at a
// fixed interval from the gap between actual and planned spend, with slow
// start. Here, each interval:
//
//  1. Demand: the global committed spend (all nodes, spend plus
//     reservations) grew by inc during dt at pass p; inc/(p*dt*traffic(t))
//     is a sample of the demand D, the spend of a full day of traffic at
//     pass 1. D is an exponential average of the samples (time constant
//     180s); it carries over from day to day.
//  2. Wanted rate: w = B*plan'(t) + (B*plan(t) - spent)/CatchUp, the
//     plan's rate plus the gap to the plan closed over CatchUp (default
//     15m), never negative.
//  3. Pass: p = w / (D*traffic(t)), moved at most x2 or /2 per interval,
//     kept within [MinPassRate, 1] (default floor 1e-5; traffic(t) is
//     floored at 5% of its mean so a near-empty quarter-hour cannot blow
//     it up).
//
// Where the paper steps p by a fixed factor up or down, this sets the step
// to the ratio the demand estimate calls for, so it lands in one interval
// when the estimate is right and never oscillates by the step size; the
// x2 bound keeps a bad estimate from doing harm. Slow start: a campaign
// with no demand estimate starts at InitialPassRate (default 0.05) and
// doubles each interval until spend is seen. Every node runs the update on
// the fleet's figures, so together they follow the plan without talking;
// their individual pass rates need not be equal.
//
// # Frequency caps
//
// See [FreqCaps]: count per user and campaign over a fixed window opened
// by the first exposure, counted at decision time (CapRecord when the
// campaign wins), held in a ristretto cache bounded by
// Config.FreqCapMaxCost. A request without a user id never passes a capped
// campaign. Caps are per node unless the load balancer routes each user to
// one node.
//
// # Concurrency
//
// Every method of Pacer is safe for concurrent use. The decision and
// beacon paths (Allow, Reserve, Cancel, Charge, Observe, CapAllows,
// CapRecord) use per-campaign atomics and take no lock once a campaign and
// placement are known; a new campaign or placement waits on a short mutex
// until the next merge of the read-mostly index, and the first decision of
// a day takes the campaign's mutex once. Nothing on these paths logs or
// allocates (CapRecord allocates one entry per user, campaign and window).
// Tick is serialized; AppendDeltas and Published are meant for one
// goroutine (the sync's flush); ApplyRemote may run on several. A
// *campaign.Campaign passed in must not be modified afterwards (the
// campaign package's rule): the pacer keeps the newest pointer it was
// given per campaign id.
package pacing
