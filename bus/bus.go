// Package bus is the server's edge to Kafka: topic creation, keyed produce
// with the offset it landed at, and tails that read every partition of a
// topic from the beginning (bootstrap to the high-water mark captured at
// start, then follow). It also runs the embedded Kafka-protocol broker.
//
// The client is github.com/segmentio/kafka-go. Everything here is safe for
// concurrent use; a [Tail] delivers records of one partition in order from
// one goroutine per partition.
package bus

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Topic names, fixed by the design.
const (
	TopicCampaigns   = "adserver.campaigns"
	TopicPlacements  = "adserver.placements"
	TopicAdvertisers = "adserver.advertisers"
	TopicSpend       = "adserver.spend"
	TopicControl     = "adserver.control"
)

// Client talks to one Kafka cluster. The zero value is not usable; use
// [NewClient].
type Client struct {
	brokers []string
	kc      *kafka.Client
	// Partitions is the partition count given to topics this client
	// creates. Default 4.
	Partitions int
	// Timeout bounds each request to the cluster. Default 10s.
	Timeout time.Duration

	mu         sync.Mutex
	partitions map[string]int // topic → partition count, cached
}

// NewClient returns a client for the comma-separated broker list.
func NewClient(brokers string) (*Client, error) {
	var bs []string
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			if _, _, err := net.SplitHostPort(b); err != nil {
				return nil, fmt.Errorf("cannot parse Kafka broker address %q: %w", b, err)
			}
			bs = append(bs, b)
		}
	}
	if len(bs) == 0 {
		return nil, errors.New("no Kafka broker address given")
	}
	return &Client{
		brokers:    bs,
		kc:         &kafka.Client{Addr: kafka.TCP(bs...), Timeout: 10 * time.Second},
		partitions: map[string]int{},
	}, nil
}

// Brokers returns the broker addresses.
func (c *Client) Brokers() []string { return c.brokers }

func (c *Client) numPartitions() int {
	if c.Partitions <= 0 {
		return 4
	}
	return c.Partitions
}

func (c *Client) timeout() time.Duration {
	if c.Timeout <= 0 {
		return 10 * time.Second
	}
	return c.Timeout
}

// TopicSpec describes a topic to create.
type TopicSpec struct {
	Name      string
	Compacted bool
	// Partitions overrides the client's default partition count.
	Partitions int
}

// EnsureTopics creates the topics that do not exist yet. Existing topics
// are left as they are.
func (c *Client) EnsureTopics(ctx context.Context, specs ...TopicSpec) error {
	req := &kafka.CreateTopicsRequest{}
	for _, s := range specs {
		n := s.Partitions
		if n <= 0 {
			n = c.numPartitions()
		}
		tc := kafka.TopicConfig{Topic: s.Name, NumPartitions: n, ReplicationFactor: -1}
		if s.Compacted {
			tc.ConfigEntries = []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}}
		}
		req.Topics = append(req.Topics, tc)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	resp, err := c.kc.CreateTopics(ctx, req)
	if err != nil {
		return fmt.Errorf("cannot create Kafka topics: %w", err)
	}
	for topic, terr := range resp.Errors {
		if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
			return fmt.Errorf("cannot create Kafka topic %s: %w", topic, terr)
		}
	}
	return nil
}

// PartitionCount returns the number of partitions of topic.
func (c *Client) PartitionCount(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	n, ok := c.partitions[topic]
	c.mu.Unlock()
	if ok {
		return n, nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	md, err := c.kc.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("cannot read metadata of Kafka topic %s: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("cannot read metadata of Kafka topic %s: %w", topic, t.Error)
			}
			n = len(t.Partitions)
		}
	}
	if n == 0 {
		return 0, fmt.Errorf("kafka topic %s has no partitions", topic)
	}
	c.mu.Lock()
	c.partitions[topic] = n
	c.mu.Unlock()
	return n, nil
}

// PartitionFor returns the partition a key maps to, the way Java clients'
// default partitioner (murmur2) does, so records from any client with the
// same key land together, as compaction needs.
func PartitionFor(key []byte, partitions int) int {
	if partitions <= 1 {
		return 0
	}
	var b kafka.Murmur2Balancer
	ps := make([]int, partitions)
	for i := range ps {
		ps[i] = i
	}
	return b.Balance(kafka.Message{Key: key}, ps...)
}

// Produce writes one record with acks from all in-sync replicas and returns
// the partition and offset it landed at. A nil value is a tombstone.
func (c *Client) Produce(ctx context.Context, topic string, key, value []byte) (partition int, offset int64, err error) {
	n, err := c.PartitionCount(ctx, topic)
	if err != nil {
		return 0, 0, err
	}
	partition = PartitionFor(key, n)
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	resp, err := c.kc.Produce(ctx, &kafka.ProduceRequest{
		Topic:        topic,
		Partition:    partition,
		RequiredAcks: kafka.RequireAll,
		Records:      kafka.NewRecordReader(kafka.Record{Key: kafka.NewBytes(key), Value: bytesOrNil(value)}),
	})
	if err != nil {
		return 0, 0, fmt.Errorf("cannot produce to Kafka topic %s: %w", topic, err)
	}
	if resp.Error != nil {
		return 0, 0, fmt.Errorf("cannot produce to Kafka topic %s: %w", topic, resp.Error)
	}
	return partition, resp.BaseOffset, nil
}

func bytesOrNil(v []byte) kafka.Bytes {
	if v == nil {
		return nil
	}
	return kafka.NewBytes(v)
}

// Offsets returns, for every partition of topic, the first offset and the
// high-water mark (the offset the next record will get).
func (c *Client) Offsets(ctx context.Context, topic string) (first, high []int64, err error) {
	n, err := c.PartitionCount(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*n)
	for p := 0; p < n; p++ {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	resp, err := c.kc.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("cannot list offsets of Kafka topic %s: %w", topic, err)
	}
	first, high = make([]int64, n), make([]int64, n)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("cannot list offsets of Kafka topic %s partition %d: %w", topic, po.Partition, po.Error)
		}
		if po.Partition >= 0 && po.Partition < n {
			first[po.Partition], high[po.Partition] = po.FirstOffset, po.LastOffset
		}
	}
	return first, high, nil
}
