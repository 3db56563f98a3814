package bus

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Embedded is an in-process Kafka-protocol broker (kfake) that persists its
// data on disk, for single-node setups and tests. Other nodes and any Kafka
// client reach it at Addr.
type Embedded struct {
	cluster *kfake.Cluster
	addr    string
}

// StartEmbedded starts a one-broker cluster listening on listen
// ("127.0.0.1:9092"; port 0 picks a free one) with its data under dataDir.
// An empty dataDir keeps the data in memory only.
func StartEmbedded(listen, dataDir string) (*Embedded, error) {
	host, portStr, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("cannot parse -embedded-kafka-listen %q: %w", listen, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, fmt.Errorf("cannot parse -embedded-kafka-listen %q: bad port", listen)
	}
	if host == "" {
		host = "127.0.0.1"
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(port),
		// kfake listens on 127.0.0.1; honour another host by listening there.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, strconv.Itoa(port)))
		}),
		kfake.DefaultNumPartitions(4),
	}
	if dataDir != "" {
		opts = append(opts, kfake.DataDir(filepath.Join(dataDir, "kafka")))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot start the embedded Kafka broker on %s: %w", listen, err)
	}
	return &Embedded{cluster: c, addr: c.ListenAddrs()[0]}, nil
}

// Addr returns the broker's address, host:port.
func (e *Embedded) Addr() string { return e.addr }

// Close stops the broker and flushes its data to disk.
func (e *Embedded) Close() { e.cluster.Close() }
