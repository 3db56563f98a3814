package pacing

import (
	"strconv"
	"testing"
	"time"
)

func TestFrequencyCap(t *testing.T) {
	f, err := NewFreqCaps(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	capped := testCampaign(t, "c-cap", "UTC", "asap", unit, 0, `"frequency_cap":{"count":3,"window":"1h"},`)
	other := testCampaign(t, "c-cap2", "UTC", "asap", unit, 0, `"frequency_cap":{"count":1,"window":"1h"},`)
	free := testCampaign(t, "c-free", "UTC", "asap", unit, 0, "")

	for i := 0; i < 3; i++ {
		if !f.Allows("u-1", capped, now) {
			t.Fatalf("exposure %d refused under a cap of 3", i+1)
		}
		f.Record("u-1", capped, now.Add(time.Duration(i)*time.Minute))
		f.Wait()
	}
	if f.Allows("u-1", capped, now.Add(5*time.Minute)) {
		t.Fatal("4th exposure allowed under a cap of 3")
	}
	if !f.Allows("u-2", capped, now) || !f.Allows("u-1", other, now) || !f.Allows("u-1", free, now) {
		t.Fatal("a cap leaked to another user or campaign")
	}
	// No user id: a capped campaign cannot be counted, so it is refused.
	if f.Allows("", capped, now) {
		t.Fatal("request without user id passed a capped campaign")
	}
	if !f.Allows("", free, now) {
		t.Fatal("request without user id refused by an uncapped campaign")
	}
	f.Record("", capped, now) // no-op, must not panic
	// The window opened at the first exposure: one hour later it is over.
	if f.Allows("u-1", capped, now.Add(time.Hour-time.Second)) {
		t.Fatal("allowed before the window ended")
	}
	later := now.Add(time.Hour)
	if !f.Allows("u-1", capped, later) {
		t.Fatal("refused after the window ended")
	}
	f.Record("u-1", capped, later)
	f.Wait()
	if !f.Allows("u-1", capped, later) {
		t.Fatal("the new window did not start from zero")
	}
	f.Record("u-1", capped, later)
	f.Record("u-1", capped, later)
	if f.Allows("u-1", capped, later.Add(time.Minute)) {
		t.Fatal("4th exposure of the new window allowed")
	}
}

func TestFrequencyCapMemoryBound(t *testing.T) {
	const maxCost = 200 * capEntryCost
	f, err := NewFreqCaps(maxCost)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := testCampaign(t, "c-cap", "UTC", "asap", unit, 0, `"frequency_cap":{"count":1,"window":"24h"},`)
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 10_000; i++ {
		f.Record("u-"+strconv.Itoa(i), c, now)
	}
	f.Wait()
	if used := f.cache.MaxCost() - f.cache.RemainingCost(); used > maxCost {
		t.Fatalf("cache holds %d bytes of cost, bound %d", used, maxCost)
	}
	// Evicted users are allowed again (fail-open); most are.
	allowed := 0
	for i := 0; i < 10_000; i++ {
		if f.Allows("u-"+strconv.Itoa(i), c, now) {
			allowed++
		}
	}
	if allowed < 9_000 {
		t.Fatalf("%d of 10000 allowed; the bound keeps at most ~%d entries", allowed, maxCost/capEntryCost)
	}
}
