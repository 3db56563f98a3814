package main

import (
	"fmt"
	"io"
	"strings"
)

// writeSVG draws one panel per campaign: cumulative spend within each local
// day as a share of the daily budget, planned (wide, even campaigns) and
// actual, days side by side.
func (r *Report) writeSVG(out io.Writer) error {
	const (
		cols           = 4
		pw, ph         = 300, 170 // panel
		ml, mr, mt, mb = 34, 8, 22, 20
		yMax           = 1.1
	)
	rows := (len(r.Campaigns) + cols - 1) / cols
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="10">`+"\n",
		cols*pw, rows*ph+30)
	fmt.Fprintf(&b, `<text x="8" y="18" font-size="13">pacesim: %d node(s), %d day(s), %.0f req/s — cumulative daily spend / daily budget; wide blue = plan (even), orange = actual</text>`+"\n",
		r.Nodes, r.Days, r.RPS)
	for i, c := range r.Campaigns {
		x0, y0 := (i%cols)*pw, 30+(i/cols)*ph
		w, h := float64(pw-ml-mr), float64(ph-mt-mb)
		hours := 0
		for _, d := range c.Days {
			hours += d.Hours
		}
		px := func(hr float64) float64 { return float64(x0+ml) + w*hr/float64(max(hours, 1)) }
		py := func(share float64) float64 { return float64(y0+mt) + h*(1-min(share, yMax)/yMax) }
		fmt.Fprintf(&b, `<g><rect x="%d" y="%d" width="%.0f" height="%.0f" fill="#fafafa" stroke="#ccc"/>`+"\n", x0+ml, y0+mt, w, h)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s %s %s %s (%s)</text>`+"\n", x0+ml, y0+mt-6, c.ID, c.Pacing, c.Model, c.Class, c.Timezone)
		for _, s := range []float64{0, 0.5, 1} {
			fmt.Fprintf(&b, `<line x1="%d" x2="%.1f" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n",
				x0+ml, float64(x0+ml)+w, py(s), py(s), x0+ml-3, py(s)+3, 100*s)
		}
		off := 0
		var plan, actual strings.Builder
		for _, d := range c.Days {
			var cp, ca float64
			fmt.Fprintf(&actual, "M%.1f,%.1f", px(float64(off)), py(0))
			if len(d.HourlyPlan) > 0 {
				fmt.Fprintf(&plan, "M%.1f,%.1f", px(float64(off)), py(0))
			}
			for k := range d.HourlyActual {
				ca += float64(d.HourlyActual[k]) / float64(d.Budget)
				fmt.Fprintf(&actual, " L%.1f,%.1f", px(float64(off+k+1)), py(ca))
				if k < len(d.HourlyPlan) {
					cp += float64(d.HourlyPlan[k]) / float64(d.Budget)
					fmt.Fprintf(&plan, " L%.1f,%.1f", px(float64(off+k+1)), py(cp))
				}
			}
			off += d.Hours
			if off < hours {
				fmt.Fprintf(&b, `<line x1="%.1f" x2="%.1f" y1="%d" y2="%.0f" stroke="#bbb"/>`+"\n", px(float64(off)), px(float64(off)), y0+mt, float64(y0+mt)+h)
			}
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f">%s util %.1f%% over %.3f%%</text>`+"\n",
				px(float64(off-d.Hours))+2, float64(y0+mt)+h+12, d.Day, d.UtilisationPct, d.OverspendPct)
		}
		if plan.Len() > 0 {
			fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#9ecae1" stroke-width="5" stroke-linejoin="round"/>`+"\n", plan.String())
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="#ff7f0e" stroke-width="1.5"/></g>`+"\n", actual.String())
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(out, b.String())
	return err
}
