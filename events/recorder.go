package events

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/dgraph-io/ristretto/v2"
)

// Charger receives the cost of every recorded, non-test event that costs
// something. The pacing package implements it. Charge is called on the
// beacon request's goroutine after the event is in the log, so it must be
// quick and must not block.
type Charger interface {
	Charge(campaignID string, costMicros int64, at time.Time)
}

// Appender is where the Recorder writes encoded events; *Log implements it.
type Appender interface {
	Append(payload []byte) (seq uint64, err error)
}

// RecorderConfig configures a Recorder. The zero value of every field but
// Log is valid.
type RecorderConfig struct {
	// NodeID is stamped on every event. It must be unique per node and
	// stable across restarts (it keys exactly-once delivery).
	NodeID string
	// Log receives the events. Required.
	Log Appender
	// Charger is charged for every recorded event with a cost; nil charges
	// nothing.
	Charger Charger
	// DedupEntries bounds the de-duplication memory: the number of event
	// ids remembered by the ristretto cache. Default 1,000,000 (roughly
	// 100 MB at full occupancy).
	DedupEntries int64
	// DedupTTL is how long an id is remembered. Default DefaultMaxAge (a
	// beacon older than that is rejected by the Signer anyway); set it to
	// the Signer's ConversionMaxAge to also catch late conversion repeats.
	DedupTTL time.Duration
	// RecentPerShard is the size of each of the 64 shards of the exact
	// recent-id set that catches repeats arriving before the ristretto
	// cache has admitted the first copy. Default 4096 (each shard keeps
	// between this many and twice this many ids).
	RecentPerShard int
	// Now is the clock that stamps events. Default time.Now.
	Now func() time.Time
}

// Result says what Record did with an event.
type Result uint8

// Record results.
const (
	Recorded  Result = 1 // new event: logged and charged
	Duplicate Result = 2 // seen before: accepted, not logged, not charged
)

var (
	eventsRecorded   = metrics.NewCounter(`adserver_events_recorded_total`)
	eventsDuplicate  = metrics.NewCounter(`adserver_events_duplicate_total`)
	eventsLogFailed  = metrics.NewCounter(`adserver_events_log_failed_total`)
	decisionsLogged  = metrics.NewCounter(`adserver_decisions_recorded_total`)
	eventsChargedMic = metrics.NewCounter(`adserver_events_charged_micros_total`)
)

const dedupShards = 64

// Recorder de-duplicates, logs and charges events. It is safe for
// concurrent use; Close releases the cache.
type Recorder struct {
	cfg RecorderConfig
	// cache maps the first half of an id to its second half, so a lookup
	// compares all 128 bits without handing ristretto a pointer (which
	// would make every recorded Event escape to the heap).
	cache *ristretto.Cache[uint64, uint64]
	// recent is an exact set of recently recorded ids, striped over
	// dedupShards locks. It closes the window in which ristretto's
	// asynchronous Set has not yet made an id visible, and makes
	// check-and-insert atomic per id.
	recent [dedupShards]recentShard
	bufs   sync.Pool // *[]byte
}

type recentShard struct {
	mu        sync.Mutex
	cur, prev map[ID]struct{}
	_         [64]byte // avoid false sharing between shards
}

// NewRecorder returns a Recorder for cfg.
func NewRecorder(cfg RecorderConfig) (*Recorder, error) {
	if cfg.Log == nil {
		return nil, errors.New("recorder: Log is required")
	}
	if cfg.DedupEntries <= 0 {
		cfg.DedupEntries = 1_000_000
	}
	if cfg.DedupTTL <= 0 {
		cfg.DedupTTL = DefaultMaxAge
	}
	if cfg.RecentPerShard <= 0 {
		cfg.RecentPerShard = 4096
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cache, err := ristretto.NewCache(&ristretto.Config[uint64, uint64]{
		NumCounters:        cfg.DedupEntries * 10,
		MaxCost:            cfg.DedupEntries,
		BufferItems:        64,
		IgnoreInternalCost: true,
	})
	if err != nil {
		return nil, fmt.Errorf("recorder: cannot create dedup cache: %w", err)
	}
	r := &Recorder{cfg: cfg, cache: cache}
	for i := range r.recent {
		r.recent[i].cur = make(map[ID]struct{})
	}
	return r, nil
}

// idHalves splits an id into the cache key and the value stored under it.
func idHalves(id *ID) (key, check uint64) {
	return binary.LittleEndian.Uint64(id[:8]), binary.LittleEndian.Uint64(id[8:])
}

// Close releases the de-duplication cache.
func (r *Recorder) Close() { r.cache.Close() }

// Record de-duplicates the event of beacon b, appends it to the log and
// charges its cost. A repeat returns Duplicate and changes nothing. When
// the log refuses the event (for example ErrLogFull) nothing is charged,
// the id is forgotten so a retry can succeed, and the error is returned.
func (r *Recorder) Record(b *Beacon) (Result, error) {
	var e Event
	b.ToEvent(&e)
	return r.RecordEvent(&e)
}

// RecordEvent is Record for an event built by the caller. ID (from
// EventID), Time and NodeID are filled when zero. e is not retained.
func (r *Recorder) RecordEvent(e *Event) (Result, error) {
	if !e.Type.Valid() {
		return 0, fmt.Errorf("recorder: invalid event type %d", e.Type)
	}
	if e.ID == (ID{}) {
		e.ID = EventID(e.AuctionID, e.SlotID, e.Type)
	}
	if e.Time.IsZero() {
		e.Time = r.cfg.Now()
	}
	if e.NodeID == "" {
		e.NodeID = r.cfg.NodeID
	}
	if !r.markNew(&e.ID) {
		eventsDuplicate.Inc()
		return Duplicate, nil
	}
	seq, err := r.appendPayload(e, nil)
	if err != nil {
		r.forget(&e.ID)
		eventsLogFailed.Inc()
		return 0, err
	}
	r.remember(&e.ID)
	e.Seq = seq
	eventsRecorded.Inc()
	if cost := e.CostMicros; cost > 0 && !e.Test && r.cfg.Charger != nil {
		eventsChargedMic.AddInt64(cost)
		r.cfg.Charger.Charge(e.CampaignID, cost, e.Time)
	}
	return Recorded, nil
}

// RecordDecision appends a sampled auction record to the log. Decisions
// are neither de-duplicated nor charged.
func (r *Recorder) RecordDecision(d *Decision) error {
	if d.Time.IsZero() {
		d.Time = r.cfg.Now()
	}
	if d.NodeID == "" {
		d.NodeID = r.cfg.NodeID
	}
	seq, err := r.appendPayload(nil, d)
	if err != nil {
		eventsLogFailed.Inc()
		return err
	}
	d.Seq = seq
	decisionsLogged.Inc()
	return nil
}

// appendPayload encodes e or d into a pooled buffer and appends it.
func (r *Recorder) appendPayload(e *Event, d *Decision) (uint64, error) {
	bp, _ := r.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	if e != nil {
		*bp = e.AppendBinary((*bp)[:0])
	} else {
		*bp = d.AppendBinary((*bp)[:0])
	}
	seq, err := r.cfg.Log.Append(*bp)
	if cap(*bp) <= 64<<10 {
		r.bufs.Put(bp)
	}
	return seq, err
}

// markNew records id as seen in the exact recent set and reports whether
// it was new. The id enters ristretto only once its append succeeded
// (remember): ristretto applies a Set asynchronously, so a Set undone by
// Del could still be visible for a moment and turn the retry of a failed
// append into a false Duplicate.
func (r *Recorder) markNew(id *ID) bool {
	sh := &r.recent[id[15]%dedupShards]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if _, ok := sh.cur[*id]; ok {
		return false
	}
	if _, ok := sh.prev[*id]; ok {
		return false
	}
	key, check := idHalves(id)
	if v, ok := r.cache.Get(key); ok && v == check {
		return false
	}
	if len(sh.cur) >= r.cfg.RecentPerShard {
		sh.prev, sh.cur = sh.cur, make(map[ID]struct{}, r.cfg.RecentPerShard)
	}
	sh.cur[*id] = struct{}{}
	return true
}

// remember adds a logged id to ristretto, which keeps it past the recent set.
func (r *Recorder) remember(id *ID) {
	key, check := idHalves(id)
	r.cache.SetWithTTL(key, check, 1, r.cfg.DedupTTL)
}

// forget undoes markNew after a failed append.
func (r *Recorder) forget(id *ID) {
	sh := &r.recent[id[15]%dedupShards]
	sh.mu.Lock()
	delete(sh.cur, *id)
	delete(sh.prev, *id)
	sh.mu.Unlock()
}
