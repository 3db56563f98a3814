package server

import (
	"strconv"
	"time"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/internal/promhist"
	"github.com/valyala/fasthttp"
)

// Serving-listener endpoints, the label values of the request metrics.
const (
	epAd = iota
	epOpenRTB
	epImpression
	epClick
	epConversion
	epWin
	epBilling
	epLoss
	epHealth
	epOther
	numEndpoints
)

var endpointNames = [numEndpoints]string{"ad", "openrtb", "imp", "click", "conv", "win", "bill", "loss", "health", "other"}

// trackedStatuses get their own counter; any other status counts as
// "other".
var trackedStatuses = [...]int{200, 204, 302, 400, 401, 403, 404, 405, 410, 413, 429, 500, 503}

var (
	// requestsByStatus[endpoint][i] counts trackedStatuses[i]; the extra
	// last slot counts every other status.
	requestsByStatus [numEndpoints][len(trackedStatuses) + 1]*metrics.Counter
	// requestDuration is the time the handler took, by endpoint (the
	// decision latency for ad and openrtb).
	requestDuration [numEndpoints]*promhist.Histogram
)

// noFillCounters count unfilled decisions by reason
// (adserver_decision_nofill_total{reason}); the map is read-only after init.
var (
	noFillCounters = map[string]*metrics.Counter{}
	noFillOther    = metrics.NewCounter(`adserver_decision_nofill_total{reason="other"}`)
)

func init() {
	for _, r := range []string{decision.NoFillServingOff, decision.NoFillDeadline, decision.NoFillNoCandidates,
		decision.NoFillNoWinner, decision.NoFillBlocked} {
		noFillCounters[r] = metrics.NewCounter(`adserver_decision_nofill_total{reason="` + r + `"}`)
	}
}

func init() {
	for e, name := range endpointNames {
		for i, st := range trackedStatuses {
			requestsByStatus[e][i] = metrics.NewCounter(`adserver_http_requests_total{listener="serving",endpoint="` +
				name + `",status="` + strconv.Itoa(st) + `"}`)
		}
		requestsByStatus[e][len(trackedStatuses)] = metrics.NewCounter(`adserver_http_requests_total{listener="serving",endpoint="` +
			name + `",status="other"}`)
		requestDuration[e] = promhist.New(`adserver_http_request_duration_seconds{listener="serving",endpoint="`+name+`"}`,
			promhist.DurationBuckets)
	}
}

// observeRequest counts a finished serving request. It does not allocate
// or lock.
func observeRequest(endpoint int, ctx *fasthttp.RequestCtx, start time.Time) {
	requestDuration[endpoint].Observe(time.Since(start).Seconds())
	st := ctx.Response.StatusCode()
	i := len(trackedStatuses)
	for j, s := range trackedStatuses {
		if s == st {
			i = j
			break
		}
	}
	requestsByStatus[endpoint][i].Inc()
}
