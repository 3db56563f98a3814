package server

import (
	"time"

	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/valyala/fasthttp"
)

// serveServing routes the serving listener.
func (s *Server) serveServing(ctx *fasthttp.RequestCtx) {
	start := time.Now()
	ep := epOther
	defer func() { observeRequest(ep, ctx, start) }()
	path := ctx.Path()
	switch string(path) {
	case "/v1/ad":
		ep = epAd
		s.handleAd(ctx)
	case "/openrtb2/bid":
		ep = epOpenRTB
		s.handleOpenRTB(ctx)
	case PathImpression:
		ep = epImpression
		s.track(ctx, events.TypeImpression)
	case PathClick:
		ep = epClick
		s.track(ctx, events.TypeClick)
	case PathConversion:
		ep = epConversion
		s.track(ctx, events.TypeConversion)
	case PathWin:
		ep = epWin
		s.track(ctx, events.TypeWin)
	case PathBilling:
		ep = epBilling
		s.track(ctx, events.TypeBilling)
	case PathLoss:
		ep = epLoss
		s.track(ctx, events.TypeLoss)
	case "/readyz", "/healthz":
		ep = epHealth
		s.serveHealth(ctx, string(path))
	default:
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint on the serving listener", "")
	}
}

func (s *Server) serveHealth(ctx *fasthttp.RequestCtx, path string) {
	switch path {
	case "/healthz":
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("ok\n")
	case "/readyz":
		if err := s.ready(); err != nil {
			writeError(ctx, fasthttp.StatusServiceUnavailable, "not_ready", err.Error(), "")
			return
		}
		ctx.SetContentType("text/plain")
		ctx.SetBodyString("ready\n")
	}
}

func (s *Server) track(ctx *fasthttp.RequestCtx, t events.Type) {
	if s.Tracker == nil {
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "event tracking is not enabled on this node", "")
		return
	}
	s.Tracker.Serve(ctx, t)
}

// CurrentSwitches returns the operators' switches now in force (nil: all
// on).
func (s *Server) CurrentSwitches() *decision.Switches { return s.switches() }
