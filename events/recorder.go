package events

import (
	"errors"
	"fmt"
	"sync"
	"time"
	"unsafe"

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
	cfg   RecorderConfig
	cache *ristretto.Cache[string, struct{}]
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
	cache, err := ristretto.NewCache(&ristretto.Config[string, struct{}]{
		NumCounters:        cfg.DedupEntries * 10,
		MaxCost:            cfg.DedupEntries,
		BufferItems:        64,
		IgnoreInternalCost: true,
		KeyToHash:          idKeyHash,
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

// idKeyHash maps a 16-byte id key to ristretto's (hash, conflict) pair
// without hashing again: ids are already uniformly distributed.
func idKeyHash(k string) (uint64, uint64) {
	if len(k) != len(ID{}) {
		panic("BUG: events: dedup key is not an event id")
	}
	return le64(k[:8]), le64(k[8:])
}

func le64(s string) uint64 {
	_ = s[7]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// idKey views id as a string without copying. ristretto keeps only the
// hashes of a key, never the key itself, so the view need not outlive the
// call.
func idKey(id *ID) string { return unsafe.String(&id[0], len(id)) }

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

// RecordEvent is Record for an event built by the caller: e.ID must be
// set (see EventID). Time and NodeID are filled when zero. e is not
// retained.
func (r *Recorder) RecordEvent(e *Event) (Result, error) {
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
	seq, err := r.appendPayload(e.AppendBinary)
	if err != nil {
		r.forget(&e.ID)
		eventsLogFailed.Inc()
		return 0, err
	}
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
	seq, err := r.appendPayload(d.AppendBinary)
	if err != nil {
		eventsLogFailed.Inc()
		return err
	}
	d.Seq = seq
	decisionsLogged.Inc()
	return nil
}

func (r *Recorder) appendPayload(enc func([]byte) []byte) (uint64, error) {
	bp, _ := r.bufs.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	*bp = enc((*bp)[:0])
	seq, err := r.cfg.Log.Append(*bp)
	if cap(*bp) <= 64<<10 {
		r.bufs.Put(bp)
	}
	return seq, err
}

// markNew records id as seen and reports whether it was new.
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
	if _, ok := r.cache.Get(idKey(id)); ok {
		return false
	}
	if len(sh.cur) >= r.cfg.RecentPerShard {
		sh.prev, sh.cur = sh.cur, make(map[ID]struct{}, r.cfg.RecentPerShard)
	}
	sh.cur[*id] = struct{}{}
	r.cache.SetWithTTL(idKey(id), struct{}{}, 1, r.cfg.DedupTTL)
	return true
}

// forget undoes markNew after a failed append.
func (r *Recorder) forget(id *ID) {
	sh := &r.recent[id[15]%dedupShards]
	sh.mu.Lock()
	delete(sh.cur, *id)
	delete(sh.prev, *id)
	r.cache.Del(idKey(id))
	sh.mu.Unlock()
}
