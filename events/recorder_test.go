package events

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type chargeLog struct {
	mu      sync.Mutex
	charges map[string]int64
	calls   int
}

func (c *chargeLog) Charge(campaignID string, cost int64, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.charges == nil {
		c.charges = map[string]int64{}
	}
	c.charges[campaignID] += cost
	c.calls++
}

func newTestRecorder(t testing.TB, app Appender, ch Charger) *Recorder {
	t.Helper()
	r, err := NewRecorder(RecorderConfig{NodeID: "n1", Log: app, Charger: ch, DedupEntries: 10000,
		Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	return r
}

func TestRecorderDedupAndCharge(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	defer l.Close()
	ch := &chargeLog{}
	r := newTestRecorder(t, l, ch)
	b := sampleBeacon() // CPM 1.23 -> 1230 micros per impression
	for i := 0; i < 3; i++ {
		res, err := r.Record(&b)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]Result{true: Recorded, false: Duplicate}[i == 0]; res != want {
			t.Fatalf("attempt %d: %v", i, res)
		}
	}
	click := b
	click.Type, click.Charge = TypeClick, ChargeNone
	if res, _ := r.Record(&click); res != Recorded {
		t.Fatal("click after impression of the same slot must be new")
	}
	test := b
	test.AuctionID, test.Test = "other", true
	if res, _ := r.Record(&test); res != Recorded {
		t.Fatal("test beacon")
	}
	if ch.calls != 1 || ch.charges["c-1"] != 1230 {
		t.Fatalf("charges %+v in %d calls", ch.charges, ch.calls)
	}
	l.Sync()
	recs := readAll(t, l.NewReader(l.Acked()))
	if len(recs) != 3 {
		t.Fatalf("logged %d events", len(recs))
	}
	var e Event
	if err := e.Unmarshal(recs[0].Payload); err != nil {
		t.Fatal(err)
	}
	if e.ID != b.EventID() || e.NodeID != "n1" || !e.Time.Equal(testNow) || e.CostMicros != 1230 || e.PriceMicros != 1_230_000 {
		t.Fatalf("logged %+v", e)
	}
}

func TestRecorderConcurrentRepeats(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	defer l.Close()
	ch := &chargeLog{}
	r := newTestRecorder(t, l, ch)
	const beacons, repeats = 200, 8
	var recorded atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < repeats; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < beacons; i++ {
				b := sampleBeacon()
				b.AuctionID = "auc-" + string(rune('A'+i%26)) + string(rune('a'+i/26))
				res, err := r.Record(&b)
				if err != nil {
					t.Error(err)
				}
				if res == Recorded {
					recorded.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if recorded.Load() != beacons || ch.charges["c-1"] != beacons*1230 {
		t.Fatalf("recorded %d, charged %d", recorded.Load(), ch.charges["c-1"])
	}
}

func TestRecorderDedupBeyondRecentSet(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	defer l.Close()
	r, err := NewRecorder(RecorderConfig{Log: l, RecentPerShard: 1, DedupEntries: 1000})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := sampleBeacon()
	r.Record(&b)
	r.cache.Wait() // let ristretto admit the id
	// Push the id out of the exact recent set (both generations), so that
	// only ristretto can catch the repeat.
	sh := &r.recent[b.EventID()[15]%dedupShards]
	id := b.EventID()
	inRecent := func() bool {
		_, cur := sh.cur[id]
		_, prev := sh.prev[id]
		return cur || prev
	}
	for i := 0; inRecent(); i++ {
		if i >= 100*dedupShards {
			t.Fatal("BUG: the id never left the recent set")
		}
		o := sampleBeacon()
		o.AuctionID = string(rune(i + 1000))
		r.Record(&o)
	}
	if res, _ := r.Record(&b); res != Duplicate {
		t.Fatal("ristretto did not catch the repeat")
	}
}

type failingLog struct{ err error }

func (f failingLog) Append([]byte) (uint64, error) { return 0, f.err }

func TestRecorderLogFailureChangesNothing(t *testing.T) {
	ch := &chargeLog{}
	fl := &failingLog{err: ErrLogFull}
	r := newTestRecorder(t, fl, ch)
	b := sampleBeacon()
	if _, err := r.Record(&b); !errors.Is(err, ErrLogFull) {
		t.Fatalf("err %v", err)
	}
	if ch.calls != 0 {
		t.Fatal("charged although not logged")
	}
	fl.err = nil
	if res, err := r.Record(&b); err != nil || res != Recorded {
		t.Fatalf("retry after failure: %v %v", res, err)
	}
	if ch.calls != 1 {
		t.Fatal("retry not charged")
	}
	// Many fail-then-retry rounds: a retry right after a failed append must
	// never be taken for a duplicate (ristretto applies writes late).
	for i := range 2000 {
		o := sampleBeacon()
		o.AuctionID = fmt.Sprintf("retry-%d", i)
		fl.err = ErrLogFull
		if _, err := r.Record(&o); !errors.Is(err, ErrLogFull) {
			t.Fatalf("round %d: err %v", i, err)
		}
		fl.err = nil
		if res, err := r.Record(&o); err != nil || res != Recorded {
			t.Fatalf("round %d: retry after failure: %v %v", i, res, err)
		}
	}
	if ch.calls != 2001 {
		t.Fatalf("charged %d times, want 2001", ch.calls)
	}
}

func TestRecorderDecision(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	defer l.Close()
	r := newTestRecorder(t, l, nil)
	d := Decision{AuctionID: "a", Candidates: 3}
	if err := r.RecordDecision(&d); err != nil || d.Seq == 0 {
		t.Fatal(err)
	}
	l.Sync()
	recs := readAll(t, l.NewReader(l.Acked()))
	var got Decision
	if len(recs) != 1 || got.Unmarshal(recs[0].Payload) != nil || got.NodeID != "n1" || got.Candidates != 3 {
		t.Fatalf("%+v", got)
	}
}

func TestRecorderAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("race")
	}
	r := newTestRecorder(t, failingLog{}, nil)
	b := sampleBeacon()
	r.Record(&b)
	if n := testing.AllocsPerRun(100, func() { r.Record(&b) }); n != 0 {
		t.Fatalf("duplicate Record allocates %v", n)
	}
}
