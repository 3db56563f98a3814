package events

import (
	"testing"
	"time"
)

// benchLogConfig lifts the memory and disk bounds: a tight Append loop
// outruns any disk, and the point here is the cost of Append itself. The
// sustained rate is BenchmarkLogAppendSustained.
func benchLogConfig(c *LogConfig) {
	c.SyncInterval = 100 * time.Millisecond
	c.MaxBytes = 1 << 40
	c.MaxBuffered = 1 << 40
}

func BenchmarkLogAppend(b *testing.B) {
	e := sampleEvent()
	payload := e.AppendBinary(nil)
	l := openTestLog(b, b.TempDir(), benchLogConfig)
	defer l.Close()
	b.SetBytes(int64(len(payload) + hdrLen))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(payload); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkLogAppendParallel(b *testing.B) {
	e := sampleEvent()
	payload := e.AppendBinary(nil)
	l := openTestLog(b, b.TempDir(), benchLogConfig)
	defer l.Close()
	b.SetBytes(int64(len(payload) + hdrLen))
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkLogAppendSustained includes the disk: every Append that meets
// the default backlog bound waits for the flusher, and the timer runs until
// the last record is fsynced.
func BenchmarkLogAppendSustained(b *testing.B) {
	e := sampleEvent()
	payload := e.AppendBinary(nil)
	l := openTestLog(b, b.TempDir(), func(c *LogConfig) {
		c.SyncInterval = 100 * time.Millisecond
		c.MaxBytes = 1 << 40
	})
	defer l.Close()
	b.SetBytes(int64(len(payload) + hdrLen))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for {
			_, err := l.Append(payload)
			if err == nil {
				break
			}
			if err != ErrLogBacklog {
				b.Fatal(err)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkLogRead(b *testing.B) {
	e := sampleEvent()
	payload := e.AppendBinary(nil)
	l := openTestLog(b, b.TempDir(), benchLogConfig)
	defer l.Close()
	for i := 0; i < b.N; i++ {
		if _, err := l.Append(payload); err != nil {
			b.Fatal(err)
		}
	}
	if err := l.Sync(); err != nil {
		b.Fatal(err)
	}
	r := l.NewReader(l.Acked())
	defer r.Close()
	b.SetBytes(int64(len(payload) + hdrLen))
	b.ReportAllocs()
	b.ResetTimer()
	var buf []Record
	n := 0
	for n < b.N {
		recs, err := r.Read(buf[:0], 10000)
		if err != nil {
			b.Fatal(err)
		}
		if len(recs) == 0 {
			b.Fatalf("read %d of %d records", n, b.N)
		}
		buf = recs
		n += len(recs)
	}
}

func BenchmarkEventAppendBinary(b *testing.B) {
	e := sampleEvent()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = e.AppendBinary(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkEventUnmarshal(b *testing.B) {
	e := sampleEvent()
	buf := e.AppendBinary(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	var got Event
	for i := 0; i < b.N; i++ {
		if err := got.Unmarshal(buf); err != nil {
			b.Fatal(err)
		}
	}
}

func TestLogAppendAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("race")
	}
	l := openTestLog(t, t.TempDir(), func(c *LogConfig) { c.SyncInterval = time.Hour })
	defer l.Close()
	p := make([]byte, 200)
	for i := 0; i < 100; i++ {
		l.Append(p)
	}
	if n := testing.AllocsPerRun(1000, func() { l.Append(p) }); n > 0.01 {
		t.Fatalf("Append allocates %v per call", n)
	}
}
