package events

import (
	"fmt"
	"os"
)

// recover loads the acked position, deletes fully acknowledged segments,
// truncates a torn tail and positions the writer after everything.
func (l *Log) recover() error {
	acked, err := readAcked(l.cfg.Dir)
	if err != nil {
		return err
	}
	l.acked = acked
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return err
	}
	lastSeq := acked.Seq
	var keep []uint64
	for _, s := range segs {
		if s < acked.Seg {
			if err := os.Remove(segPath(l.cfg.Dir, s)); err == nil {
				logSegDeleted.Inc()
			}
			continue
		}
		keep = append(keep, s)
	}
	for _, s := range keep {
		st, err := os.Stat(segPath(l.cfg.Dir, s))
		if err != nil {
			return fmt.Errorf("event log: %w", err)
		}
		l.diskBytes += st.Size()
	}
	if n := len(keep); n > 0 {
		last := keep[n-1]
		seq, cut, err := repairTail(segPath(l.cfg.Dir, last))
		if err != nil {
			return err
		}
		l.diskBytes -= cut
		// An empty last segment: the last record is in an earlier one.
		for i := n - 2; seq == 0 && i >= 0; i-- {
			if seq, err = lastSeqIn(segPath(l.cfg.Dir, keep[i])); err != nil {
				return err
			}
		}
		lastSeq = max(lastSeq, seq)
		l.tailSeg = last + 1
	} else {
		l.tailSeg = max(acked.Seg+1, 1)
	}
	l.lastRec = lastSeq
	if ns := l.cfg.Now().UnixNano(); ns > 0 {
		lastSeq = max(lastSeq, uint64(ns))
	}
	l.seq = lastSeq
	l.durable = Pos{Seg: l.tailSeg, Seq: l.lastRec}
	l.written = l.durable
	return nil
}

// lastSeqIn returns the seq of the last valid record in a segment.
func lastSeqIn(path string) (uint64, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("event log: cannot read %q: %w", path, err)
	}
	var last uint64
	sc := scanner{buf: data, atLimit: true}
	for {
		rec, ok := sc.next()
		if !ok {
			return last, nil
		}
		last = rec.seq
	}
}

// repairTail truncates the torn tail of a segment: everything after its
// last valid record. It returns the last valid seq and the bytes cut.
func repairTail(path string) (lastSeq uint64, cut int64, err error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("event log: cannot read %q: %w", path, err)
	}
	end := int64(0)
	sc := scanner{buf: data, atLimit: true}
	for {
		rec, ok := sc.next()
		if !ok {
			break
		}
		lastSeq = rec.seq
		end = int64(sc.i)
	}
	if cut = int64(len(data)) - end; cut > 0 {
		if err := os.Truncate(path, end); err != nil {
			return 0, 0, fmt.Errorf("event log: cannot truncate torn tail of %q: %w", path, err)
		}
		logTornTails.Inc()
		logTornBytes.Add(int(cut))
	}
	return lastSeq, cut, nil
}
