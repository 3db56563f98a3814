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
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/events/clickhouse"
	"github.com/adserver/adserver/pacing"
	"github.com/adserver/adserver/pacing/spendsync"
	"github.com/adserver/adserver/reports"
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
	// Events is the durable local event log; Recorder writes to it and
	// Shipper (nil with -clickhouse off) drains it into ClickHouse.
	Events   *events.Log
	Recorder *events.Recorder
	Shipper  *clickhouse.Shipper
	Reports  *reports.Handler
	Pacer    *pacing.Pacer
	Spend    *spendsync.Sync
	// Brokers is the Kafka address in use (the embedded broker's when
	// -kafka embedded).
	Brokers string

	log      *slog.Logger
	embedded *bus.Embedded
	cancel   context.CancelFunc
	errc     chan error
	// bg counts the background loops that must end before the log closes.
	bg          sync.WaitGroup
	unshipped   *unshippedSource
	reportsConn driver.Conn
	// shipCancel stops the shipper, which outlives the other loops at Stop.
	shipCancel context.CancelFunc
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
	if err := n.startPacing(ctx); err != nil {
		return nil, err
	}
	if err := n.startEvents(ctx); err != nil {
		return nil, err
	}
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		n.campaignMetrics(ctx, 10*time.Second)
	}()
	n.Engine = &decision.Engine{CTR: ctr, NodeID: n.Secrets.NodeID, Seed: uint64(cfg.Seed),
		Pacer: pacerAdapter{n.Pacer}, Capper: capperAdapter{n.Pacer}}
	guards, err := server.NewGuards(cfg)
	if err != nil {
		return nil, err
	}
	n.Server = &server.Server{Config: cfg, Feed: n.Feed, Engine: n.Engine, Logger: log, Guards: guards,
		ReadyChecks: []func() error{n.spendReady}}
	if err := n.Server.Listen(n.Secrets.AdminToken); err != nil {
		return nil, err
	}
	signer, err := events.ParseSigner(n.Secrets.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("invalid -signing-key: %w", err)
	}
	signer.MaxAge = cfg.BeaconExpiry
	n.Signer = signer
	public := publicURL(cfg.PublicURL, n.Server.ServingAddr())
	n.Engine.Sign = server.TrackingSigner(signer, public)
	n.Server.Tracker = &server.Tracker{Signer: signer, Recorder: n.Recorder, CTR: ctr,
		PublicURL: public, Switches: n.Server.CurrentSwitches}
	if n.Reports != nil {
		n.Server.Reports, n.Server.Dashboard = n.Reports.ServeReports, n.Reports.ServeDashboard
	}
	if guards.Abuse != nil {
		n.Server.Tracker.NoCharge = guards.Abuse.Flagged
	}
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

// WaitReady blocks until the node is ready (catalog and spend replayed) or
// ctx is done.
func (n *Node) WaitReady(ctx context.Context) error {
	if err := n.Feed.WaitReady(ctx); err != nil {
		return err
	}
	return n.Spend.WaitReady(ctx)
}

// Drain marks the node not ready while it keeps serving.
func (n *Node) Drain() { n.Server.Drain() }

// Stop stops accepting, finishes in-flight requests (bounded by ctx),
// fsyncs the event log, gives the shipper until ctx is done to deliver
// what the log holds (what it cannot deliver stays in the log for the next
// start), publishes this node's last spend, and closes everything the node
// started.
func (n *Node) Stop(ctx context.Context) error {
	var errs []error
	if n.Server != nil {
		if err := n.Server.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if n.Events != nil {
		if err := n.Events.Sync(); err != nil {
			errs = append(errs, fmt.Errorf("event log fsync: %w", err))
		}
		if n.Shipper != nil {
			if err := n.Shipper.WaitShipped(ctx, n.Events.LastSeq()); err != nil {
				n.log.Warn("stopping before every event reached ClickHouse; the rest ships at the next start",
					"error", err)
			}
		}
	}
	n.close()
	return errors.Join(errs...)
}

func (n *Node) close() {
	if n.cancel != nil {
		n.cancel()
	}
	if n.shipCancel != nil {
		n.shipCancel()
	}
	n.bg.Wait()
	liveUnshipped.CompareAndSwap(n.unshipped, nil)
	if n.Events != nil {
		if err := n.Events.Close(); err != nil {
			n.log.Error("closing the event log", "error", err)
		}
		n.Events = nil
	}
	if n.reportsConn != nil {
		n.reportsConn.Close()
		n.reportsConn = nil
	}
	if n.Recorder != nil {
		n.Recorder.Close()
		n.Recorder = nil
	}
	if n.Spend != nil {
		n.Spend.Close()
	}
	if n.Pacer != nil {
		n.Pacer.Close()
		n.Pacer = nil
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
