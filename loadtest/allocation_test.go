//go:build !race

package loadtest

import "testing"

// Generating and encoding a request allocates nothing once buffers are warm.
func TestGenerateAllocatesNothing(t *testing.T) {
	g := NewGenerator(DefaultScenario(), 1)
	src := g.NewSource(0)
	var r Request
	buf := make([]byte, 0, 4096)
	for _, enc := range []struct {
		name string
		f    func([]byte, *Request) []byte
	}{{"ad", g.AppendAdRequest}, {"openrtb", g.AppendOpenRTB}} {
		if n := testing.AllocsPerRun(1000, func() {
			g.Next(src, &r)
			buf = enc.f(buf[:0], &r)
		}); n != 0 {
			t.Errorf("%s: %v allocations per request", enc.name, n)
		}
	}
}
