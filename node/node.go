// Package node wires one adserver node together from its config: the
// embedded or external Kafka, the catalog feed, the engines and the two
// listeners. cmd/adserver and the integration tests both start nodes
// through it, so tests exercise the real wiring.
package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/server"
	"github.com/adserver/adserver/targeting/feed"
)

// Node is a running adserver.
type Node struct {
	Config  config.Config
	Secrets config.Secrets
	Server  *server.Server
	Feed    *feed.Feed
	Engine  *decision.Engine
	Signer  *events.Signer
	Kafka   *bus.Client
	// Brokers is the Kafka address in use (the embedded broker's when
	// -kafka embedded).
	Brokers string

	log      *slog.Logger
	embedded *bus.Embedded
	cancel   context.CancelFunc
	errc     chan error
}

// Start brings a node up. It returns once both listeners accept
// connections; readiness (/readyz) follows when the catalog bootstrap
// completes.
func Start(cfg config.Config, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.Default()
	}
	n := &Node{Config: cfg, log: log, errc: make(chan error, 4)}
	ok := false
	defer func() {
		if !ok {
			n.close()
		}
	}()
	var err error
	if n.Secrets, err = config.ResolveSecrets(&cfg); err != nil {
		return nil, err
	}
	n.Brokers = cfg.Kafka
	if cfg.Kafka == "embedded" {
		if n.embedded, err = bus.StartEmbedded(cfg.EmbeddedKafkaListen, cfg.DataDir); err != nil {
			return nil, err
		}
		n.Brokers = n.embedded.Addr()
		log.Info("embedded Kafka broker started", "addr", n.Brokers)
	}
	if n.Kafka, err = bus.NewClient(n.Brokers); err != nil {
		return nil, err
	}
	n.Kafka.Partitions = cfg.KafkaPartitions

	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.Feed = &feed.Feed{Client: n.Kafka, Logger: log}
	go func() {
		if err := n.Feed.Run(ctx); err != nil && ctx.Err() == nil {
			n.errc <- fmt.Errorf("catalog feed: %w", err)
		}
	}()

	ctr, err := auction.NewCTRModel(auction.CTRConfig{})
	if err != nil {
		return nil, err
	}
	n.Engine = &decision.Engine{CTR: ctr, NodeID: n.Secrets.NodeID, Seed: uint64(cfg.Seed)}
	n.Server = &server.Server{Config: cfg, Feed: n.Feed, Engine: n.Engine, Logger: log}
	if err := n.Server.Listen(n.Secrets.AdminToken); err != nil {
		return nil, err
	}
	signer, err := events.ParseSigner(n.Secrets.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("invalid -signing-key: %w", err)
	}
	signer.MaxAge = cfg.BeaconExpiry
	n.Signer = signer
	n.Engine.Sign = server.TrackingSigner(signer, publicURL(cfg.PublicURL, n.Server.ServingAddr()))
	n.Server.Serve()
	go func() {
		if err := <-n.Server.Err(); err != nil {
			n.errc <- fmt.Errorf("listener: %w", err)
		}
	}()
	log.Info("adserver listening", "serving", n.Server.ServingAddr(), "admin", n.Server.AdminAddr(),
		"node", n.Secrets.NodeID, "kafka", n.Brokers)
	ok = true
	return n, nil
}

// Err receives an error if a part of the node fails for good.
func (n *Node) Err() <-chan error { return n.errc }

// WaitReady blocks until the node is ready or ctx is done.
func (n *Node) WaitReady(ctx context.Context) error { return n.Feed.WaitReady(ctx) }

// Drain marks the node not ready while it keeps serving.
func (n *Node) Drain() { n.Server.Drain() }

// Stop stops accepting, finishes in-flight requests (bounded by ctx), and
// closes everything the node started.
func (n *Node) Stop(ctx context.Context) error {
	var errs []error
	if n.Server != nil {
		if err := n.Server.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	n.close()
	return errors.Join(errs...)
}

func (n *Node) close() {
	if n.cancel != nil {
		n.cancel()
	}
	if n.embedded != nil {
		// Give readers a moment to see the cancel before the broker goes.
		time.Sleep(10 * time.Millisecond)
		n.embedded.Close()
		n.embedded = nil
	}
}

// publicURL is the configured -public-url, or http://<bound address> with
// an unspecified host replaced by 127.0.0.1.
func publicURL(configured, bound string) string {
	if configured != "" {
		return strings.TrimRight(configured, "/")
	}
	host, port, err := net.SplitHostPort(bound)
	if err != nil {
		return "http://" + bound
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}
