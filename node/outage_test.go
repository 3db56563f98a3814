package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/events/clickhouse"
)

// chProxy stands between a node and ClickHouse. Switched off, it refuses
// new connections (accepts and closes them at once) and cuts the open
// ones: from the node's side, ClickHouse is down. Armed with armCut, it
// relays the next insert into the events table whole and then, when
// ClickHouse answers it, cuts the connection instead of relaying the
// answer: the insert landed but the node cannot know.
type chProxy struct {
	ln     net.Listener
	target string
	// eventsInsert is the start of the shipper's insert statement into
	// the test database's events table (query text travels uncompressed).
	eventsInsert []byte

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}

	cutArmed atomic.Bool
	cuts     atomic.Int32
	refused  atomic.Int32
}

// insertBytes is the least data an events insert must carry to be cut: a
// batch of a few hundred events is several KiB even compressed (event ids
// are random), so the cut hits the backlog of the outage.
const insertBytes = 2 << 10

func newCHProxy(t *testing.T, target, db string) *chProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &chProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{},
		eventsInsert: []byte("INSERT INTO `" + db + "`.events (")}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.setDown(true) })
	return p
}

func (p *chProxy) addr() string { return p.ln.Addr().String() }

func (p *chProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *chProxy) armCut() { p.cutArmed.Store(true) }

func (p *chProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			p.refused.Add(1)
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.down { // switched off while dialing
			p.mu.Unlock()
			c.Close()
			s.Close()
			continue
		}
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
	}
}

func (p *chProxy) pipe(client, server net.Conn) {
	// state follows an events insert on this connection: the statement
	// was sent (1), ClickHouse answered with the table's header (2),
	// then the client sends the data and ClickHouse answers the insert.
	var (
		state atomic.Int32
		sent  atomic.Int64 // client bytes since the server last spoke
	)
	closeBoth := func() {
		client.Close()
		server.Close()
		p.mu.Lock()
		delete(p.conns, client)
		delete(p.conns, server)
		p.mu.Unlock()
	}
	go func() {
		defer closeBoth()
		buf := make([]byte, 64<<10)
		var tail []byte // last bytes, for a statement split between reads
		for {
			n, err := client.Read(buf)
			if n > 0 {
				tail = append(tail, buf[:n]...)
				if bytes.Contains(tail, p.eventsInsert) {
					state.Store(1)
					tail = tail[:0]
				} else if k := len(p.eventsInsert); len(tail) > k {
					tail = append(tail[:0], tail[len(tail)-k:]...)
				}
				sent.Add(int64(n))
				if _, werr := server.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	defer closeBoth()
	buf := make([]byte, 64<<10)
	for {
		n, err := server.Read(buf)
		if n > 0 {
			switch state.Load() {
			case 1:
				state.Store(2) // the header
			case 2:
				if sent.Load() == 0 {
					break // more of the header
				}
				// The answer to the insert, whose data ClickHouse has
				// whole.
				state.Store(0)
				if sent.Load() >= insertBytes && p.cutArmed.CompareAndSwap(true, false) {
					p.cuts.Add(1)
					swallow(server)
					return
				}
			}
			sent.Store(0)
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// swallow reads and drops what server sends until it has been quiet for
// a second (at most 10s): the first bytes of an answer to an insert may be
// a progress report sent before the client's end-of-data marker arrived
// (the other direction keeps relaying meanwhile), so the insert is let to
// finish and answer before the connection is cut.
func swallow(server net.Conn) {
	buf := make([]byte, 64<<10)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); {
		server.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := server.Read(buf); err != nil {
			return
		}
	}
}

// beaconStream sends ad requests and their beacons to a node from several
// goroutines and keeps the expected totals.
type beaconStream struct {
	n      *Node
	client *http.Client

	mu                 sync.Mutex
	ads, imps, clicks  int64
	spend              int64 // micros, CPM price / 1000 per impression
	auctions           map[string]bool
	dupImps, dupClicks int64
	errs               []string
	seq                atomic.Int64
}

func (s *beaconStream) fail(format string, args ...any) {
	s.mu.Lock()
	if len(s.errs) < 10 {
		s.errs = append(s.errs, fmt.Sprintf(format, args...))
	}
	s.mu.Unlock()
}

func (s *beaconStream) get(u string) int {
	r, err := s.client.Get(u)
	if err != nil {
		s.fail("GET %s: %v", u, err)
		return 0
	}
	io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}

// unit serves one ad and sends its impression; every third impression
// twice, every fifth ad a click, every tenth click twice.
func (s *beaconStream) unit() {
	i := s.seq.Add(1)
	body := fmt.Sprintf(`{"id":"r-%d","placement_id":"p-1","user":{"id":"u-%d"},"geo":{"country":"KR"},
		"slots":[{"id":"s1","w":300,"h":250}]}`, i, i)
	r, err := s.client.Post(serving(s.n)+"/v1/ad", "application/json", bytes.NewReader([]byte(body)))
	if err != nil {
		s.fail("/v1/ad: %v", err)
		return
	}
	b, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != 200 {
		s.fail("/v1/ad: %d %s", r.StatusCode, b)
		return
	}
	var a auctionAd
	if err := json.Unmarshal(b, &a); err != nil || len(a.Ads) != 1 {
		s.fail("/v1/ad answer %s: %v", b, err)
		return
	}
	price, err := campaign.ParseMicros(a.Ads[0].Price.String())
	if err != nil {
		s.fail("price %s: %v", a.Ads[0].Price, err)
		return
	}
	s.mu.Lock()
	s.ads++
	s.auctions[a.AuctionID] = true
	s.mu.Unlock()
	imps := 1 + int(i%3/2) // i%3 == 2: a repeat
	for range imps {
		if st := s.get(a.Ads[0].ImpressionURL); st != 204 {
			s.fail("impression beacon: %d", st)
			return
		}
	}
	clicks := 0
	if i%5 == 0 {
		clicks = 1 + int(i%10/5) // i%10 == 5: a repeat
		for range clicks {
			if st := s.get(a.Ads[0].ClickURL); st != 302 {
				s.fail("click beacon: %d", st)
				return
			}
		}
	}
	s.mu.Lock()
	s.imps++
	s.spend += int64(price) / 1000
	s.dupImps += int64(imps - 1)
	if clicks > 0 {
		s.clicks++
		s.dupClicks += int64(clicks - 1)
	}
	s.mu.Unlock()
}

// run sends units from workers goroutines, each pausing pause between
// units, until stop is closed.
func (s *beaconStream) run(workers int, pause time.Duration, stop <-chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s.unit()
				time.Sleep(pause)
			}
		}()
	}
	return &wg
}

func (s *beaconStream) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ads
}

// TestClickHouseOutageExactlyOnce: ClickHouse goes away in the middle of a
// stream of ad requests, impressions and clicks (with repeats) sent over
// HTTP to a real node, for longer than the shipper's backoff takes to open
// its circuit breaker plus the breaker's cooldown (so a half-open probe
// fails too); the node keeps serving and recording. Then ClickHouse comes
// back, and the first large insert into the events table after that is
// cut after ClickHouse received it whole but before its answer reaches the
// node. When the node has shipped its log, the raw events table and both
// rollups hold every valid event exactly once, with the spend to the
// micro, and the decisions table (sampling at 1) every auction.
//
// "ClickHouse goes away" is a TCP proxy between the node and the real
// server at 127.0.0.1:9000 that refuses and cuts connections: stopping
// that server would fail the tests of other packages that use it at the
// same time (go test runs packages in parallel), and for the node a
// refused or reset connection is exactly what a stopped server looks
// like. The node runs with its production shipper settings (backoff 100ms
// to 30s, breaker after 5 failures, 10s cooldown).
func TestClickHouseOutageExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("an outage of 14s")
	}
	chAddr, db := testClickHouse(t)
	p := newCHProxy(t, chAddr, db)
	n := startNodeWith(t, t.TempDir(), "", func(c *config.Config) {
		c.ClickHouse = p.addr()
		c.ClickHouseDatabase = db
		c.Shipper.BatchInterval = 100 * time.Millisecond
		c.Seed = logSeed
	})
	defer stopNode(t, n)
	call(t, "PUT", admin(n)+"/v1/advertisers/adv-1", testToken, advertiserJSON)
	call(t, "PUT", admin(n)+"/v1/placements/p-1", testToken, `{"id":"p-1","publisher_id":"pub-1","format":"banner","sizes":[[300,250]],"floor":0.5}`)
	if r := call(t, "PUT", admin(n)+"/v1/campaigns/c-1", testToken, campaignJSON("c-1", "2.5")); r.status != 200 {
		t.Fatalf("PUT campaign: %d %s", r.status, r.body)
	}
	swPut(t, n, `{"decision_log_sample":1}`)

	s := &beaconStream{n: n, auctions: map[string]bool{},
		client: &http.Client{
			Transport:     &http.Transport{MaxIdleConnsPerHost: 16},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}}
	// One request before the concurrent ones: the first parse of a request
	// without "device" (or "site", "app") writes a flag in the parser's
	// shared empty object (server/adrequest.go, emptyObject), which the
	// race detector reports if other requests read it concurrently.
	s.unit()
	stop := make(chan struct{})
	wg := s.run(4, 20*time.Millisecond, stop)
	stopped := false
	defer func() {
		if !stopped {
			close(stop)
			wg.Wait()
		}
	}()

	// Phase 1: ClickHouse up; the shipper (once it has migrated the
	// fresh database) keeps up.
	time.Sleep(2 * time.Second)
	eventually(t, 60*time.Second, func() string {
		if st := n.Shipper.Stats(); st.Events == 0 {
			return fmt.Sprintf("nothing shipped before the outage: %+v", st)
		}
		return ""
	})

	// Phase 2: ClickHouse down for 14s, traffic goes on.
	const outage = 14 * time.Second
	p.setDown(true)
	downAt, adsAtDown := time.Now(), s.count()
	time.Sleep(time.Second) // an insert under way when the proxy went down ends
	ackedDown := n.Events.Acked().Seq
	sawOpen := false
	for time.Since(downAt) < outage {
		if n.Shipper.Stats().Breaker == clickhouse.BreakerOpen {
			sawOpen = true
		}
		time.Sleep(50 * time.Millisecond)
	}
	stDown := n.Shipper.Stats()
	if acked := n.Events.Acked().Seq; acked != ackedDown {
		t.Errorf("the log was acknowledged up to %d during the outage (from %d)", acked, ackedDown)
	}
	if !sawOpen || stDown.Failures < 6 {
		t.Errorf("during the outage: breaker open seen %v, %d failures; want open and >= 6 (5 to open, 1 failed probe)",
			sawOpen, stDown.Failures)
	}
	adsDuringOutage := s.count() - adsAtDown
	if adsDuringOutage < 100 {
		t.Errorf("only %d ads served during the outage", adsDuringOutage)
	}

	// Phase 3: ClickHouse back; the first large events insert is cut
	// after it landed.
	p.armCut()
	p.setDown(false)
	upAt := time.Now()
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	stopped = true
	if len(s.errs) > 0 {
		t.Fatalf("the stream failed (the request path must not depend on ClickHouse): %v", s.errs)
	}
	waitAllShipped(t, n)
	recovered := time.Since(upAt)
	st := n.Shipper.Stats()
	if p.cuts.Load() != 1 {
		t.Errorf("the proxy cut %d events inserts, want 1", p.cuts.Load())
	}
	if st.LandedSkipped <= stDown.LandedSkipped {
		t.Errorf("the cut insert was not found landed: landed-skipped %d before, %d after", stDown.LandedSkipped, st.LandedSkipped)
	}
	if st.Breaker != clickhouse.BreakerClosed {
		t.Errorf("breaker %v after recovery", st.Breaker)
	}

	conn, err := clickhouse.Open(chAddr, "default", "", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	var rows, ids, imps, clicks, spend int64
	if err := conn.QueryRow(ctx, `SELECT toInt64(count()), toInt64(uniqExact(event_id)), toInt64(countIf(type = 'impression')),
		toInt64(countIf(type = 'click')), toInt64(sum(cost_micros)) FROM `+db+`.events`).Scan(&rows, &ids, &imps, &clicks, &spend); err != nil {
		t.Fatal(err)
	}
	if rows != ids || imps != s.imps || clicks != s.clicks || spend != s.spend {
		t.Errorf("events table: %d rows of %d distinct ids, %d impressions, %d clicks, spend %d µ; want %d impressions, %d clicks, %d µ, each once",
			rows, ids, imps, clicks, spend, s.imps, s.clicks, s.spend)
	}
	for _, table := range []string{"rollup_hourly", "rollup_campaign_hourly"} {
		var rImps, rClicks, rSpend int64
		if err := conn.QueryRow(ctx, `SELECT toInt64(sum(impressions)), toInt64(sum(clicks)), toInt64(sum(spend_micros)) FROM `+
			db+`.`+table+` WHERE campaign_id = 'c-1'`).Scan(&rImps, &rClicks, &rSpend); err != nil {
			t.Fatal(err)
		}
		if rImps != s.imps || rClicks != s.clicks || rSpend != s.spend {
			t.Errorf("%s: %d impressions, %d clicks, spend %d µ; want %d, %d, %d µ",
				table, rImps, rClicks, rSpend, s.imps, s.clicks, s.spend)
		}
	}
	got, _ := decisionRows(t, conn, db)
	missing := 0
	for id := range s.auctions {
		if _, ok := got[id]; !ok {
			missing++
		}
	}
	if len(got) != len(s.auctions) || missing != 0 {
		t.Errorf("decisions table: %d auctions, %d of the %d served missing", len(got), missing, len(s.auctions))
	}
	if pst, ok := n.Pacer.Status("c-1", time.Now()); !ok || int64(pst.TotalSpend) != s.spend {
		t.Errorf("pacer charged %d µ, want %d µ", pst.TotalSpend, s.spend)
	}
	t.Logf("%d ads (%d during the %v outage), %d impressions (+%d repeats), %d clicks (+%d repeats), spend %d µ: "+
		"each once in events, rollup_hourly and rollup_campaign_hourly; %d decisions",
		s.ads, adsDuringOutage, outage, s.imps, s.dupImps, s.clicks, s.dupClicks, s.spend, len(got))
	t.Logf("shipper: %d failures during the outage (breaker opened), %d connections refused, %d insert cut after landing, "+
		"%d rows found landed and skipped, caught up %v after ClickHouse came back; stats %+v",
		stDown.Failures, p.refused.Load(), p.cuts.Load(), st.LandedSkipped-stDown.LandedSkipped, recovered.Round(100*time.Millisecond), st)
}
