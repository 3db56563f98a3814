package reports

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/events"
)

// This file is the slow obvious twin of the reports: it computes what a
// report must say straight from the list of events a test recorded,
// with Go's time zone code and big-number arithmetic.

// modelEvent is one event as a test recorded it.
type modelEvent struct {
	t                                       time.Time
	typ                                     events.Type
	adv, camp, creative, placement, country string
	cost                                    int64
	test                                    bool
}

// modelQuery is what the model needs of a report request.
type modelQuery struct {
	loc      *time.Location
	from, to time.Time // [from, to)
	groupBy  []string  // group_by names
	scope    string    // advertiser key's owner; "" for the admin
	advs     []string
	camps    []string
}

type modelRow struct {
	sortKeys []any // int64 or string
	keys     []string
	m        Metrics
}

// localHourStart is the instant the local hour containing t began.
func localHourStart(t time.Time, loc *time.Location) time.Time {
	lt := t.In(loc)
	return lt.Add(-time.Duration(lt.Minute())*time.Minute - time.Duration(lt.Second())*time.Second)
}

// model computes a report's rows (sorted as the API sorts them) and totals.
func model(evs []modelEvent, q modelQuery) ([]modelRow, Metrics) {
	groups := map[string]*modelRow{}
	for _, e := range evs {
		if e.test || e.t.Before(q.from) || !e.t.Before(q.to) {
			continue
		}
		if q.scope != "" && e.adv != q.scope {
			continue
		}
		if len(q.advs) > 0 && !slices.Contains(q.advs, e.adv) {
			continue
		}
		if len(q.camps) > 0 && !slices.Contains(q.camps, e.camp) {
			continue
		}
		r := &modelRow{}
		for _, g := range q.groupBy {
			switch g {
			case "day":
				d := e.t.In(q.loc).Format(time.DateOnly)
				r.sortKeys, r.keys = append(r.sortKeys, d), append(r.keys, d)
			case "hour":
				h := localHourStart(e.t, q.loc)
				r.sortKeys, r.keys = append(r.sortKeys, h.Unix()), append(r.keys, h.Format(time.RFC3339))
			case "campaign":
				r.sortKeys, r.keys = append(r.sortKeys, e.camp), append(r.keys, e.camp)
			case "creative":
				r.sortKeys, r.keys = append(r.sortKeys, e.creative), append(r.keys, e.creative)
			case "placement":
				r.sortKeys, r.keys = append(r.sortKeys, e.placement), append(r.keys, e.placement)
			case "country":
				r.sortKeys, r.keys = append(r.sortKeys, e.country), append(r.keys, e.country)
			default:
				panic("BUG: model: group_by " + g)
			}
		}
		id := strings.Join(r.keys, "\x00")
		if g := groups[id]; g != nil {
			r = g
		} else {
			groups[id] = r
		}
		switch e.typ {
		case events.TypeImpression:
			r.m.Impressions++
		case events.TypeClick:
			r.m.Clicks++
		case events.TypeConversion:
			r.m.Conversions++
		}
		r.m.SpendMicros += e.cost
	}
	var rows []modelRow
	var tot Metrics
	for _, r := range groups {
		if r.m == (Metrics{}) {
			continue // only wins or losses: no metric of ours
		}
		rows = append(rows, *r)
		tot.add(&r.m)
	}
	slices.SortFunc(rows, func(a, b modelRow) int {
		for i := range a.sortKeys {
			var c int
			switch x := a.sortKeys[i].(type) {
			case int64:
				c = cmp.Compare(x, b.sortKeys[i].(int64))
			case string:
				c = strings.Compare(x, b.sortKeys[i].(string))
			}
			if c != 0 {
				return c
			}
		}
		return 0
	})
	return rows, tot
}

// roundHalfUp is round(a*mul/n) with big numbers (0 when n is 0).
func roundHalfUp(a int64, mul, n uint64) string {
	if n == 0 {
		return "0"
	}
	num := new(big.Int).Mul(big.NewInt(a), new(big.Int).SetUint64(2*mul))
	num.Add(num, new(big.Int).SetUint64(n))
	q := new(big.Int).Quo(num, new(big.Int).SetUint64(2*n))
	return campaign.Micros(q.Int64()).String()
}

func modelRatio(a, b uint64) string {
	if b == 0 {
		return "0"
	}
	return strconv.FormatFloat(float64(a)/float64(b), 'f', -1, 64)
}

// modelMetrics is what a metrics object must hold, every value as the
// JSON text the API writes.
func modelMetrics(m Metrics) map[string]string {
	return map[string]string{
		"impressions":     strconv.FormatUint(m.Impressions, 10),
		"clicks":          strconv.FormatUint(m.Clicks, 10),
		"conversions":     strconv.FormatUint(m.Conversions, 10),
		"spend":           campaign.Micros(m.SpendMicros).String(),
		"ctr":             modelRatio(m.Clicks, m.Impressions),
		"ecpm":            roundHalfUp(m.SpendMicros, 1000, m.Impressions),
		"ecpc":            roundHalfUp(m.SpendMicros, 1, m.Clicks),
		"conversion_rate": modelRatio(m.Conversions, m.Clicks),
		"cpa":             roundHalfUp(m.SpendMicros, 1, m.Conversions),
	}
}

var groupKeys = map[string]string{"day": "day", "hour": "hour", "campaign": "campaign_id", "creative": "creative_id",
	"placement": "placement_id", "country": "country"}

// checkReport compares a decoded report with the model, value by value.
func checkReport(t testing.TB, label string, got reportJSON, groupBy []string, want []modelRow, wantTot Metrics) {
	t.Helper()
	if len(got.Rows) != len(want) {
		t.Fatalf("%s: %d rows, want %d\ngot  %v\nwant %v", label, len(got.Rows), len(want), got.Rows, want)
	}
	for i, w := range want {
		g := got.Rows[i]
		if len(g) != len(groupBy)+9 {
			t.Fatalf("%s row %d: fields %v, want %d group keys and 9 metrics", label, i, g, len(groupBy))
		}
		for j, name := range groupBy {
			if s, _ := g[groupKeys[name]].(string); s != w.keys[j] {
				t.Fatalf("%s row %d: %s = %v, want %q (row %v)", label, i, groupKeys[name], g[groupKeys[name]], w.keys[j], g)
			}
		}
		checkMetrics(t, fmt.Sprintf("%s row %d %v", label, i, w.keys), g, w.m)
	}
	checkMetrics(t, label+" totals", got.Totals, wantTot)
}

func checkMetrics(t testing.TB, label string, got map[string]any, want Metrics) {
	t.Helper()
	for k, w := range modelMetrics(want) {
		n, ok := got[k].(json.Number)
		if !ok || n.String() != w {
			t.Fatalf("%s: %s = %v, want %s (all: %v)", label, k, got[k], w, got)
		}
	}
}
