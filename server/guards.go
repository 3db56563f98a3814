package server

import (
	"strconv"
	"time"

	"github.com/adserver/adserver/config"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/server/guard"
	"github.com/valyala/fasthttp"
)

// Guards are the serving listener's defences against floods and fraud. A
// nil field is off.
type Guards struct {
	// IP limits ad requests per client IP (the connection's address).
	IP *guard.Limiter
	// Placement limits ad requests per placement.
	Placement *guard.Limiter
	// Abuse flags user ids seen from too many IPs or devices: their
	// requests are served, but their beacons charge nothing.
	Abuse *guard.Abuse
}

// NewGuards builds the guards cfg turns on.
func NewGuards(cfg config.Config) (*Guards, error) {
	g := &Guards{}
	var err error
	if cfg.Limits.IPRate > 0 {
		if g.IP, err = guard.NewLimiter(guard.LimiterConfig{Name: "ip", Rate: cfg.Limits.IPRate, Burst: cfg.Limits.IPBurst}); err != nil {
			return nil, err
		}
	}
	if cfg.Limits.PlacementRate > 0 {
		if g.Placement, err = guard.NewLimiter(guard.LimiterConfig{Name: "placement", Rate: cfg.Limits.PlacementRate, Burst: cfg.Limits.PlacementBurst}); err != nil {
			return nil, err
		}
	}
	if cfg.Abuse.MaxDistinct > 0 {
		if g.Abuse, err = guard.NewAbuse(guard.AbuseConfig{MaxDistinct: cfg.Abuse.MaxDistinct,
			Window: cfg.Abuse.Window, FlagFor: cfg.Abuse.FlagFor}); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// admitIP applies the per-IP limit before a request is parsed; false means
// the request was answered 429.
func (s *Server) admitIP(ctx *fasthttp.RequestCtx, now time.Time) bool {
	if s.Guards == nil || s.Guards.IP == nil {
		return true
	}
	ok, retry := s.Guards.IP.CheckBytes(ctx.RemoteIP(), now)
	if !ok {
		tooMany(ctx, "rate_limited_ip", "too many requests from this IP address", retry)
	}
	return ok
}

// admitRequest applies the per-placement limit and the abuse detection to
// a parsed request; false means it was answered 429. A flagged user's
// request goes on with NoCharge set.
func (s *Server) admitRequest(ctx *fasthttp.RequestCtx, req *decision.Request, now time.Time) bool {
	g := s.Guards
	if g == nil {
		return true
	}
	if g.Placement != nil {
		// Each placement of the request once (OpenRTB imps have their own).
		for p := range req.Placements {
			if ok, retry := g.Placement.Check(p, now); !ok {
				tooMany(ctx, "rate_limited_placement", "too many requests for placement "+strconv.Quote(p), retry)
				return false
			}
		}
	}
	if g.Abuse != nil && req.UserID != "" && g.Abuse.Observe(req.UserID, req.IP, req.UA, now) {
		req.NoCharge = true
	}
	return true
}

func tooMany(ctx *fasthttp.RequestCtx, code, msg string, retry time.Duration) {
	secs := int((retry + time.Second - 1) / time.Second)
	ctx.Response.Header.Set("Retry-After", strconv.Itoa(max(secs, 1)))
	writeError(ctx, fasthttp.StatusTooManyRequests, code, msg+"; retry after the Retry-After header's seconds", "")
}
