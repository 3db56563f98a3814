package pacing

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Clock tells the time. Production uses the system clock; tests and the
// simulator inject one they advance themselves.
type Clock interface {
	Now() time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

// SystemClock is the wall clock.
var SystemClock Clock = systemClock{}

// Config configures a [Pacer]. The zero value is valid: every field has a
// default, resolved by the getters below.
type Config struct {
	// NodeID names this node on the spend topic. It must be unique among the
	// nodes sharing budgets; keep it stable across restarts (host or pod
	// name) so that a restarted node takes its own spend back from the
	// topic. Default "local". It may not contain '/'.
	NodeID string

	// Nodes is the number of serving nodes that share every budget: each
	// raise of a node's ceiling takes at most 1/Nodes of the budget nobody
	// holds (the share rule: see the package doc). It must not be below
	// the fleet's size. Zero (the default) counts the nodes heard on the
	// spend topic within NodeTTL, this one included, and makes a node wait
	// one more flush before its first share; setting it is the stronger
	// guarantee when the fleet size is known.
	Nodes int

	// NodeTTL is how long a node counts as live after its last record.
	// Default 10s; it must exceed the sync's flush interval several times
	// (in auto mode a node raises no ceiling when its last heartbeat is
	// older than 3/4 of it).
	NodeTTL time.Duration

	// Clock is used by Run and for the spend records. Default: the system
	// clock. The decision-path calls take the time as an argument instead.
	Clock Clock

	// Seed seeds the throttling randomness: one stream per campaign, mixed
	// from Seed, NodeID and the campaign id, so that nodes never throttle
	// in lockstep and a simulation replays exactly. Default 0, a valid seed.
	Seed uint64

	// ControlInterval is how often Run calls Tick, which updates the pass
	// rate of each even campaign, expires reservations and rolls days.
	// Default 5s. Allowed 100ms to 1m.
	ControlInterval time.Duration

	// ReservationExpiry is how long a reservation counts against a budget
	// when no charge releases it, and how long the other nodes keep
	// counting the ceilings of a node they no longer hear from before they
	// hand its share out again. Default 1m. Allowed 1s to 1h.
	ReservationExpiry time.Duration

	// FinishEarly makes an even campaign plan to finish its daily budget
	// this long before local midnight, so that a late shortfall can still
	// be made up. Default 30m; rounded down to the plan's 15-minute step.
	// Negative means 0.
	FinishEarly time.Duration

	// CatchUp is the horizon over which an even campaign closes the gap
	// between its plan and its actual spend. Default 15m.
	CatchUp time.Duration

	// InitialPassRate is the pass probability of an even campaign whose
	// demand is not known yet (slow start). Default 0.05.
	InitialPassRate float64

	// MinPassRate is the floor of the pass probability of an even campaign.
	// Default 0.00001.
	MinPassRate float64

	// FreqCapMaxCost bounds the memory of the frequency-cap cache in bytes
	// (about 100 bytes per user and campaign). Default 64 MiB.
	FreqCapMaxCost int64

	// Lookup, when set, resolves a campaign id this node has not seen yet,
	// for charges that arrive before the campaign (its time zone decides the
	// day a charge counts against). Without it, such charges count against
	// the UTC day until the campaign is seen.
	Lookup func(id string) *campaign.Campaign
}

const (
	defaultNodeID            = "local"
	defaultNodeTTL           = 10 * time.Second
	defaultControlInterval   = 5 * time.Second
	defaultReservationExpiry = time.Minute
	defaultFinishEarly       = 30 * time.Minute
	defaultCatchUp           = 15 * time.Minute
	defaultInitialPassRate   = 0.05
	defaultMinPassRate       = 0.00001
	defaultFreqCapMaxCost    = 64 << 20
)

func (c *Config) nodeID() string {
	if c.NodeID == "" {
		return defaultNodeID
	}
	return c.NodeID
}

func (c *Config) nodeTTL() time.Duration { return orDuration(c.NodeTTL, defaultNodeTTL) }

func (c *Config) clock() Clock {
	if c.Clock == nil {
		return SystemClock
	}
	return c.Clock
}

func (c *Config) controlInterval() time.Duration {
	return orDuration(c.ControlInterval, defaultControlInterval)
}

func (c *Config) reservationExpiry() time.Duration {
	return orDuration(c.ReservationExpiry, defaultReservationExpiry)
}

func (c *Config) finishEarly() time.Duration {
	switch {
	case c.FinishEarly < 0:
		return 0
	case c.FinishEarly == 0:
		return defaultFinishEarly
	}
	return c.FinishEarly
}

func (c *Config) catchUp() time.Duration { return orDuration(c.CatchUp, defaultCatchUp) }

func (c *Config) initialPassRate() float64 {
	if c.InitialPassRate == 0 {
		return defaultInitialPassRate
	}
	return c.InitialPassRate
}

func (c *Config) minPassRate() float64 {
	if c.MinPassRate == 0 {
		return defaultMinPassRate
	}
	return c.MinPassRate
}

func (c *Config) freqCapMaxCost() int64 {
	if c.FreqCapMaxCost == 0 {
		return defaultFreqCapMaxCost
	}
	return c.FreqCapMaxCost
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if strings.ContainsAny(c.NodeID, "/ \t\n") || len(c.NodeID) > 128 {
		bad("pacing: NodeID %q: must be at most 128 bytes without '/' or spaces", c.NodeID)
	}
	if c.Nodes < 0 {
		bad("pacing: Nodes %d: must be >= 0", c.Nodes)
	}
	if c.NodeTTL < 0 {
		bad("pacing: NodeTTL %v: must be > 0", c.NodeTTL)
	}
	if ci := c.controlInterval(); ci < 100*time.Millisecond || ci > time.Minute {
		bad("pacing: ControlInterval %v: must be between 100ms and 1m", ci)
	}
	if re := c.reservationExpiry(); re < time.Second || re > time.Hour {
		bad("pacing: ReservationExpiry %v: must be between 1s and 1h", re)
	}
	if c.FinishEarly > 6*time.Hour {
		bad("pacing: FinishEarly %v: must be at most 6h", c.FinishEarly)
	}
	if cu := c.catchUp(); cu < time.Minute || cu > 12*time.Hour {
		bad("pacing: CatchUp %v: must be between 1m and 12h", cu)
	}
	if r := c.initialPassRate(); !(r > 0 && r <= 1) {
		bad("pacing: InitialPassRate %v: must be in (0, 1]", r)
	}
	if r := c.minPassRate(); !(r > 0 && r <= c.initialPassRate()) {
		bad("pacing: MinPassRate %v: must be in (0, InitialPassRate]", r)
	}
	if c.FreqCapMaxCost < 0 {
		bad("pacing: FreqCapMaxCost %d: must be > 0", c.FreqCapMaxCost)
	}
	return errors.Join(errs...)
}
