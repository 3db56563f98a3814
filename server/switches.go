package server

import (
	"bytes"
	"context"
	"errors"

	"github.com/adserver/adserver/targeting/feed"
	"github.com/valyala/fasthttp"
)

// serveSwitches answers GET /v1/switches (the whole state) and PUT
// /v1/switches (a partial update, admin token required). The record scheme
// on adserver.control is described in targeting/feed/switches.go.
func (s *Server) serveSwitches(ctx *fasthttp.RequestCtx) {
	switch string(ctx.Method()) {
	case fasthttp.MethodGet:
		writeRawJSON(ctx, fasthttp.StatusOK, feed.EncodeSwitches(s.switches()))
	case fasthttp.MethodPut:
		if s.requireAdmin(ctx) {
			s.putSwitches(ctx)
		}
	default:
		methodNotAllowed(ctx, "GET, PUT")
	}
}

// putSwitches validates the patch, publishes one record per changed field
// and waits until this node applied them; it answers the whole new state.
func (s *Server) putSwitches(ctx *fasthttp.RequestCtx) {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "empty_body",
			`the request needs a JSON body such as {"serving":false}`, "")
		return
	}
	p, err := feed.DecodeSwitchPatch(body)
	if err != nil {
		writeValidation(ctx, err)
		return
	}
	err = s.Feed.PublishSwitches(context.Background(), p, s.Config.ApplyWait)
	switch {
	case err == nil:
		writeRawJSON(ctx, fasthttp.StatusOK, feed.EncodeSwitches(s.switches()))
	case errors.Is(err, feed.ErrNotVisible):
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "not_yet_visible", err.Error(), "")
	default:
		s.log().Error("cannot publish a switch change", "error", err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "kafka_unavailable",
			"the change was not (completely) written; retry the same request: "+err.Error(), "")
	}
}
