package clickhouse

import (
	"context"
	"errors"
	"time"
)

// errOrphanRunning means an insert of ours from an uncertain attempt is
// still running on the server: retry later, do not guess.
var errOrphanRunning = errors.New("clickhouse shipper: an earlier insert of this node is still running on the server")

// resolve finds out which pending rows already landed (see the package
// doc), drops them, and clears s.uncertain.
func (s *Shipper) resolve(ctx context.Context) error {
	if len(s.pending) == 0 && len(s.carry) == 0 {
		s.uncertain = false
		return nil
	}
	uncertainChecks.Inc()
	s.addStats(func(st *Stats) { st.LandedChecks++ })
	ctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
	defer cancel()
	if err := s.waitOwnInserts(ctx); err != nil {
		return err
	}
	var first *row
	if len(s.pending) > 0 {
		first = &s.pending[0]
	} else {
		first = &s.carry[0]
	}
	since := first.time().Add(-s.cfg.Lookback).Unix()
	var landed uint64
	err := s.conn.QueryRow(ctx,
		"SELECT max(seq) FROM "+quoteIdent(s.cfg.Database)+".events WHERE node_id = ? AND seq >= ? AND time >= toDateTime(?)",
		s.cfg.NodeID, first.seq, unixSeconds(since)).Scan(&landed)
	if err != nil {
		return err
	}
	s.floor = max(s.floor, landed)
	s.uncertain = false
	return s.dropLanded()
}

// dropLanded removes the rows at or below s.floor from the front of pending
// and carry (they are in seq order) and acknowledges them.
func (s *Shipper) dropLanded() error {
	var last *row
	n := 0
	for n < len(s.pending) && s.pending[n].seq <= s.floor {
		n++
	}
	if n > 0 {
		r := s.pending[n-1]
		last = &r
		s.popPending(n)
	}
	if len(s.pending) == 0 {
		m := 0
		for m < len(s.carry) && s.carry[m].seq <= s.floor {
			m++
		}
		if m > 0 {
			r := s.carry[m-1]
			last = &r
			n += m
			for i := 0; i < m; i++ {
				s.carry[i] = row{}
			}
			s.carry = s.carry[m:]
		}
	}
	if last == nil {
		return nil
	}
	landedSkipped.Add(n)
	s.addStats(func(st *Stats) { st.LandedSkipped += int64(n) })
	return s.ack(last)
}

// waitOwnInserts waits until no insert carrying this shipper's query-id
// prefix runs on the server: an insert whose connection was cut may still
// be writing, and must finish (or fail) before max(seq) is meaningful.
func (s *Shipper) waitOwnInserts(ctx context.Context) error {
	for {
		var n uint64
		err := s.conn.QueryRow(ctx,
			"SELECT count() FROM system.processes WHERE startsWith(query_id, ?)", s.queryPrefix).Scan(&n)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return errOrphanRunning
		case <-time.After(50 * time.Millisecond):
		}
	}
}
