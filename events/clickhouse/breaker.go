package clickhouse

import (
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// BreakerState is the circuit breaker's state, exported as the gauge
// adserver_shipper_breaker_state (0 closed, 1 open, 2 half-open).
type BreakerState int32

// Breaker states.
const (
	BreakerClosed   BreakerState = 0
	BreakerOpen     BreakerState = 1
	BreakerHalfOpen BreakerState = 2
)

func (b BreakerState) String() string {
	return [...]string{"closed", "open", "half-open"}[b]
}

// breakerGauge reports the worst state of the shippers in the process.
var (
	breakerStates [3]atomic.Int64 // shippers per state
	_             = metrics.NewGauge(`adserver_shipper_breaker_state`, func() float64 {
		switch {
		case breakerStates[BreakerOpen].Load() > 0:
			return float64(BreakerOpen)
		case breakerStates[BreakerHalfOpen].Load() > 0:
			return float64(BreakerHalfOpen)
		}
		return float64(BreakerClosed)
	})
	breakerOpened = metrics.NewCounter(`adserver_shipper_breaker_opened_total`)
)

// breaker opens after threshold consecutive failures and then lets one
// attempt through per cooldown (half-open) until one succeeds. Only the
// shipper goroutine calls its methods except State.
type breaker struct {
	threshold int
	cooldown  time.Duration
	now       func() time.Time

	failures  int
	openUntil time.Time
	state     atomic.Int32
	counted   bool // registered in breakerStates
}

func (b *breaker) State() BreakerState { return BreakerState(b.state.Load()) }

func (b *breaker) set(s BreakerState) {
	old := b.State()
	if b.counted && old == s {
		return
	}
	if b.counted {
		breakerStates[old].Add(-1)
	}
	breakerStates[s].Add(1)
	b.counted = true
	b.state.Store(int32(s))
}

// wait returns how long to hold off before the next attempt (0: go).
func (b *breaker) wait() time.Duration {
	if b.State() != BreakerOpen {
		return 0
	}
	if d := b.openUntil.Sub(b.now()); d > 0 {
		return d
	}
	b.set(BreakerHalfOpen)
	return 0
}

func (b *breaker) success() {
	b.failures = 0
	b.set(BreakerClosed)
}

func (b *breaker) failure() {
	b.failures++
	if b.State() == BreakerHalfOpen || b.failures >= b.threshold {
		if b.State() != BreakerOpen {
			breakerOpened.Inc()
		}
		b.openUntil = b.now().Add(b.cooldown)
		b.set(BreakerOpen)
	}
}

// release unregisters the breaker from the process-wide gauge.
func (b *breaker) release() {
	if b.counted {
		breakerStates[b.State()].Add(-1)
		b.counted = false
	}
}
