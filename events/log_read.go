package events

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// Record is one log record as read back by a Reader.
type Record struct {
	Seq uint64
	// Payload aliases the Reader's buffer: valid until the next Read.
	Payload []byte
	// End is the position just after this record. Log.Ack(End)
	// acknowledges this record and everything before it.
	End Pos
}

const readWindow = 4 << 20

// Reader reads fsynced records in order. It is not safe for concurrent
// use. Corrupt records are skipped and counted
// (adserver_eventlog_corrupt_records_total), never returned.
type Reader struct {
	l   *Log
	pos Pos
	f   *os.File
	sc  scanner
	// base is the segment offset of sc.buf[0].
	base         int64
	corrupt      int64
	corruptBytes int64
	// limit and sealed are what the last fill read up to; a change of
	// either (durability advanced) invalidates sc.atLimit.
	limit  int64
	sealed bool
}

// NewReader returns a Reader positioned at from, normally Acked().
func (l *Log) NewReader(from Pos) *Reader {
	r := &Reader{l: l, pos: from, base: from.Off}
	r.sc.lastSeq = from.Seq
	return r
}

// Pos returns the position of the next record the Reader will return.
func (r *Reader) Pos() Pos { return r.pos }

// Corrupt returns how many corrupt regions (records) and bytes this
// Reader skipped.
func (r *Reader) Corrupt() (records, bytes int64) { return r.corrupt, r.corruptBytes }

// Close releases the open segment file.
func (r *Reader) Close() error {
	if r.f != nil {
		err := r.f.Close()
		r.f = nil
		return err
	}
	return nil
}

// Wait blocks until a record past the Reader's position may be readable
// or ctx is done.
func (r *Reader) Wait(ctx context.Context) error {
	d, ch := r.l.Durable()
	if r.pos.Less(d) {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Read appends up to max fsynced records to dst and returns it; it does
// not block and returns dst unchanged when nothing new is durable. The
// payloads returned by one call stay valid until the next call.
func (r *Reader) Read(dst []Record, max int) ([]Record, error) {
	start := len(dst)
	r.compact()
	for len(dst)-start < max {
		d, _ := r.l.Durable()
		if !r.pos.Less(d) {
			return dst, nil
		}
		sealed := r.pos.Seg < d.Seg
		limit := d.Off
		if r.f == nil {
			moved, err := r.open(sealed, d)
			if err != nil || r.f == nil && !moved {
				return dst, err
			}
			if moved {
				continue
			}
		}
		if sealed != r.sealed || !sealed && limit != r.limit {
			r.sc.atLimit = false
		}
		rec, ok := r.sc.next()
		if ok {
			r.pos = Pos{Seg: r.pos.Seg, Off: r.base + int64(r.sc.i), Seq: rec.seq}
			dst = append(dst, Record{Seq: rec.seq, Payload: rec.payload, End: r.pos})
			continue
		}
		if !r.sc.atLimit {
			if len(dst) > start {
				return dst, nil // refilling would move returned payloads
			}
			if err := r.fill(sealed, limit); err != nil {
				return dst, err
			}
			continue
		}
		// Everything up to the limit is consumed; count a bad tail region.
		r.countCorrupt(true)
		if !sealed {
			r.pos.Off = r.base + int64(len(r.sc.buf))
			return dst, nil
		}
		r.nextSegment(d)
	}
	return dst, nil
}

// open opens the segment at r.pos. A missing sealed segment moves the
// Reader to the next one (moved); a missing current one leaves r.f nil.
func (r *Reader) open(sealed bool, d Pos) (moved bool, err error) {
	f, err := os.Open(segPath(r.l.cfg.Dir, r.pos.Seg))
	if errors.Is(err, os.ErrNotExist) {
		if sealed {
			r.nextSegment(d)
			return true, nil
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("event log reader: %w", err)
	}
	r.f = f
	r.base = r.pos.Off
	r.sc = scanner{buf: r.sc.buf[:0], lastSeq: r.pos.Seq}
	r.sealed, r.limit = false, -1
	return false, nil
}

// nextSegment moves to the first existing segment after the current one
// (or to the durable segment).
func (r *Reader) nextSegment(d Pos) {
	r.countCorrupt(false)
	r.Close()
	next := d.Seg
	if segs, err := listSegments(r.l.cfg.Dir); err == nil {
		for _, s := range segs {
			if s > r.pos.Seg {
				next = min(s, d.Seg)
				break
			}
		}
	}
	r.pos = Pos{Seg: next, Off: 0, Seq: r.pos.Seq}
	r.base = 0
	r.sc = scanner{buf: r.sc.buf[:0], lastSeq: r.pos.Seq}
}

// compact drops consumed bytes from the front of the buffer.
func (r *Reader) compact() {
	sc := &r.sc
	if sc.i == 0 {
		return
	}
	n := copy(sc.buf, sc.buf[sc.i:])
	sc.buf = sc.buf[:n]
	r.base += int64(sc.i)
	sc.i = 0
}

// fill reads more of the current segment, up to limit for the segment
// being written or to EOF for a sealed one.
func (r *Reader) fill(sealed bool, limit int64) error {
	r.compact()
	sc := &r.sc
	if cap(sc.buf) < readWindow {
		nb := make([]byte, len(sc.buf), readWindow)
		copy(nb, sc.buf)
		sc.buf = nb
	}
	r.sealed, r.limit = sealed, limit
	end := r.base + int64(len(sc.buf))
	room := int64(cap(sc.buf) - len(sc.buf))
	if !sealed {
		room = min(room, limit-end)
	}
	if room <= 0 {
		sc.atLimit = true
		return nil
	}
	n, err := r.f.ReadAt(sc.buf[len(sc.buf):int64(len(sc.buf))+room], end)
	sc.buf = sc.buf[:len(sc.buf)+n]
	switch {
	case err == io.EOF || (err == nil && n == 0 && sealed):
		sc.atLimit = true
	case err != nil:
		return fmt.Errorf("event log reader: cannot read segment %d: %w", r.pos.Seg, err)
	default:
		sc.atLimit = !sealed && r.base+int64(len(sc.buf)) >= limit
	}
	return nil
}

func (r *Reader) countCorrupt(final bool) {
	regions, bytes := r.sc.takeBad(final)
	if regions > 0 {
		r.corrupt += int64(regions)
		r.corruptBytes += int64(bytes)
		logCorrupt.Add(regions)
		logCorruptBytes.Add(bytes)
	}
}

// Acked returns the last acknowledged position.
func (l *Log) Acked() Pos {
	l.ackMu.Lock()
	defer l.ackMu.Unlock()
	return l.acked
}

// Ack records that every record before p is delivered: it persists p
// (atomically, fsynced) and deletes the segments wholly before p. Acks
// that do not move forward are ignored.
func (l *Log) Ack(p Pos) error {
	l.ackMu.Lock()
	defer l.ackMu.Unlock()
	if !l.acked.Less(p) {
		return nil
	}
	if err := writeAcked(l.cfg.Dir, p); err != nil {
		return err
	}
	old := l.acked
	l.acked = p
	if old.Seg == p.Seg {
		return nil
	}
	segs, err := listSegments(l.cfg.Dir)
	if err != nil {
		return err
	}
	var freed int64
	for _, s := range segs {
		if s >= p.Seg {
			break
		}
		path := segPath(l.cfg.Dir, s)
		st, err := os.Stat(path)
		if err != nil {
			continue
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("event log: cannot delete shipped segment: %w", err)
		}
		logSegDeleted.Inc()
		freed += st.Size()
	}
	l.mu.Lock()
	l.diskBytes -= freed
	l.mu.Unlock()
	logBytesTotal.Add(-freed)
	return nil
}

const (
	ackedFile  = "acked"
	ackedMagic = "ADSACK01"
	ackedLen   = len(ackedMagic) + 8 + 8 + 8 + 4
)

func writeAcked(dir string, p Pos) error {
	b := make([]byte, 0, ackedLen)
	b = append(b, ackedMagic...)
	var n [8]byte
	putLE64(n[:], p.Seg)
	b = append(b, n[:]...)
	putLE64(n[:], uint64(p.Off))
	b = append(b, n[:]...)
	putLE64(n[:], p.Seq)
	b = append(b, n[:]...)
	putLE32(n[:], crc32.Checksum(b, castagnoli))
	b = append(b, n[:4]...)
	tmp := dir + "/" + ackedFile + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("event log: cannot write acked position: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dir+"/"+ackedFile)
	}
	if err != nil {
		return fmt.Errorf("event log: cannot write acked position: %w", err)
	}
	syncDir(dir)
	return nil
}

// readAcked loads the acked position; a missing or corrupt file means the
// start (the shipper's exactly-once check makes re-reading safe).
func readAcked(dir string) (Pos, error) {
	b, err := os.ReadFile(dir + "/" + ackedFile)
	if errors.Is(err, os.ErrNotExist) {
		return Pos{}, nil
	}
	if err != nil {
		return Pos{}, fmt.Errorf("event log: cannot read acked position: %w", err)
	}
	if len(b) != ackedLen || string(b[:8]) != ackedMagic || crc32.Checksum(b[:ackedLen-4], castagnoli) != le32(b[ackedLen-4:]) {
		logCorrupt.Inc()
		return Pos{}, nil
	}
	return Pos{Seg: le64b(b[8:]), Off: int64(le64b(b[16:])), Seq: le64b(b[24:])}, nil
}

func listSegments(dir string) ([]uint64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("event log: cannot list %q: %w", dir, err)
	}
	var segs []uint64
	for _, e := range ents {
		name, ok := strings.CutSuffix(e.Name(), ".seg")
		if !ok || e.IsDir() {
			continue
		}
		if n, err := strconv.ParseUint(name, 10, 64); err == nil {
			segs = append(segs, n)
		}
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i] < segs[j] })
	return segs, nil
}
