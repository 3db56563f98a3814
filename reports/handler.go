package reports

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	chgo "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/VictoriaMetrics/metrics"
	"github.com/valyala/fasthttp"
)

var (
	reportsAnswered     = metrics.NewCounter(`adserver_reports_answered_total`)
	reportsUnauthorized = metrics.NewCounter(`adserver_reports_unauthorized_total`)
	reportsInvalid      = metrics.NewCounter(`adserver_reports_invalid_total`)
	reportsBusy         = metrics.NewCounter(`adserver_reports_busy_total`)
	reportsTooManyRows  = metrics.NewCounter(`adserver_reports_too_many_rows_total`)
	reportsTimeouts     = metrics.NewCounter(`adserver_reports_errors_total{kind="timeout"}`)
	reportsUnavailable  = metrics.NewCounter(`adserver_reports_errors_total{kind="unavailable"}`)
	reportsFailed       = metrics.NewCounter(`adserver_reports_errors_total{kind="query"}`)
	reportsQuerySeconds = metrics.NewHistogram(`adserver_reports_query_duration_seconds`)
	reportsInflight     atomic.Int64
	_                   = metrics.NewGauge(`adserver_reports_inflight`, func() float64 { return float64(reportsInflight.Load()) })
)

// Handler answers /v1/reports and serves /dashboard/.
type Handler struct {
	cfg Config
	// sem holds one token per running report query; its capacity is
	// cfg.MaxConcurrent.
	sem chan struct{}
	// rollups caches what is known of the rollups of schema version 2.
	rollups atomic.Pointer[rollupState]
}

// New validates cfg, fills in its defaults and returns a Handler. It does
// not contact ClickHouse.
func New(cfg Config) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	return &Handler{cfg: cfg, sem: make(chan struct{}, cfg.MaxConcurrent)}, nil
}

// maxKeyLen bounds a presented bearer token.
const maxKeyLen = 512

// ServeReports answers GET /v1/reports (see the package documentation).
func (h *Handler) ServeReports(ctx *fasthttp.RequestCtx) {
	ctx.Response.Header.Set("Cache-Control", "no-store")
	ctx.Response.Header.Set("X-Content-Type-Options", "nosniff")
	if !ctx.IsGet() {
		ctx.Response.Header.Set("Allow", "GET")
		writeError(ctx, &apiError{status: fasthttp.StatusMethodNotAllowed, code: "method_not_allowed", message: "use GET"})
		return
	}
	p, ok := h.authorize(ctx)
	if !ok {
		reportsUnauthorized.Inc()
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="adserver reports"`)
		writeError(ctx, &apiError{status: fasthttp.StatusUnauthorized, code: "unauthorized",
			message: "send Authorization: Bearer <advertiser API key or admin token>"})
		return
	}
	args := ctx.QueryArgs()
	params := make([]param, 0, args.Len())
	for k, v := range args.All() {
		params = append(params, param{key: string(k), value: string(v)})
	}
	q, aerr := parseQuery(params, p, h.cfg.Now(), h.cfg.MaxRange)
	if aerr != nil {
		reportsInvalid.Inc()
		writeError(ctx, aerr)
		return
	}
	rep, aerr := h.report(q)
	if aerr != nil {
		writeError(ctx, aerr)
		return
	}
	reportsAnswered.Inc()
	hdr := &ctx.Response.Header
	hdr.Set("X-Report-From", q.From.Format(time.RFC3339))
	hdr.Set("X-Report-To", q.To.Format(time.RFC3339))
	hdr.Set("X-Report-Timezone", q.Loc.String())
	hdr.Set("X-Report-Source", rep.Table)
	if q.Format == FormatCSV {
		ctx.SetContentType("text/csv; charset=utf-8")
		hdr.Set("Content-Disposition", fmt.Sprintf(`attachment; filename="report_%s_%s.csv"`,
			q.From.Format("20060102T1504"), q.To.Format("20060102T1504")))
		var buf bytes.Buffer
		if err := writeCSV(&buf, q, rep); err != nil {
			writeError(ctx, &apiError{status: 500, code: "internal", message: "cannot encode the report"})
			return
		}
		ctx.SetBody(buf.Bytes())
		return
	}
	ctx.SetContentType("application/json")
	ctx.SetBody(appendJSON(nil, q, rep))
}

// authorize resolves the bearer token: the admin token, or an advertiser
// API key (looked up by its SHA-256).
func (h *Handler) authorize(ctx *fasthttp.RequestCtx) (principal, bool) {
	auth := ctx.Request.Header.Peek(fasthttp.HeaderAuthorization)
	const prefix = "Bearer "
	if len(auth) <= len(prefix) || !bytes.EqualFold(auth[:len(prefix)], []byte(prefix)) {
		return principal{}, false
	}
	key := bytes.TrimSpace(auth[len(prefix):])
	if len(key) == 0 || len(key) > maxKeyLen {
		return principal{}, false
	}
	if h.cfg.AdminToken != "" && subtle.ConstantTimeCompare(key, []byte(h.cfg.AdminToken)) == 1 {
		return principal{admin: true}, true
	}
	if h.cfg.Advertisers == nil {
		return principal{}, false
	}
	sum := sha256.Sum256(key)
	a := h.cfg.Advertisers(hex.EncodeToString(sum[:]))
	if a == nil || a.ID == "" {
		return principal{}, false
	}
	return principal{advertiserID: a.ID, timezone: a.Timezone}, true
}

// report runs q under the concurrency limit and the query timeout.
func (h *Handler) report(q *Query) (*Report, *apiError) {
	if !h.acquire() {
		reportsBusy.Inc()
		return nil, &apiError{status: fasthttp.StatusServiceUnavailable, code: "busy",
			message: "too many reports are running; retry in a moment", retryAfter: true}
	}
	defer h.release()
	ctx, cancel := context.WithTimeout(context.Background(), h.cfg.QueryTimeout)
	defer cancel()
	start := time.Now()
	rep, err := h.run(ctx, q)
	reportsQuerySeconds.UpdateDuration(start)
	if err == nil {
		return rep, nil
	}
	var exc *chgo.Exception
	isExc := errors.As(err, &exc)
	switch {
	case errors.Is(err, errTooManyRows) || isExc && exc.Code == codeTooManyRows:
		reportsTooManyRows.Inc()
		return nil, badParam("group_by", "too_many_rows", "the report has more than %d rows; "+
			"narrow the date range, filter by campaign_id or group by fewer dimensions", h.cfg.MaxRows)
	case errors.Is(err, context.DeadlineExceeded) || isExc && exc.Code == codeTimeoutExceeded:
		reportsTimeouts.Inc()
		h.cfg.Logger.Warn("report query timed out", "timeout", h.cfg.QueryTimeout, "err", err)
		return nil, &apiError{status: fasthttp.StatusGatewayTimeout, code: "timeout",
			message: fmt.Sprintf("the report did not finish within %v; narrow the request", h.cfg.QueryTimeout)}
	case !isExc:
		reportsUnavailable.Inc()
		h.cfg.Logger.Error("report query failed: ClickHouse unavailable", "err", err)
		return nil, &apiError{status: fasthttp.StatusServiceUnavailable, code: "unavailable",
			message: "the report store is unavailable; retry later", retryAfter: true}
	default:
		reportsFailed.Inc()
		h.cfg.Logger.Error("report query failed", "err", err)
		return nil, &apiError{status: fasthttp.StatusInternalServerError, code: "internal", message: "the report query failed"}
	}
}

// acquire takes a query slot, waiting at most cfg.MaxWait.
func (h *Handler) acquire() bool {
	select {
	case h.sem <- struct{}{}:
		reportsInflight.Add(1)
		return true
	default:
	}
	if h.cfg.MaxWait <= 0 {
		return false
	}
	t := time.NewTimer(h.cfg.MaxWait)
	defer t.Stop()
	select {
	case h.sem <- struct{}{}:
		reportsInflight.Add(1)
		return true
	case <-t.C:
		return false
	}
}

func (h *Handler) release() {
	reportsInflight.Add(-1)
	<-h.sem
}

// ClickHouse error codes the reports map to answers.
const (
	codeTooManyRows     = 158 // TOO_MANY_ROWS (max_rows_to_group_by)
	codeTimeoutExceeded = 159 // TIMEOUT_EXCEEDED (max_execution_time)
)

var errTooManyRows = errors.New("report has too many rows")

// run executes q and reads every row, failing with errTooManyRows when
// there are more than cfg.MaxRows.
func (h *Handler) run(ctx context.Context, q *Query) (*Report, error) {
	var rs *rollupState
	if isBackfilled(chooseTable(q, zoneSegments(q.Loc, q.From, q.To), true)) {
		rs = h.rollupState(ctx)
	}
	return h.execute(ctx, q, buildPlan(h.cfg.Database, q, h.cfg.MaxRows+1, h.limits(), rs))
}

func (h *Handler) limits() limitSettings {
	return limitSettings{
		maxExecutionSeconds: int(math.Ceil(h.cfg.QueryTimeout.Seconds())),
		maxGroups:           h.cfg.MaxRows + 1,
	}
}

// execute runs p, the plan of q.
func (h *Handler) execute(ctx context.Context, q *Query, p *plan) (*Report, error) {
	var id [8]byte
	rand.Read(id[:])
	ctx = chgo.Context(ctx, chgo.WithQueryID("adserver-report-"+hex.EncodeToString(id[:])))
	rows, err := h.cfg.Conn.Query(ctx, p.sql, p.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()

	rep := &Report{Table: p.source}
	nk := len(q.GroupBy)
	var (
		times = make([]int64, nk)
		strs  = make([]string, nk)
		m     Metrics
		dest  = make([]any, 0, nk+4)
	)
	for i, d := range q.GroupBy {
		if d.isTime() {
			dest = append(dest, &times[i])
		} else {
			dest = append(dest, &strs[i])
		}
	}
	dest = append(dest, &m.Impressions, &m.Clicks, &m.Conversions, &m.SpendMicros)
	for rows.Next() {
		if len(rep.Rows) == h.cfg.MaxRows {
			return nil, errTooManyRows
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("cannot read report row: %w", err)
		}
		r := Row{Metrics: m}
		if nk > 0 {
			r.Keys = make([]string, nk)
		}
		for i, d := range q.GroupBy {
			switch d {
			case DimDay:
				r.Keys[i] = dayLabel(times[i])
			case DimHour:
				r.Keys[i] = hourLabel(times[i], q.Loc)
			default:
				r.Keys[i] = strs[i]
			}
		}
		rep.Totals.add(&m)
		rep.Rows = append(rep.Rows, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

// writeError answers {"error":{"code","message","field"}}.
func writeError(ctx *fasthttp.RequestCtx, e *apiError) {
	if e.retryAfter {
		ctx.Response.Header.Set("Retry-After", "1")
	}
	b := append([]byte(nil), `{"error":{"code":`...)
	b = appendJSONString(b, e.code)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, e.message)
	if e.field != "" {
		b = append(b, `,"field":`...)
		b = appendJSONString(b, e.field)
	}
	b = append(b, "}}\n"...)
	ctx.SetStatusCode(e.status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}
