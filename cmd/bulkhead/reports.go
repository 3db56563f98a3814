package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"sync"
	"time"
)

// ReportStats counts the report queries started during one phase (a query
// that finishes after its phase still counts in it).
type ReportStats struct {
	Sent int64 `json:"sent"`
	// OK counts 200s; Status counts every answer by HTTP status ("0" for
	// transport errors and client timeouts).
	OK     int64            `json:"ok"`
	Status map[string]int64 `json:"status"`
	// Skipped ticks found every report worker busy.
	Skipped   int64       `json:"skipped"`
	LatencyMs Percentiles `json:"latency_ms"`

	lat []float64
}

// Percentiles are latencies in milliseconds.
type Percentiles struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (s *ReportStats) finish() {
	sort.Float64s(s.lat)
	at := func(q float64) float64 {
		if len(s.lat) == 0 {
			return 0
		}
		return s.lat[min(len(s.lat)-1, int(q*float64(len(s.lat))))]
	}
	s.LatencyMs = Percentiles{P50: at(0.5), P99: at(0.99), Max: at(1)}
}

// reportDriver sends GET /v1/reports to the management listener at a fixed
// rate with a bounded number of workers, each query authorised by one of
// the seeded advertisers' API keys in turn.
type reportDriver struct {
	admin   string
	keys    []string
	rate    float64
	workers int
	client  *http.Client

	mu       sync.Mutex
	inflight sync.WaitGroup
	next     int
}

func newReportDriver(admin string, keys []string, rate float64, workers int, timeout time.Duration) *reportDriver {
	tr := &http.Transport{MaxConnsPerHost: workers, MaxIdleConnsPerHost: workers, IdleConnTimeout: time.Minute}
	return &reportDriver{admin: admin, keys: keys, rate: rate, workers: workers,
		client: &http.Client{Timeout: timeout, Transport: tr}}
}

// run sends queries until ctx is done, booking them in st. It returns at
// once; wait waits for the queries still in flight.
func (d *reportDriver) run(ctx context.Context, st *ReportStats) {
	if d.rate <= 0 || len(d.keys) == 0 {
		return
	}
	st.Status = map[string]int64{}
	slots := make(chan struct{}, d.workers)
	d.inflight.Add(1)
	go func() {
		defer d.inflight.Done()
		tick := time.NewTicker(time.Duration(float64(time.Second) / d.rate))
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			select {
			case slots <- struct{}{}:
			default:
				d.mu.Lock()
				st.Skipped++
				d.mu.Unlock()
				continue
			}
			d.inflight.Add(1)
			go func() {
				defer d.inflight.Done()
				defer func() { <-slots }()
				d.query(st)
			}()
		}
	}()
}

func (d *reportDriver) wait() { d.inflight.Wait() }

// query sends one report request and books its outcome.
func (d *reportDriver) query(st *ReportStats) {
	d.mu.Lock()
	key := d.keys[d.next%len(d.keys)]
	d.next++
	st.Sent++
	d.mu.Unlock()
	now := time.Now().UTC()
	q := url.Values{
		"from":     {now.AddDate(0, 0, -1).Format("2006-01-02")},
		"to":       {now.AddDate(0, 0, 2).Format("2006-01-02")},
		"group_by": {"day,campaign"},
		"tz":       {"UTC"},
	}
	req, _ := http.NewRequest(http.MethodGet, d.admin+"/v1/reports?"+q.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	t0 := time.Now()
	code := 0
	resp, err := d.client.Do(req)
	if err == nil {
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		code = resp.StatusCode
	}
	ms := float64(time.Since(t0).Microseconds()) / 1000
	d.mu.Lock()
	st.Status[strconv.Itoa(code)]++
	if code == http.StatusOK {
		st.OK++
	}
	st.lat = append(st.lat, ms)
	d.mu.Unlock()
}
