package loadtest

import (
	"encoding/json"
	"testing"
)

func benchGenerate(b *testing.B, openrtb bool) {
	g := NewGenerator(DefaultScenario(), 1)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		src := g.NewSource(0)
		var r Request
		buf := make([]byte, 0, 2048)
		n := 0
		for pb.Next() {
			g.Next(src, &r)
			if openrtb {
				buf = g.AppendOpenRTB(buf[:0], &r)
			} else {
				buf = g.AppendAdRequest(buf[:0], &r)
			}
			n += len(buf)
		}
		_ = n
	})
}

// BenchmarkNextAdRequest is the per-request cost of the harness's traffic:
// draw a request and encode its /v1/ad body.
func BenchmarkNextAdRequest(b *testing.B) { benchGenerate(b, false) }

// BenchmarkNextOpenRTB draws a request and encodes an OpenRTB 2.6 body.
func BenchmarkNextOpenRTB(b *testing.B) { benchGenerate(b, true) }

// BenchmarkNext draws a request without encoding it.
func BenchmarkNext(b *testing.B) {
	g := NewGenerator(DefaultScenario(), 1)
	src := g.NewSource(0)
	var r Request
	b.ReportAllocs()
	for b.Loop() {
		g.Next(src, &r)
	}
}

// BenchmarkAdRequestEncodingJSON is the same body through encoding/json,
// for comparison with the append encoder.
func BenchmarkAdRequestEncodingJSON(b *testing.B) {
	g := NewGenerator(DefaultScenario(), 1)
	src := g.NewSource(0)
	var r Request
	g.Next(src, &r)
	var v map[string]any
	if err := json.Unmarshal(g.AppendAdRequest(nil, &r), &v); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseAdResponse is the cost of reading a filled /v1/ad answer.
func BenchmarkParseAdResponse(b *testing.B) {
	body := []byte(`{"id":"r-1","ads":[{"slot_id":"s1","campaign_id":"c-1","creative_id":"cr-1","html":"<a href='https://x.example/'>ad</a>",` +
		`"w":300,"h":250,"price":1.23,"impression_url":"http://127.0.0.1:8080/v1/t/imp?a=r-1&s=s1&c=c-1&cr=cr-1&p=1230000&t=1&sig=abcdef",` +
		`"click_url":"http://127.0.0.1:8080/v1/t/click?a=r-1&s=s1&c=c-1&cr=cr-1&t=1&sig=abcdef"}]}`)
	var p responseParser
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if f, ok := p.parse(false, body); !ok || len(f) != 1 {
			b.Fatal("parse failed")
		}
	}
}
