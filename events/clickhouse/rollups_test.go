package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// eventGen makes raw events rows for one node: seq increases by one per
// row, as the log's does.
type eventGen struct {
	rng  *rand.Rand
	node string
	seq  uint64
}

func newEventGen(node string, seed uint64) *eventGen {
	return &eventGen{rng: rand.New(rand.NewPCG(seed, 99)), node: node}
}

// insert writes n events with times from at, as one insert (named
// columns, one block), the way the shipper does.
func (g *eventGen) insert(ctx context.Context, conn driver.Conn, db string, n int, at func() time.Time) error {
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+quoteIdent(db)+".events "+eventColumnList)
	if err != nil {
		return err
	}
	for range n {
		g.seq++
		adv := g.rng.IntN(3)
		camp := fmt.Sprintf("c-%d-%d", adv, g.rng.IntN(4))
		typ := int8(1 + g.rng.IntN(6))
		var test uint8
		if g.rng.IntN(20) == 0 {
			test = 1
		}
		id := fmt.Sprintf("%-16s", fmt.Sprintf("%s%d", g.node, g.seq))[:16]
		price := int64(g.rng.IntN(5_000_000))
		if err := b.Append(id, typ, at().UTC(), g.node, g.seq, "auc", "s1", fmt.Sprintf("adv-%d", adv), camp,
			camp+fmt.Sprintf("-cr-%d", g.rng.IntN(3)), fmt.Sprintf("p-%d", g.rng.IntN(5)), "pub-1",
			[]string{"KR", "US", "DE", "BR"}[g.rng.IntN(4)], "", price, price/1000, test); err != nil {
			b.Abort()
			return err
		}
	}
	return b.Send()
}

// inHour returns times at random seconds of hour h.
func (g *eventGen) inHour(h time.Time) func() time.Time {
	return func() time.Time { return h.Add(time.Duration(g.rng.IntN(3600)) * time.Second) }
}

// versionOneWithHistory returns a fresh test database at schema version 1
// holding history: what an upgrade starts from.
func versionOneWithHistory(t *testing.T) (driver.Conn, string) {
	t.Helper()
	conn, _, db := testDB(t)
	if err := MigrateTo(context.Background(), conn, db, 1); err != nil {
		t.Fatal(err)
	}
	history(t, conn, db)
	return conn, db
}

// history fills a database at schema version 1 with events over 40 days
// across a month boundary, and adds rollup_hourly rows whose events are
// gone (as after dropping old events partitions), so a backfill that read
// events instead of rollup_hourly would miss them.
func history(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	ctx := context.Background()
	g := newEventGen("node-hist", 1)
	start := time.Date(2026, 9, 28, 0, 0, 0, 0, time.UTC)
	for d := range 40 {
		day := start.AddDate(0, 0, d)
		if err := g.insert(ctx, conn, db, 300, func() time.Time { return day.Add(time.Duration(g.rng.IntN(86400)) * time.Second) }); err != nil {
			t.Fatal(err)
		}
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+quoteIdent(db)+`.rollup_hourly (hour, advertiser_id, campaign_id,
	creative_id, placement_id, publisher_id, country, impressions, clicks, conversions, wins, billings, losses, spend_micros)`)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		hour                                   time.Time
		camp, cr, pl, country                  string
		imp, clk, conv, wins, billings, losses uint64
		spend                                  int64
	}{
		{time.Date(2026, 7, 31, 23, 0, 0, 0, time.UTC), "c-0-0", "c-0-0-cr-0", "p-0", "KR", 1000, 10, 1, 0, 0, 0, 1234567},
		{time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC), "c-0-0", "c-0-0-cr-1", "p-9", "JP", 7, 0, 0, 3, 3, 0, 7007},
	} {
		if err := b.Append(r.hour, "adv-0", r.camp, r.cr, r.pl, "pub-0", r.country, r.imp, r.clk, r.conv, r.wins, r.billings, r.losses, r.spend); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// unknownTable counts inserts that failed with UNKNOWN_TABLE while views
// were being created.
var unknownTable atomic.Int64

// inserter keeps inserting small batches from its own node until stop:
// live traffic in the hours at and after now, and a late node's backlog
// in random hours of the history.
func inserter(ctx context.Context, t *testing.T, conn driver.Conn, db, node string, seed uint64, late bool, stop <-chan struct{}, wg *sync.WaitGroup, inserts *atomic.Int64) {
	defer wg.Done()
	g := newEventGen(node, seed)
	now := time.Date(2026, 11, 7, 10, 0, 0, 0, time.UTC)
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		h := now.Add(time.Duration(i/20) * time.Hour)
		if late {
			h = time.Date(2026, 9, 20, 0, 0, 0, 0, time.UTC).Add(time.Duration(g.rng.IntN(48*24)) * time.Hour)
		}
		err := g.insert(ctx, conn, db, 1+g.rng.IntN(40), g.inHour(h))
		var exc *chgo.Exception
		if errors.As(err, &exc) && exc.Code == 60 {
			// On 18.16 a view is registered with its source table a
			// moment before its own name is: an insert starting then
			// fails before it writes anything. The shipper takes the
			// code for a schema error and inserts again.
			unknownTable.Add(1)
			continue
		}
		if err != nil {
			t.Error(err)
			return
		}
		inserts.Add(1)
	}
}

// TestMigrateBackfillsExactly upgrades a database holding data from
// version 1 while two nodes migrate at once and two others keep
// inserting (live hours and a late backlog across the history), then
// checks that every version-2 rollup holds exactly rollup_hourly's sums,
// projected, in every hour outside the gap log, before and after more
// inserts through the new views.
func TestMigrateBackfillsExactly(t *testing.T) {
	conn, db := versionOneWithHistory(t)
	ctx := context.Background()

	var (
		wg      sync.WaitGroup
		inserts atomic.Int64
		stop    = make(chan struct{})
	)
	wg.Add(2)
	go inserter(ctx, t, conn, db, "node-live", 2, false, stop, &wg, &inserts)
	go inserter(ctx, t, conn, db, "node-late", 3, true, stop, &wg, &inserts)
	for inserts.Load() < 5 {
		time.Sleep(time.Millisecond)
	}
	errs := make(chan error, 2)
	for range 2 {
		go func() { errs <- Migrate(ctx, conn, db) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	during := inserts.Load()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("%d inserts by other nodes, about %d of them before both migrations returned; %d failed with UNKNOWN_TABLE (retried)",
		inserts.Load(), during, unknownTable.Load())

	checkDimRollups(t, conn, db, 500)
	checkNoLeftovers(t, conn, db)

	// The views keep every table current: new data anywhere, including
	// gap hours and hours that were backfilled.
	g := newEventGen("node-after", 4)
	for _, h := range []time.Time{time.Date(2026, 10, 1, 5, 0, 0, 0, time.UTC), time.Date(2026, 11, 7, 10, 0, 0, 0, time.UTC),
		time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)} {
		if err := g.insert(ctx, conn, db, 100, g.inHour(h)); err != nil {
			t.Fatal(err)
		}
	}
	checkDimRollups(t, conn, db, 500)
}

// TestMigrateWaitsForInserts holds inserts open across the steps of the
// upgrade (an insert fixes the views it feeds when it starts, and sends
// its rows later): one started before the upgrade and sent while it
// waits to copy, one started when the copy begins and sent after the
// views exist, one started after the views exist. Each must end up
// counted exactly once wherever the reports look.
func TestMigrateWaitsForInserts(t *testing.T) {
	conn, db := versionOneWithHistory(t)
	ctx := context.Background()
	g := newEventGen("node-held", 6)
	var mu sync.Mutex // g is not safe for concurrent use
	hold := func(h time.Time) (send func() error) {
		mu.Lock()
		defer mu.Unlock()
		b, err := conn.PrepareBatch(ctx, "INSERT INTO "+quoteIdent(db)+".events "+eventColumnList)
		if err != nil {
			t.Fatal(err)
		}
		at := g.inHour(h)
		for range 50 {
			g.seq++
			ts := at()
			if err := b.Append(fmt.Sprintf("held-%010d", g.seq), int8(1), ts, g.node, g.seq, "auc", "s1", "adv-1", "c-1-1",
				"c-1-1-cr-0", "p-1", "pub-1", "KR", "", int64(2_000_000), int64(2_000), uint8(0)); err != nil {
				t.Fatal(err)
			}
		}
		return b.Send
	}
	hourA := time.Date(2026, 10, 3, 4, 0, 0, 0, time.UTC)
	hourB := time.Date(2026, 10, 9, 17, 0, 0, 0, time.UTC)
	hourC := time.Date(2026, 10, 20, 8, 0, 0, 0, time.UTC)
	sent := make(chan error, 3)
	sendLater := func(send func() error) {
		go func() { time.Sleep(300 * time.Millisecond); sent <- send() }()
	}
	var sendB func() error
	migrateHook = func(step string) {
		switch step {
		case "copy":
			sendB = hold(hourB)
		case "views":
			sendLater(sendB)
			sent <- hold(hourC)()
		}
	}
	defer func() { migrateHook = nil }()
	sendLater(hold(hourA))
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if err := <-sent; err != nil {
			t.Fatal(err)
		}
	}
	checkDimRollups(t, conn, db, 900)
	var inGaps []time.Time
	rows, err := conn.Query(ctx, "SELECT DISTINCT hour FROM "+quoteIdent(db)+"."+gapsTable+" ORDER BY hour")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var h time.Time
		if err := rows.Scan(&h); err != nil {
			t.Fatal(err)
		}
		inGaps = append(inGaps, h.UTC())
	}
	// A was copied (no gap), B could be nowhere but rollup_hourly (a
	// gap), C went through the views (a gap too: it started while the
	// gap log was fed).
	if want := []time.Time{hourB, hourC}; !slicesEqualTime(inGaps, want) {
		t.Fatalf("gap hours %v, want %v", inGaps, want)
	}
}

func slicesEqualTime(a, b []time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}

// TestBackfillLeftovers: copies of runs that died are dropped once old
// enough; the published tables and other tables are not.
func TestBackfillLeftovers(t *testing.T) {
	conn, _, db := testDB(t)
	ctx := context.Background()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	m := &migrator{conn: conn, db: db, expand: strings.NewReplacer("{db}", quoteIdent(db), "{lc}", "String").Replace}
	left := dimRollups[0].table + "_backfill_0123456789ab"
	if err := m.exec(ctx, dimRollups[0].createTable(left)); err != nil {
		t.Fatal(err)
	}
	var before, after uint64
	count := func(n *uint64) {
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(n); err != nil {
			t.Fatal(err)
		}
	}
	count(&before)
	if err := m.dropBackfillLeftovers(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.exists(ctx, left); err != nil || !ok {
		t.Fatalf("a young copy (perhaps another run's) was dropped: %v %v", ok, err)
	}
	time.Sleep(1100 * time.Millisecond)
	if err := m.dropBackfillLeftovers(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	count(&after)
	if ok, err := m.exists(ctx, left); err != nil || ok || after != before-1 {
		t.Fatalf("leftover still there (%v %v), or other tables dropped: %d tables, then %d", ok, err, before, after)
	}
}

// TestMigrateInterrupted upgrades with runs cut short at growing
// deadlines (as a node that dies mid-migration), under inserts, until one
// completes: whatever a cut run left, the result is exact.
func TestMigrateInterrupted(t *testing.T) {
	conn, db := versionOneWithHistory(t)
	ctx := context.Background()
	var (
		wg      sync.WaitGroup
		inserts atomic.Int64
		stop    = make(chan struct{})
	)
	wg.Add(1)
	go inserter(ctx, t, conn, db, "node-late", 5, true, stop, &wg, &inserts)
	cut := 0
	for d := time.Millisecond; ; d = d * 3 / 2 {
		cctx, cancel := context.WithTimeout(ctx, d)
		err := Migrate(cctx, conn, db)
		dl, _ := cctx.Deadline()
		expired := !time.Now().Before(dl)
		cancel()
		if err == nil {
			break
		}
		if !expired {
			t.Fatalf("after %v: %v", d, err)
		}
		cut++
	}
	close(stop)
	wg.Wait()
	t.Logf("%d runs cut short; %d inserts meanwhile", cut, inserts.Load())
	if cut == 0 {
		t.Fatal("BUG: no run was cut short")
	}
	checkDimRollups(t, conn, db, 500)
}

// checkDimRollups compares every version-2 rollup with rollup_hourly
// summed to its dimensions, hour by hour outside the gap log; at least
// minHours hours with data must be outside it (else the check proves
// little).
func checkDimRollups(t *testing.T, conn driver.Conn, db string, minHours int) {
	t.Helper()
	ctx := context.Background()
	q := quoteIdent(db)
	var gaps, outside uint64
	if err := conn.QueryRow(ctx, "SELECT uniqExact(hour) FROM "+q+"."+gapsTable).Scan(&gaps); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(ctx, "SELECT uniqExact(hour) FROM "+q+".rollup_hourly WHERE hour NOT IN (SELECT hour FROM "+q+"."+gapsTable+")").Scan(&outside); err != nil {
		t.Fatal(err)
	}
	if outside < uint64(minHours) {
		t.Fatalf("only %d hours with data are outside the gap log (%d gap hours)", outside, gaps)
	}
	sums := func(table, dims string) map[string][7]int64 {
		rows, err := conn.Query(ctx, `SELECT concat(toString(hour), '|', advertiser_id, '|', `+strings.ReplaceAll(dims, ", ", ", '|', ")+`),
	toInt64(sum(impressions)), toInt64(sum(clicks)), toInt64(sum(conversions)), toInt64(sum(wins)), toInt64(sum(billings)),
	toInt64(sum(losses)), sum(spend_micros)
FROM `+q+`.`+table+` WHERE hour NOT IN (SELECT hour FROM `+q+`.`+gapsTable+`)
GROUP BY hour, advertiser_id, `+dims)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string][7]int64{}
		for rows.Next() {
			var k string
			var m [7]int64
			if err := rows.Scan(&k, &m[0], &m[1], &m[2], &m[3], &m[4], &m[5], &m[6]); err != nil {
				t.Fatal(err)
			}
			if m != [7]int64{} {
				out[k] = m
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, r := range dimRollups {
		dims := strings.Join(r.dims, ", ")
		want, got := sums("rollup_hourly", dims), sums(r.table, dims)
		bad := 0
		for k, w := range want {
			if g := got[k]; g != w && bad < 5 {
				t.Errorf("%s %s: %v, rollup_hourly says %v", r.table, k, g, w)
				bad++
			}
		}
		for k, g := range got {
			if _, ok := want[k]; !ok && bad < 5 {
				t.Errorf("%s %s: %v, not in rollup_hourly", r.table, k, g)
				bad++
			}
		}
		if len(want) == 0 {
			t.Fatalf("BUG: rollup_hourly is empty")
		}
	}
	t.Logf("compared %d rollup_hourly hours outside the gap log; %d gap hours", outside, gaps)
}

// checkNoLeftovers: no gaps view, no backfill copies.
func checkNoLeftovers(t *testing.T, conn driver.Conn, db string) {
	t.Helper()
	rows, err := conn.Query(context.Background(), "SELECT name FROM system.tables WHERE database = ? AND (name = ? OR position(name, '_hourly_backfill_') > 0)",
		db, gapsView)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		t.Errorf("left over: %s", name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
}

// The wait for running inserts sees inserts into this database's events
// table, qualified or not, and not another database's.
func TestInsertIntoEventsPattern(t *testing.T) {
	re := regexp.MustCompile(insertIntoEvents("ads_1"))
	for _, tc := range []struct {
		q    string
		want bool
	}{
		{"INSERT INTO `ads_1`.events (a, b) VALUES", true},
		{"insert into ads_1.`events`(a)", true},
		{"  Insert Into events VALUES", true},
		{"INSERT INTO `ads_2`.events (a) VALUES", false},
		{"INSERT INTO `ads_1x`.events (a) VALUES", false},
		{"INSERT INTO `ads_1`.events_backfill (a) VALUES", false},
		{"INSERT INTO `ads_1`.decisions (a) VALUES", false},
		{"SELECT * FROM `ads_1`.events", false},
	} {
		if got := re.MatchString(tc.q); got != tc.want {
			t.Errorf("%q: match %v, want %v", tc.q, got, tc.want)
		}
	}
}
