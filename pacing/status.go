package pacing

import (
	"time"

	"github.com/adserver/adserver/campaign"
)

// Status is a snapshot of one campaign's pacing on this node, for the
// management API, metrics and the simulator.
type Status struct {
	Campaign string
	Day      Day
	// This node's spend on Day, its outstanding reservations and its
	// lifetime spend.
	DaySpend, Reserved, TotalSpend campaign.Micros
	// The other nodes' spend on Day, reservations and lifetime spend, as
	// last heard on the spend topic.
	OthersDaySpend, OthersReserved, OthersTotalSpend campaign.Micros
	// DailyHeadroom and TotalHeadroom are what this node may still commit
	// (its share near exhaustion); -1 when the budget is not set.
	DailyHeadroom, TotalHeadroom campaign.Micros
	// DailyCeiling and TotalCeiling are this node's ceilings under the
	// share rule (see the package doc); -1 when not taken (or no spend
	// sync is attached).
	DailyCeiling, TotalCeiling campaign.Micros
	// OthersDayHeld and OthersTotalHeld are what the other nodes hold
	// under each budget as last heard: their ceilings while they may be
	// serving, else their spend and reservations.
	OthersDayHeld, OthersTotalHeld campaign.Micros
	// Pass is the pass probability of an even campaign (1 for asap).
	Pass float64
	// Demand is the controller's estimate of what a full day of traffic
	// would spend at pass 1, all nodes together; 0 while unknown.
	Demand campaign.Micros
	// Nodes is the number of nodes assumed to share the budget.
	Nodes int
}

// Status returns the pacing state of campaign id at now, or false when this
// node has never seen it.
func (p *Pacer) Status(id string, now time.Time) (Status, bool) {
	s, ok := p.campaigns.get(id)
	if !ok {
		return Status{}, false
	}
	st := Status{Campaign: id, Nodes: int(p.nodes.Load()), DailyHeadroom: -1, TotalHeadroom: -1,
		Pass: float64(s.pass.Load()) / passScale}
	res := s.res.total.Load()
	st.Reserved, st.TotalSpend = campaign.Micros(res), campaign.Micros(s.total.Load())
	v := s.view.Load()
	st.OthersReserved, st.OthersTotalSpend = campaign.Micros(v.reservedSum()), campaign.Micros(v.totalSum())
	st.TotalCeiling, st.OthersTotalHeld = campaign.Micros(s.totCeil.Load()), campaign.Micros(v.totalHeldSum())
	st.DailyCeiling = noCeiling
	c := s.conf.Load()
	if c == nil {
		return st, true
	}
	if c.Pacing == campaign.PacingASAP {
		st.Pass = 1
	}
	ds := p.current(s, c.Location(), now)
	st.Day, st.DaySpend = ds.day, campaign.Micros(ds.spent.Load())
	st.OthersDaySpend = campaign.Micros(v.spend(ds.day))
	st.DailyCeiling, st.OthersDayHeld = campaign.Micros(ds.ceil.Load()), campaign.Micros(v.heldDay(ds.day))
	daily, total := p.headroom(s, ds, c, res)
	if daily != noLimit {
		st.DailyHeadroom = campaign.Micros(daily)
	}
	if total != noLimit {
		st.TotalHeadroom = campaign.Micros(total)
	}
	s.mu.Lock()
	st.Demand = campaign.Micros(s.ctl.demand)
	s.mu.Unlock()
	return st, true
}

// Plan is an even campaign's spend plan for one local day.
type Plan struct {
	Day Day
	// Budget is the day's budget the plan spreads.
	Budget campaign.Micros
	// Start and End bound the local day: [Start, End).
	Start, End time.Time
	// Shape says where the traffic shape came from: ShapePlacement,
	// ShapeGlobal or ShapeUniform.
	Shape string
	pl    *plan
}

// Spend returns the planned cumulative spend by t.
func (pl *Plan) Spend(t time.Time) campaign.Micros {
	return campaign.Micros(float64(pl.pl.budget) * pl.pl.fraction(t.UnixNano()))
}

// Plan returns the current day's plan of even campaign id, or false when
// there is none yet (Tick builds it).
func (p *Pacer) Plan(id string) (*Plan, bool) {
	s, ok := p.campaigns.get(id)
	if !ok {
		return nil, false
	}
	ds := s.cur.Load()
	if ds == nil {
		return nil, false
	}
	pl := ds.plan.Load()
	if pl == nil {
		return nil, false
	}
	return &Plan{Day: pl.day, Budget: campaign.Micros(pl.budget), Start: time.Unix(pl.start, 0),
		End: time.Unix(pl.end, 0), Shape: pl.shape, pl: pl}, true
}
