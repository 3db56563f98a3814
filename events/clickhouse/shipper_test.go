package clickhouse

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/events"
)

func TestMigrateIdempotent(t *testing.T) {
	conn, _, db := testDB(t)
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := Migrate(ctx, conn, db); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	var n uint64
	var v uint32
	if err := conn.QueryRow(ctx, "SELECT count(), max(version) FROM "+quoteIdent(db)+".schema_migrations").Scan(&n, &v); err != nil {
		t.Fatal(err)
	}
	if n != uint64(len(migrations)) || v != SchemaVersion() {
		t.Fatalf("schema_migrations: %d rows, version %d", n, v)
	}
	tables := []string{"events", "decisions", "rollup_hourly", "rollup_hourly_mv", "rollup_campaign_hourly", "rollup_campaign_hourly_mv", gapsTable}
	for _, r := range dimRollups {
		tables = append(tables, r.table, r.table+"_mv")
	}
	var c uint64
	for _, tbl := range tables {
		if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ? AND name = ?", db, tbl).Scan(&c); err != nil || c != 1 {
			t.Fatalf("table %s: %d %v", tbl, c, err)
		}
	}
	// Nothing else: no gaps view, no backfill copies left over.
	if err := conn.QueryRow(ctx, "SELECT count() FROM system.tables WHERE database = ?", db).Scan(&c); err != nil || c != uint64(len(tables))+1 {
		t.Fatalf("%d tables in %s, want %d and schema_migrations (%v)", c, db, len(tables), err)
	}
	if err := Migrate(ctx, conn, "bad-name; DROP"); err == nil {
		t.Fatal("accepted an unsafe database name")
	}
}

func TestShipperEndToEnd(t *testing.T) {
	conn, addr, db := testDB(t)
	// Start two minutes before midnight so the batches must split at the
	// day (partition) boundary.
	start := time.Date(2026, 11, 24, 23, 58, 0, 0, time.UTC)
	f := newFixture(t, t.TempDir(), start, 50*time.Millisecond)
	f.record(0, 3000)
	d := events.Decision{AuctionID: "auc-1", SlotID: "s1", PlacementID: "p-1", Candidates: 4, Bids: 2,
		WinnerCampaignID: "c-1", PriceMicros: 1_500_000}
	for i := 0; i < 10; i++ {
		if err := f.rec.RecordDecision(&d); err != nil {
			t.Fatal(err)
		}
		d.Time = time.Time{}
	}
	f.lastSq = f.log.LastSeq()
	s, _ := f.startShipper(addr, db, func(c *Config) { c.BatchRows = 1000 })
	f.waitShipped(s, 60*time.Second)
	f.checkExactlyOnce(conn, db)

	var days uint64
	if err := conn.QueryRow(context.Background(), "SELECT uniqExact(toYYYYMMDD(time)) FROM "+quoteIdent(db)+".events").Scan(&days); err != nil || days != 2 {
		t.Fatalf("events span %d days (%v), want 2", days, err)
	}
	var dec uint64
	if err := conn.QueryRow(context.Background(), "SELECT count() FROM "+quoteIdent(db)+".decisions").Scan(&dec); err != nil || dec != 10 {
		t.Fatalf("decisions: %d %v", dec, err)
	}
	st := s.Stats()
	if st.Events != int64(f.n) || st.DeadLettered != 0 || st.Breaker != BreakerClosed {
		t.Fatalf("stats %+v, want %d events", st, f.n)
	}
	t.Logf("%d events in %d inserts", st.Events, st.Inserts)

	// More events later: the running shipper picks them up.
	f.record(3000, 3500)
	f.waitShipped(s, 30*time.Second)
	f.checkExactlyOnce(conn, db)
}

func TestShipperOutage(t *testing.T) {
	conn, addr, db := testDB(t)
	p := newProxy(t, addr)
	f := newFixture(t, t.TempDir(), time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.Millisecond)
	s, _ := f.startShipper(p.addr(), db, func(c *Config) { c.BatchRows = 500; c.BreakerThreshold = 3 })
	f.record(0, 1000)
	f.waitShipped(s, 30*time.Second)

	p.setDown(true)
	for i := 1000; i < 4000; i += 500 {
		f.record(i, i+500) // the request path keeps going
		time.Sleep(50 * time.Millisecond)
	}
	f.log.Sync()
	deadline := time.Now().Add(10 * time.Second)
	for s.Stats().Breaker != BreakerOpen && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if st := s.Stats(); st.Breaker != BreakerOpen || st.Failures < 3 {
		t.Fatalf("breaker did not open during the outage: %+v", st)
	}
	if f.log.Acked().Seq >= f.lastSq {
		t.Fatal("shipped during the outage?")
	}
	p.setDown(false)
	f.waitShipped(s, 60*time.Second)
	f.checkExactlyOnce(conn, db)
	if st := s.Stats(); st.Breaker != BreakerClosed {
		t.Fatalf("breaker %v after recovery", st.Breaker)
	}
}

func TestShipperUncertainFailure(t *testing.T) {
	conn, addr, db := testDB(t)
	if err := Migrate(context.Background(), conn, db); err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, addr)
	f := newFixture(t, t.TempDir(), time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.Millisecond)
	f.record(0, 2000)
	f.log.Sync()
	p.armCut()
	s, _ := f.startShipper(p.addr(), db, func(c *Config) { c.BatchRows = 1000 })
	f.waitShipped(s, 60*time.Second)
	if p.cuts.Load() != 1 {
		t.Fatalf("proxy cut %d connections, want 1", p.cuts.Load())
	}
	st := s.Stats()
	if st.LandedSkipped == 0 || st.Failures == 0 {
		t.Fatalf("the cut insert was not detected as landed: %+v", st)
	}
	t.Logf("stats after the cut: %+v", st)
	f.checkExactlyOnce(conn, db)
}

func TestShipperRestartAfterLostAck(t *testing.T) {
	// Ship, then roll the acked position back (a crash between the insert
	// and the ack): a new shipper must not insert anything twice.
	conn, addr, db := testDB(t)
	dir := t.TempDir()
	f := newFixture(t, dir, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.Millisecond)
	f.record(0, 1000)
	s, stop := f.startShipper(addr, db, nil)
	f.waitShipped(s, 30*time.Second)
	stop()
	f.rec.Close()
	f.log.Close()
	os.Remove(filepath.Join(dir, "acked"))

	l, err := events.OpenLog(events.LogConfig{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	f.log = l
	f.rec, _ = events.NewRecorder(events.RecorderConfig{NodeID: "node-t", Log: l})
	f.record(1000, 1200)
	s2, _ := f.startShipper(addr, db, nil)
	f.waitShipped(s2, 30*time.Second)
	if st := s2.Stats(); st.LandedSkipped == 0 {
		t.Fatalf("restarted shipper did not skip landed rows: %+v", st)
	}
	f.checkExactlyOnce(conn, db)
}

func TestShipperCrashRecovery(t *testing.T) {
	conn, addr, db := testDB(t)
	dir := t.TempDir()
	f := newFixture(t, dir, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.Millisecond)
	f.record(0, 500)
	f.log.Sync()
	f.rec.Close()
	f.log.Close()

	// Flip a byte inside one record in the middle of the segment and tear
	// the last record in half, as a crash would.
	segs, _ := filepath.Glob(filepath.Join(dir, "*.seg"))
	if len(segs) != 1 {
		t.Fatalf("segments %v", segs)
	}
	data, _ := os.ReadFile(segs[0])
	data[len(data)/2] ^= 0x10
	data = data[:len(data)-20]
	os.WriteFile(segs[0], data, 0o644)

	l, err := events.OpenLog(events.LogConfig{Dir: dir, SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f.log = l
	s, _ := f.startShipper(addr, db, nil)
	f.lastSq = l.LastSeq()
	f.waitShipped(s, 30*time.Second)
	st := s.Stats()
	if st.CorruptRecords != 1 {
		t.Fatalf("corrupt records %d, want 1 (%+v)", st.CorruptRecords, st)
	}
	var rows uint64
	conn.QueryRow(context.Background(), "SELECT count() FROM "+quoteIdent(db)+".events").Scan(&rows)
	if rows != uint64(f.n-2) {
		t.Fatalf("%d events arrived, want %d (all but the corrupt and the torn one)", rows, f.n-2)
	}
}

func TestShipperDeadLetter(t *testing.T) {
	conn, addr, db := testDB(t)
	ctx := context.Background()
	if err := Migrate(ctx, conn, db); err != nil {
		t.Fatal(err)
	}
	// A server-side check that rejects some rows, the way a constraint
	// would: ClickHouse 18.16 evaluates the DEFAULT for every inserted
	// block and throws.
	if err := conn.Exec(ctx, "ALTER TABLE "+quoteIdent(db)+".events ADD COLUMN guard UInt8 DEFAULT throwIf(campaign_id = 'poison')"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	f := newFixture(t, dir, time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC), time.Millisecond)
	f.record(0, 600)
	for _, i := range []int{7, 300, 301} {
		b := events.Beacon{Type: events.TypeImpression, AuctionID: "bad-" + string(rune('a'+i%26)) + string(rune('a'+i/26)),
			SlotID: "s1", AdvertiserID: "adv-x", CampaignID: "poison", CreativeID: "cr", Charge: events.ChargeCPM, PriceMicros: 9_000_000}
		if _, err := f.rec.Record(&b); err != nil {
			t.Fatal(err)
		}
	}
	f.record(600, 1000)
	s, _ := f.startShipper(addr, db, func(c *Config) { c.BatchRows = 2000 })
	f.waitShipped(s, 60*time.Second)
	f.checkExactlyOnce(conn, db) // the poison campaign is not expected anywhere

	st := s.Stats()
	if st.DeadLettered != 3 {
		t.Fatalf("dead-lettered %d rows, want 3 (%+v)", st.DeadLettered, st)
	}
	fh, err := os.Open(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	sc := bufio.NewScanner(fh)
	n := 0
	for sc.Scan() {
		var e DeadLetterEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Event == nil || e.Event.CampaignID != "poison" || e.Code != 395 || !strings.Contains(e.Reason, "throwIf") || e.Table != "events" {
			t.Fatalf("dead-letter entry %s", sc.Bytes())
		}
		n++
	}
	if n != 3 {
		t.Fatalf("%d dead-letter lines", n)
	}
}
