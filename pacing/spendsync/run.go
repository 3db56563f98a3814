package spendsync

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/adserver/adserver/pacing"
	"github.com/segmentio/kafka-go"
)

var errNotReady = errors.New("spendsync: not ready: the topic replay is not done")

// Run replays the topic into the pacer (then marks it ready), consumes
// every partition for as long as ctx lives, and publishes every
// FlushInterval. It retries Kafka errors without end; it returns nil when
// ctx is done, after a last flush bounded by Timeout. Call it once.
func (s *Sync) Run(ctx context.Context) error {
	parts, err := s.discover(ctx)
	if err != nil {
		return nil // ctx done
	}
	s.partitions = parts
	s.produced = make([]atomic.Int64, len(parts))
	s.applied = make([]atomic.Int64, len(parts))
	close(s.started)
	start, end, err := s.offsets(ctx)
	if err != nil {
		return nil
	}
	for i := range parts {
		s.applied[i].Store(start[i])
	}
	var wg sync.WaitGroup
	for i, p := range parts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.consume(ctx, i, p, start[i])
		}()
	}
	defer wg.Wait()
	if err := s.waitApplied(ctx, end); err != nil {
		return nil
	}
	s.local.EndRebuild(s.clock.Now())
	s.isReady.Store(true)
	if s.cfg.flushInterval() < 0 {
		close(s.ready)
		<-ctx.Done()
		return nil
	}
	s.join(ctx)
	close(s.ready)
	t := time.NewTicker(s.cfg.flushInterval())
	defer t.Stop()
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout())
			if err := s.Flush(fctx); err != nil {
				s.log.Warn("spend sync: last flush failed", "err", err)
			}
			cancel()
			return nil
		case <-t.C:
			if err := s.Flush(ctx); err != nil && ctx.Err() == nil && time.Since(lastLog) > 10*time.Second {
				lastLog = time.Now()
				s.log.Warn("spend sync: publish failed; retrying at the next flush", "err", err)
			}
		}
	}
}

// join publishes this node's first heartbeat and waits, for up to the
// produce timeout, until it reads it back, before the Sync reports ready:
// from then on the pacer may take its budget shares from the first
// request instead of a flush or two later (pacing's canRaise). A failure
// is logged and the Sync reports ready anyway: the regular flushes retry.
func (s *Sync) join(ctx context.Context) {
	jctx, cancel := context.WithTimeout(ctx, s.cfg.timeout())
	defer cancel()
	err := s.Flush(jctx)
	if err == nil {
		err = s.waitApplied(jctx, s.ProducedOffsets(nil))
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("spend sync: first heartbeat not read back; budget shares wait for the next flush", "err", err)
	}
}

// discover returns the topic's partitions, retrying until ctx is done.
func (s *Sync) discover(ctx context.Context) ([]int, error) {
	for attempt := 0; ; attempt++ {
		md, err := s.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{s.cfg.topic()}})
		if err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) > 0 {
			parts := make([]int, len(md.Topics[0].Partitions))
			for i, p := range md.Topics[0].Partitions {
				parts[i] = p.ID
			}
			return sortInts(parts), nil
		}
		if err == nil && len(md.Topics) == 1 {
			err = md.Topics[0].Error
		}
		if attempt%10 == 0 {
			s.log.Warn("spend sync: cannot read the topic's partitions; retrying", "topic", s.cfg.topic(), "err", err)
		}
		if !sleep(ctx, time.Second) {
			return nil, ctx.Err()
		}
	}
}

func sortInts(a []int) []int {
	for i := 1; i < len(a); i++ {
		for j := i; j > 0 && a[j] < a[j-1]; j-- {
			a[j], a[j-1] = a[j-1], a[j]
		}
	}
	return a
}

// offsets returns where the replay starts and the end offsets it must
// reach before the pacer is ready, retrying until ctx is done.
func (s *Sync) offsets(ctx context.Context) (start, end []int64, err error) {
	for attempt := 0; ; attempt++ {
		start, end, err = s.listOffsets(ctx)
		if err == nil {
			return start, end, nil
		}
		if attempt%10 == 0 {
			s.log.Warn("spend sync: cannot list offsets; retrying", "err", err)
		}
		if !sleep(ctx, time.Second) {
			return nil, nil, ctx.Err()
		}
	}
}

func (s *Sync) listOffsets(ctx context.Context) (start, end []int64, err error) {
	if end, err = s.listOffsetsAt(ctx, kafka.LastOffset); err != nil {
		return nil, nil, err
	}
	if s.cfg.RebuildFrom > 0 {
		start, err = s.listOffsetsAt(ctx, s.clock.Now().Add(-s.cfg.RebuildFrom).UnixMilli())
	} else {
		start, err = s.listOffsetsAt(ctx, kafka.FirstOffset)
	}
	if err != nil {
		return nil, nil, err
	}
	for i := range start {
		if start[i] < 0 || start[i] > end[i] {
			start[i] = end[i] // no record at or after the time asked
		}
	}
	return start, end, nil
}

// listOffsetsAt asks, for every partition, the offset of a timestamp in
// milliseconds or of kafka.FirstOffset or kafka.LastOffset; -1 when none.
// One request per kind: a broker rejects a partition listed twice.
func (s *Sync) listOffsetsAt(ctx context.Context, ts int64) ([]int64, error) {
	reqs := make([]kafka.OffsetRequest, len(s.partitions))
	for i, p := range s.partitions {
		reqs[i] = kafka.OffsetRequest{Partition: p, Timestamp: ts}
	}
	resp, err := s.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{s.cfg.topic(): reqs}})
	if err != nil {
		return nil, err
	}
	byPart := make(map[int]int64)
	for _, po := range resp.Topics[s.cfg.topic()] {
		if po.Error != nil {
			return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
		}
		// kafka-go files the answer by the timestamp the broker sends back,
		// -1 for both the first and the last offset: take whichever field
		// it filled.
		off := po.LastOffset
		if off < 0 && ts == kafka.FirstOffset {
			off = po.FirstOffset
		}
		for o := range po.Offsets {
			off = o
		}
		byPart[po.Partition] = off
	}
	out := make([]int64, len(s.partitions))
	for i, p := range s.partitions {
		off, ok := byPart[p]
		if !ok {
			return nil, fmt.Errorf("partition %d: no offset in the answer", p)
		}
		out[i] = off
	}
	return out, nil
}

// consume applies partition p's records from offset on until ctx is done.
func (s *Sync) consume(ctx context.Context, i, p int, offset int64) {
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers: s.cfg.Brokers, Topic: s.cfg.topic(), Partition: p,
		MinBytes: 1, MaxBytes: 8 << 20, MaxWait: s.cfg.maxWait(),
		ReadBackoffMin: 50 * time.Millisecond, ReadBackoffMax: time.Second,
	})
	defer r.Close()
	if err := r.SetOffset(offset); err != nil {
		s.log.Error("spend sync: cannot set the start offset", "partition", p, "offset", offset, "err", err)
		return
	}
	var d pacing.Delta
	var lastLog time.Time
	for {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			if time.Since(lastLog) > 10*time.Second {
				lastLog = time.Now()
				s.log.Warn("spend sync: read failed; retrying", "partition", p, "err", err)
			}
			if !sleep(ctx, 100*time.Millisecond) {
				return
			}
			continue
		}
		if err := Decode(m.Value, &d); err != nil {
			s.malformed.Add(1)
			recordsMalformed.Inc()
			if time.Since(lastLog) > 10*time.Second {
				lastLog = time.Now()
				s.log.Warn("spend sync: skipped a malformed record", "partition", p, "offset", m.Offset, "err", err)
			}
		} else {
			s.local.ApplyRemote(&d, s.clock.Now())
			s.appliedN.Add(1)
			recordsApplied.Inc()
		}
		s.applied[i].Store(m.Offset + 1)
		s.notifyMu.Lock()
		close(s.notify)
		s.notify = make(chan struct{})
		s.notifyMu.Unlock()
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// waitApplied blocks until every partition i has applied the records
// before offsets[i], or ctx is done.
func (s *Sync) waitApplied(ctx context.Context, offsets []int64) error {
	for {
		s.notifyMu.Lock()
		ch := s.notify
		s.notifyMu.Unlock()
		done := true
		for i := range offsets {
			if i < len(s.applied) && s.applied[i].Load() < offsets[i] {
				done = false
				break
			}
		}
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WaitApplied blocks until this Sync has applied, in every partition i,
// all records before offsets[i] (as returned by ProducedOffsets of any
// Sync on the topic), or ctx is done. Simulations use it to step nodes in
// lockstep.
func (s *Sync) WaitApplied(ctx context.Context, offsets []int64) error {
	select {
	case <-s.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	return s.waitApplied(ctx, offsets)
}

// ProducedOffsets appends to dst, per partition in the topic's order, the
// offset after the last record this Sync produced (0 if none).
func (s *Sync) ProducedOffsets(dst []int64) []int64 {
	select {
	case <-s.started:
	default:
		return dst
	}
	for i := range s.produced {
		dst = append(dst, s.produced[i].Load())
	}
	return dst
}

// CatchUp blocks until this Sync has applied every record that was on the
// topic when it was called, or ctx is done.
func (s *Sync) CatchUp(ctx context.Context) error {
	select {
	case <-s.started:
	case <-ctx.Done():
		return ctx.Err()
	}
	_, end, err := s.listOffsets(ctx)
	if err != nil {
		return fmt.Errorf("spendsync: cannot list end offsets: %w", err)
	}
	return s.waitApplied(ctx, end)
}

// Flush publishes the pacer's changes since the last successful flush and
// a heartbeat, one produce request per partition (acks=all). Records of a
// partition whose request fails are rebuilt from the pacer's counters at
// the next flush, so nothing is lost. It fails without publishing before
// the replay is done: this node's records must not go back in time.
func (s *Sync) Flush(ctx context.Context) error {
	if !s.isReady.Load() {
		return errNotReady
	}
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.deltas = s.local.AppendDeltas(s.deltas[:0], s.clock.Now())
	for p := range s.byPart {
		s.byPart[p] = s.byPart[p][:0]
	}
	var hash kafka.Hash
	for i := range s.deltas {
		d := &s.deltas[i]
		s.buf = AppendKey(s.buf[:0], d)
		p := hash.Balance(kafka.Message{Key: s.buf}, s.partitions...)
		s.byPart[p] = append(s.byPart[p], *d)
	}
	var errs []error
	for i, p := range s.partitions {
		ds := s.byPart[p]
		if len(ds) == 0 {
			continue
		}
		recs := make([]kafka.Record, len(ds))
		for j := range ds {
			recs[j] = kafka.Record{Key: kafka.NewBytes(AppendKey(nil, &ds[j])),
				Value: kafka.NewBytes(AppendValue(nil, &ds[j])), Time: ds[j].Time}
		}
		resp, err := s.client.Produce(ctx, &kafka.ProduceRequest{Topic: s.cfg.topic(), Partition: p,
			RequiredAcks: kafka.RequireAll, Records: kafka.NewRecordReader(recs...)})
		if err == nil {
			err = resp.Error
		}
		if err != nil {
			s.pubErrors.Add(1)
			publishErrors.Inc()
			errs = append(errs, fmt.Errorf("partition %d: %w", p, err))
			continue
		}
		s.produced[i].Store(resp.BaseOffset + int64(len(ds)))
		s.local.Published(ds)
		s.published.Add(int64(len(ds)))
		recordsPublished.Add(len(ds))
	}
	if len(errs) > 0 {
		return fmt.Errorf("spendsync: cannot publish: %w", errors.Join(errs...))
	}
	return nil
}

// Close releases the Sync's idle connections. Call it after Run returned.
func (s *Sync) Close() { s.transport.CloseIdleConnections() }

var _ Local = (*pacing.Pacer)(nil)
