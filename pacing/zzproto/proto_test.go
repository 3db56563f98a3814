package zzproto

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

func TestRound(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "adserver.spend"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	addrs := c.ListenAddrs()
	ctx := context.Background()
	const n = 3
	var ws [n]*kafka.Writer
	var got [n]atomic.Int64
	var cls [n]*kafka.Client
	for i := range cls {
		cls[i] = &kafka.Client{Addr: kafka.TCP(addrs...)}
	}
	for i := 0; i < n; i++ {
		ws[i] = &kafka.Writer{Addr: kafka.TCP(addrs...), Topic: "adserver.spend", Balancer: &kafka.Hash{}, BatchTimeout: 50 * time.Microsecond, RequiredAcks: kafka.RequireAll}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: "adserver.spend", Partition: 0, MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond, StartOffset: kafka.FirstOffset})
		go func(i int) {
			for {
				_, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				got[i].Add(1)
			}
		}(i)
	}
	start := time.Now()
	rounds := 300
	var total int64
	var wt time.Duration
	for k := 0; k < rounds; k++ {
		t0 := time.Now()
		done := make(chan error, n)
		for i := 0; i < n; i++ {
			go func(i int) {
				_ = ws
				_, err := cls[i].Produce(ctx, &kafka.ProduceRequest{Topic: "adserver.spend", Partition: 0, RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes([]byte(fmt.Sprint(i))), Value: kafka.NewBytes([]byte("hello world hello world"))}, kafka.Record{Key: kafka.NewBytes([]byte(fmt.Sprint(i, "x"))), Value: kafka.NewBytes([]byte("hello"))})})
				done <- err
			}(i)
		}
		for i := 0; i < n; i++ {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		total += 2 * n
		wt += time.Since(t0)
		for i := 0; i < n; i++ {
			for got[i].Load() < total {
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	t.Logf("per round %v write %v", time.Since(start)/time.Duration(rounds), wt/time.Duration(rounds))
}
