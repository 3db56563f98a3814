package events

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
)

// LogConfig configures a Log. Only Dir is required.
type LogConfig struct {
	// Dir holds the segment files and the acked-position file, typically
	// <data-dir>/events. It is created if missing.
	Dir string
	// SegmentBytes is the size at which the log rolls to a new segment
	// file. Default 64 MiB. A segment is deleted once every record in it is
	// acknowledged (Ack).
	SegmentBytes int64
	// MaxBytes bounds the disk and memory the log may use: segment files
	// not yet acknowledged plus appended bytes not yet written. Past it
	// Append fails with ErrLogFull (counted in
	// adserver_eventlog_full_total) and the server keeps serving.
	// Default 1 GiB.
	MaxBytes int64
	// MaxBuffered bounds the bytes appended but not yet written to disk
	// (the disk is slow or failing); past it Append fails with
	// ErrLogBacklog. Default 32 MiB.
	MaxBuffered int64
	// SyncInterval is the group-commit period: appended records are
	// written and fsynced together at most this long after Append returns.
	// Default 100ms.
	SyncInterval time.Duration
	// Now seeds sequence numbers (see Log). Default time.Now.
	Now func() time.Time
}

// Default log settings.
const (
	DefaultSegmentBytes = 64 << 20
	DefaultLogMaxBytes  = 1 << 30
	DefaultMaxBuffered  = 32 << 20
	DefaultSyncInterval = 100 * time.Millisecond
)

// Errors returned by Log.Append.
var (
	ErrLogFull     = errors.New("event log is full (MaxBytes reached; is the shipper down?)")
	ErrLogBacklog  = errors.New("event log backlog: appended data is not reaching the disk")
	ErrLogClosed   = errors.New("event log is closed")
	ErrRecordLarge = errors.New("event log record too large")
)

// Pos is a position in the log: Off bytes into segment Seg. Seq is the
// sequence number of the last record before the position (0 if none).
type Pos struct {
	Seg uint64
	Off int64
	Seq uint64
}

// Less reports whether p is before q.
func (p Pos) Less(q Pos) bool {
	return p.Seg < q.Seg || p.Seg == q.Seg && p.Off < q.Off
}

// Record framing: len(4, LE payload length) | crc(4, LE CRC32C of payload
// then seq) | seq(8, LE) | payload.
const (
	hdrLen    = 16
	MaxRecord = 1 << 20 // largest payload Append accepts
	kickBytes = 1 << 20 // pending bytes that trigger an early write

	// Flushed chunk buffers are kept for reuse: at most maxSpares of at
	// most maxSpareBytes each.
	maxSpares     = 4
	maxSpareBytes = 16 << 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	logBytesTotal    atomic.Int64 // across open logs: disk + pending
	logAppended      = metrics.NewCounter(`adserver_eventlog_appended_records_total`)
	logAppendedBytes = metrics.NewCounter(`adserver_eventlog_appended_bytes_total`)
	logFull          = metrics.NewCounter(`adserver_eventlog_full_total`)
	logBacklog       = metrics.NewCounter(`adserver_eventlog_backlog_total`)
	logWriteErrors   = metrics.NewCounter(`adserver_eventlog_write_errors_total`)
	logSyncErrors    = metrics.NewCounter(`adserver_eventlog_sync_errors_total`)
	logFsyncs        = metrics.NewCounter(`adserver_eventlog_fsyncs_total`)
	logSegDeleted    = metrics.NewCounter(`adserver_eventlog_segments_deleted_total`)
	logCorrupt       = metrics.NewCounter(`adserver_eventlog_corrupt_records_total`)
	logCorruptBytes  = metrics.NewCounter(`adserver_eventlog_corrupt_bytes_total`)
	logTornTails     = metrics.NewCounter(`adserver_eventlog_torn_tails_total`)
	logTornBytes     = metrics.NewCounter(`adserver_eventlog_torn_bytes_total`)
	_                = metrics.NewGauge(`adserver_eventlog_bytes`, func() float64 { return float64(logBytesTotal.Load()) })
)

// Log is a durable, segmented, append-only record log with group commit.
//
// Append copies a record into memory under a short mutex and returns; a
// background goroutine writes and fsyncs every SyncInterval. Readers
// (NewReader) see only fsynced records. Every record gets a sequence
// number that increases by one per record and, across restarts, never
// goes back: on Open the next number is max(last in log, acked, Now() in
// Unix nanoseconds), so even a wiped log directory continues above what an
// earlier incarnation shipped (assuming fewer than 1e9 records/s and a
// clock that does not jump back). The ClickHouse shipper relies on this.
type Log struct {
	cfg LogConfig

	mu           sync.Mutex
	closed       bool
	seq          uint64 // last assigned, or the seed after Open
	lastRec      uint64 // seq of the last record appended or recovered
	tailSeg      uint64 // segment receiving the next record
	tailOff      int64  // its logical size including pending bytes
	pending      []chunk
	spare        [][]byte
	pendingBytes int64
	diskBytes    int64
	durable      Pos           // everything before it is fsynced
	durableCh    chan struct{} // closed and replaced when durable advances
	lastErr      error

	flushMu sync.Mutex // serializes flushes; guards the fields below
	f       *os.File
	fSeg    uint64
	fSize   int64
	written Pos // everything before it is written (maybe not synced)

	ackMu sync.Mutex
	acked Pos

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup
}

// chunk is a run of pending records for one segment.
type chunk struct {
	seg     uint64
	data    []byte
	endOff  int64  // segment offset after the last record in data
	lastSeq uint64 // seq of the last record in data
}

// OpenLog opens (or creates) the log in cfg.Dir, recovering from a crash:
// the torn tail of the last segment is truncated (counted in
// adserver_eventlog_torn_tails_total) and writing resumes in a new segment.
func OpenLog(cfg LogConfig) (*Log, error) {
	if cfg.Dir == "" {
		return nil, errors.New("event log: Dir is required")
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = DefaultSegmentBytes
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = DefaultLogMaxBytes
	}
	if cfg.MaxBuffered <= 0 {
		cfg.MaxBuffered = DefaultMaxBuffered
	}
	if cfg.SyncInterval <= 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("event log: cannot create %q: %w", cfg.Dir, err)
	}
	l := &Log{cfg: cfg, durableCh: make(chan struct{}), kick: make(chan struct{}, 1), stop: make(chan struct{})}
	if err := l.recover(); err != nil {
		return nil, err
	}
	logBytesTotal.Add(l.diskBytes)
	l.wg.Add(1)
	go l.flusher()
	return l, nil
}

// Append adds one record and returns its sequence number. It returns once
// the record is buffered in memory; use WaitDurable or Sync to wait for
// the disk. payload is copied and may be reused at once.
func (l *Log) Append(payload []byte) (uint64, error) {
	if len(payload) == 0 || len(payload) > MaxRecord {
		return 0, ErrRecordLarge
	}
	crc := crc32.Checksum(payload, castagnoli)
	n := int64(hdrLen + len(payload))
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, ErrLogClosed
	}
	if l.pendingBytes+n > l.cfg.MaxBuffered {
		l.mu.Unlock()
		logBacklog.Inc()
		return 0, ErrLogBacklog
	}
	if l.diskBytes+l.pendingBytes+n > l.cfg.MaxBytes {
		l.mu.Unlock()
		logFull.Inc()
		return 0, ErrLogFull
	}
	if l.tailOff > 0 && l.tailOff+n > l.cfg.SegmentBytes {
		l.tailSeg++
		l.tailOff = 0
	}
	l.seq++
	seq := l.seq
	l.lastRec = seq
	c := l.tailChunk()
	off := len(c.data)
	c.data = append(c.data, make([]byte, hdrLen)...) // no allocation when there is room
	hdr := c.data[off : off+hdrLen]
	putLE32(hdr[0:], uint32(len(payload)))
	putLE64(hdr[8:], seq)
	putLE32(hdr[4:], crc32.Update(crc, castagnoli, hdr[8:16]))
	c.data = append(c.data, payload...)
	l.tailOff += n
	c.endOff, c.lastSeq = l.tailOff, seq
	l.pendingBytes += n
	kick := l.pendingBytes >= kickBytes
	l.mu.Unlock()

	logBytesTotal.Add(n)
	logAppended.Inc()
	logAppendedBytes.Add(int(n))
	if kick {
		select {
		case l.kick <- struct{}{}:
		default:
		}
	}
	return seq, nil
}

// tailChunk returns the pending chunk for l.tailSeg. l.mu is held.
func (l *Log) tailChunk() *chunk {
	if n := len(l.pending); n > 0 && l.pending[n-1].seg == l.tailSeg {
		return &l.pending[n-1]
	}
	var buf []byte
	if n := len(l.spare); n > 0 {
		buf, l.spare = l.spare[n-1][:0], l.spare[:n-1]
	}
	l.pending = append(l.pending, chunk{seg: l.tailSeg, data: buf})
	return &l.pending[len(l.pending)-1]
}

// Sync writes and fsyncs everything appended so far, then returns.
func (l *Log) Sync() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	return l.flushLocked(true)
}

// WaitDurable blocks until the record with sequence number seq (and all
// before it) is fsynced, or ctx is done (returning ctx.Err()).
func (l *Log) WaitDurable(ctx context.Context, seq uint64) error {
	for {
		l.mu.Lock()
		d, ch := l.durable, l.durableCh
		l.mu.Unlock()
		if d.Seq >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Durable returns the position up to which the log is fsynced and a
// channel that is closed when it advances.
func (l *Log) Durable() (Pos, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable, l.durableCh
}

// LastSeq returns the sequence number of the last record appended (or
// found at Open), 0 for an empty log: wait for it with WaitDurable, or
// for its delivery with the shipper's WaitShipped.
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastRec
}

// Err returns the last write or fsync error, nil once a flush succeeds.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastErr
}

// Dir returns the log directory.
func (l *Log) Dir() string { return l.cfg.Dir }

// Close writes and fsyncs what is pending and stops the log. Appends
// after Close fail with ErrLogClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()
	l.flushMu.Lock()
	defer l.flushMu.Unlock()
	err := l.flushLocked(true)
	if l.f != nil {
		if cerr := l.f.Close(); err == nil {
			err = cerr
		}
		l.f = nil
	}
	l.mu.Lock()
	logBytesTotal.Add(-(l.diskBytes + l.pendingBytes))
	l.mu.Unlock()
	return err
}

func (l *Log) flusher() {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.flushMu.Lock()
			_ = l.flushLocked(true)
			l.flushMu.Unlock()
		case <-l.kick:
			l.flushMu.Lock()
			_ = l.flushLocked(false)
			l.flushMu.Unlock()
		}
	}
}

// flushLocked writes the pending chunks and, if sync is set, fsyncs and
// advances the durable position. l.flushMu is held. On a write error the
// unwritten chunks go back to the front of the queue and are retried on
// the next flush.
func (l *Log) flushLocked(sync bool) error {
	l.mu.Lock()
	chunks := l.pending
	l.pending = nil
	l.mu.Unlock()

	var err error
	done := 0
	var written int64
	for i := range chunks {
		c := &chunks[i]
		if err = l.writeChunk(c); err != nil {
			logWriteErrors.Inc()
			break
		}
		written += int64(len(c.data))
		l.written = Pos{Seg: c.seg, Off: c.endOff, Seq: c.lastSeq}
		done++
	}
	if err == nil && sync && l.f != nil && l.durableBehind() {
		logFsyncs.Inc()
		if err = l.f.Sync(); err != nil {
			logSyncErrors.Inc()
		}
	}

	l.mu.Lock()
	if done < len(chunks) {
		l.pending = append(chunks[done:len(chunks):len(chunks)], l.pending...)
	}
	for i := 0; i < done; i++ {
		if cap(chunks[i].data) <= maxSpareBytes && len(l.spare) < maxSpares {
			l.spare = append(l.spare, chunks[i].data[:0])
		}
	}
	l.pendingBytes -= written
	l.diskBytes += written
	if err == nil && sync && l.durable.Less(l.written) {
		l.durable = l.written
		close(l.durableCh)
		l.durableCh = make(chan struct{})
	}
	if err != nil {
		l.lastErr = err
	} else if sync {
		l.lastErr = nil
	}
	l.mu.Unlock()
	return err
}

func (l *Log) durableBehind() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.durable.Less(l.written)
}

// writeChunk appends c to its segment file, switching files when c starts
// a new segment (the previous one is fsynced and closed first).
func (l *Log) writeChunk(c *chunk) error {
	if l.f == nil || l.fSeg != c.seg {
		if l.f != nil {
			logFsyncs.Inc()
			if err := l.f.Sync(); err != nil {
				logSyncErrors.Inc()
				return fmt.Errorf("event log: cannot sync segment %d: %w", l.fSeg, err)
			}
			// The closed segment is complete and synced: readers may read
			// it to the end.
			l.mu.Lock()
			if l.durable.Less(l.written) {
				l.durable = l.written
				close(l.durableCh)
				l.durableCh = make(chan struct{})
			}
			l.mu.Unlock()
			_ = l.f.Close()
			l.f = nil
		}
		f, err := os.OpenFile(segPath(l.cfg.Dir, c.seg), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return fmt.Errorf("event log: cannot create segment: %w", err)
		}
		st, err := f.Stat()
		if err != nil {
			f.Close()
			return fmt.Errorf("event log: cannot stat segment: %w", err)
		}
		syncDir(l.cfg.Dir)
		l.f, l.fSeg, l.fSize = f, c.seg, st.Size()
	}
	start := c.endOff - int64(len(c.data))
	if l.fSize != start {
		// A previous partial write left bytes behind; cut them.
		if err := l.f.Truncate(start); err != nil {
			return fmt.Errorf("event log: cannot truncate segment %d: %w", c.seg, err)
		}
		l.fSize = start
	}
	n, err := l.f.Write(c.data)
	l.fSize += int64(n)
	if err != nil {
		return fmt.Errorf("event log: cannot write segment %d: %w", c.seg, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

func segPath(dir string, seg uint64) string {
	return filepath.Join(dir, fmt.Sprintf("%020d.seg", seg))
}

func putLE32(b []byte, v uint32) {
	_ = b[3]
	b[0], b[1], b[2], b[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
}

func putLE64(b []byte, v uint64) {
	putLE32(b, uint32(v))
	putLE32(b[4:], uint32(v>>32))
}

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func le64b(b []byte) uint64 { return uint64(le32(b)) | uint64(le32(b[4:]))<<32 }
