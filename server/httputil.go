package server

import (
	"crypto/subtle"
	"encoding/json"
	"errors"

	"github.com/adserver/adserver/campaign"
	"github.com/valyala/fasthttp"
)

// apiError is the body of every error answer:
// {"error":{"code":"...","message":"...","field":"..."}}.
type apiError struct {
	Code    string                `json:"code"`
	Message string                `json:"message"`
	Field   string                `json:"field,omitempty"`
	Details []campaign.FieldError `json:"details,omitempty"`
}

func writeError(ctx *fasthttp.RequestCtx, status int, code, message, field string) {
	writeJSON(ctx, status, struct {
		Error apiError `json:"error"`
	}{apiError{Code: code, Message: message, Field: field}})
}

// writeValidation answers 400 with the first problem in "error" and all of
// them in "error.details".
func writeValidation(ctx *fasthttp.RequestCtx, err error) {
	var fes campaign.Errors
	if !errors.As(err, &fes) || len(fes) == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_request", err.Error(), "")
		return
	}
	e := apiError{Code: fes[0].Code, Message: fes[0].Error(), Field: fes[0].Field}
	if len(fes) > 1 {
		e.Message = fes.Error()
		e.Details = fes
	}
	writeJSON(ctx, fasthttp.StatusBadRequest, struct {
		Error apiError `json:"error"`
	}{e})
}

func writeJSON(ctx *fasthttp.RequestCtx, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		ctx.SetStatusCode(fasthttp.StatusInternalServerError)
		ctx.SetBodyString(`{"error":{"code":"internal","message":"cannot encode the answer"}}`)
		return
	}
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

func writeRawJSON(ctx *fasthttp.RequestCtx, status int, b []byte) {
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(b)
}

// bearer returns the token of an "Authorization: Bearer T" header.
func bearer(ctx *fasthttp.RequestCtx) []byte {
	h := ctx.Request.Header.Peek("Authorization")
	const p = "Bearer "
	if len(h) > len(p) && string(h[:len(p)]) == p {
		return h[len(p):]
	}
	return nil
}

// isAdmin reports whether the request carries the admin token.
func (s *Server) isAdmin(ctx *fasthttp.RequestCtx) bool {
	t := bearer(ctx)
	return len(t) > 0 && subtle.ConstantTimeCompare(t, []byte(s.adminToken)) == 1
}

// requireAdmin answers 401 unless the request carries the admin token.
func (s *Server) requireAdmin(ctx *fasthttp.RequestCtx) bool {
	if s.isAdmin(ctx) {
		return true
	}
	ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="adserver"`)
	if len(ctx.Request.Header.Peek("Authorization")) == 0 {
		writeError(ctx, fasthttp.StatusUnauthorized, "unauthorized", "this call needs Authorization: Bearer <admin token>", "")
	} else {
		writeError(ctx, fasthttp.StatusUnauthorized, "unauthorized", "wrong admin token", "")
	}
	return false
}

// serverErrorHandler turns fasthttp's own request errors (oversize body,
// malformed request, timeouts) into JSON errors.
func serverErrorHandler(ctx *fasthttp.RequestCtx, err error) {
	switch {
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		writeError(ctx, fasthttp.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than the listener's max-body", "")
	default:
		var terr interface{ Timeout() bool }
		if errors.As(err, &terr) && terr.Timeout() {
			writeError(ctx, fasthttp.StatusRequestTimeout, "timeout", "request was not read in time", "")
			return
		}
		writeError(ctx, fasthttp.StatusBadRequest, "bad_request", "cannot parse the HTTP request: "+err.Error(), "")
	}
}
