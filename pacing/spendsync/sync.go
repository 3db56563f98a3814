package spendsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/pacing"
	"github.com/segmentio/kafka-go"
)

// DefaultTopic is the spend topic of the design's fixed contracts.
const DefaultTopic = "adserver.spend"

// Local is the pacer side of the sync; *pacing.Pacer implements it.
type Local interface {
	NodeID() string
	AppendDeltas(dst []pacing.Delta, now time.Time) []pacing.Delta
	Published(ds []pacing.Delta)
	ApplyRemote(d *pacing.Delta, now time.Time)
	BeginRebuild()
	EndRebuild(now time.Time)
}

// Config configures a Sync. Only Brokers is required.
type Config struct {
	// Brokers lists bootstrap addresses (host:port).
	Brokers []string
	// Topic is the spend topic. Default "adserver.spend". It must exist;
	// create it with cleanup.policy=compact (see the package doc).
	Topic string
	// FlushInterval is how often Run publishes this node's changes and a
	// heartbeat. Default 1s; at most 1s keeps the fleet's view fresh
	// enough for the pacer's node count. Negative: Run publishes nothing
	// and the caller calls Flush (simulations).
	FlushInterval time.Duration
	// RebuildFrom bounds the replay at start: zero (the default) reads
	// every partition from its first offset (right for a compacted topic);
	// a positive value starts at the offsets of now-RebuildFrom (for a
	// topic with time retention; it must cover at least a day, or
	// lifetime budgets lose older spend).
	RebuildFrom time.Duration
	// Clock stamps the records and the apply times. Default: the system
	// clock; a simulation passes its own.
	Clock pacing.Clock
	// Timeout bounds each produce and metadata request. Default 5s.
	Timeout time.Duration
	// MaxWait is the consumers' fetch long-poll. Default 250ms.
	MaxWait time.Duration
	// Logger receives errors of the background loops, at most one line
	// per loop per 10s. Default slog.Default().
	Logger *slog.Logger
}

func (c *Config) topic() string {
	if c.Topic == "" {
		return DefaultTopic
	}
	return c.Topic
}

func (c *Config) flushInterval() time.Duration {
	if c.FlushInterval == 0 {
		return time.Second
	}
	return c.FlushInterval
}

func (c *Config) clock() pacing.Clock {
	if c.Clock == nil {
		return pacing.SystemClock
	}
	return c.Clock
}

func (c *Config) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 5 * time.Second
	}
	return c.Timeout
}

func (c *Config) maxWait() time.Duration {
	if c.MaxWait <= 0 {
		return 250 * time.Millisecond
	}
	return c.MaxWait
}

func (c *Config) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.Default()
	}
	return c.Logger
}

// Validate reports every invalid field.
func (c *Config) Validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("spendsync: Brokers: at least one broker address is required"))
	}
	for _, b := range c.Brokers {
		if !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("spendsync: broker %q: want host:port", b))
		}
	}
	if c.FlushInterval > time.Second {
		errs = append(errs, fmt.Errorf("spendsync: FlushInterval %v: must be at most 1s", c.FlushInterval))
	}
	if c.RebuildFrom < 0 {
		errs = append(errs, fmt.Errorf("spendsync: RebuildFrom %v: must be >= 0", c.RebuildFrom))
	}
	return errors.Join(errs...)
}

// Metrics, with their Prometheus names, summed over the Syncs of a process.
var (
	recordsPublished = metrics.NewCounter("adserver_spend_sync_records_published_total")
	recordsApplied   = metrics.NewCounter("adserver_spend_sync_records_applied_total")
	recordsMalformed = metrics.NewCounter("adserver_spend_sync_records_malformed_total")
	publishErrors    = metrics.NewCounter("adserver_spend_sync_publish_errors_total")
)

// Stats counts one Sync's records.
type Stats struct {
	Published, Applied, Malformed, PublishErrors int64
}

// Sync publishes a pacer's spend to the spend topic and applies every
// node's records to it. Create it with New, then call Run.
type Sync struct {
	cfg       Config
	local     Local
	clock     pacing.Clock
	log       *slog.Logger
	transport *kafka.Transport
	client    *kafka.Client

	ready   chan struct{} // closed once the replay is done
	isReady atomic.Bool

	// Set by Run before ready or Flush can succeed; read-only afterwards.
	started    chan struct{}
	partitions []int
	produced   []atomic.Int64 // per partition: the offset after this Sync's last record
	applied    []atomic.Int64 // per partition: the offset after the last record applied

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced whenever applied moves

	flushMu sync.Mutex // serializes Flush; guards the buffers below
	deltas  []pacing.Delta
	byPart  map[int][]pacing.Delta
	buf     []byte

	published, appliedN, malformed, pubErrors atomic.Int64
}

// New returns a Sync for local. It marks local not ready (BeginRebuild)
// until Run has replayed the topic.
func New(cfg Config, local Local) (*Sync, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	tr := &kafka.Transport{ClientID: "adserver-spend-" + local.NodeID()}
	s := &Sync{
		cfg: cfg, local: local, clock: cfg.clock(), log: cfg.logger(), transport: tr,
		client:  &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Timeout: cfg.timeout(), Transport: tr},
		ready:   make(chan struct{}),
		started: make(chan struct{}),
		notify:  make(chan struct{}),
		byPart:  make(map[int][]pacing.Delta),
	}
	local.BeginRebuild()
	return s, nil
}

// Ready reports whether the replay of the topic is done.
func (s *Sync) Ready() bool { return s.isReady.Load() }

// WaitReady blocks until the replay is done or ctx is done.
func (s *Sync) WaitReady(ctx context.Context) error {
	select {
	case <-s.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Stats returns the Sync's counters.
func (s *Sync) Stats() Stats {
	return Stats{Published: s.published.Load(), Applied: s.appliedN.Load(),
		Malformed: s.malformed.Load(), PublishErrors: s.pubErrors.Load()}
}
