package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/events"
	"github.com/adserver/adserver/events/clickhouse"
	"github.com/adserver/adserver/pacing"
	"github.com/adserver/adserver/pacing/spendsync"
	"github.com/adserver/adserver/reports"
)

// startPacing creates the pacer and starts its controller and the spend
// sync over adserver.spend. The node is not ready until the sync has
// replayed the topic (today's spend of every node).
func (n *Node) startPacing(ctx context.Context) error {
	cfg := n.Config
	p, err := pacing.New(pacing.Config{
		NodeID:            n.Secrets.NodeID,
		Nodes:             cfg.Pacing.Nodes,
		Seed:              uint64(cfg.Seed),
		ControlInterval:   cfg.Pacing.ControlInterval,
		ReservationExpiry: cfg.Pacing.ReservationExpiry,
		Lookup:            n.lookupCampaign,
	})
	if err != nil {
		return err
	}
	n.Pacer = p
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = n.Kafka.EnsureTopics(tctx, bus.TopicSpec{Name: bus.TopicSpend, Compacted: true})
	cancel()
	if err != nil {
		return fmt.Errorf("cannot create %s: %w", bus.TopicSpend, err)
	}
	n.Spend, err = spendsync.New(spendsync.Config{Brokers: n.Kafka.Brokers(), Topic: bus.TopicSpend, Logger: n.log}, p)
	if err != nil {
		return err
	}
	n.bg.Add(2)
	go func() {
		defer n.bg.Done()
		p.Run(ctx)
	}()
	go func() {
		defer n.bg.Done()
		n.Spend.Run(ctx)
	}()
	return nil
}

// lookupCampaign resolves a campaign for charges that arrive before the
// pacer has seen it.
func (n *Node) lookupCampaign(id string) *campaign.Campaign {
	if s := n.Feed.Snapshot(); s != nil && s.Index != nil {
		return s.Index.Get(id)
	}
	return nil
}

func (n *Node) spendReady() error {
	if !n.Spend.Ready() {
		return errors.New("spend replay from " + bus.TopicSpend + " not complete")
	}
	return nil
}

// startEvents opens the durable event log under <data-dir>/events, the
// recorder that charges the pacer, and, unless -clickhouse is off, the
// shipper. ClickHouse being down does not stop the node: events wait in
// the log.
func (n *Node) startEvents(ctx context.Context) error {
	cfg := n.Config
	l, err := events.OpenLog(events.LogConfig{
		Dir:          filepath.Join(cfg.DataDir, "events"),
		SegmentBytes: cfg.EventLog.SegmentBytes,
		MaxBytes:     cfg.EventLog.MaxBytes,
		SyncInterval: cfg.EventLog.FsyncInterval,
	})
	if err != nil {
		return fmt.Errorf("cannot open the event log: %w", err)
	}
	n.Events = l
	n.Recorder, err = events.NewRecorder(events.RecorderConfig{
		NodeID:       n.Secrets.NodeID,
		Log:          l,
		Charger:      charger{n.Pacer},
		DedupEntries: cfg.Pacing.DedupEntries,
		DedupTTL:     max(cfg.BeaconExpiry, events.DefaultConversionMaxAge),
	})
	if err != nil {
		return err
	}
	if cfg.ClickHouse == "off" {
		n.log.Warn("-clickhouse off: events stay in the local log; reports are disabled")
		return nil
	}
	n.Shipper, err = clickhouse.New(clickhouse.Config{
		Addr:          cfg.ClickHouse,
		Database:      cfg.ClickHouseDatabase,
		NodeID:        n.Secrets.NodeID,
		BatchRows:     cfg.Shipper.BatchRows,
		BatchInterval: cfg.Shipper.BatchInterval,
	}, l)
	if err != nil {
		return err
	}
	if err := n.startReports(); err != nil {
		return err
	}
	n.unshipped = &unshippedSource{l: l, start: l.LastSeq()}
	liveUnshipped.Store(n.unshipped)
	// The shipper has its own context: at Stop it keeps shipping until the
	// log is delivered or Stop's deadline passes.
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	n.shipCancel = cancel
	n.bg.Add(1)
	go func() {
		defer n.bg.Done()
		if err := n.Shipper.Run(sctx); err != nil && sctx.Err() == nil {
			n.errc <- fmt.Errorf("clickhouse shipper: %w", err)
		}
	}()
	return nil
}

// charger adapts the pacer to events.Charger.
type charger struct{ p *pacing.Pacer }

func (c charger) Charge(campaignID string, cost int64, at time.Time) {
	c.p.Charge(campaignID, campaign.Micros(cost), at)
	spendCounters.add(campaignID, cost)
}

// pacerAdapter adapts the pacer to decision.Pacer. The reservation handle
// is dropped: the beacon's charge releases it, or it expires.
type pacerAdapter struct{ p *pacing.Pacer }

func (a pacerAdapter) Allow(c *campaign.Campaign, now time.Time) (bool, string) {
	return a.p.Allow(c, now)
}

func (a pacerAdapter) Reserve(c *campaign.Campaign, cost campaign.Micros, now time.Time) bool {
	_, ok := a.p.Reserve(c, cost, now)
	return ok
}

func (a pacerAdapter) Observe(placementID string, now time.Time) { a.p.Observe(placementID, now) }

// capperAdapter adapts the pacer's frequency caps to decision.Capper.
type capperAdapter struct{ p *pacing.Pacer }

func (a capperAdapter) Allows(userID string, c *campaign.Campaign, now time.Time) bool {
	return a.p.CapAllows(userID, c, now)
}

func (a capperAdapter) Record(userID string, c *campaign.Campaign, now time.Time) {
	a.p.CapRecord(userID, c, now)
}

// startReports opens the reports' own ClickHouse connection pool (so that
// report queries can never take the shipper's connections) and builds the
// reports API and dashboard handlers.
func (n *Node) startReports() error {
	cfg := n.Config
	conn, err := clickhouse.Open(cfg.ClickHouse, "default", "", 5*time.Second)
	if err != nil {
		return fmt.Errorf("reports: %w", err)
	}
	n.reportsConn = conn
	n.Reports, err = reports.New(reports.Config{
		Conn:       conn,
		Database:   cfg.ClickHouseDatabase,
		AdminToken: n.Secrets.AdminToken,
		Advertisers: func(keyHash string) *campaign.Advertiser {
			if s := n.Feed.Snapshot(); s != nil {
				return s.AdvertisersByKey[keyHash]
			}
			return nil
		},
		Logger: n.log,
	})
	return err
}
