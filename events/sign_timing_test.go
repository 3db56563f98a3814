package events

import (
	"fmt"
	"net/url"
	"testing"
)

func BenchmarkSignerAppendURL(b *testing.B) {
	s := testSigner(b)
	bc := sampleBeacon()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		buf := make([]byte, 0, 1024)
		for pb.Next() {
			buf = s.AppendURL(buf[:0], "https://ads.example/v1/t/imp", &bc)
		}
	})
	b.SetBytes(int64(len(s.AppendURL(buf, "https://ads.example/v1/t/imp", &bc))))
}

func BenchmarkSignerVerify(b *testing.B) {
	s := testSigner(b)
	bc := sampleBeacon()
	raw := s.AppendURL(nil, "https://ads.example/v1/t/imp", &bc)
	u, _ := url.Parse(string(raw))
	args := toFakeArgs(u.Query())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Verify(args, testNow); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkSignerVerifyURLValues is the same through net/url, for
// comparison with the fasthttp-style Args path.
func BenchmarkSignerVerifyURLValues(b *testing.B) {
	s := testSigner(b)
	bc := sampleBeacon()
	raw := s.AppendURL(nil, "https://ads.example/v1/t/imp", &bc)
	u, _ := url.Parse(string(raw))
	q := u.RawQuery
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v, _ := url.ParseQuery(q)
		if _, err := s.Verify(URLValues(v), testNow); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecorderRecordNew records distinct events: dedup miss, encode,
// log append.
func BenchmarkRecorderRecordNew(b *testing.B) {
	l := openTestLog(b, b.TempDir(), benchLogConfig)
	defer l.Close()
	r, err := NewRecorder(RecorderConfig{NodeID: "n1", Log: l, DedupEntries: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	bc := sampleBeacon()
	auctions, slots := make([]string, 1<<16), make([]string, 64)
	for i := range auctions {
		auctions[i] = fmt.Sprintf("auction-%08x", i)
	}
	for i := range slots {
		slots[i] = fmt.Sprintf("s%d", i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bc.AuctionID, bc.SlotID = auctions[i%len(auctions)], slots[i/len(auctions)%len(slots)]
		if _, err := r.Record(&bc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRecorderRecord is dominated by repeats (the dedup hit path).
func BenchmarkRecorderRecord(b *testing.B) {
	l := openTestLog(b, b.TempDir(), func(c *LogConfig) { c.MaxBytes = 1 << 40 })
	defer l.Close()
	r, err := NewRecorder(RecorderConfig{NodeID: "n1", Log: l, DedupEntries: 1 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	bc := sampleBeacon()
	ids := make([]string, 4096)
	for i := range ids {
		ids[i] = "auction-" + string(rune('A'+i%26)) + string(rune('A'+i/26%26)) + string(rune('A'+i/676))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		bc.AuctionID = ids[i%len(ids)] // mostly duplicates after the first 4096
		if _, err := r.Record(&bc); err != nil {
			b.Fatal(err)
		}
	}
}
