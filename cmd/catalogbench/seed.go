package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/loadtest"
	"github.com/segmentio/kafka-go"
)

// SeedStats describes the seeding of the catalog into Kafka.
type SeedStats struct {
	Advertisers, Placements, Campaigns int
	Bytes                              int64         // campaign record values
	Write                              time.Duration // all three topics, acks from all replicas
	AppliedOnA                         time.Duration // from the end of the write to node A holding every campaign

	catalog *loadtest.Catalog
}

// seedCatalog writes the catalog `loadtest seed` would create (the same
// generator, so the same realistic targeting) straight to the catalog
// topics, keyed by id with murmur2 partitioning like any Kafka client and
// the management API itself.
func seedCatalog(ctx context.Context, broker string, cfg Config) (SeedStats, error) {
	cat := loadtest.BuildCatalog(loadtest.DefaultScenario(), cfg.Campaigns, cfg.Advertisers, cfg.Seed, time.Now())
	st := SeedStats{Advertisers: len(cat.Advertisers), Placements: len(cat.Placements), Campaigns: len(cat.Campaigns), catalog: cat}
	t0 := time.Now()
	for _, step := range []struct {
		topic string
		n     int
		item  func(i int) (string, any)
	}{
		{bus.TopicAdvertisers, len(cat.Advertisers), func(i int) (string, any) { return cat.Advertisers[i].ID, cat.Advertisers[i] }},
		{bus.TopicPlacements, len(cat.Placements), func(i int) (string, any) { return cat.Placements[i].ID, cat.Placements[i] }},
		{bus.TopicCampaigns, len(cat.Campaigns), func(i int) (string, any) { return cat.Campaigns[i].ID, &cat.Campaigns[i] }},
	} {
		n, err := writeTopic(ctx, broker, step.topic, step.n, step.item)
		if err != nil {
			return st, err
		}
		if step.topic == bus.TopicCampaigns {
			st.Bytes = n
		}
	}
	st.Write = time.Since(t0)
	return st, nil
}

// writeTopic produces n records to topic, in chunks, and returns the bytes
// of their values.
func writeTopic(ctx context.Context, broker, topic string, n int, item func(i int) (string, any)) (int64, error) {
	w := &kafka.Writer{
		Addr:         kafka.TCP(broker),
		Topic:        topic,
		Balancer:     &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1000,
		BatchBytes:   900 << 10, // under the broker's default max.message.bytes (1 MiB)
		BatchTimeout: 5 * time.Millisecond,
	}
	defer w.Close()
	const chunk = 10000
	var bytes int64
	msgs := make([]kafka.Message, 0, chunk)
	for i := 0; i < n; i++ {
		id, v := item(i)
		b, err := json.Marshal(v)
		if err != nil {
			return bytes, err
		}
		bytes += int64(len(b))
		msgs = append(msgs, kafka.Message{Key: []byte(id), Value: b})
		if len(msgs) == chunk || i == n-1 {
			if err := w.WriteMessages(ctx, msgs...); err != nil {
				return bytes, fmt.Errorf("cannot write to %s at %s: %w", topic, broker, firstError(err))
			}
			msgs = msgs[:0]
		}
	}
	return bytes, nil
}

// firstError shortens kafka-go's per-message errors to a count and the
// first one.
func firstError(err error) error {
	var we kafka.WriteErrors
	if !errors.As(err, &we) {
		return err
	}
	for _, e := range we {
		if e != nil {
			return fmt.Errorf("%d of %d messages failed, the first with: %w", we.Count(), len(we), e)
		}
	}
	return err
}
