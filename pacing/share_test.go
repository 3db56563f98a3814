package pacing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

func TestNextCeiling(t *testing.T) {
	const b, n = 900, 3
	for _, tc := range []struct {
		name                string
		ceil, usage, others int64
		hungry, raise       bool
		want                int64
	}{
		{name: "first share", ceil: noCeiling, usage: 0, others: 0, raise: true, want: 300},
		{name: "first share, others hold some", ceil: noCeiling, usage: 0, others: 300, raise: true, want: 200},
		{name: "first share not allowed yet", ceil: noCeiling, usage: 0, others: 0, want: noCeiling},
		// Idle: usage 100 of ceiling 300, others 300: free 300. Keeps its
		// usage and a third of (free + its idle 200): 100 + 500/3 = 266.
		{name: "idle hands back", ceil: 300, usage: 100, others: 300, raise: true, want: 266},
		{name: "lowering needs no raise permission", ceil: 300, usage: 100, others: 300, want: 266},
		// Hungry: holds 300 (used 290), free 300: takes a third of it.
		{name: "hungry takes a third of the free", ceil: 300, usage: 290, others: 300, hungry: true, raise: true, want: 400},
		{name: "hungry but may not raise", ceil: 300, usage: 290, others: 300, hungry: true, want: 300},
		{name: "nothing free", ceil: 300, usage: 300, others: 600, hungry: true, raise: true, want: 300},
		// Usage above the ceiling (a charge beyond its reservation): it holds
		// its usage, and takes a third of what is free beside it.
		{name: "usage above ceiling", ceil: 300, usage: 330, others: 300, hungry: true, raise: true, want: 420},
		// The budget was cut below what is held: every node lowers.
		{name: "budget cut", ceil: 300, usage: 100, others: 900, raise: true, want: 67},
		{name: "budget cut, hungry", ceil: 300, usage: 290, others: 900, hungry: true, raise: true, want: 200},
		// Small changes of an idle ceiling are skipped (1/8 of the allowance).
		{name: "deadband", ceil: 250, usage: 100, others: 300, raise: true, want: 250},
	} {
		got := nextCeiling(b, tc.ceil, tc.usage, tc.others, n, tc.hungry, tc.raise)
		if got != tc.want {
			t.Errorf("%s: nextCeiling(ceil %d, usage %d, others %d) = %d, want %d", tc.name, tc.ceil, tc.usage, tc.others, got, tc.want)
		}
	}
	// The property the bound rests on: a new ceiling never exceeds what the
	// node held by more than 1/n of what was free.
	r := rand.New(rand.NewPCG(1, 2))
	for range 100_000 {
		b := r.Int64N(1_000_000) + 1
		n := r.Int64N(8) + 1
		usage := r.Int64N(b + b/4)
		var ceil int64 = noCeiling
		if r.IntN(4) > 0 {
			ceil = r.Int64N(b + 1)
		}
		others := r.Int64N(b + 1)
		next := nextCeiling(b, ceil, usage, others, n, r.IntN(2) == 0, true)
		held := max(ceil, usage)
		if free := b - held - others; next > held && next-held > max(free, 0)/n {
			t.Fatalf("b %d n %d ceil %d usage %d others %d: next %d raises %d > free/n = %d", b, n, ceil, usage, others, next, next-held, free/n)
		}
	}
}

// fleet is a few pacers sharing budgets through hand-delivered records, as
// spendsync does over Kafka: flush publishes one node's records, deliver
// hands them to a node (the publisher's own copy is its echo).
type fleet struct {
	t     *testing.T
	ps    []*Pacer
	topic []Delta // every record published, in order
}

func newFleet(t *testing.T, n, configured int, now time.Time) *fleet {
	return newFleetConfig(t, n, Config{Nodes: configured}, now)
}

func newFleetConfig(t *testing.T, n int, cfg Config, now time.Time) *fleet {
	f := &fleet{t: t}
	cfg.FreqCapMaxCost = 1 << 20 // no caps here: a small cache starts faster
	for i := range n {
		cfg.NodeID, cfg.Seed = fmt.Sprintf("n%d", i+1), uint64(i)
		p := newTestPacer(t, cfg)
		p.BeginRebuild()
		p.EndRebuild(now)
		f.ps = append(f.ps, p)
	}
	return f
}

func (f *fleet) flush(i int, now time.Time) []Delta {
	ds := f.ps[i].AppendDeltas(nil, now)
	f.ps[i].Published(ds)
	f.topic = append(f.topic, ds...)
	return ds
}

func (f *fleet) ceilings(c *campaign.Campaign, now time.Time) (sum int64) {
	for _, p := range f.ps {
		st, _ := p.Status(c.ID, now)
		sum += max(int64(st.DailyCeiling), 0)
	}
	return sum
}

func (f *fleet) deliver(to int, ds []Delta, now time.Time) {
	for k := range ds {
		f.ps[to].ApplyRemote(&ds[k], now)
	}
}

// syncNode flushes node i and delivers its records to every node at once.
func (f *fleet) syncNode(i int, now time.Time) {
	ds := f.flush(i, now)
	for j := range f.ps {
		f.deliver(j, ds, now)
	}
}

func (f *fleet) spent(c *campaign.Campaign, now time.Time) (total int64) {
	for _, p := range f.ps {
		st, _ := p.Status(c.ID, now)
		total += int64(st.DaySpend)
	}
	return total
}

// The multi-process test's schedule (cmd/adserver TestPacingThreeProcesses)
// on the injected clock: three nodes, a daily budget of 60,000 µ, 510 µ an
// impression, every node serving as fast as its share allows between its
// flushes, the flushes a third of a second apart. The rule that counted
// only the others' published spend let each node take a third of what was
// left on top of what the others had committed but not yet published:
// +33% here. Every record is heard before the next flush, so the bound is
// exact: no overspend at all, and less than one impression per node left.
func TestShareRuleStaggeredFlushes(t *testing.T) {
	for _, configured := range []int{3, 0} {
		t.Run(fmt.Sprintf("nodes=%d", configured), func(t *testing.T) {
			const budget, cost = 60_000, 510
			now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			f := newFleet(t, 3, configured, now)
			c := testCampaign(t, "c-pace", "UTC", "asap", budget, 0, "")
			for i := range f.ps { // heartbeats: every node counts three
				f.syncNode(i, now)
			}
			quiet := 0
			for round := 0; round < 300 && quiet < 6; round++ {
				now = now.Add(time.Second / 3)
				served := 0
				for _, p := range f.ps { // traffic reaches every node
					for {
						if ok, _ := p.Allow(c, now); !ok {
							break
						}
						if _, ok := p.Reserve(c, cost, now); !ok {
							break
						}
						p.Charge(c.ID, cost, now)
						served++
					}
				}
				if served == 0 {
					quiet++
				} else {
					quiet = 0
				}
				if spent := f.spent(c, now); spent > budget {
					t.Fatalf("round %d: the fleet spent %d µ of a budget of %d µ", round, spent, budget)
				}
				f.syncNode(round%3, now) // one node flushes every third of a second
			}
			spent := f.spent(c, now)
			t.Logf("spent %d µ of %d µ", spent, budget)
			if spent < budget-3*cost {
				t.Errorf("spent %d µ: the fleet left more than one impression per node unspent", spent)
			}
			for _, p := range f.ps {
				if ok, _ := p.Allow(c, now); ok {
					if _, ok := p.Reserve(c, cost, now); ok {
						t.Errorf("%s still serves after the fleet stopped", p.NodeID())
					}
				}
			}
		})
	}
}

// Random fleets, schedules and costs with records in flight: each node
// flushes every second at its own phase, its records reach each node
// (itself included) after a random delay shorter than the flush interval,
// decisions reserve and their beacons charge later, some never. The
// committed total (every node's spend plus reservations) never passes the
// budget, and the fleet ends with less than one decision per node unspent.
func TestShareRuleRandomSchedules(t *testing.T) {
	for seed := uint64(1); seed <= 16; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		n := 2 + r.IntN(4)
		configured := 0
		if r.IntN(2) == 0 {
			configured = n
		}
		t.Run(fmt.Sprintf("seed=%d/nodes=%d/configured=%d", seed, n, configured), func(t *testing.T) {
			randomSchedule(t, r, n, configured)
		})
	}
}

func randomSchedule(t *testing.T, r *rand.Rand, n, configured int) {
	const step = 10 * time.Millisecond
	start := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	// Reservations that never render expire after 5s (a shorter run).
	f := newFleetConfig(t, n, Config{Nodes: configured, ReservationExpiry: 5 * time.Second}, start)
	budget := campaign.Micros(20_000 + r.Int64N(2_000_000))
	maxCost := max(int64(budget)/int64(20+r.IntN(1000)), 1)
	c := testCampaign(t, "c-r", "UTC", "asap", budget, 0, "")
	type msg struct {
		at time.Time
		to int
		ds []Delta
	}
	type beacon struct {
		at   time.Time
		node int
		cost int64
	}
	var inflight []msg
	var beacons []beacon
	phase := make([]time.Duration, n)
	rate := make([]float64, n) // decisions per step
	for i := range phase {
		phase[i] = time.Duration(r.Int64N(int64(time.Second)))
		rate[i] = 3 * math.Pow(1000, -r.Float64()) // 0.003 to 3 decisions per step
	}
	reserved := func(now time.Time) (total int64) {
		for _, p := range f.ps {
			st, _ := p.Status(c.ID, now)
			total += int64(st.Reserved)
		}
		return total
	}
	committed := func(now time.Time) (total int64) {
		for _, p := range f.ps {
			st, _ := p.Status(c.ID, now)
			total += int64(st.DaySpend + st.Reserved)
		}
		return total
	}
	idle := 0
	var now time.Time
	for k := 0; k < 60_000 && (idle < 500 || k%100 != 0 || reserved(now) > 0); k++ {
		now = start.Add(time.Duration(k) * step)
		// Records arriving.
		keep := inflight[:0]
		for _, m := range inflight {
			if m.at.After(now) {
				keep = append(keep, m)
				continue
			}
			f.deliver(m.to, m.ds, now)
		}
		inflight = keep
		// Beacons arriving.
		bk := beacons[:0]
		for _, b := range beacons {
			if b.at.After(now) {
				bk = append(bk, b)
				continue
			}
			f.ps[b.node].Charge(c.ID, campaign.Micros(b.cost), b.at)
		}
		beacons = bk
		// Decisions.
		served := 0
		for i, p := range f.ps {
			for d := poissonTest(r, rate[i]); d > 0; d-- {
				cost := 1 + r.Int64N(maxCost)
				if ok, _ := p.Allow(c, now); !ok {
					continue
				}
				if _, ok := p.Reserve(c, campaign.Micros(cost), now); !ok {
					continue
				}
				served++
				if r.IntN(20) > 0 { // 5% never render: the reservation expires
					beacons = append(beacons, beacon{now.Add(time.Duration(r.Int64N(int64(3 * time.Second)))), i, cost})
				}
			}
		}
		if served == 0 && len(beacons) == 0 {
			idle++
		} else {
			idle = 0
		}
		if served == 0 {
			// Only a decision adds to what is committed.
		} else if got := committed(now); got > int64(budget) {
			t.Fatalf("%v in: committed %d µ of a budget of %d µ", now.Sub(start), got, budget)
		}
		// Flushes: every second at each node's phase; each record reaches
		// each node within 0.4s.
		for i := range f.ps {
			if (now.Sub(start)+phase[i])%time.Second >= step {
				continue
			}
			ds := f.flush(i, now)
			for j := range f.ps {
				lat := time.Duration(r.Int64N(int64(400 * time.Millisecond)))
				inflight = append(inflight, msg{now.Add(lat), j, ds})
			}
		}
		if k%100 == 0 {
			for _, p := range f.ps {
				p.Tick(now)
			}
		}
	}
	spent := f.spent(c, now)
	t.Logf("budget %d µ, spent %d µ (%.2f%%), decisions up to %d µ, %v simulated", budget, spent, 100*float64(spent)/float64(budget), maxCost, now.Sub(start))
	if spent > int64(budget) {
		t.Errorf("spent %d µ of a budget of %d µ", spent, budget)
	}
	// What never rendered expired; what is left is less than one decision
	// per node (each stopped because its next cost did not fit), and less
	// than n micros nobody holds (a third of 2 is 0).
	if left := int64(budget) - spent; left > int64(n)*maxCost+int64(n) {
		t.Errorf("left %d µ unspent of %d µ (%d nodes, decisions up to %d µ)", left, budget, n, maxCost)
	}
}

func poissonTest(r *rand.Rand, mean float64) int {
	k := 0
	for p := r.ExpFloat64(); p < mean; p += r.ExpFloat64() {
		k++
	}
	return k
}

// In auto mode a node takes no share before the others count it: not
// before its own heartbeat has been published and read back.
func TestShareRuleAutoModeJoin(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f := newFleet(t, 2, 0, now)
	c := testCampaign(t, "c-1", "UTC", "asap", 9000, 0, "")
	round := func() {
		now = now.Add(time.Second)
		for i := range f.ps {
			f.syncNode(i, now)
		}
		if sum := f.ceilings(c, now); sum > 9000 {
			t.Fatalf("ceilings sum to %d, budget 9000", sum)
		}
	}
	for _, p := range f.ps {
		wantAllow(t, p, c, now, false, ReasonSharePending)
	}
	round()
	// Each has flushed once, a heartbeat only, and read it back: both
	// count two nodes now, so each may take its first share on the
	// decision path, half of what nobody holds (neither has heard the
	// other's yet: together they hold the budget, no more).
	for _, p := range f.ps {
		if p.Nodes() != 2 {
			t.Fatalf("%s counts %d nodes, want 2", p.NodeID(), p.Nodes())
		}
		wantAllow(t, p, c, now, true, "")
	}
	if sum := f.ceilings(c, now); sum != 9000 {
		t.Fatalf("first shares sum to %d, want the budget 9000", sum)
	}
	round()
	if st, _ := f.ps[0].Status(c.ID, now); st.DailyCeiling != 4500 {
		t.Fatalf("first node's ceiling %v, want half of 9000", st.DailyCeiling)
	}
	// A third node starts: its replay tells it of the other two.
	late := newTestPacer(t, Config{NodeID: "n3", FreqCapMaxCost: 1 << 20})
	late.BeginRebuild()
	for i := range f.topic {
		late.ApplyRemote(&f.topic[i], now)
	}
	late.EndRebuild(now)
	f.ps = append(f.ps, late)
	if late.Nodes() != 3 {
		t.Fatalf("the new node counts %d nodes after its replay, want 3", late.Nodes())
	}
	wantAllow(t, late, c, now, false, ReasonSharePending)
	f.syncNode(2, now) // its first heartbeat: no share yet
	for _, p := range f.ps {
		if p.Nodes() != 3 {
			t.Fatalf("%s counts %d nodes after the new node's first heartbeat, want 3", p.NodeID(), p.Nodes())
		}
	}
	if st, _ := late.Status(c.ID, now); st.DailyCeiling != noCeiling {
		t.Fatalf("the new node took %v before its heartbeat was heard", st.DailyCeiling)
	}
	// The first two serve nothing and hand back; the new one, refused,
	// takes a share.
	for range 5 {
		late.Allow(c, now)
		round()
	}
	if st, _ := late.Status(c.ID, now); st.DailyCeiling <= 0 {
		t.Fatalf("the new node's ceiling is %v after five rounds of hand-back", st.DailyCeiling)
	}
}

// A node that goes silent keeps its allowance counted by the others for a
// ReservationExpiry (it may still be serving), then the others count only
// what it spent, and take its share back.
func TestShareRuleDeadNodeShareReturns(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f := newFleet(t, 3, 3, now)
	c := testCampaign(t, "c-1", "UTC", "asap", 9000, 0, "")
	for i := range f.ps {
		f.ps[i].Allow(c, now) // day state: a share is wanted
		f.syncNode(i, now)
	}
	f.ps[2].Charge(c.ID, 1000, now)
	f.syncNode(2, now)
	st3, _ := f.ps[2].Status(c.ID, now)
	if st3.DailyCeiling <= 1000 {
		t.Fatalf("n3's ceiling %v: want an idle allowance above its spend", st3.DailyCeiling)
	}
	// What n1 counts for n3: what it counts for the others, less n2's
	// ceiling (n2 has spent nothing).
	n3Held := func() campaign.Micros {
		st1, _ := f.ps[0].Status(c.ID, now)
		st2, _ := f.ps[1].Status(c.ID, now)
		return st1.OthersDayHeld - st2.DailyCeiling
	}
	// n3 dies; n1 and n2 keep flushing.
	for range 50 {
		now = now.Add(time.Second)
		f.ps[0].Tick(now)
		f.ps[1].Tick(now)
		f.syncNode(0, now)
		f.syncNode(1, now)
	}
	if got := n3Held(); got != st3.DailyCeiling {
		t.Fatalf("after 50s of silence n1 counts n3 as holding %v, want its ceiling %v (it may still serve)", got, st3.DailyCeiling)
	}
	now = now.Add(15 * time.Second) // past ReservationExpiry (1m) of silence
	f.ps[0].Tick(now)
	f.ps[1].Tick(now)
	if got := n3Held(); got != 1000 {
		t.Fatalf("n1 counts dead n3 as holding %v, want its spend 1000", got)
	}
}

// A restarted node takes its ceilings back when it was away briefly, and
// gives them up when it was away long enough for the others to count them
// free.
func TestRebuildCeilings(t *testing.T) {
	for _, tc := range []struct {
		away time.Duration
		keep bool
	}{{5 * time.Second, true}, {45 * time.Second, false}} {
		t.Run(tc.away.String(), func(t *testing.T) {
			now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
			f := newFleet(t, 2, 2, now)
			c := testCampaign(t, "c-1", "UTC", "asap", 9000, 0, "")
			var topic []Delta
			for i := range f.ps {
				f.ps[i].Allow(c, now)
				ds := f.flush(i, now)
				topic = append(topic, ds...)
				for j := range f.ps {
					f.deliver(j, ds, now)
				}
			}
			if _, ok := f.ps[0].Reserve(c, 700, now); !ok {
				t.Fatal("reservation refused")
			}
			f.ps[0].Charge(c.ID, 300, now)
			ds := f.flush(0, now)
			topic = append(topic, ds...)
			st, _ := f.ps[0].Status(c.ID, now)

			later := now.Add(tc.away)
			a := newTestPacer(t, Config{NodeID: "n1", Nodes: 2})
			a.BeginRebuild()
			for i := range topic {
				a.ApplyRemote(&topic[i], later)
			}
			a.EndRebuild(later)
			a.Update(c)
			got, _ := a.Status(c.ID, later)
			if got.DaySpend != 300 {
				t.Fatalf("restored spend %v, want 300", got.DaySpend)
			}
			if tc.keep {
				if got.DailyCeiling != st.DailyCeiling || got.Reserved != 400 {
					t.Fatalf("restored ceiling %v and reserved %v, want %v and the 400 still outstanding", got.DailyCeiling, got.Reserved, st.DailyCeiling)
				}
				wantAllow(t, a, c, later, true, "")
			} else {
				if got.DailyCeiling != noCeiling || got.Reserved != 400 {
					t.Fatalf("restored ceiling %v and reserved %v after %v away, want none and 400", got.DailyCeiling, got.Reserved, tc.away)
				}
				// Its first request takes a new share: half of what
				// nobody holds, the other node still counted at its
				// ceiling.
				wantAllow(t, a, c, later, true, "")
				got, _ = a.Status(c.ID, later)
				usage := int64(got.DaySpend + got.Reserved)
				want := usage + (9000-usage-int64(got.OthersDayHeld))/2
				if int64(got.DailyCeiling) != want {
					t.Fatalf("first share after %v away: ceiling %v, want %d (others hold %v)", tc.away, got.DailyCeiling, want, got.OthersDayHeld)
				}
			}
		})
	}
}

// A first share taken on the decision path is published as taken, not
// raised at the flush that publishes it, even when the node is hungry by
// then: until the others hear it, it is the node's one unheard raise.
func TestFirstShareOnDecisionPath(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f := newFleet(t, 2, 2, now)
	c := testCampaign(t, "c-1", "UTC", "asap", 9000, 0, "")
	p := f.ps[0]
	wantAllow(t, p, c, now, true, "")
	if st, _ := p.Status(c.ID, now); st.DailyCeiling != 4500 {
		t.Fatalf("first share %v, want half of 9000", st.DailyCeiling)
	}
	if _, ok := p.Reserve(c, 4500, now); !ok {
		t.Fatal("reservation of the whole share refused")
	}
	if _, ok := p.Reserve(c, 1, now); ok {
		t.Fatal("reservation beyond the first share accepted")
	}
	var published int64 = noCeiling
	for _, d := range f.flush(0, now) {
		if d.Campaign == c.ID {
			published = int64(d.DayCeiling)
		}
	}
	if published != 4500 {
		t.Fatalf("flush published ceiling %d, want the first share 4500 unchanged", published)
	}
	// Published and read back, the next flush raises it (the node is
	// still hungry) by half of what nobody holds.
	f.deliver(0, f.topic, now)
	wantAllow(t, p, c, now, false, ReasonBudgetExhausted)
	now = now.Add(time.Second)
	f.flush(0, now)
	if st, _ := p.Status(c.ID, now); st.DailyCeiling != 4500+4500/2 {
		t.Fatalf("ceiling after the next flush %v, want %d", st.DailyCeiling, 4500+4500/2)
	}
}
