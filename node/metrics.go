package node

import (
	"context"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/events"
)

// campaignMetricsTop bounds the cardinality of the per-campaign pacing
// metrics: only the campaigns with the most spend today get a series; the
// rest are summed in the fleet-wide gauges.
const campaignMetricsTop = 50

// campaignMetrics publishes, every interval, today's spend, budget and
// pass rate of the top campaigns by spend (bounded cardinality), and how
// many campaigns are budget-exhausted or throttled. A scrape reads the last
// computed set; nothing is computed on the request path.
func (n *Node) campaignMetrics(ctx context.Context, interval time.Duration) {
	var cur *metrics.Set
	defer func() {
		if cur != nil {
			metrics.UnregisterSet(cur, true)
		}
	}()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		next := n.campaignMetricsSet(time.Now())
		// Unregister first: two sets with the same series would print
		// duplicates; a scrape in between misses them once instead.
		if cur != nil {
			metrics.UnregisterSet(cur, true)
		}
		metrics.RegisterSet(next)
		cur = next
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (n *Node) campaignMetricsSet(now time.Time) *metrics.Set {
	type row struct {
		id           string
		spend, daily int64
		pass         float64
	}
	var rows []row
	var exhausted, throttled, active int
	if snap := n.Feed.Snapshot(); snap != nil && snap.Index != nil {
		snap.Index.All(func(c *campaign.Campaign) bool {
			st, ok := n.Pacer.Status(c.ID, now)
			if !ok {
				return true
			}
			active++
			if st.DailyHeadroom == 0 || st.TotalHeadroom == 0 {
				exhausted++
			} else if st.Pass < 1 {
				throttled++
			}
			rows = append(rows, row{c.ID, int64(st.DaySpend + st.OthersDaySpend), int64(c.Budget.Daily), st.Pass})
			return true
		})
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].spend > rows[j].spend })
	if len(rows) > campaignMetricsTop {
		rows = rows[:campaignMetricsTop]
	}
	s := metrics.NewSet()
	gauge := func(name string, v float64) { s.NewGauge(name, func() float64 { return v }) }
	gauge(`adserver_pacing_campaigns{state="known"}`, float64(active))
	gauge(`adserver_pacing_campaigns{state="budget_exhausted"}`, float64(exhausted))
	gauge(`adserver_pacing_campaigns{state="throttled"}`, float64(throttled))
	gauge(`adserver_pacing_nodes`, float64(n.Pacer.Nodes()))
	for _, r := range rows {
		l := `{campaign_id="` + escapeLabel(r.id) + `"}`
		gauge(`adserver_campaign_spend_today_micros`+l, float64(r.spend))
		gauge(`adserver_campaign_budget_daily_micros`+l, float64(r.daily))
		gauge(`adserver_pacing_throttle_ratio`+l, 1-r.pass)
	}
	return s
}

// escapeLabel makes a campaign id safe inside a quoted label value.
func escapeLabel(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// unshippedSource feeds adserver_eventlog_unshipped_records: records
// appended since this process started and not yet confirmed in ClickHouse.
// (Sequence numbers jump at a restart, so records left over from before it
// are not counted here; adserver_eventlog_bytes covers them.)
type unshippedSource struct {
	l     *events.Log
	start uint64
}

// liveUnshipped is read by the gauge; the latest node in the process wins
// (tests start several).
var liveUnshipped atomic.Pointer[unshippedSource]

var _ = metrics.NewGauge(`adserver_eventlog_unshipped_records`, func() float64 {
	u := liveUnshipped.Load()
	if u == nil {
		return 0
	}
	last, acked := u.l.LastSeq(), max(u.l.Acked().Seq, u.start)
	if last <= acked {
		return 0
	}
	return float64(last - acked)
})

// campaignSpend counts charged micros per campaign for
// adserver_campaign_spend_micros_total, with at most spendSeriesMax
// campaigns getting their own series (the first ones charged); the rest
// count under campaign_id="other". Lookups are lock-free once a campaign
// has its counter.
type campaignSpend struct {
	byID  sync.Map // campaign id -> *metrics.Counter
	n     atomic.Int64
	other *metrics.Counter
}

const spendSeriesMax = 200

var spendCounters = &campaignSpend{other: metrics.NewCounter(`adserver_campaign_spend_micros_total{campaign_id="other"}`)}

func (cs *campaignSpend) add(id string, micros int64) {
	if c, ok := cs.byID.Load(id); ok {
		c.(*metrics.Counter).AddInt64(micros)
		return
	}
	if cs.n.Add(1) > spendSeriesMax {
		cs.n.Add(-1)
		cs.other.AddInt64(micros)
		return
	}
	c, loaded := cs.byID.LoadOrStore(id, metrics.GetOrCreateCounter(`adserver_campaign_spend_micros_total{campaign_id="`+escapeLabel(id)+`"}`))
	if loaded {
		cs.n.Add(-1)
	}
	c.(*metrics.Counter).AddInt64(micros)
}
