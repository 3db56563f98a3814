package server

import (
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/valyala/fasthttp"
)

// serveServing routes the serving listener.
func (s *Server) serveServing(ctx *fasthttp.RequestCtx) {
	path := ctx.Path()
	switch string(path) {
	case "/v1/ad":
		s.handleAd(ctx)
	case "/openrtb2/bid":
		s.handleOpenRTB(ctx)
	case PathImpression:
		s.track(ctx, events.TypeImpression)
	case PathClick:
		s.track(ctx, events.TypeClick)
	case PathConversion:
		s.track(ctx, events.TypeConversion)
	case PathWin:
		s.track(ctx, events.TypeWin)
	case PathBilling:
		s.track(ctx, events.TypeBilling)
	case PathLoss:
		s.track(ctx, events.TypeLoss)
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
	default:
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint on the serving listener", "")
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
