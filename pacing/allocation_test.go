//go:build !race

package pacing

import (
	"testing"
	"time"
)

// The decision and beacon paths must not allocate once a campaign, a
// placement and a user's cap entry exist.
func TestHotPathAllocations(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newTestPacer(t, Config{Clock: &fakeClock{t: now}})
	even := testCampaign(t, "c-even", "Asia/Seoul", "even", 1000*unit, 5000*unit, `"frequency_cap":{"count":1000000,"window":"24h"},`)
	asap := testCampaign(t, "c-asap", "UTC", "asap", 1000*unit, 0, "")
	p.Observe("p-1", now)
	p.CapRecord("u-1", even, now)
	p.caps.Wait()
	p.Tick(now)
	for name, fn := range map[string]func(){
		"Allow/even": func() { p.Allow(even, now) },
		"Allow/asap": func() { p.Allow(asap, now) },
		"Reserve+Cancel": func() {
			r, _ := p.Reserve(asap, 10, now)
			p.Cancel(r)
		},
		"Charge":    func() { p.Charge(asap.ID, 1, now) },
		"CapAllows": func() { p.CapAllows("u-1", even, now) },
		"CapRecord": func() { p.CapRecord("u-1", even, now) },
		"Observe":   func() { p.Observe("p-1", now) },
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}

// The same with a spend sync attached: ceilings and the others' records
// in play.
func TestHotPathAllocationsShared(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	f := newFleet(t, 2, 2, now)
	p := f.ps[0]
	asap := testCampaign(t, "c-asap", "UTC", "asap", 1000*unit, 5000*unit, "")
	even := testCampaign(t, "c-even", "Asia/Seoul", "even", 1000*unit, 0, "")
	for i := range f.ps {
		f.ps[i].Allow(asap, now)
		f.ps[i].Allow(even, now)
		f.syncNode(i, now)
	}
	p.Tick(now)
	if ok, reason := p.Allow(asap, now); !ok {
		t.Fatalf("Allow: %s", reason)
	}
	for name, fn := range map[string]func(){
		"Allow/even": func() { p.Allow(even, now) },
		"Allow/asap": func() { p.Allow(asap, now) },
		"Reserve+Cancel": func() {
			r, _ := p.Reserve(asap, 10, now)
			p.Cancel(r)
		},
		"Charge": func() { p.Charge(asap.ID, 1, now) },
	} {
		if n := testing.AllocsPerRun(1000, fn); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", name, n)
		}
	}
}
