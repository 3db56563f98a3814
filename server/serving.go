package server

import (
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
