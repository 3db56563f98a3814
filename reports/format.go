package reports

import (
	"encoding/csv"
	"io"
	"math/bits"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/adserver/adserver/campaign"
)

// Metrics are a report row's sums. Money is integer micros.
type Metrics struct {
	Impressions uint64
	Clicks      uint64
	Conversions uint64
	SpendMicros int64
}

func (m *Metrics) add(o *Metrics) {
	m.Impressions += o.Impressions
	m.Clicks += o.Clicks
	m.Conversions += o.Conversions
	m.SpendMicros += o.SpendMicros
}

// ECPMMicros is spend per thousand impressions, rounded half up to the
// micro (0 without impressions).
func (m *Metrics) ECPMMicros() int64 { return perUnit(m.SpendMicros, 1000, m.Impressions) }

// ECPCMicros is spend per click, rounded half up to the micro.
func (m *Metrics) ECPCMicros() int64 { return perUnit(m.SpendMicros, 1, m.Clicks) }

// CPAMicros is spend per conversion, rounded half up to the micro.
func (m *Metrics) CPAMicros() int64 { return perUnit(m.SpendMicros, 1, m.Conversions) }

// CTR is clicks per impression.
func (m *Metrics) CTR() float64 { return ratio(m.Clicks, m.Impressions) }

// ConversionRate is conversions per click.
func (m *Metrics) ConversionRate() float64 { return ratio(m.Conversions, m.Clicks) }

func ratio(a, b uint64) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// perUnit returns round_half_up(v*mul/n) in 128-bit integer arithmetic,
// rounding away from zero for negative v; 0 when n is 0.
func perUnit(v int64, mul, n uint64) int64 {
	if n == 0 {
		return 0
	}
	neg := v < 0
	u := uint64(v)
	if neg {
		u = -u
	}
	hi, lo := bits.Mul64(u, mul)
	lo, carry := bits.Add64(lo, n/2, 0)
	hi += carry
	if hi >= n { // quotient overflows 64 bits; cannot happen for real money
		return 0
	}
	q, _ := bits.Div64(hi, lo, n)
	if neg {
		return -int64(q)
	}
	return int64(q)
}

// Row is one report line: labels in the order of Query.GroupBy, and sums.
type Row struct {
	Keys []string
	Metrics
}

// Report is a query's answer.
type Report struct {
	Rows   []Row
	Totals Metrics
	// Table names the tables that were read (comma-separated).
	Table string
}

// dayLabel formats a day number (days since 1970-01-01, local) as a date.
func dayLabel(day int64) string {
	return time.Unix(day*86400, 0).UTC().Format(time.DateOnly)
}

// hourLabel formats the start of an hour (unix seconds) in loc.
func hourLabel(unix int64, loc *time.Location) string {
	return time.Unix(unix, 0).In(loc).Format(time.RFC3339)
}

// appendJSON writes rep as {"rows":[...],"totals":{...}}.
func appendJSON(dst []byte, q *Query, rep *Report) []byte {
	dst = append(dst, `{"rows":[`...)
	for i := range rep.Rows {
		r := &rep.Rows[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		for j, d := range q.GroupBy {
			dst = append(dst, '"')
			dst = append(dst, d.Key()...)
			dst = append(dst, `":`...)
			dst = appendJSONString(dst, r.Keys[j])
			dst = append(dst, ',')
		}
		dst = appendMetricsJSON(dst, &r.Metrics)
		dst = append(dst, '}')
	}
	dst = append(dst, `],"totals":{`...)
	dst = appendMetricsJSON(dst, &rep.Totals)
	return append(dst, "}}\n"...)
}

func appendMetricsJSON(dst []byte, m *Metrics) []byte {
	dst = append(dst, `"impressions":`...)
	dst = strconv.AppendUint(dst, m.Impressions, 10)
	dst = append(dst, `,"clicks":`...)
	dst = strconv.AppendUint(dst, m.Clicks, 10)
	dst = append(dst, `,"conversions":`...)
	dst = strconv.AppendUint(dst, m.Conversions, 10)
	dst = append(dst, `,"spend":`...)
	dst = campaign.Micros(m.SpendMicros).AppendDecimal(dst)
	dst = append(dst, `,"ctr":`...)
	dst = appendFloat(dst, m.CTR())
	dst = append(dst, `,"ecpm":`...)
	dst = campaign.Micros(m.ECPMMicros()).AppendDecimal(dst)
	dst = append(dst, `,"ecpc":`...)
	dst = campaign.Micros(m.ECPCMicros()).AppendDecimal(dst)
	dst = append(dst, `,"conversion_rate":`...)
	dst = appendFloat(dst, m.ConversionRate())
	dst = append(dst, `,"cpa":`...)
	return campaign.Micros(m.CPAMicros()).AppendDecimal(dst)
}

// appendFloat writes a ratio in [0, 1]-ish range as a JSON number.
func appendFloat(dst []byte, f float64) []byte {
	return strconv.AppendFloat(dst, f, 'f', -1, 64)
}

const hexDigits = "0123456789abcdef"

// appendJSONString writes s as a JSON string, escaping as encoding/json
// does (control characters, quotes, backslashes, <, >, &, U+2028/2029;
// invalid UTF-8 becomes U+FFFD).
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				dst = append(dst, '\\', c)
			case c == '\n':
				dst = append(dst, '\\', 'n')
			case c == '\r':
				dst = append(dst, '\\', 'r')
			case c == '\t':
				dst = append(dst, '\\', 't')
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				dst = append(dst, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return append(dst, '"')
}

// csvHeader returns the CSV column names for q.
func csvHeader(q *Query) []string {
	h := make([]string, 0, len(q.GroupBy)+9)
	for _, d := range q.GroupBy {
		h = append(h, d.Key())
	}
	return append(h, "impressions", "clicks", "conversions", "spend", "ctr", "ecpm", "ecpc", "conversion_rate", "cpa")
}

// writeCSV writes a header line and one line per row (no totals line).
func writeCSV(w io.Writer, q *Query, rep *Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvHeader(q)); err != nil {
		return err
	}
	rec := make([]string, 0, len(q.GroupBy)+9)
	var buf []byte
	for i := range rep.Rows {
		r := &rep.Rows[i]
		rec = rec[:0]
		for _, k := range r.Keys {
			rec = append(rec, csvSafe(k))
		}
		m := &r.Metrics
		buf = buf[:0]
		rec = append(rec,
			strconv.FormatUint(m.Impressions, 10),
			strconv.FormatUint(m.Clicks, 10),
			strconv.FormatUint(m.Conversions, 10),
			campaign.Micros(m.SpendMicros).String(),
			string(appendFloat(buf, m.CTR())),
			campaign.Micros(m.ECPMMicros()).String(),
			campaign.Micros(m.ECPCMicros()).String(),
			string(appendFloat(buf, m.ConversionRate())),
			campaign.Micros(m.CPAMicros()).String(),
		)
		if err := cw.Write(rec); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvSafe defuses spreadsheet formulas: a cell that starts with = + - @
// or a control character gets a leading apostrophe.
func csvSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
