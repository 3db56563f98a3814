package clickhouse

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/adserver/adserver/events"
)

// BenchmarkShipperThroughput measures sustained shipping into a real
// ClickHouse: b.N events are in the log (fsynced) before the timer starts;
// the timer stops when the last one is acknowledged. Run it with a fixed
// count, e.g. -benchtime=300000x.
func BenchmarkShipperThroughput(b *testing.B) {
	conn, addr, db := testDB(b)
	if err := Migrate(context.Background(), conn, db); err != nil {
		b.Fatal(err)
	}
	l, err := events.OpenLog(events.LogConfig{Dir: b.TempDir(), MaxBytes: 1 << 40, MaxBuffered: 1 << 40})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	now := time.Now().UTC().Truncate(time.Hour)
	var buf []byte
	campaigns := make([]string, 100)
	for i := range campaigns {
		campaigns[i] = fmt.Sprintf("c-%d", i)
	}
	var last uint64
	for i := 0; i < b.N; i++ {
		c := campaigns[i%len(campaigns)]
		e := events.Event{Type: events.TypeImpression, Time: now.Add(time.Duration(i%3600) * time.Second),
			NodeID: "bench", AuctionID: fmt.Sprintf("auc-%d", i), SlotID: "s1", AdvertiserID: "adv-" + c,
			CampaignID: c, CreativeID: "cr-" + c, PlacementID: "p-1", PublisherID: "pub-1", Country: "KR",
			PriceMicros: 1_500_000, CostMicros: 1_500}
		e.ID = events.EventID(e.AuctionID, e.SlotID, e.Type)
		buf = e.AppendBinary(buf[:0])
		if last, err = l.Append(buf); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	s, err := New(Config{Addr: addr, Database: db, NodeID: "bench"}, l)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	go func() { s.Run(ctx); close(done) }()
	wctx, wcancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer wcancel()
	if err := s.WaitShipped(wctx, last); err != nil {
		b.Fatalf("not shipped: %v (%+v)", err, s.Stats())
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	var n, spend uint64
	if err := conn.QueryRow(context.Background(), "SELECT sum(impressions), toUInt64(sum(spend_micros)) FROM "+quoteIdent(db)+".rollup_campaign_hourly").Scan(&n, &spend); err != nil {
		b.Fatal(err)
	}
	if n != uint64(b.N) || spend != uint64(b.N)*1500 {
		b.Fatalf("rollup holds %d impressions, %d spend; want %d, %d", n, spend, b.N, b.N*1500)
	}
}
