package loadtest

import (
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// chartFormat returns "html" or "svg" for a chart file name, "" otherwise.
func chartFormat(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".html", ".htm":
		return "html"
	case ".svg":
		return "svg"
	}
	return ""
}

// WriteChartFile writes the charts of r to path: a self-contained HTML page
// (summary table and inline SVG, no external resources) for .html, or the
// two charts stacked in one SVG for .svg.
func WriteChartFile(path string, r *Result) error {
	var b []byte
	switch chartFormat(path) {
	case "html":
		b = ChartHTML(r)
	case "svg":
		b = []byte(chartsSVG(r, 0))
	default:
		return fmt.Errorf("chart %q: use a .html or .svg file name", path)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		return fmt.Errorf("cannot write chart: %w", err)
	}
	return nil
}

// ChartHTML renders r as a self-contained HTML page.
func ChartHTML(r *Result) []byte {
	var sb strings.Builder
	title := "loadtest " + strings.Join(r.Targets, ", ")
	fmt.Fprintf(&sb, "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>%s</title>\n", html.EscapeString(title))
	sb.WriteString("<style>body{font-family:sans-serif;margin:2em;color:#222}table{border-collapse:collapse}" +
		"td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}th{background:#f4f4f4}</style></head><body>\n")
	fmt.Fprintf(&sb, "<h1>%s</h1>\n<p>%s model, endpoint %s, %d workers, %.1f s. Latency of a request that had to wait for a free worker counts from its intended send time (coordinated omission corrected).</p>\n",
		html.EscapeString(title), r.Model, r.Endpoint, r.Concurrency, r.Elapsed)
	sb.WriteString("<table><tr><th></th><th>target/s</th><th>achieved/s</th><th>requests</th><th>errors</th><th>dropped</th><th>fill</th>" +
		"<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th><th>max ms</th></tr>\n")
	row := func(name string, x *Result) {
		l := x.LatencyMs
		fmt.Fprintf(&sb, "<tr><th>%s</th><td>%.1f</td><td>%.1f</td><td>%d</td><td>%d</td><td>%d</td><td>%.1f%%</td>"+
			"<td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td></tr>\n",
			name, x.TargetRate, x.AchievedRate, x.Requests, x.Errors, x.Dropped, 100*x.FillRate, l.P50, l.P90, l.P99, l.P999, l.Max)
	}
	row("ad server", r)
	if r.Baseline != nil {
		row("baseline", r.Baseline)
		fmt.Fprintf(&sb, "<tr><th>ratio</th><td></td><td>%.3f</td><td colspan=\"4\"></td><td>%.2fx</td><td>%.2fx</td><td>%.2fx</td><td>%.2fx</td><td>%.2fx</td></tr>\n",
			*r.Ratio, r.LatencyRatio.P50, r.LatencyRatio.P90, r.LatencyRatio.P99, r.LatencyRatio.P999, r.LatencyRatio.Max)
	}
	sb.WriteString("</table>\n")
	sb.WriteString(chartsSVG(r, 1))
	sb.WriteString("</body></html>\n")
	return []byte(sb.String())
}

type chartLine struct {
	name, color string
	dash        bool
	y           []float64 // one value per second; index i is second i+1
}

// chartsSVG renders the latency and throughput charts; inline > 0 omits the
// XML prolog for embedding in HTML.
func chartsSVG(r *Result, inline int) string {
	const w, h = 960, 320
	var sb strings.Builder
	if inline == 0 {
		sb.WriteString(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
		fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif">`+"\n", w, 2*h)
	}
	col := func(s []SecondStats, f func(SecondStats) float64) []float64 {
		y := make([]float64, len(s))
		for i, x := range s {
			y[i] = f(x)
		}
		return y
	}
	s := r.Series
	lat := []chartLine{
		{"p50", "#1f77b4", false, col(s, func(x SecondStats) float64 { return x.P50 })},
		{"p90", "#2ca02c", false, col(s, func(x SecondStats) float64 { return x.P90 })},
		{"p99", "#ff7f0e", false, col(s, func(x SecondStats) float64 { return x.P99 })},
		{"max", "#d62728", false, col(s, func(x SecondStats) float64 { return x.Max })},
	}
	thr := []chartLine{{"achieved", "#1f77b4", false, col(s, func(x SecondStats) float64 { return float64(x.Requests) / x.Span })}}
	if r.Model == "open" {
		thr = append(thr, chartLine{"target", "#7f7f7f", true, col(s, func(x SecondStats) float64 { return x.Target / x.Span })})
	}
	if b := r.Baseline; b != nil {
		bs := b.Series
		lat = append(lat,
			chartLine{"base p50", "#1f77b4", true, col(bs, func(x SecondStats) float64 { return x.P50 })},
			chartLine{"base p99", "#ff7f0e", true, col(bs, func(x SecondStats) float64 { return x.P99 })})
		thr = append(thr, chartLine{"baseline", "#9467bd", true, col(bs, func(x SecondStats) float64 { return float64(x.Requests) / x.Span })})
	}
	svgChart(&sb, 0, w, h, "latency per second (ms, log scale)", lat, true, inline > 0)
	svgChart(&sb, h, w, h, "throughput (completed requests per second)", thr, false, inline > 0)
	if inline == 0 {
		sb.WriteString("</svg>\n")
	}
	return sb.String()
}

// svgChart draws one chart at vertical offset y0.
func svgChart(sb *strings.Builder, y0, w, h int, title string, lines []chartLine, logY, standalone bool) {
	const ml, mr, mt, mb = 70, 110, 30, 40
	pw, ph := float64(w-ml-mr), float64(h-mt-mb)
	n := 1
	lo, hi := math.Inf(1), 0.0
	for _, l := range lines {
		n = max(n, len(l.y))
		for _, v := range l.y {
			if v > 0 {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 1
	}
	var ymin, ymax float64
	var ticks []float64
	if logY {
		ymin = math.Pow(10, math.Floor(math.Log10(lo)))
		ymax = math.Pow(10, math.Ceil(math.Log10(hi)))
		if ymax <= ymin {
			ymax = ymin * 10
		}
		for t := ymin; t <= ymax*1.0001; t *= 10 {
			ticks = append(ticks, t)
		}
	} else {
		step := niceStep(hi / 5)
		ymax = math.Ceil(hi*1.05/step) * step
		for t := 0.0; t <= ymax+step/2; t += step {
			ticks = append(ticks, t)
		}
	}
	yOf := func(v float64) float64 {
		if logY {
			return float64(mt) + ph*(1-(math.Log10(v)-math.Log10(ymin))/(math.Log10(ymax)-math.Log10(ymin)))
		}
		return float64(mt) + ph*(1-(v-ymin)/(ymax-ymin))
	}
	xOf := func(i int) float64 { return float64(ml) + pw*float64(i+1)/float64(n) }
	if standalone {
		fmt.Fprintf(sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" style="display:block">`+"\n", w, h)
	} else {
		fmt.Fprintf(sb, `<g transform="translate(0,%d)">`+"\n", y0)
	}
	fmt.Fprintf(sb, `<text x="%d" y="18" font-size="14">%s</text>`+"\n", ml, html.EscapeString(title))
	fmt.Fprintf(sb, `<rect x="%d" y="%d" width="%.0f" height="%.0f" fill="none" stroke="#999"/>`+"\n", ml, mt, pw, ph)
	for _, t := range ticks {
		y := yOf(t)
		fmt.Fprintf(sb, `<line x1="%d" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#eee"/><text x="%d" y="%.1f" font-size="11" text-anchor="end">%s</text>`+"\n",
			ml, y, float64(ml)+pw, y, ml-6, y+4, strconv.FormatFloat(t, 'g', 4, 64))
	}
	xstep := max(1, int(niceStep(float64(n)/10)))
	for i := 0; i <= n; i += xstep {
		x := float64(ml) + pw*float64(i)/float64(n)
		fmt.Fprintf(sb, `<text x="%.1f" y="%.0f" font-size="11" text-anchor="middle">%d</text>`+"\n", x, float64(mt)+ph+16, i)
	}
	fmt.Fprintf(sb, `<text x="%.0f" y="%d" font-size="11" text-anchor="middle">seconds</text>`+"\n", float64(ml)+pw/2, h-6)
	for k, l := range lines {
		var pts strings.Builder
		flush := func() {
			if pts.Len() > 0 {
				dash := ""
				if l.dash {
					dash = ` stroke-dasharray="5,3"`
				}
				fmt.Fprintf(sb, `<polyline fill="none" stroke="%s" stroke-width="1.5"%s points="%s"/>`+"\n", l.color, dash, pts.String())
				pts.Reset()
			}
		}
		for i, v := range l.y {
			if logY && v <= 0 {
				flush() // a gap: no completions that second
				continue
			}
			fmt.Fprintf(&pts, "%.1f,%.1f ", xOf(i), yOf(v))
		}
		flush()
		ly := mt + 14 + 18*k
		dash := ""
		if l.dash {
			dash = ` stroke-dasharray="5,3"`
		}
		fmt.Fprintf(sb, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d" font-size="12">%s</text>`+"\n",
			w-mr+10, ly, w-mr+30, ly, l.color, dash, w-mr+35, ly+4, html.EscapeString(l.name))
	}
	if standalone {
		sb.WriteString("</svg>\n")
	} else {
		sb.WriteString("</g>\n")
	}
}

// niceStep rounds x up to 1, 2 or 5 times a power of ten.
func niceStep(x float64) float64 {
	if x <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= x {
			return m * p
		}
	}
	return 10 * p
}
