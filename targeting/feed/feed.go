// Package feed keeps a node's catalog (campaigns, placements, advertisers)
// and the operators' kill switches fresh from Kafka and hands them to the
// request path as immutable snapshots.
//
// At start the feed reads every partition of the catalog topics and of the
// control topic (switches; see switches.go for its record scheme) from the
// earliest offset up to the high-water mark captured at start, builds one
// snapshot, and marks itself ready; then it keeps tailing and applies new
// records in batches at most every BatchInterval, each batch becoming a new
// snapshot swapped in atomically. Readers call [Feed.Snapshot] and never
// lock. An empty record value deletes the key; a malformed record is logged
// (the first of each topic), counted and skipped.
//
// Writes from the management API go through [Feed.Publish], which produces
// the record with acks from all in-sync replicas and waits until this node
// has applied it, so a caller can request ads right after a PUT.
package feed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/targeting"
)

// Snapshot is one immutable state of the catalog. Never modify it.
type Snapshot struct {
	Index       *targeting.Index
	Placements  map[string]*campaign.Placement
	Advertisers map[string]*campaign.Advertiser
	// AdvertisersByKey maps an API key hash to its advertiser.
	AdvertisersByKey map[string]*campaign.Advertiser
	// Switches is the kill-switch state applied from adserver.control.
	// Snapshots the feed builds never have it nil (defaults before any
	// switch is set); a snapshot given to Replace may, meaning defaults.
	Switches *decision.Switches
	// Built is when this snapshot was swapped in.
	Built time.Time
}

// Topics lists the topics a feed follows: the catalog topics and the
// control topic. The bootstrap (readiness) covers all of them, so a node
// never serves before it knows whether serving is switched off.
var Topics = []string{bus.TopicCampaigns, bus.TopicPlacements, bus.TopicAdvertisers, bus.TopicControl}

// ErrNotVisible is returned by Publish when the record is durable in Kafka
// but this node did not apply it within the wait.
var ErrNotVisible = errors.New("the change is durable in Kafka but not yet applied on this node")

// Feed follows the catalog topics. Set Client, then call Run.
type Feed struct {
	Client *bus.Client
	// BatchInterval is the least time between two snapshot swaps after
	// the bootstrap. Default 50ms.
	BatchInterval time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// LagInterval is how often the feed compares its applied offsets with
	// the topics' high-water marks for adserver_kafka_consumer_lag_records.
	// Default 5s.
	LagInterval time.Duration

	cur   atomic.Pointer[Snapshot]
	ready atomic.Bool
	once  sync.Once
	recs  chan bus.Record

	mu      sync.Mutex
	applied map[tp]int64 // highest applied offset per partition
	high    map[tp]int64 // high-water marks captured at start
	changed chan struct{}
	started int
	readyCh chan struct{}

	logged sync.Map // topic → bool: first malformed record logged

	// ctl holds the latest record of each control key; ctlSeq numbers
	// them in order of application. Only the apply goroutine uses them.
	ctl    map[string]ctlEntry
	ctlSeq uint64
}

type tp struct {
	topic     string
	partition int
}

var (
	indexCampaigns = metrics.NewGauge(`adserver_index_campaigns`, nil)
	snapshotSwaps  = metrics.NewCounter(`adserver_index_swaps_total`)
	lastSwap       atomic.Int64 // unix nanoseconds of the latest swap in the process
	_              = metrics.GetOrCreateGauge(`adserver_index_age_seconds`, func() float64 {
		if t := lastSwap.Load(); t > 0 {
			return time.Since(time.Unix(0, t)).Seconds()
		}
		return 0
	})
)

// lagGauge is the records not yet applied from a topic, summed over its
// partitions. Other consumers (spend sync) report under the same name.
func lagGauge(topic string) *metrics.Gauge {
	return metrics.GetOrCreateGauge(`adserver_kafka_consumer_lag_records{topic="`+topic+`"}`, nil)
}

func recordsCounter(topic string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`adserver_feed_records_total{topic="` + topic + `"}`)
}

func malformedCounter(topic string) *metrics.Counter {
	return metrics.GetOrCreateCounter(`adserver_feed_malformed_records_total{topic="` + topic + `"}`)
}

func (f *Feed) init() {
	f.once.Do(func() {
		f.recs = make(chan bus.Record, 8192)
		f.applied = map[tp]int64{}
		f.high = map[tp]int64{}
		f.changed = make(chan struct{})
		f.readyCh = make(chan struct{})
		f.ctl = map[string]ctlEntry{}
		f.cur.Store(&Snapshot{
			Index:            targeting.Build(nil),
			Placements:       map[string]*campaign.Placement{},
			Advertisers:      map[string]*campaign.Advertiser{},
			AdvertisersByKey: map[string]*campaign.Advertiser{},
			Switches:         defaultSwitches,
			Built:            f.now(),
		})
	})
}

func (f *Feed) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

func (f *Feed) log() *slog.Logger {
	if f.Logger != nil {
		return f.Logger
	}
	return slog.Default()
}

// Snapshot returns the current catalog. Before Run it is empty.
func (f *Feed) Snapshot() *Snapshot {
	f.init()
	return f.cur.Load()
}

// Ready reports whether the bootstrap is complete.
func (f *Feed) Ready() bool { return f.ready.Load() }

// WaitReady blocks until the bootstrap is complete or ctx is done.
func (f *Feed) WaitReady(ctx context.Context) error {
	f.init()
	select {
	case <-f.readyCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run creates missing topics, then follows them until ctx is done.
func (f *Feed) Run(ctx context.Context) error {
	f.init()
	specs := make([]bus.TopicSpec, len(Topics))
	for i, t := range Topics {
		specs[i] = bus.TopicSpec{Name: t, Compacted: true}
		if t == bus.TopicControl {
			// One partition: records of different keys apply in the
			// same order on every node (see switches.go).
			specs[i].Partitions = 1
		}
	}
	if err := f.Client.EnsureTopics(ctx, specs...); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(Topics)+1)
	for _, topic := range Topics {
		t := &bus.Tail{
			Client:  f.Client,
			Topic:   topic,
			Logger:  f.Logger,
			OnStart: func(high []int64) { f.onStart(topic, high) },
			Handle: func(r bus.Record) {
				select {
				case f.recs <- r:
				case <-ctx.Done():
				}
			},
		}
		go func() { errc <- t.Run(ctx) }()
	}
	go func() { errc <- f.apply(ctx) }()
	go f.watchLag(ctx)
	err := <-errc
	cancel()
	if ctx.Err() != nil && err != nil && errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

func (f *Feed) onStart(topic string, high []int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for p, h := range high {
		f.high[tp{topic, p}] = h
	}
	f.started++
	f.checkReadyLocked()
}

// checkReadyLocked marks the feed ready once every topic has started and
// every partition's applied offset reached its start high-water mark.
func (f *Feed) checkReadyLocked() bool {
	if f.ready.Load() {
		return true
	}
	if f.started < len(Topics) {
		return false
	}
	for k, h := range f.high {
		if h > 0 && f.appliedLocked(k) < h-1 {
			return false
		}
	}
	f.ready.Store(true)
	close(f.readyCh)
	f.log().Info("catalog bootstrap complete", "campaigns", f.cur.Load().Index.Len())
	return true
}

func (f *Feed) appliedLocked(k tp) int64 {
	if v, ok := f.applied[k]; ok {
		return v
	}
	return -1
}

// bootstrapDone reports whether records delivered so far cover every
// start high-water mark (they may not be applied yet).
func (f *Feed) bootstrapDone(delivered map[tp]int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.started < len(Topics) {
		return false
	}
	for k, h := range f.high {
		d, ok := delivered[k]
		if !ok {
			d = f.appliedLocked(k)
		}
		if h > 0 && d < h-1 {
			return false
		}
	}
	return true
}

// WaitApplied blocks until this node has applied the record at offset of
// topic/partition, or ctx is done.
func (f *Feed) WaitApplied(ctx context.Context, topic string, partition int, offset int64) error {
	f.init()
	k := tp{topic, partition}
	for {
		f.mu.Lock()
		done := f.appliedLocked(k) >= offset
		ch := f.changed
		f.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Publish produces one catalog record and waits, at most wait, until this
// node has applied it. On timeout it returns ErrNotVisible: the record is
// durable in Kafka and will apply.
func (f *Feed) Publish(ctx context.Context, topic, key string, value []byte, wait time.Duration) error {
	p, off, err := f.Client.Produce(ctx, topic, []byte(key), value)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	if err := f.WaitApplied(wctx, topic, p, off); err != nil {
		return fmt.Errorf("%w (topic %s, partition %d, offset %d)", ErrNotVisible, topic, p, off)
	}
	return nil
}

// watchLag sets adserver_kafka_consumer_lag_records for each followed
// topic every LagInterval until ctx is done.
func (f *Feed) watchLag(ctx context.Context) {
	every := f.LagInterval
	if every <= 0 {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, topic := range Topics {
			_, high, err := f.Client.Offsets(ctx, topic)
			if err != nil {
				continue // the tails log Kafka trouble; keep the last value
			}
			var lag int64
			f.mu.Lock()
			for p, h := range high {
				if d := h - 1 - f.appliedLocked(tp{topic, p}); d > 0 {
					lag += d
				}
			}
			f.mu.Unlock()
			lagGauge(topic).Set(float64(lag))
		}
	}
}

// Replace swaps in a snapshot built elsewhere and marks the feed ready, for
// tests and tools that serve a fixed catalog without Kafka. Do not mix it
// with Run.
func (f *Feed) Replace(s *Snapshot) {
	f.init()
	f.cur.Store(s)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.ready.Load() {
		f.ready.Store(true)
		close(f.readyCh)
	}
}
