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
// today's spend, during which Allow answers ReasonNotReady. With a spend
// sync, a node serves a budgeted campaign once it holds a share of its
// budget (see the share rule below): at its first flush after it is
// ready (in auto mode the second), so within a second or two.
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
// With a spend sync attached, each node holds a ceiling per budget (per
// campaign and local day for the daily budget, per campaign for the
// lifetime budget): the most its usage U_i, spend plus reservations, may
// reach. It commits a cost only while U_i + cost <= C_i (and while the
// budget leaves room beside what it hears the others hold, so that a
// budget cut applies at once). Every node publishes its ceilings with its
// spend at least once a second, and counts for each other node j what j
// holds: H_j = max(C_j, U_j) as last heard while j may be serving (heard
// from within ReservationExpiry, or this node's own consumer has not been
// healthy that long), else U_j (its spend and unexpired reservations).
//
// At each flush node i, holding H_i = max(C_i, U_i) and hearing the others
// hold O_i in all, sees F = B - H_i - O_i free under budget B and moves its
// ceiling:
//
//	hungry (refused for lack of room since its last flush):  C_i' = H_i + F/n
//	otherwise:                                             C_i' = U_i + (F + H_i - U_i)/n
//
// where n is Config.Nodes or, in auto mode, the nodes heard within NodeTTL.
// A hungry node keeps what it holds and takes 1/n of the free budget; any
// other node keeps what it uses plus 1/n of its idle allowance and of the
// free budget, handing the rest back, so budget flows to the nodes that
// have the traffic (changes under 1/8 of the allowance are skipped, so an
// idle campaign's ceilings settle). A lowered ceiling applies at once; a
// raised one only once the record carrying it is on the topic, and only
// when the node has read back the heartbeat of its previous flush (its
// view of the others is fresh). The exception is a budget's first ceiling
// on a node (after a start, for a new campaign, at local midnight): the
// decision path takes it at once by the hungry rule, so that a new
// campaign serves from its first request, and the next flush publishes
// it unchanged (no raise on top before the others have heard it). For the
// bound it is a raise that takes effect up to one flush interval before
// it is heard, the window a raise computed just before a flush also has.
// A node may take it only when it may raise at all: in auto mode, once its
// first heartbeat has been read back (the spend sync publishes one and
// waits for it before it reports ready). Until then Allow answers
// ReasonSharePending.
//
// Bound: the ceilings of the fleet sum to at most B, so its committed
// spend does too. In both rules C_i' - H_i <= F/n: a raise takes at most
// 1/n of what the raising node sees free. Call two raises concurrent when
// neither node had heard the other's when computing its own. Provided (a)
// n is at least the number of nodes that raise, and (b) a node's flush
// interval exceeds the time its records take to be acknowledged and
// applied by every node (milliseconds against a second), the sum of the
// H_j stays <= B. Sketch, by induction over raises in the order they take
// effect: by (b) a raise misses at most one raise of each other node (a
// node's next raise comes a flush later, when its previous one has been
// heard everywhere). What a node sees free exceeds the truth only by the
// concurrent raises it misses; the lowerings it misses make it see less,
// and those it sees it shares with at most n-1 others, 1/n each. So a set
// of mutually concurrent raises, at most one per node, each at most 1/n
// of what was free before the set, adds at most what was free. Unlike the
// first version of this rule, which counted only the others' published
// usage, records in flight do not add to the bound: there, the node
// flushing first saw nothing of what the others had committed since their
// last flush and took 1/n of the remainder on top of it, 21-33% over a
// budget spent within a few flush intervals (cmd/adserver's
// TestPacingThreeProcesses; TestShareRuleStaggeredFlushes replays it).
//
// Utilisation: a node stops when its allowance C_i - U_i is below the cost
// it needs; hungry nodes keep taking F/n, so the fleet ends with less than
// one decision's cost per node unspent (plus less than n micros). Far from
// exhaustion the allowances are large (about (B - sum U)/(2n-1) each) and
// the rule does not bind; it needs no separate mode and no rate estimate.
//
// Beyond the bound: spend not covered by a reservation (clicks on a CPC
// campaign beyond the expected cost reserved for them, beacons later than
// ReservationExpiry, and beacons charged on another node than their
// decision's beyond that node's own reservations, which the charge
// settles first in, first out; random routing balances these on
// average); a reservation racing the lowering of a ceiling (the instant
// of one compare-and-swap per serving goroutine); and failures of (a) or
// (b):
//
//   - Config.Nodes set below the fleet's size breaks (a). In auto mode, a
//     node raises nothing before the heartbeat of a previous flush of its
//     own has been read back, nor when its last heartbeat is older than
//     3/4 NodeTTL: every node that raises has been heard, and counted, by
//     every other one a flush before (node clocks must agree to well
//     within NodeTTL/4). A new node therefore starts one flush late, with
//     the count its replay gave it, and nodes starting together each wait
//     for their own heartbeat. The count shrinks only after NodeTTL of
//     silence, never while this node's own consumer is stalled.
//   - A consumer lagging by more than a flush interval breaks (b) for the
//     raises it misses: a node whose own records are not read back does
//     not raise; the others' lag costs at most the raises it hides.
//   - A node cut off from Kafka while it keeps serving keeps its ceiling
//     (it cannot raise it); after ReservationExpiry of silence the others
//     count only what it last published and hand its allowance out again:
//     overspend up to that node's allowance at the cut. A node that is
//     gone for good loses nothing: its allowance returns to the others the
//     same way. During an outage of Kafka as a whole nobody can raise: the
//     fleet serves up to its ceilings, together at most B, then stalls, and
//     no node opens a new day or a new campaign until the topic is back.
//   - A node restarted with the same NodeID takes its ceilings back from
//     its records if its last record is younger than ReservationExpiry/2
//     (the others still count them), else it gives them up and takes a
//     share again like a new node. Its reservations outstanding at its
//     last record are held again until they expire, so the beacons of its
//     decisions from before the restart settle them.
//
// A pacer without a spend sync takes a static 1/Nodes of every budget.
// The simulator (cmd/pacesim, -stagger for flushes on separate tickers as
// in production) measures the result: see its README.
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
// goroutine (the sync's flush), and only they move this node's ceilings
// (plus the replay before the node is ready); ApplyRemote may run on
// several. A
// *campaign.Campaign passed in must not be modified afterwards (the
// campaign package's rule): the pacer keeps the newest pointer it was
// given per campaign id.
package pacing
