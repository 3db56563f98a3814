package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/pprof"
	"sort"
	"strconv"
	"strings"

	"github.com/VictoriaMetrics/metrics"
	"github.com/adserver/adserver/bus"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting/feed"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttpadaptor"
)

var pprofHandler = fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Index)

// serveAdmin routes the management listener.
func (s *Server) serveAdmin(ctx *fasthttp.RequestCtx) {
	path := string(ctx.Path())
	switch {
	case path == "/metrics":
		ctx.SetContentType("text/plain; version=0.0.4")
		metrics.WritePrometheus(ctx, true)
	case strings.HasPrefix(path, "/debug/pprof"):
		s.servePprof(ctx, path)
	case path == "/v1/campaigns":
		s.listCampaigns(ctx)
	case strings.HasPrefix(path, "/v1/campaigns/"):
		s.catalogItem(ctx, bus.TopicCampaigns, strings.TrimPrefix(path, "/v1/campaigns/"))
	case strings.HasPrefix(path, "/v1/placements/"):
		s.catalogItem(ctx, bus.TopicPlacements, strings.TrimPrefix(path, "/v1/placements/"))
	case strings.HasPrefix(path, "/v1/advertisers/"):
		s.catalogItem(ctx, bus.TopicAdvertisers, strings.TrimPrefix(path, "/v1/advertisers/"))
	case path == "/v1/switches":
		s.serveSwitches(ctx)
	case path == "/v1/reports" && s.Reports != nil:
		s.Reports(ctx)
	case (path == "/dashboard" || strings.HasPrefix(path, "/dashboard/")) && s.Dashboard != nil:
		s.Dashboard(ctx)
	case path == "/healthz":
		ctx.SetBodyString("ok\n")
	default:
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint on the management listener", "")
	}
}

func (s *Server) servePprof(ctx *fasthttp.RequestCtx, path string) {
	switch strings.TrimPrefix(path, "/debug/pprof/") {
	case "cmdline":
		fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Cmdline)(ctx)
	case "profile":
		fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Profile)(ctx)
	case "symbol":
		fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Symbol)(ctx)
	case "trace":
		fasthttpadaptor.NewFastHTTPHandlerFunc(pprof.Trace)(ctx)
	default:
		pprofHandler(ctx)
	}
}

func methodNotAllowed(ctx *fasthttp.RequestCtx, allow string) {
	ctx.Response.Header.Set("Allow", allow)
	writeError(ctx, fasthttp.StatusMethodNotAllowed, "method_not_allowed", "allowed methods: "+allow, "")
}

// catalogItem serves PUT, GET and DELETE of one catalog record.
func (s *Server) catalogItem(ctx *fasthttp.RequestCtx, topic, id string) {
	if id == "" || strings.Contains(id, "/") {
		writeError(ctx, fasthttp.StatusNotFound, "not_found", "no such endpoint", "")
		return
	}
	allow := "GET, PUT"
	if topic == bus.TopicCampaigns {
		allow = "GET, PUT, DELETE"
	}
	switch string(ctx.Method()) {
	case fasthttp.MethodGet:
		s.getItem(ctx, topic, id)
	case fasthttp.MethodPut:
		if s.requireAdmin(ctx) {
			s.putItem(ctx, topic, id)
		}
	case fasthttp.MethodDelete:
		if topic != bus.TopicCampaigns {
			methodNotAllowed(ctx, allow)
			return
		}
		if s.requireAdmin(ctx) {
			s.deleteItem(ctx, topic, id)
		}
	default:
		methodNotAllowed(ctx, allow)
	}
}

func (s *Server) getItem(ctx *fasthttp.RequestCtx, topic, id string) {
	snap := s.Feed.Snapshot()
	var v any
	switch topic {
	case bus.TopicCampaigns:
		if c := snap.Index.Get(id); c != nil {
			v = c
		}
	case bus.TopicPlacements:
		if p := snap.Placements[id]; p != nil {
			v = p
		}
	case bus.TopicAdvertisers:
		if a := snap.Advertisers[id]; a != nil {
			v = publicAdvertiser(a)
		}
	}
	if v == nil {
		writeError(ctx, fasthttp.StatusNotFound, "not_found", kindOf(topic)+" "+strconv.Quote(id)+" does not exist", "")
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, v)
}

// publicAdvertiser hides the key hash: the key is write-only.
func publicAdvertiser(a *campaign.Advertiser) any {
	return struct {
		ID        string `json:"id"`
		Name      string `json:"name,omitempty"`
		Timezone  string `json:"timezone,omitempty"`
		HasAPIKey bool   `json:"has_api_key"`
	}{a.ID, a.Name, a.Timezone, a.APIKeyHash != ""}
}

func kindOf(topic string) string {
	switch topic {
	case bus.TopicCampaigns:
		return "campaign"
	case bus.TopicPlacements:
		return "placement"
	}
	return "advertiser"
}

// putItem validates the body, publishes it to Kafka and waits until this
// node applied it.
func (s *Server) putItem(ctx *fasthttp.RequestCtx, topic, id string) {
	body := ctx.PostBody()
	if len(bytes.TrimSpace(body)) == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "empty_body", "the request needs a JSON body", "")
		return
	}
	var (
		rec any
		err error
		got string
	)
	switch topic {
	case bus.TopicCampaigns:
		var c *campaign.Campaign
		if c, err = campaign.DecodeCampaign(body); err == nil {
			got = c.ID
			if s.Feed.Snapshot().Advertisers[c.AdvertiserID] == nil {
				writeError(ctx, fasthttp.StatusBadRequest, "unknown_advertiser",
					"advertiser "+strconv.Quote(c.AdvertiserID)+" does not exist; PUT /v1/advertisers/{id} first", "advertiser_id")
				return
			}
			rec = c
		}
	case bus.TopicPlacements:
		var p *campaign.Placement
		if p, err = campaign.DecodePlacement(body); err == nil {
			got, rec = p.ID, p
		}
	case bus.TopicAdvertisers:
		var a *campaign.Advertiser
		if a, err = campaign.DecodeAdvertiser(body); err == nil {
			got, rec = a.ID, a
			if a.APIKeyHash == "" {
				// Keep the existing key when the update names none.
				if old := s.Feed.Snapshot().Advertisers[id]; old != nil {
					a.APIKeyHash = old.APIKeyHash
				}
			}
		}
	}
	if err != nil {
		writeValidation(ctx, err)
		return
	}
	if got != id {
		writeError(ctx, fasthttp.StatusBadRequest, "id_mismatch", "the body's id "+strconv.Quote(got)+" differs from the path's "+strconv.Quote(id), "id")
		return
	}
	value, err := json.Marshal(rec)
	if err != nil {
		writeError(ctx, fasthttp.StatusInternalServerError, "internal", "cannot encode the record", "")
		return
	}
	if !s.publish(ctx, topic, id, value) {
		return
	}
	if topic == bus.TopicAdvertisers {
		writeJSON(ctx, fasthttp.StatusOK, publicAdvertiser(rec.(*campaign.Advertiser)))
		return
	}
	writeRawJSON(ctx, fasthttp.StatusOK, value)
}

func (s *Server) deleteItem(ctx *fasthttp.RequestCtx, topic, id string) {
	if s.Feed.Snapshot().Index.Get(id) == nil {
		writeError(ctx, fasthttp.StatusNotFound, "not_found", kindOf(topic)+" "+strconv.Quote(id)+" does not exist", "")
		return
	}
	if s.publish(ctx, topic, id, nil) {
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	}
}

// publish writes the record and waits for this node to apply it; on
// failure it writes the error answer and returns false.
func (s *Server) publish(ctx *fasthttp.RequestCtx, topic, id string, value []byte) bool {
	err := s.Feed.Publish(context.Background(), topic, id, value, s.Config.ApplyWait)
	switch {
	case err == nil:
		return true
	case errors.Is(err, feed.ErrNotVisible):
		ctx.Response.Header.Set("Retry-After", "1")
		writeError(ctx, fasthttp.StatusServiceUnavailable, "not_yet_visible", err.Error(), "")
	default:
		s.log().Error("cannot publish a catalog change", "topic", topic, "id", id, "error", err)
		writeError(ctx, fasthttp.StatusServiceUnavailable, "kafka_unavailable", "the change was not written: "+err.Error(), "")
	}
	return false
}

// listCampaigns answers GET /v1/campaigns?advertiser_id=&limit=&after=,
// sorted by id.
func (s *Server) listCampaigns(ctx *fasthttp.RequestCtx) {
	if !ctx.IsGet() {
		methodNotAllowed(ctx, "GET")
		return
	}
	args := ctx.QueryArgs()
	adv := string(args.Peek("advertiser_id"))
	after := string(args.Peek("after"))
	limit := 1000
	if l := args.Peek("limit"); len(l) > 0 {
		n, err := strconv.Atoi(string(l))
		if err != nil || n < 1 || n > 10000 {
			writeError(ctx, fasthttp.StatusBadRequest, "invalid_parameter", "limit must be 1..10000", "limit")
			return
		}
		limit = n
	}
	var out []*campaign.Campaign
	s.Feed.Snapshot().Index.All(func(c *campaign.Campaign) bool {
		if (adv == "" || c.AdvertiserID == adv) && c.ID > after {
			out = append(out, c)
		}
		return true
	})
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	resp := struct {
		Campaigns []*campaign.Campaign `json:"campaigns"`
		Next      string               `json:"next,omitempty"`
	}{Campaigns: out}
	if len(out) > limit {
		resp.Campaigns = out[:limit]
		resp.Next = out[limit-1].ID
	}
	if resp.Campaigns == nil {
		resp.Campaigns = []*campaign.Campaign{}
	}
	writeJSON(ctx, fasthttp.StatusOK, resp)
}
