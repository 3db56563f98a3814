package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/VictoriaMetrics/metrics"

	"github.com/adserver/adserver/events"
)

// Config configures a Shipper. NodeID is required; every other field has
// a default.
type Config struct {
	// Addr is the ClickHouse native-protocol address. Default
	// "127.0.0.1:9000".
	Addr string
	// Database holds the tables. Default "adserver".
	Database string
	// Username and Password authenticate; default user "default", no
	// password.
	Username, Password string
	// NodeID names this node in the node_id column and keys exactly-once
	// delivery: unique per node, stable across restarts. Required.
	NodeID string
	// BatchRows is the most rows per insert. Default 10,000.
	BatchRows int
	// BatchInterval is the longest a record waits in the shipper before
	// its batch is sent. Default 1s.
	BatchInterval time.Duration
	// MinBackoff and MaxBackoff bound the exponential retry delay.
	// Defaults 100ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// BreakerThreshold is how many consecutive failures open the circuit
	// breaker; BreakerCooldown how long it then stays open before one
	// probe. Defaults 5 and 10s.
	BreakerThreshold int
	BreakerCooldown  time.Duration
	// DialTimeout bounds connecting. Default 5s.
	DialTimeout time.Duration
	// InsertTimeout bounds one insert or query. Default 60s.
	InsertTimeout time.Duration
	// MigrateTimeout bounds Migrate, which runs before the first insert
	// and after a schema error; nothing ships meanwhile. Default 30m: an
	// upgrade to schema version 2 copies rollup_hourly into the new
	// rollups (about a second per million rollup_hourly rows on a 2-core
	// machine), and a copy that runs out starts over on the next attempt.
	MigrateTimeout time.Duration
	// Lookback bounds, by event time, the partitions searched when
	// checking which rows already landed. Default 24h.
	Lookback time.Duration
	// DeadLetterPath is the file rejected rows are appended to (JSON
	// lines). Default <log dir>/deadletter.jsonl.
	DeadLetterPath string
	// Now is the clock used for metrics and dead-letter timestamps.
	// Default time.Now.
	Now func() time.Time
}

// Validate reports what is wrong with c, if anything.
func (c *Config) Validate() error {
	if c.NodeID == "" {
		return errors.New("clickhouse shipper: NodeID is required")
	}
	if c.Database != "" {
		if err := validIdent(c.Database); err != nil {
			return err
		}
	}
	if c.BatchRows < 0 || c.BatchInterval < 0 || c.MinBackoff < 0 || c.MaxBackoff < 0 {
		return errors.New("clickhouse shipper: negative batch or backoff setting")
	}
	return nil
}

func (c *Config) setDefaults(logDir string) {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if c.Addr == "" {
		c.Addr = "127.0.0.1:9000"
	}
	if c.Database == "" {
		c.Database = "adserver"
	}
	if c.Username == "" {
		c.Username = "default"
	}
	if c.BatchRows <= 0 {
		c.BatchRows = 10_000
	}
	def(&c.BatchInterval, time.Second)
	def(&c.MinBackoff, 100*time.Millisecond)
	def(&c.MaxBackoff, 30*time.Second)
	def(&c.BreakerCooldown, 10*time.Second)
	def(&c.DialTimeout, 5*time.Second)
	def(&c.InsertTimeout, 60*time.Second)
	def(&c.MigrateTimeout, 30*time.Minute)
	def(&c.Lookback, 24*time.Hour)
	if c.BreakerThreshold <= 0 {
		c.BreakerThreshold = 5
	}
	if c.DeadLetterPath == "" {
		c.DeadLetterPath = filepath.Join(logDir, "deadletter.jsonl")
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

var (
	shippedEvents    = metrics.NewCounter(`adserver_shipper_rows_total{table="events"}`)
	shippedDecisions = metrics.NewCounter(`adserver_shipper_rows_total{table="decisions"}`)
	shippedBatches   = metrics.NewCounter(`adserver_shipper_inserts_total`)
	errConnection    = metrics.NewCounter(`adserver_shipper_errors_total{kind="connection"}`)
	errTransient     = metrics.NewCounter(`adserver_shipper_errors_total{kind="transient"}`)
	errSchema        = metrics.NewCounter(`adserver_shipper_errors_total{kind="schema"}`)
	errInvalid       = metrics.NewCounter(`adserver_shipper_errors_total{kind="invalid"}`)
	deadLettered     = metrics.NewCounter(`adserver_shipper_dead_letter_rows_total`)
	landedSkipped    = metrics.NewCounter(`adserver_shipper_landed_rows_skipped_total`)
	uncertainChecks  = metrics.NewCounter(`adserver_shipper_landed_checks_total`)
	seqRegressions   = metrics.NewCounter(`adserver_shipper_seq_regressions_total`)
	shipperLag       atomic.Int64 // seconds behind the newest durable record
	_                = metrics.NewGauge(`adserver_shipper_lag_seconds`, func() float64 { return float64(shipperLag.Load()) })
)

// Stats are a Shipper's own counts since New.
type Stats struct {
	Events, Decisions int64 // rows inserted
	Inserts           int64 // successful insert statements
	Failures          int64 // failed attempts of any kind
	DeadLettered      int64
	LandedSkipped     int64 // rows found already in ClickHouse and not re-sent
	LandedChecks      int64
	BadRecords        int64 // undecodable log records (dead-lettered)
	// CorruptRecords and CorruptBytes are what the log reader skipped as
	// corrupt (failed checksums, torn writes).
	CorruptRecords, CorruptBytes int64
	Breaker                      BreakerState
}

// Shipper moves records from an events.Log into ClickHouse.
type Shipper struct {
	cfg     Config
	log     *events.Log
	r       *events.Reader
	conn    driver.Conn
	ready   bool // connected and migrated
	breaker breaker
	backoff time.Duration
	dl      *deadLetter

	// pending is the batch being shipped: rows of one UTC day, in seq
	// order. carry holds rows read but not yet batched.
	pending []row
	carry   []row
	recBuf  []events.Record
	// floor is the highest seq known to be in ClickHouse; rows at or
	// below it are dropped unsent.
	floor uint64
	// uncertain is set when what landed is unknown (start-up, failures).
	uncertain bool
	// tryLen, when non-zero, is the bisection length for pending.
	tryLen int
	// lastRejected is the seq of a single row that ClickHouse rejected as
	// invalid in the previous attempt.
	lastRejected uint64
	queryPrefix  string
	attempt      uint64
	cols         columns

	corrupt struct{ records, bytes atomic.Int64 } // mirrors r.Corrupt()

	mu    sync.Mutex
	stats Stats
	ackCh chan struct{} // closed and replaced on every ack
}

// New returns a Shipper for log. It does not connect: Run does, and keeps
// retrying while ClickHouse is unreachable.
func New(cfg Config, log *events.Log) (*Shipper, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults(log.Dir())
	s := &Shipper{
		cfg:         cfg,
		log:         log,
		uncertain:   true,
		queryPrefix: "adserver-ship-" + cfg.NodeID + "-",
		ackCh:       make(chan struct{}),
		dl:          &deadLetter{path: cfg.DeadLetterPath, now: cfg.Now},
	}
	s.breaker = breaker{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown, now: cfg.Now}
	s.r = log.NewReader(log.Acked())
	return s, nil
}

// Run ships until ctx is done, then returns ctx.Err(). Failures are
// retried forever; they never reach the caller.
func (s *Shipper) Run(ctx context.Context) error {
	defer s.close()
	for ctx.Err() == nil {
		if wait := s.breaker.wait(); wait > 0 {
			sleep(ctx, wait)
			continue
		}
		if err := s.step(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			s.failed(err)
			sleep(ctx, s.nextBackoff())
			continue
		}
		s.succeeded()
	}
	return ctx.Err()
}

// step does one unit of work: connect, fill a batch, ship it.
func (s *Shipper) step(ctx context.Context) error {
	if !s.ready {
		if err := s.connect(ctx); err != nil {
			return err
		}
	}
	if len(s.pending) == 0 {
		if err := s.fill(ctx); err != nil {
			return err
		}
		if len(s.pending) == 0 {
			return nil
		}
	}
	return s.shipPending(ctx)
}

func (s *Shipper) connect(ctx context.Context) error {
	if s.conn == nil {
		conn, err := Open(s.cfg.Addr, s.cfg.Username, s.cfg.Password, s.cfg.DialTimeout)
		if err != nil {
			return err
		}
		s.conn = conn
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MigrateTimeout)
	defer cancel()
	if err := Migrate(ctx, s.conn, s.cfg.Database); err != nil {
		return err
	}
	s.ready = true
	return nil
}

func (s *Shipper) close() {
	s.r.Close()
	if s.conn != nil {
		s.conn.Close()
		s.conn = nil
	}
	s.dl.close()
	s.breaker.release()
}

// failed books a failed attempt.
func (s *Shipper) failed(err error) {
	switch classify(err) {
	case errKindSchema:
		errSchema.Inc()
		s.ready = false // re-run Migrate before the next attempt
	case errKindTransient:
		errTransient.Inc()
	case errKindInvalid:
		errInvalid.Inc()
	default:
		errConnection.Inc()
	}
	s.breaker.failure()
	s.mu.Lock()
	s.stats.Failures++
	s.mu.Unlock()
}

func (s *Shipper) succeeded() {
	s.breaker.success()
	s.backoff = 0
}

func (s *Shipper) nextBackoff() time.Duration {
	if s.backoff == 0 {
		s.backoff = s.cfg.MinBackoff
	} else {
		s.backoff = min(2*s.backoff, s.cfg.MaxBackoff)
	}
	return s.backoff
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// ack acknowledges everything up to and including row r in the log.
func (s *Shipper) ack(r *row) error {
	if err := s.log.Ack(r.end); err != nil {
		return fmt.Errorf("clickhouse shipper: %w", err)
	}
	s.mu.Lock()
	close(s.ackCh)
	s.ackCh = make(chan struct{})
	s.mu.Unlock()
	return nil
}

// WaitShipped blocks until every record up to seq is shipped (or dead-
// lettered), or ctx is done. Use it at shutdown after Log.Sync, and in
// tests.
func (s *Shipper) WaitShipped(ctx context.Context, seq uint64) error {
	for {
		s.mu.Lock()
		ch := s.ackCh
		s.mu.Unlock()
		if s.log.Acked().Seq >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Stats returns a snapshot of the Shipper's counts.
func (s *Shipper) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Breaker = s.breaker.State()
	st.CorruptRecords, st.CorruptBytes = s.corrupt.records.Load(), s.corrupt.bytes.Load()
	return st
}

func (s *Shipper) addStats(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}
