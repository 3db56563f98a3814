package guard

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)

func newTestAbuse(t testing.TB, c AbuseConfig) *Abuse {
	t.Helper()
	a, err := NewAbuse(c)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func ip(i int) string { return "203.0.113." + strconv.Itoa(i) }

// sighting is one Observe call and the answer expected from it.
type sighting struct {
	at      time.Duration // after t0
	ip, dev string
	want    bool
}

func runSightings(t *testing.T, a *Abuse, user string, ss []sighting) {
	t.Helper()
	for i, s := range ss {
		if got := a.Observe(user, s.ip, s.dev, t0.Add(s.at)); got != s.want {
			t.Fatalf("sighting %d (%+v): Observe = %v, want %v", i, s, got, s.want)
		}
	}
}

func TestAbuseThreshold(t *testing.T) {
	const W = 10 * time.Second
	tests := []struct {
		name string
		ss   []sighting
	}{
		{"N distinct IPs within the window are not flagged", []sighting{
			{0, ip(1), "", false}, {1 * time.Second, ip(2), "", false}, {2 * time.Second, ip(3), "", false},
			{3 * time.Second, ip(4), "", false}, {W - 1, ip(5), "", false},
		}},
		{"N+1 distinct IPs within the window are flagged", []sighting{
			{0, ip(1), "", false}, {1 * time.Second, ip(2), "", false}, {2 * time.Second, ip(3), "", false},
			{3 * time.Second, ip(4), "", false}, {4 * time.Second, ip(5), "", false}, {W - 1, ip(6), "", true},
		}},
		{"N+1 distinct IPs at the same instant are flagged", []sighting{
			{0, ip(1), "", false}, {0, ip(2), "", false}, {0, ip(3), "", false},
			{0, ip(4), "", false}, {0, ip(5), "", false}, {0, ip(6), "", true},
		}},
		{"a sighting exactly Window old has left the window", []sighting{
			{0, ip(1), "", false}, {1 * time.Second, ip(2), "", false}, {2 * time.Second, ip(3), "", false},
			{3 * time.Second, ip(4), "", false}, {4 * time.Second, ip(5), "", false}, {W, ip(6), "", false},
			// ip(2), seen at 1s, is still in (0.5s+W-W, ...]: 2..7 make six.
			{W + 500*time.Millisecond, ip(7), "", true},
		}},
		{"N+1 distinct IPs spread over more than the window are never flagged", func() []sighting {
			var ss []sighting
			for i := range 50 {
				ss = append(ss, sighting{time.Duration(i) * 2 * time.Second, ip(i), "", false})
			}
			return ss
		}()},
		{"a repeated IP counts once", func() []sighting {
			var ss []sighting
			for i := range 100 {
				ss = append(ss, sighting{time.Duration(i) * time.Millisecond, ip(i % 5), "", false})
			}
			return append(ss, sighting{time.Second, ip(5), "", true})
		}()},
		{"a repeated IP stays in the window from its last sighting", []sighting{
			{0, ip(1), "", false}, {1 * time.Second, ip(2), "", false}, {2 * time.Second, ip(3), "", false},
			{3 * time.Second, ip(4), "", false}, {4 * time.Second, ip(5), "", false},
			{9 * time.Second, ip(1), "", false}, // refresh: ip(1) now leaves at 19s
			// At 12s the window is (2s, 12s]: ip(2) and ip(3) have left it.
			{12 * time.Second, ip(6), "", false}, // 1,4,5,6
			{12 * time.Second, ip(7), "", false}, // 1,4,5,6,7
			{12 * time.Second, ip(8), "", true},  // 1,4,5,6,7,8; without the refresh, five
		}},
		{"N+1 distinct devices within the window are flagged", []sighting{
			{0, "", "d1", false}, {1, "", "d2", false}, {2, "", "d3", false},
			{3, "", "d4", false}, {4, "", "d5", false}, {W - 1, "", "d6", true},
		}},
		{"N distinct devices within the window are not flagged", []sighting{
			{0, "", "d1", false}, {1, "", "d2", false}, {2, "", "d3", false},
			{3, "", "d4", false}, {4, "", "d5", false}, {W - 1, "", "d5", false}, {W - 1, "", "d1", false},
		}},
		{"devices spread over more than the window are not flagged", []sighting{
			{0, "", "d1", false}, {1, "", "d2", false}, {2, "", "d3", false},
			{3, "", "d4", false}, {4, "", "d5", false}, {W, "", "d6", false},
		}},
		{"IPs and devices count separately", []sighting{
			{0, ip(1), "d1", false}, {1, ip(2), "d2", false}, {2, ip(3), "d3", false},
			{3, ip(4), "d4", false}, {4, ip(5), "d5", false},
			{5, ip(5), "d6", true}, // the sixth device flags, though the IPs stay at five
		}},
		{"empty IPs and devices are not counted", []sighting{
			{0, "", "", false}, {1, ip(1), "", false}, {2, "", "d1", false},
			{3, "", "", false}, {4, "", "", false}, {5, "", "", false}, {6, "", "", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runSightings(t, newTestAbuse(t, AbuseConfig{}), "u-1", tt.ss)
		})
	}
}

func TestAbuseConfigurableThreshold(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 64} {
		a := newTestAbuse(t, AbuseConfig{MaxDistinct: n, Window: time.Second})
		for i := range n {
			if a.Observe("u", ip(i), "", t0.Add(time.Duration(i))) {
				t.Fatalf("MaxDistinct %d: flagged at distinct IP %d", n, i+1)
			}
		}
		if !a.Observe("u", ip(n), "", t0.Add(time.Second-1)) {
			t.Fatalf("MaxDistinct %d: not flagged at distinct IP %d", n, n+1)
		}
	}
}

// TestAbuseMatchesSlowTwin drives the detector with random sightings and
// compares each answer with a direct count over the whole history. The
// configurations keep the distinct count hovering around the threshold.
func TestAbuseMatchesSlowTwin(t *testing.T) {
	for _, c := range []struct {
		n, values int
		step      time.Duration // mean step is step/2
	}{
		{1, 3, 2 * time.Second},
		{3, 5, 500 * time.Millisecond},
		{3, 6, 200 * time.Millisecond},
		{5, 8, 400 * time.Millisecond},
		{5, 7, 300 * time.Millisecond},
	} {
		t.Run(fmt.Sprintf("N=%d/values=%d/step=%v", c.n, c.values, c.step), func(t *testing.T) {
			matchTwin(t, c.n, c.values, c.step)
		})
	}
}

func matchTwin(t *testing.T, N, values int, step time.Duration) {
	const W, flagFor = time.Second, 2 * time.Second
	a := newTestAbuse(t, AbuseConfig{MaxDistinct: N, Window: W, FlagFor: flagFor})
	type seen struct {
		at      time.Duration
		ip, dev string
	}
	var hist []seen
	var flaggedUntil time.Duration = -1
	rnd := uint64(N*1000 + values)
	next := func(m uint64) uint64 { rnd = rnd*6364136223846793005 + 1442695040888963407; return (rnd >> 33) % m }
	at := time.Duration(0)
	flags, clean := 0, 0
	for i := range 20000 {
		at += time.Duration(next(uint64(step)))
		s := seen{at, ip(int(next(uint64(values)))), "d" + strconv.Itoa(int(next(uint64(values))))}
		switch next(8) {
		case 0, 1:
			s.ip = ""
		case 2, 3:
			s.dev = ""
		case 4:
			s.ip, s.dev = "", ""
		}
		hist = append(hist, s)
		ips, devs := map[string]bool{}, map[string]bool{}
		for j := len(hist) - 1; j >= 0 && hist[j].at > at-W; j-- { // times only grow
			ips[hist[j].ip], devs[hist[j].dev] = true, true
		}
		delete(ips, "")
		delete(devs, "")
		if len(ips) > N || len(devs) > N {
			flaggedUntil = at + flagFor
			flags++
		} else {
			clean++
		}
		want := flaggedUntil > at
		if got := a.Observe("u", s.ip, s.dev, t0.Add(at)); got != want {
			t.Fatalf("sighting %d %+v: Observe = %v, want %v (in window: %d IPs, %d devices)", i, s, got, want, len(ips), len(devs))
		}
		if got := a.Flagged("u", t0.Add(at)); got != want {
			t.Fatalf("sighting %d: Flagged = %v, want %v", i, got, want)
		}
	}
	if flags < 100 || clean < 100 {
		t.Fatalf("%d sightings over the threshold, %d under: the walk does not test the boundary", flags, clean)
	}
}

// TestAbuseReusedSlotStartsClean fills a one-bucket table, so that a new
// user takes the slot of a user seen from five IPs and five devices within
// the window: the newcomer must not inherit them.
func TestAbuseReusedSlotStartsClean(t *testing.T) {
	a := newTestAbuse(t, AbuseConfig{MaxUsers: ways})
	if users, _, _ := capacity(a); users != ways {
		t.Fatalf("capacity %d, want one bucket of %d", users, ways)
	}
	for i := range 5 {
		a.Observe("old", ip(i), "d"+strconv.Itoa(i), t0)
	}
	for i := range ways - 1 {
		a.Observe("filler"+strconv.Itoa(i), ip(0), "d0", t0.Add(time.Millisecond))
	}
	if a.Observe("new", ip(9), "d9", t0.Add(2*time.Millisecond)) {
		t.Fatal("a user inherited the IPs or devices of the user whose slot it took")
	}
	// "old" was evicted and starts over: five more IPs do not flag it.
	for i := range 5 {
		if a.Observe("old", ip(10+i), "", t0.Add(3*time.Millisecond)) {
			t.Fatal("evicted user flagged from five IPs")
		}
	}
}

func TestAbuseFlagExpiry(t *testing.T) {
	const flagFor = 5 * time.Minute
	a := newTestAbuse(t, AbuseConfig{FlagFor: flagFor})
	if a.Flagged("u", t0) {
		t.Fatal("flagged before any sighting")
	}
	for i := range 6 {
		a.Observe("u", ip(i), "", t0)
	}
	if !a.Flagged("u", t0) || !a.Flagged("u", t0.Add(flagFor-1)) {
		t.Fatal("not flagged within FlagFor")
	}
	if a.Flagged("u", t0.Add(flagFor)) {
		t.Fatal("still flagged after FlagFor")
	}
	if a.Flagged("other", t0) {
		t.Fatal("another user is flagged")
	}
	// Ordinary traffic after expiry does not flag again.
	if a.Observe("u", ip(0), "", t0.Add(flagFor)) {
		t.Fatal("flagged again by one IP after expiry")
	}

	// Continued abuse extends the flag from the last sighting over the limit.
	b := newTestAbuse(t, AbuseConfig{FlagFor: flagFor})
	for i := range 6 {
		b.Observe("u", ip(i), "", t0)
	}
	later := t0.Add(3 * time.Minute)
	for i := range 6 {
		b.Observe("u", ip(100+i), "", later)
	}
	if !b.Flagged("u", t0.Add(flagFor+time.Minute)) {
		t.Fatal("a flag renewed at +3m expired at +6m")
	}
	if b.Flagged("u", later.Add(flagFor)) {
		t.Fatal("flag outlived FlagFor after its last renewal")
	}
	// Observe reports an existing flag for any sighting, even a plain one.
	if !b.Observe("u", ip(100), "", later.Add(time.Minute)) {
		t.Fatal("Observe of a flagged user answered false")
	}
}

func TestAbuseUsersIndependent(t *testing.T) {
	a := newTestAbuse(t, AbuseConfig{})
	// Six users share six IPs, each from five: none flagged.
	for u := range 6 {
		for i := range 5 {
			if a.Observe("u"+strconv.Itoa(u), ip((u+i)%6), "", t0) {
				t.Fatalf("user %d flagged", u)
			}
		}
	}
	if a.Observe("", ip(99), "", t0) || a.Flagged("", t0) {
		t.Fatal("empty user id flagged")
	}
}

func TestAbuseNilIsDisabled(t *testing.T) {
	var a *Abuse
	for i := range 10 {
		if a.Observe("u", ip(i), "", t0) {
			t.Fatal("nil Abuse flagged")
		}
	}
	if a.Flagged("u", t0) {
		t.Fatal("nil Abuse flagged")
	}
}

func TestAbuseEvictionBoundsMemory(t *testing.T) {
	const maxUsers, maxFlagged = 1000, 100
	a := newTestAbuse(t, AbuseConfig{MaxUsers: maxUsers, MaxFlagged: maxFlagged})
	users, flags, values := capacity(a)
	if users < maxUsers || users >= maxUsers+len(a.shards)*ways {
		t.Fatalf("tracking capacity %d for MaxUsers %d", users, maxUsers)
	}
	if flags < maxFlagged || flags >= maxFlagged+len(a.shards)*ways {
		t.Fatalf("flag capacity %d for MaxFlagged %d", flags, maxFlagged)
	}
	if values != 2*users*(DefaultMaxDistinct+1) {
		t.Fatalf("%d value slots for %d users", values, users)
	}

	// A flagged user keeps its flag through a flood of new users.
	for i := range 6 {
		a.Observe("abuser", ip(i), "", t0)
	}
	before := abuseEvictedUsers.Get()
	for i := range 50 * maxUsers {
		a.Observe("u"+strconv.Itoa(i), ip(i%7), "d", t0.Add(time.Millisecond))
	}
	if !a.Flagged("abuser", t0.Add(time.Second)) {
		t.Fatal("flood of users evicted a flag")
	}
	if a.Flagged("u1", t0.Add(time.Second)) {
		t.Fatal("flood user flagged")
	}
	if got, want := abuseEvictedUsers.Get()-before, uint64(50*maxUsers-users); got < want {
		t.Fatalf("adserver_abuse_evicted_total{table=users} moved by %d, want at least %d", got, want)
	}
	if u, f, v := capacity(a); u != users || f != flags || v != values {
		t.Fatalf("tables changed size: %d %d %d, were %d %d %d", u, f, v, users, flags, values)
	}

	// Users idle for a whole window are free slots: no eviction counted.
	// (Few enough new users that no bucket of 8 overflows.)
	before = abuseEvictedUsers.Get()
	for i := range maxUsers / 16 {
		a.Observe("late"+strconv.Itoa(i), ip(1), "", t0.Add(time.Minute))
	}
	if got := abuseEvictedUsers.Get() - before; got != 0 {
		t.Fatalf("evicted %d idle users as live", got)
	}

	// Flags beyond MaxFlagged evict the flags closest to expiry.
	beforeFlags := abuseEvictedFlags.Get()
	for u := range 10 * maxFlagged {
		for i := range 6 {
			a.Observe("f"+strconv.Itoa(u), ip(i), "", t0.Add(2*time.Minute))
		}
	}
	if abuseEvictedFlags.Get() == beforeFlags {
		t.Fatal("no flag eviction counted beyond MaxFlagged")
	}
	if n := countFlagged(a, t0.Add(2*time.Minute)); n > flags {
		t.Fatalf("%d flags held with capacity %d", n, flags)
	}
}

func capacity(a *Abuse) (users, flags, values int) {
	for i := range a.shards {
		s := &a.shards[i]
		users += s.users.size()
		flags += s.flags.size()
		values += len(s.seen)
	}
	return users, flags, values
}

func countFlagged(a *Abuse, now time.Time) int {
	n := 0
	for i := range a.shards {
		s := &a.shards[i]
		for j := range s.flags.size() {
			if s.flags.key(j) != 0 && s.flags.val(j) > now.UnixNano() {
				n++
			}
		}
	}
	return n
}

func TestAbuseConcurrent(t *testing.T) {
	a := newTestAbuse(t, AbuseConfig{})
	const goroutines = 8
	var wg sync.WaitGroup
	// "five" is seen from five IPs by many goroutines at once: never flagged.
	// "six" is seen from six: flagged.
	for g := range goroutines {
		wg.Go(func() {
			for i := range 2000 {
				now := t0.Add(time.Duration(i) * time.Microsecond)
				a.Observe("five", ip((g+i)%5), "dev", now)
				a.Observe("six", ip((g+i)%6), "dev", now)
				a.Observe("other"+strconv.Itoa(i%100), ip(g), "", now)
				a.Flagged("six", now)
			}
		})
	}
	wg.Wait()
	end := t0.Add(2 * time.Millisecond)
	if a.Flagged("five", end) {
		t.Fatal("user with five IPs flagged under concurrency")
	}
	if !a.Flagged("six", end) {
		t.Fatal("user with six IPs not flagged under concurrency")
	}
}

func TestAbuseMetrics(t *testing.T) {
	a := newTestAbuse(t, AbuseConfig{})
	users, reqs := abuseFlaggedUsers.Get(), abuseFlaggedRequests.Get()
	for i := range 6 {
		a.Observe("m", ip(i), "", t0)
	}
	a.Observe("m", ip(7), "", t0)     // extends; not a new user
	a.Observe("m", ip(1), "", t0)     // extends too
	a.Flagged("m", t0)                // a query, not a request
	a.Observe("clean", ip(1), "", t0) // not flagged
	if got := abuseFlaggedUsers.Get() - users; got != 1 {
		t.Errorf("adserver_abuse_flagged_users_total moved by %d, want 1", got)
	}
	if got := abuseFlaggedRequests.Get() - reqs; got != 3 {
		t.Errorf("adserver_abuse_flagged_requests_total moved by %d, want 3", got)
	}
	text := metricsText()
	for _, name := range []string{
		`adserver_abuse_flagged_users_total`,
		`adserver_abuse_flagged_requests_total`,
		`adserver_abuse_evicted_total{table="users"}`,
		`adserver_abuse_evicted_total{table="flagged"}`,
	} {
		if !strings.Contains(text, name+" ") {
			t.Errorf("metric %s not exported", name)
		}
	}
}

func TestAbuseConfigValidate(t *testing.T) {
	bad := []AbuseConfig{
		{MaxDistinct: -1},
		{MaxDistinct: 65},
		{Window: -time.Second},
		{FlagFor: -time.Second},
		{Window: time.Minute, FlagFor: time.Second},
		{MaxUsers: -1},
		{MaxFlagged: -1},
		{MaxUsers: 1 << 30},
	}
	for _, c := range bad {
		if _, err := NewAbuse(c); err == nil {
			t.Errorf("NewAbuse(%+v) accepted", c)
		} else if !strings.HasPrefix(err.Error(), "guard: invalid ") {
			t.Errorf("unclear error %q", err)
		}
	}
	if err := (AbuseConfig{}).Validate(); err != nil {
		t.Fatalf("zero config: %v", err)
	}
	a := newTestAbuse(t, AbuseConfig{})
	if a.maxDistinct != DefaultMaxDistinct || a.window != int64(DefaultWindow) || a.flagFor != int64(DefaultFlagFor) {
		t.Fatalf("defaults not applied: %d %d %d", a.maxDistinct, a.window, a.flagFor)
	}
	if u, f, _ := capacity(a); u < DefaultMaxUsers || f < DefaultMaxFlagged || len(a.shards) != maxShards {
		t.Fatalf("default capacity %d users, %d flags, %d shards", u, f, len(a.shards))
	}
}

// TestAbuseEvictsLeastRecentlySeen fills a one-bucket table: a new user
// takes the slot of the user seen longest ago, so an active user keeps its
// history.
func TestAbuseEvictsLeastRecentlySeen(t *testing.T) {
	a := newTestAbuse(t, AbuseConfig{MaxUsers: ways})
	for i := range 3 {
		a.Observe("active", ip(i), "", t0)
	}
	for i := range ways - 1 {
		a.Observe("filler"+strconv.Itoa(i), ip(0), "", t0.Add(time.Millisecond))
	}
	for i := 3; i < 5; i++ {
		a.Observe("active", ip(i), "", t0.Add(2*time.Millisecond)) // seen last now
	}
	a.Observe("newcomer", ip(0), "", t0.Add(3*time.Millisecond)) // evicts filler0
	if !a.Observe("active", ip(5), "", t0.Add(4*time.Millisecond)) {
		t.Fatal("the most recently seen user lost its history to a newcomer")
	}
}

// TestAbuseEmptySighting: a request with neither IP nor device takes no
// slot and reads no other user's history.
func TestAbuseEmptySighting(t *testing.T) {
	a := newTestAbuse(t, AbuseConfig{MaxUsers: ways})
	for i := range 6 {
		a.Observe("abuser", ip(i), "", t0) // takes slot 0 of the one bucket
	}
	if a.Observe("quiet", "", "", t0) {
		t.Fatal("a user without IP or device was flagged by another's history")
	}
	if !a.Observe("abuser", "", "", t0) {
		t.Fatal("a flagged user's empty sighting not reported flagged")
	}
	if users := countUsers(a); users != 1 {
		t.Fatalf("%d users tracked, want 1", users)
	}
}

func countUsers(a *Abuse) int {
	n := 0
	for i := range a.shards {
		for j := range a.shards[i].users.size() {
			if a.shards[i].users.key(j) != 0 {
				n++
			}
		}
	}
	return n
}
