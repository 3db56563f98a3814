package pacing

import (
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

const unit = campaign.MicrosPerUnit

func wantAllow(t *testing.T, p *Pacer, c *campaign.Campaign, now time.Time, want bool, wantReason string) {
	t.Helper()
	ok, reason := p.Allow(c, now)
	if ok != want || reason != wantReason {
		t.Fatalf("Allow(%s, %s) = %v %q, want %v %q", c.ID, now.UTC().Format(time.RFC3339), ok, reason, want, wantReason)
	}
}

func TestHardStopWithReservations(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newTestPacer(t, Config{Clock: &fakeClock{t: now}})
	c := testCampaign(t, "c-1", "UTC", "asap", 10*unit, 0, "")

	r1, ok := p.Reserve(c, 6*unit, now)
	if !ok {
		t.Fatal("first reservation refused")
	}
	if _, ok := p.Reserve(c, 5*unit, now); ok {
		t.Fatal("reservation past the budget accepted (6 + 5 > 10)")
	}
	wantAllow(t, p, c, now, true, "")
	r2, ok := p.Reserve(c, 4*unit, now)
	if !ok {
		t.Fatal("reservation that exactly fills the budget refused")
	}
	wantAllow(t, p, c, now, false, ReasonBudgetExhausted)

	// The beacon of the first decision charges it: spend 6 + reserved 4.
	p.Charge(c.ID, 6*unit, now.Add(time.Second))
	wantAllow(t, p, c, now.Add(time.Second), false, ReasonBudgetExhausted)
	st, _ := p.Status(c.ID, now)
	if st.DaySpend != 6*unit || st.Reserved != 4*unit {
		t.Fatalf("after charge: spend %v reserved %v, want 6 and 4", st.DaySpend, st.Reserved)
	}
	// The second decision was not served.
	p.Cancel(r2)
	p.Cancel(r2) // twice: nothing more to release
	p.Cancel(r1) // already settled by the charge
	st, _ = p.Status(c.ID, now)
	if st.Reserved != 0 || st.DailyHeadroom != 4*unit {
		t.Fatalf("after cancel: reserved %v headroom %v, want 0 and 4", st.Reserved, st.DailyHeadroom)
	}
	wantAllow(t, p, c, now.Add(2*time.Second), true, "")

	// Charges are never refused: a late click may overspend.
	p.Charge(c.ID, 5*unit, now.Add(3*time.Second))
	wantAllow(t, p, c, now.Add(3*time.Second), false, ReasonBudgetExhausted)
	if _, ok := p.Reserve(c, 0, now); ok {
		t.Fatal("zero-cost reservation accepted on an overspent campaign")
	}
}

func TestReservationExpiry(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	clk := &fakeClock{t: now}
	p := newTestPacer(t, Config{Clock: clk, ReservationExpiry: time.Minute})
	c := testCampaign(t, "c-1", "UTC", "asap", 10*unit, 0, "")
	if _, ok := p.Reserve(c, 10*unit, now); !ok {
		t.Fatal("reservation refused")
	}
	wantAllow(t, p, c, now, false, ReasonBudgetExhausted)
	p.Tick(now.Add(50 * time.Second))
	wantAllow(t, p, c, now.Add(50*time.Second), false, ReasonBudgetExhausted)
	// The expiry works in slots of ReservationExpiry/30 (2s here).
	later := now.Add(time.Minute + 2*time.Second)
	p.Tick(later)
	wantAllow(t, p, c, later, true, "")
	// A charge after the expiry still counts, and releases nothing.
	p.Charge(c.ID, 3*unit, later)
	if st, _ := p.Status(c.ID, later); st.DaySpend != 3*unit || st.Reserved != 0 {
		t.Fatalf("spend %v reserved %v, want 3 and 0", st.DaySpend, st.Reserved)
	}
}

func TestChargeReleasesOldestReservationsFirst(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newTestPacer(t, Config{Clock: &fakeClock{t: now}})
	c := testCampaign(t, "c-1", "UTC", "asap", 100*unit, 0, "")
	p.Reserve(c, 2*unit, now)
	p.Reserve(c, 3*unit, now.Add(10*time.Second))
	p.Reserve(c, 4*unit, now.Add(20*time.Second))
	// A charge of 4 settles the first (2) and 2 of the second.
	p.Charge(c.ID, 4*unit, now.Add(21*time.Second))
	// Expire the first two slots' worth: only the third reservation (4)
	// and 1 left of the second remain until they expire in turn.
	p.Tick(now.Add(time.Minute + 12*time.Second))
	if st, _ := p.Status(c.ID, now); st.Reserved != 4*unit {
		t.Fatalf("reserved %v, want 4", st.Reserved)
	}
}

func TestDayRolloverInCampaignTimeZone(t *testing.T) {
	seoul := mustLoc(t, "Asia/Seoul")
	now := mustDate(t, "2026-11-24 23:30:00", seoul)
	p := newTestPacer(t, Config{Clock: &fakeClock{t: now}})
	c := testCampaign(t, "c-kr", "Asia/Seoul", "asap", 10*unit, 0, "")
	p.Charge(c.ID, 10*unit, now)
	wantAllow(t, p, c, now, false, ReasonBudgetExhausted)
	// 23:59:59 KST is still the same day; 00:00 KST (15:00 UTC) is not.
	wantAllow(t, p, c, mustDate(t, "2026-11-24 23:59:59", seoul), false, ReasonBudgetExhausted)
	midnight := mustDate(t, "2026-11-25 00:00:00", seoul)
	if got := midnight.UTC().Hour(); got != 15 {
		t.Fatalf("KST midnight is %d:00 UTC", got)
	}
	wantAllow(t, p, c, midnight, true, "")
	// A beacon of yesterday's last impression arrives after midnight: it
	// counts against yesterday, not today.
	p.Charge(c.ID, unit, mustDate(t, "2026-11-24 23:59:58", seoul))
	st, _ := p.Status(c.ID, midnight)
	if st.Day.String() != "2026-11-25" || st.DaySpend != 0 || st.TotalSpend != 11*unit {
		t.Fatalf("status %+v: want day 2026-11-25 with spend 0 and lifetime 11", st)
	}
}

func TestDSTDayIs25Hours(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	p := newTestPacer(t, Config{})
	c := testCampaign(t, "c-us", "America/New_York", "asap", 10*unit, 0, "")
	// 2026-11-01 has 25 hours in New York: it ends at 05:00 UTC on Nov 2.
	p.Charge(c.ID, 10*unit, mustDate(t, "2026-11-01 00:30:00", ny))
	lastMinute := time.Date(2026, 11, 2, 4, 59, 0, 0, time.UTC)
	wantAllow(t, p, c, lastMinute, false, ReasonBudgetExhausted)
	wantAllow(t, p, c, time.Date(2026, 11, 2, 5, 0, 0, 0, time.UTC), true, "")
}

func TestTotalBudgetAcrossDays(t *testing.T) {
	berlin := mustLoc(t, "Europe/Berlin")
	p := newTestPacer(t, Config{})
	c := testCampaign(t, "c-de", "Europe/Berlin", "asap", 10*unit, 25*unit, "")
	day := mustDate(t, "2026-10-23 09:00:00", berlin)
	for i, spend := range []campaign.Micros{10 * unit, 10 * unit} {
		now := day.AddDate(0, 0, i)
		wantAllow(t, p, c, now, true, "")
		p.Charge(c.ID, spend, now)
		wantAllow(t, p, c, now, false, ReasonBudgetExhausted)
	}
	// Day 3 (the 25-hour DST day): 5 left of the total.
	now := day.AddDate(0, 0, 2)
	if _, ok := p.Reserve(c, 6*unit, now); ok {
		t.Fatal("reservation past the total budget accepted")
	}
	p.Charge(c.ID, 5*unit, now)
	wantAllow(t, p, c, now, false, ReasonTotalBudgetExhausted)
	wantAllow(t, p, c, day.AddDate(0, 0, 3), false, ReasonTotalBudgetExhausted)
}

func TestTotalOnlyBudgetPlansRemainingDays(t *testing.T) {
	now := time.Date(2029, 12, 22, 0, 0, 1, 0, time.UTC) // flight ends 2030-01-01
	p := newTestPacer(t, Config{})
	c := testCampaign(t, "c-t", "UTC", "even", 0, 100*unit, "")
	p.Update(c)
	p.Charge(c.ID, 10*unit, now.Add(-2*time.Hour)) // spent yesterday
	p.Tick(now)
	pl, ok := p.Plan(c.ID)
	if !ok {
		t.Fatal("no plan")
	}
	// 90 left over 10 days (Dec 22..31).
	if pl.Budget != 9*unit {
		t.Fatalf("day budget %v, want 9", pl.Budget)
	}
}

// Without a spend sync a node hears nothing of the others: with
// Config.Nodes set it takes a static 1/Nodes of each budget. (With a sync,
// see share_test.go.)
func TestStaticShareWithoutSync(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := newTestPacer(t, Config{NodeID: "a", Nodes: 2, Clock: &fakeClock{t: now}})
	c := testCampaign(t, "c-1", "UTC", "asap", 1000, 0, "")
	if _, ok := a.Reserve(c, 400, now); !ok {
		t.Fatal("400 of a fresh 1000 refused")
	}
	if _, ok := a.Reserve(c, 101, now); ok {
		t.Fatal("went past its half (500)")
	}
	if _, ok := a.Reserve(c, 100, now); !ok {
		t.Fatal("the rest of its half refused")
	}
	wantAllow(t, a, c, now, false, ReasonBudgetExhausted)
}

// A restarted node takes back its own spend from its records.
func TestRebuildRestoresOwnSpend(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	a := newTestPacer(t, Config{NodeID: "a"})
	c := testCampaign(t, "c-1", "UTC", "asap", 10*unit, 100*unit, "")
	a.Charge(c.ID, 3*unit, now.Add(-24*time.Hour))
	a.Charge(c.ID, 4*unit, now)
	records := a.AppendDeltas(nil, now)
	a.Published(records)

	a2 := newTestPacer(t, Config{NodeID: "a"})
	a2.BeginRebuild()
	wantAllow(t, a2, c, now, false, ReasonNotReady)
	// A beacon is charged while the node replays its records: it adds to
	// what the records restore.
	a2.Charge(c.ID, unit, now)
	for i := range records {
		a2.ApplyRemote(&records[i], now)
		a2.ApplyRemote(&records[i], now) // a duplicate changes nothing
	}
	a2.EndRebuild(now)
	a2.Update(c)
	st, ok := a2.Status(c.ID, now)
	if !ok || st.DaySpend != 5*unit || st.TotalSpend != 8*unit {
		t.Fatalf("restored status %+v, want day spend 4+1 and lifetime 7+1", st)
	}
	// Its next record carries the whole of it.
	next := a2.AppendDeltas(nil, now)
	if len(next) != 2 || next[1].DaySpend != 5*unit || next[1].Delta != unit || next[1].Total != 8*unit {
		t.Fatalf("records after restart %+v", next)
	}
	if s2 := a2.AppendDeltas(nil, now); s2[0].Seq <= records[len(records)-1].Seq {
		t.Fatalf("sequence went back after restart: %d <= %d", s2[0].Seq, records[len(records)-1].Seq)
	}
}

func TestForget(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	p := newTestPacer(t, Config{})
	var cs []*campaign.Campaign
	for i := 0; i < 40; i++ { // past the pending map: some merged, some not
		c := testCampaign(t, "c-"+string(rune('a'+i%26))+string(rune('a'+i/26)), "UTC", "asap", 10*unit, 0, "")
		cs = append(cs, c)
		p.Charge(c.ID, unit, now)
	}
	p.Forget(cs[0].ID)
	p.Forget(cs[39].ID)
	p.Forget("never-seen")
	for i, c := range cs {
		_, ok := p.Status(c.ID, now)
		if want := i != 0 && i != 39; ok != want {
			t.Errorf("%s: known %v after Forget, want %v", c.ID, ok, want)
		}
	}
	if got := p.campaigns.len(); got != 38 {
		t.Errorf("%d campaigns kept, want 38", got)
	}
}
