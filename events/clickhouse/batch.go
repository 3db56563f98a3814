package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/adserver/adserver/events"
)

// row is one log record decoded for shipping.
type row struct {
	kind events.Kind // KindInvalid: undecodable, already dead-lettered
	seq  uint64
	end  events.Pos
	day  int64 // UTC day number of the row's time; -1 for invalid rows
	ev   events.Event
	dec  *events.Decision
}

func (r *row) time() time.Time {
	if r.kind == events.KindDecision {
		return r.dec.Time
	}
	return r.ev.Time
}

func dayOf(t time.Time) int64 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	return s / 86400
}

// fill forms the next pending batch: up to BatchRows rows of one UTC day,
// waiting at most BatchInterval after the first row for more.
func (s *Shipper) fill(ctx context.Context) error {
	var deadline time.Time
	batchDay := int64(-1)
	for {
		for len(s.carry) > 0 && len(s.pending) < s.cfg.BatchRows {
			r := &s.carry[0]
			if r.day >= 0 {
				if batchDay >= 0 && r.day != batchDay {
					return nil // day boundary: one partition per insert
				}
				batchDay = r.day
			}
			s.pending = append(s.pending, *r)
			*r = row{}
			s.carry = s.carry[1:]
		}
		if len(s.carry) == 0 {
			s.carry = s.carry[:0:cap(s.carry)]
		}
		if len(s.pending) >= s.cfg.BatchRows {
			return nil
		}
		if len(s.pending) > 0 && deadline.IsZero() {
			deadline = time.Now().Add(s.cfg.BatchInterval)
		}
		n, err := s.readMore()
		if err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if len(s.pending) == 0 {
			shipperLag.Store(0) // caught up
		}
		wait := s.cfg.BatchInterval
		if !deadline.IsZero() {
			if wait = time.Until(deadline); wait <= 0 {
				return nil
			}
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		err = s.r.Wait(wctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		_ = err // a timeout just means: look again
	}
}

// readMore decodes the next durable records into carry and returns how
// many records it consumed.
func (s *Shipper) readMore() (int, error) {
	recs, err := s.r.Read(s.recBuf[:0], s.cfg.BatchRows)
	s.recBuf = recs[:0]
	cr, cb := s.r.Corrupt()
	s.corrupt.records.Store(cr)
	s.corrupt.bytes.Store(cb)
	if err != nil {
		return 0, fmt.Errorf("clickhouse shipper: reading the event log: %w", err)
	}
	s.updateLag(recs)
	var dropped *row
	for i := range recs {
		rec := &recs[i]
		if rec.Seq <= s.floor {
			// Already in ClickHouse (see resolve). Log order is seq
			// order, so this happens only while nothing is pending; if
			// the log broke that promise, ship rather than lose data.
			if len(s.pending) == 0 && len(s.carry) == 0 {
				dropped = &row{seq: rec.Seq, end: rec.End}
				continue
			}
			seqRegressions.Inc()
		}
		s.carry = append(s.carry, row{seq: rec.Seq, end: rec.End})
		r := &s.carry[len(s.carry)-1]
		if err := s.decode(r, rec); err != nil {
			r.kind, r.day = events.KindInvalid, -1
			s.addStats(func(st *Stats) { st.BadRecords++ })
			if derr := s.dl.writeRecord(rec, "cannot decode log record: "+err.Error()); derr != nil {
				return 0, derr
			}
		}
	}
	if dropped != nil {
		s.addStats(func(st *Stats) { st.LandedSkipped++ })
		landedSkipped.Inc()
		if err := s.ack(dropped); err != nil {
			return 0, err
		}
	}
	return len(recs), nil
}

func (s *Shipper) decode(r *row, rec *events.Record) error {
	switch events.PayloadKind(rec.Payload) {
	case events.KindEvent:
		r.kind = events.KindEvent
		r.ev.Seq = rec.Seq
		if err := r.ev.Unmarshal(rec.Payload); err != nil {
			return err
		}
	case events.KindDecision:
		r.kind = events.KindDecision
		r.dec = &events.Decision{Seq: rec.Seq}
		if err := r.dec.Unmarshal(rec.Payload); err != nil {
			return err
		}
	default:
		return errors.New("unknown record kind")
	}
	r.day = dayOf(r.time())
	return nil
}

func (s *Shipper) updateLag(recs []events.Record) {
	if len(recs) == 0 {
		return
	}
	// The first record of a read is the oldest not yet shipped.
	var e events.Event
	if events.PayloadKind(recs[0].Payload) == events.KindEvent && e.Unmarshal(recs[0].Payload) == nil {
		shipperLag.Store(int64(s.cfg.Now().Sub(e.Time).Seconds()))
	}
}

// shipPending inserts the pending batch, bisecting it when ClickHouse
// rejects it as invalid. It returns the first error that is not about the
// data; the caller backs off and calls again.
func (s *Shipper) shipPending(ctx context.Context) error {
	for len(s.pending) > 0 {
		if s.uncertain {
			if err := s.resolve(ctx); err != nil {
				return err
			}
			continue
		}
		n := len(s.pending)
		if s.tryLen > 0 && s.tryLen < n {
			n = s.tryLen
		}
		first := s.pending[0].seq
		err := s.insert(ctx, s.pending[:n])
		if err == nil {
			if err := s.ack(&s.pending[n-1]); err != nil {
				return err
			}
			s.popPending(n)
			s.tryLen = 0
			continue
		}
		// Whatever failed, what landed is now unknown.
		s.uncertain = true
		if classify(err) != errKindInvalid {
			return err
		}
		errInvalid.Inc()
		s.addStats(func(st *Stats) { st.Failures++ })
		if err := s.resolve(ctx); err != nil {
			return err
		}
		if len(s.pending) == 0 || s.pending[0].seq != first {
			s.tryLen = 0 // part of it had landed after all: start over
			continue
		}
		if n == 1 {
			if err := s.dl.writeRow(&s.pending[0], err); err != nil {
				return err
			}
			deadLettered.Inc()
			s.addStats(func(st *Stats) { st.DeadLettered++ })
			if err := s.ack(&s.pending[0]); err != nil {
				return err
			}
			s.popPending(1)
			s.tryLen = 0
			continue
		}
		s.tryLen = n / 2
	}
	s.pending = s.pending[:0]
	return nil
}

func (s *Shipper) popPending(n int) {
	for i := 0; i < n; i++ {
		s.pending[i] = row{}
	}
	s.pending = s.pending[n:]
	if len(s.pending) == 0 {
		s.pending = s.pending[:0:cap(s.pending)]
	}
}

// insert sends rows: their decisions first, then their events (the
// commit point checked by resolve). Each statement is one block of one
// partition, so it lands atomically.
func (s *Shipper) insert(ctx context.Context, rows []row) error {
	c := &s.cols
	c.reset()
	for i := range rows {
		switch r := &rows[i]; r.kind {
		case events.KindEvent:
			c.addEvent(&r.ev)
		case events.KindDecision:
			c.addDecision(r.dec)
		}
	}
	if c.nDec > 0 {
		if err := s.send(ctx, "INSERT INTO "+quoteIdent(s.cfg.Database)+".decisions "+decisionColumnList, c.decisionColumns(), rows[0].seq); err != nil {
			return err
		}
		shippedDecisions.Add(c.nDec)
	}
	if c.nEv > 0 {
		if err := s.send(ctx, "INSERT INTO "+quoteIdent(s.cfg.Database)+".events "+eventColumnList, c.eventColumns(), rows[0].seq); err != nil {
			return err
		}
		shippedEvents.Add(c.nEv)
	}
	s.addStats(func(st *Stats) {
		st.Events += int64(c.nEv)
		st.Decisions += int64(c.nDec)
		st.Inserts++
	})
	return nil
}

// send runs one batch insert with a query id carrying this shipper's
// prefix, so resolve can wait for an orphaned insert to finish.
func (s *Shipper) send(ctx context.Context, query string, cols []any, firstSeq uint64) error {
	s.attempt++
	ctx, cancel := context.WithTimeout(ctx, s.cfg.InsertTimeout)
	defer cancel()
	qid := fmt.Sprintf("%s%d-%d", s.queryPrefix, firstSeq, s.attempt)
	ctx = chgo.Context(ctx, chgo.WithQueryID(qid))
	b, err := s.conn.PrepareBatch(ctx, query)
	if err != nil {
		return err
	}
	for i, col := range cols {
		if err := b.Column(i).Append(col); err != nil {
			_ = b.Abort()
			return fmt.Errorf("%w: column %d: %v", errClientColumn, i, err)
		}
	}
	if err := b.Send(); err != nil {
		return err
	}
	shippedBatches.Inc()
	return nil
}
