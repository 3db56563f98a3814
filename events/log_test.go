package events

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"sync"
	"testing"
	"time"
)

func openTestLog(t testing.TB, dir string, mod func(*LogConfig)) *Log {
	t.Helper()
	cfg := LogConfig{Dir: dir, SyncInterval: 5 * time.Millisecond}
	if mod != nil {
		mod(&cfg)
	}
	l, err := OpenLog(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func payloadN(i int) []byte {
	b := make([]byte, 8+i%50)
	binary.LittleEndian.PutUint64(b, uint64(i))
	for j := 8; j < len(b); j++ {
		b[j] = byte(i + j)
	}
	return b
}

func payloadIndex(t testing.TB, p []byte) int {
	t.Helper()
	if len(p) < 8 {
		t.Fatalf("short payload %x", p)
	}
	return int(binary.LittleEndian.Uint64(p))
}

// readAll reads every durable record from r.
func readAll(t testing.TB, r *Reader) []Record {
	t.Helper()
	var out []Record
	for {
		recs, err := r.Read(nil, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, rec := range recs {
			rec.Payload = append([]byte(nil), rec.Payload...)
			out = append(out, rec)
		}
	}
}

func TestLogAppendRead(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	defer l.Close()
	var seqs []uint64
	for i := 0; i < 1000; i++ {
		s, err := l.Append(payloadN(i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, s)
	}
	if err := l.WaitDurable(context.Background(), seqs[len(seqs)-1]); err != nil {
		t.Fatal(err)
	}
	recs := readAll(t, l.NewReader(l.Acked()))
	if len(recs) != 1000 {
		t.Fatalf("read %d records", len(recs))
	}
	for i, rec := range recs {
		if rec.Seq != seqs[i] || payloadIndex(t, rec.Payload) != i || string(rec.Payload) != string(payloadN(i)) {
			t.Fatalf("record %d: seq %d payload %x", i, rec.Seq, rec.Payload)
		}
		if i > 0 && rec.Seq != recs[i-1].Seq+1 {
			t.Fatalf("seq gap at %d", i)
		}
	}
	if _, err := l.Append(nil); !errors.Is(err, ErrRecordLarge) {
		t.Fatalf("empty append: %v", err)
	}
}

func TestLogSegmentsAckAndReopen(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, func(c *LogConfig) { c.SegmentBytes = 4096 })
	for i := 0; i < 2000; i++ {
		if _, err := l.Append(payloadN(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	segs, _ := listSegments(dir)
	if len(segs) < 10 {
		t.Fatalf("only %d segments", len(segs))
	}
	r := l.NewReader(l.Acked())
	recs := readAll(t, r)
	if len(recs) != 2000 {
		t.Fatalf("read %d", len(recs))
	}
	// Ack the first 1500: the segments before it go away.
	if err := l.Ack(recs[1499].End); err != nil {
		t.Fatal(err)
	}
	after, _ := listSegments(dir)
	if len(after) >= len(segs) || after[0] != recs[1499].End.Seg {
		t.Fatalf("segments %v -> %v, ack at %+v", segs, after, recs[1499].End)
	}
	lastSeq := l.LastSeq()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append([]byte("x")); !errors.Is(err, ErrLogClosed) {
		t.Fatalf("append after close: %v", err)
	}

	l2 := openTestLog(t, dir, func(c *LogConfig) { c.SegmentBytes = 4096; c.Now = func() time.Time { return time.Unix(0, 1) } })
	defer l2.Close()
	if l2.Acked() != recs[1499].End {
		t.Fatalf("acked %+v, want %+v", l2.Acked(), recs[1499].End)
	}
	s, err := l2.Append(payloadN(2000))
	if err != nil {
		t.Fatal(err)
	}
	if s != lastSeq+1 {
		t.Fatalf("seq after reopen %d, want %d", s, lastSeq+1)
	}
	l2.Sync()
	rest := readAll(t, l2.NewReader(l2.Acked()))
	if len(rest) != 501 || payloadIndex(t, rest[0].Payload) != 1500 || payloadIndex(t, rest[500].Payload) != 2000 {
		t.Fatalf("after reopen read %d records", len(rest))
	}
}

func TestLogSeqSurvivesWipe(t *testing.T) {
	l := openTestLog(t, t.TempDir(), nil)
	s1, _ := l.Append([]byte("a"))
	l.Close()
	l2 := openTestLog(t, t.TempDir(), nil) // fresh directory, same node
	defer l2.Close()
	s2, _ := l2.Append([]byte("b"))
	if s2 <= s1 {
		t.Fatalf("seq went back after wipe: %d then %d", s1, s2)
	}
}

func segmentBytes(t testing.TB, dir string) (string, []byte) {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil || len(segs) == 0 {
		t.Fatalf("no segments: %v", err)
	}
	p := segPath(dir, segs[len(segs)-1])
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return p, b
}

func TestLogTornTailAndFlippedByte(t *testing.T) {
	for _, where := range []string{"payload", "length", "crc", "seq"} {
		t.Run(where, func(t *testing.T) {
			dir := t.TempDir()
			l := openTestLog(t, dir, nil)
			var offs []int64
			for i := 0; i < 100; i++ {
				l.Append(payloadN(i))
				l.mu.Lock()
				offs = append(offs, l.tailOff)
				l.mu.Unlock()
			}
			l.Close()
			path, data := segmentBytes(t, dir)
			// Flip a byte inside record 40 (it starts where 39 ends) and tear record 99.
			start := offs[39]
			switch where {
			case "payload":
				data[start+hdrLen+3] ^= 0x40
			case "length":
				data[start+1] ^= 0x01
			case "crc":
				data[start+5] ^= 0x80
			case "seq":
				data[start+9] ^= 0x02
			}
			data = data[:offs[98]+(offs[99]-offs[98])/2]
			if err := os.WriteFile(path, data, 0o644); err != nil {
				t.Fatal(err)
			}
			torn0, corrupt0 := logTornTails.Get(), logCorrupt.Get()
			l2 := openTestLog(t, dir, nil)
			defer l2.Close()
			if logTornTails.Get() != torn0+1 {
				t.Fatal("torn tail not counted")
			}
			if st, _ := os.Stat(path); st.Size() != offs[98] {
				t.Fatalf("torn tail not truncated: size %d, want %d", st.Size(), offs[98])
			}
			l2.Append(payloadN(100))
			l2.Sync()
			r := l2.NewReader(l2.Acked())
			recs := readAll(t, r)
			var got []int
			for _, rec := range recs {
				got = append(got, payloadIndex(t, rec.Payload))
			}
			if len(got) != 99 {
				t.Fatalf("read %d records: %v", len(got), got)
			}
			for i, want := 0, 0; i < len(got); i, want = i+1, want+1 {
				if want == 40 || want == 99 {
					want++
				}
				if got[i] != want {
					t.Fatalf("record %d is %d, want %d (%v)", i, got[i], want, got)
				}
			}
			if n, _ := r.Corrupt(); n != 1 || logCorrupt.Get() != corrupt0+1 {
				t.Fatalf("corrupt count %d (metric +%d), want 1", n, logCorrupt.Get()-corrupt0)
			}
		})
	}
}

func TestLogGarbageSegment(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, nil)
	for i := 0; i < 10; i++ {
		l.Append(payloadN(i))
	}
	l.Close()
	path, data := segmentBytes(t, dir)
	// Overwrite the middle with zeros and noise.
	for i := 100; i < 400 && i < len(data); i++ {
		data[i] = byte(i * 7)
	}
	os.WriteFile(path, data, 0o644)
	l2 := openTestLog(t, dir, nil)
	defer l2.Close()
	recs := readAll(t, l2.NewReader(l2.Acked()))
	if len(recs) == 0 || len(recs) >= 10 {
		t.Fatalf("read %d records", len(recs))
	}
}

func TestLogMaxBytes(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, func(c *LogConfig) { c.MaxBytes = 64 << 10; c.SegmentBytes = 8 << 10 })
	defer l.Close()
	p := make([]byte, 1000)
	n := 0
	var err error
	for ; n < 1000; n++ {
		if _, err = l.Append(p); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrLogFull) || n < 50 || n > 64 {
		t.Fatalf("after %d appends: %v", n, err)
	}
	l.Sync()
	recs := readAll(t, l.NewReader(l.Acked()))
	if len(recs) != n {
		t.Fatalf("read %d of %d", len(recs), n)
	}
	if err := l.Ack(recs[len(recs)-1].End); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Append(p); err != nil {
		t.Fatalf("append after ack: %v", err)
	}
}

func TestLogWaitDurable(t *testing.T) {
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.SyncInterval = 20 * time.Millisecond })
	defer l.Close()
	s, _ := l.Append([]byte("x"))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := l.WaitDurable(ctx, s); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("durable after %v", d)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := l.WaitDurable(ctx2, s+100); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDurable future seq: %v", err)
	}
}

func TestLogCorruptAckedFile(t *testing.T) {
	dir := t.TempDir()
	l := openTestLog(t, dir, nil)
	for i := 0; i < 10; i++ {
		l.Append(payloadN(i))
	}
	l.Sync()
	recs := readAll(t, l.NewReader(l.Acked()))
	l.Ack(recs[4].End)
	l.Close()
	os.WriteFile(dir+"/acked", []byte("garbage"), 0o644)
	l2 := openTestLog(t, dir, nil)
	defer l2.Close()
	if l2.Acked() != (Pos{}) {
		t.Fatalf("acked %+v", l2.Acked())
	}
	if n := len(readAll(t, l2.NewReader(l2.Acked()))); n != 10 {
		t.Fatalf("re-read %d records", n)
	}
}

func TestLogConcurrent(t *testing.T) {
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.SegmentBytes = 16 << 10 })
	defer l.Close()
	const writers, per = 8, 2000
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < per; i++ {
				if _, err := l.Append(payloadN(w*per + i)); err != nil {
					t.Error(err)
					return
				}
			}
		}(w)
	}
	seen := make(map[int]bool)
	r := l.NewReader(l.Acked())
	done := make(chan struct{})
	go func() { wg.Wait(); l.Sync(); close(done) }()
	var last uint64
	for finished := false; ; {
		select {
		case <-done:
			finished = true
		default:
		}
		recs, err := r.Read(nil, 500)
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range recs {
			if rec.Seq <= last {
				t.Fatalf("seq %d after %d", rec.Seq, last)
			}
			last = rec.Seq
			i := payloadIndex(t, rec.Payload)
			if seen[i] {
				t.Fatalf("duplicate %d", i)
			}
			seen[i] = true
		}
		if len(recs) > 0 && len(recs)%100 == 0 {
			l.Ack(recs[len(recs)-1].End)
		}
		if finished && len(recs) == 0 {
			break
		}
		if len(recs) == 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			r.Wait(ctx)
			cancel()
		}
	}
	if len(seen) != writers*per {
		t.Fatalf("read %d of %d", len(seen), writers*per)
	}
}
