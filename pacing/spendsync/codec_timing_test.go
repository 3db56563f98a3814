package spendsync

import (
	"testing"
	"time"

	"github.com/adserver/adserver/pacing"
)

func BenchmarkDecode(b *testing.B) {
	d := pacing.Delta{Node: "node-1", Campaign: "c-12345", Day: 20261124, DaySpend: 123_456_789, Delta: 4567,
		Total: 987_654_321, Reserved: 3000, Seq: 1795000000000123, Time: time.Now()}
	v := AppendValue(nil, &d)
	b.SetBytes(int64(len(v)))
	b.ReportAllocs()
	var out pacing.Delta
	for b.Loop() {
		if err := Decode(v, &out); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	d := pacing.Delta{Node: "node-1", Campaign: "c-12345", Day: 20261124, DaySpend: 123_456_789, Delta: 4567,
		Total: 987_654_321, Reserved: 3000, Seq: 1795000000000123, Time: time.Now()}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendValue(AppendKey(buf[:0], &d), &d)
	}
	b.SetBytes(int64(len(buf)))
}
