package targeting

import (
	"testing"
)

func TestZZ(t *testing.T) {
	cs := benchCatalog(t, 100000)
	ix := Build(cs)
	g := newBenchGen(99)
	a := new(Attrs)
	for range 5 {
		g.request(a)
		bs := ix.cursors(a, benchNow)
		for k := 0; k+1 < len(bs); k++ {
			tot := 0
			for _, c := range a.curs[bs[k]:bs[k+1]] {
				tot += len(c.ents)
			}
			t.Logf("k=%d lists=%d entries=%d", k, bs[k+1]-bs[k], tot)
		}
		t.Log(describeAttrs(a), len(ix.Query(a, benchNow, nil)))
	}
	s := ix.Stats()
	t.Logf("%+v", s)
}
