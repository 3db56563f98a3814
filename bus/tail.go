package bus

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Record is one Kafka record as a [Tail] delivers it. Key and Value are
// owned by the receiver.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte // nil for a tombstone
	Time      time.Time
}

// Tail reads every partition of one topic from its first offset and keeps
// following it. Fill in the fields, then call Run.
type Tail struct {
	Client *Client
	Topic  string
	// Handle receives each record. It is called from one goroutine per
	// partition, in offset order within a partition.
	Handle func(Record)
	// OnStart, if set, is called once before any record with the high-water
	// mark of each partition captured at start: the bootstrap is complete
	// when every partition's records up to high[p]-1 have been handled.
	OnStart func(high []int64)
	// MaxWait bounds how long one fetch waits for new records. Default
	// 1s. The broker answers as soon as a record arrives (MinBytes 1), so
	// it adds no latency; kafka-go also uses it as the fetch's read
	// deadline, so a short one turns a slow round trip on a loaded
	// machine into an "i/o timeout" and a reconnect.
	MaxWait time.Duration
	// Logger receives reader errors. Default slog.Default().
	Logger *slog.Logger
}

// Run captures the high-water marks, then reads all partitions until ctx is
// done. It returns ctx's error, or an error if the topic cannot be read at
// start.
func (t *Tail) Run(ctx context.Context) error {
	var high []int64
	var err error
	// The topic may have just been created; metadata can lag a moment.
	for attempt := 0; ; attempt++ {
		_, high, err = t.Client.Offsets(ctx, t.Topic)
		if err == nil || attempt >= 50 || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("cannot start tail of %s: %w", t.Topic, err)
	}
	if t.OnStart != nil {
		t.OnStart(high)
	}
	maxWait := t.MaxWait
	if maxWait <= 0 {
		maxWait = time.Second
	}
	log := t.Logger
	if log == nil {
		log = slog.Default()
	}
	var wg sync.WaitGroup
	for p := range high {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   t.Client.Brokers(),
			Topic:     t.Topic,
			Partition: p,
			MinBytes:  1,
			MaxBytes:  16 << 20,
			MaxWait:   maxWait,
			ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
				log.Warn("kafka reader", "topic", t.Topic, "partition", p, "error", fmt.Sprintf(msg, args...))
			}),
		})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			r.Close()
			return fmt.Errorf("cannot start tail of %s: %w", t.Topic, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if !errors.Is(err, context.DeadlineExceeded) {
						log.Warn("kafka read failed; retrying", "topic", t.Topic, "partition", p, "error", err)
					}
					select {
					case <-ctx.Done():
						return
					case <-time.After(200 * time.Millisecond):
					}
					continue
				}
				t.Handle(Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time})
			}
		}()
	}
	wg.Wait()
	return ctx.Err()
}
