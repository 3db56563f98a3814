package clickhouse

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/internal/chtest"
)

// testDB creates a connection and a unique database name, dropped at the
// end of the test.
func testDB(t testing.TB) (driver.Conn, string, string) {
	t.Helper()
	addr := chtest.Reachable(t)
	conn, err := Open(addr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return conn, addr, chtest.Database(t, conn, "adserver_test_")
}

// fixture is a log, a recorder writing to it and the expected totals.
type fixture struct {
	t      testing.TB
	log    *events.Log
	rec    *events.Recorder
	clock  atomic.Int64 // unix micros; advanced by each event
	step   time.Duration
	want   map[string]*totals // by campaign
	lastSq uint64
	n      int
}

type totals struct {
	impressions, clicks, conversions uint64
	spend                            int64
}

func newFixture(t testing.TB, dir string, start time.Time, step time.Duration) *fixture {
	t.Helper()
	l, err := events.OpenLog(events.LogConfig{Dir: dir, SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, log: l, step: step, want: map[string]*totals{}}
	f.clock.Store(start.UnixMicro())
	f.rec, err = events.NewRecorder(events.RecorderConfig{NodeID: "node-t", Log: l, DedupEntries: 1 << 20,
		Now: func() time.Time { return time.UnixMicro(f.clock.Add(int64(f.step / time.Microsecond))).UTC() }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.rec.Close(); f.log.Close() })
	return f
}

// beacon i: an impression (CPM, 1.5 + i%7 micro-odd CPM) for campaign
// c-(i%5); every 10th also gets a CPC click, every 50th a conversion.
func (f *fixture) beacons(i int) []events.Beacon {
	camp := fmt.Sprintf("c-%d", i%5)
	base := events.Beacon{AuctionID: fmt.Sprintf("auc-%d", i), SlotID: "s1", AdvertiserID: "adv-" + camp,
		CampaignID: camp, CreativeID: "cr-" + camp, PlacementID: fmt.Sprintf("p-%d", i%3), Country: "KR"}
	imp := base
	imp.Type, imp.Charge, imp.PriceMicros = events.TypeImpression, events.ChargeCPM, 1_500_000+int64(i%7)*1_001
	out := []events.Beacon{imp}
	if i%10 == 0 {
		c := base
		c.Type, c.Charge, c.PriceMicros = events.TypeClick, events.ChargeCPC, 80_000+int64(i)
		out = append(out, c)
	}
	if i%50 == 0 {
		c := base
		c.Type = events.TypeConversion
		out = append(out, c)
	}
	return out
}

// record records beacons for i in [from, to), each twice (the second is
// a duplicate the recorder must drop), and books the expected totals.
func (f *fixture) record(from, to int) {
	f.t.Helper()
	for i := from; i < to; i++ {
		for _, b := range f.beacons(i) {
			for rep := 0; rep < 2; rep++ {
				res, err := f.rec.Record(&b)
				if err != nil {
					f.t.Fatal(err)
				}
				if (rep == 0) != (res == events.Recorded) {
					f.t.Fatalf("beacon %d rep %d: %v", i, rep, res)
				}
				if rep == 1 {
					continue
				}
				f.n++
				tot := f.want[b.CampaignID]
				if tot == nil {
					tot = &totals{}
					f.want[b.CampaignID] = tot
				}
				switch b.Type {
				case events.TypeImpression:
					tot.impressions++
				case events.TypeClick:
					tot.clicks++
				case events.TypeConversion:
					tot.conversions++
				}
				tot.spend += b.CostMicros()
			}
		}
	}
	f.lastSq = f.log.LastSeq()
}

// startShipper runs a shipper for the fixture's log against addr.
func (f *fixture) startShipper(addr, db string, mod func(*Config)) (*Shipper, func()) {
	f.t.Helper()
	cfg := Config{Addr: addr, Database: db, NodeID: "node-t", BatchInterval: 50 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond, BreakerCooldown: 200 * time.Millisecond,
		DialTimeout: time.Second, InsertTimeout: 10 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg, f.log)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	stop := func() { cancel(); <-done }
	f.t.Cleanup(stop)
	return s, stop
}

func (f *fixture) waitShipped(s *Shipper, timeout time.Duration) {
	f.t.Helper()
	if err := f.log.Sync(); err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := s.WaitShipped(ctx, f.lastSq); err != nil {
		f.t.Fatalf("not shipped within %v (acked seq %d of %d, stats %+v)", timeout, f.log.Acked().Seq, f.lastSq, s.Stats())
	}
}

// checkExactlyOnce asserts ClickHouse holds every recorded event exactly
// once, in the raw table (even before merges) and in both rollups.
func (f *fixture) checkExactlyOnce(conn driver.Conn, db string) {
	f.t.Helper()
	ctx := context.Background()
	var rows, ids uint64
	if err := conn.QueryRow(ctx, "SELECT count(), uniqExact(event_id) FROM "+quoteIdent(db)+".events").Scan(&rows, &ids); err != nil {
		f.t.Fatal(err)
	}
	if rows != uint64(f.n) || ids != uint64(f.n) {
		f.t.Fatalf("events table: %d rows, %d distinct ids; want %d of each", rows, ids, f.n)
	}
	for _, table := range []string{"rollup_hourly", "rollup_campaign_hourly"} {
		got := map[string]*totals{}
		r, err := conn.Query(ctx, "SELECT campaign_id, sum(impressions), sum(clicks), sum(conversions), sum(spend_micros) FROM "+
			quoteIdent(db)+"."+table+" GROUP BY campaign_id")
		if err != nil {
			f.t.Fatal(err)
		}
		for r.Next() {
			var c string
			var tot totals
			if err := r.Scan(&c, &tot.impressions, &tot.clicks, &tot.conversions, &tot.spend); err != nil {
				f.t.Fatal(err)
			}
			got[c] = &tot
		}
		r.Close()
		if len(got) != len(f.want) {
			f.t.Fatalf("%s: %d campaigns, want %d", table, len(got), len(f.want))
		}
		for c, w := range f.want {
			if g := got[c]; g == nil || *g != *w {
				f.t.Fatalf("%s campaign %s: got %+v, want %+v", table, c, g, *w)
			}
		}
	}
}

// proxy is a TCP proxy between the shipper and ClickHouse that can refuse
// connections (an outage) or cut one after the client sent an insert but
// before the server's answer is relayed (an uncertain failure).
type proxy struct {
	t      testing.TB
	ln     net.Listener
	target string

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}

	cutArmed atomic.Bool
	cuts     atomic.Int32
}

// cutThreshold: client bytes sent since the server last spoke that mark
// an insert's data (queries and pings are far smaller).
const cutThreshold = 4 << 10

func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

// armCut makes the proxy cut the next insert after forwarding it.
func (p *proxy) armCut() { p.cutArmed.Store(true) }

func (p *proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
	}
}

func (p *proxy) pipe(client, server net.Conn) {
	var sent atomic.Int64 // client bytes since the server last spoke
	closeBoth := func() {
		client.Close()
		server.Close()
		p.mu.Lock()
		delete(p.conns, client)
		delete(p.conns, server)
		p.mu.Unlock()
	}
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, err := client.Read(buf)
			if n > 0 {
				if _, werr := server.Write(buf[:n]); werr != nil {
					break
				}
				sent.Add(int64(n))
			}
			if err != nil {
				break
			}
		}
		closeBoth()
	}()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			if sent.Load() >= cutThreshold && p.cutArmed.CompareAndSwap(true, false) {
				// The server answers an insert: let any remaining client
				// bytes through, then drop the answer and both sides.
				time.Sleep(200 * time.Millisecond)
				p.cuts.Add(1)
				closeBoth()
				return
			}
			sent.Store(0)
			if _, werr := client.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			if err != io.EOF {
				_ = err
			}
			break
		}
	}
	closeBoth()
}
