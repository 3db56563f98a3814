package loadtest

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/valyala/fasthttp"
)

// putRecorder is a management API stand-in that records PUTs; it answers
// 503 to the first PUT of each path when flaky is set.
type putRecorder struct {
	mu     sync.Mutex
	bodies map[string][]byte // path -> body
	auth   map[string]string
	order  []string
	flaky  bool
	tries  map[string]int
}

func (p *putRecorder) handle(ctx *fasthttp.RequestCtx) {
	if string(ctx.Method()) != fasthttp.MethodPut {
		ctx.SetStatusCode(fasthttp.StatusMethodNotAllowed)
		return
	}
	path := string(ctx.Path())
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tries[path]++
	if p.flaky && p.tries[path] == 1 {
		ctx.SetStatusCode(fasthttp.StatusServiceUnavailable)
		return
	}
	p.bodies[path] = append([]byte(nil), ctx.PostBody()...)
	p.auth[path] = string(ctx.Request.Header.Peek("Authorization"))
	p.order = append(p.order, path)
	ctx.SetStatusCode(fasthttp.StatusOK)
}

func newPutRecorder(flaky bool) *putRecorder {
	return &putRecorder{bodies: map[string][]byte{}, auth: map[string]string{}, tries: map[string]int{}, flaky: flaky}
}

func TestSeedCreatesCatalog(t *testing.T) {
	rec := newPutRecorder(true)
	url := startServer(t, rec.handle)
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	res, err := Seed(context.Background(), SeedConfig{Admin: url, Token: "s3cret", Campaigns: 200, Advertisers: 7, Seed: 3, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sc := DefaultScenario()
	if res.Created["campaigns"] != 200 || res.Created["advertisers"] != 7 || res.Created["placements"] != len(sc.Placements) || res.Failed != 0 {
		t.Fatalf("result %+v", res)
	}
	if res.Retried != 200+7+len(sc.Placements) {
		t.Errorf("retried %d, want one per item (each path answered 503 once)", res.Retried)
	}
	var nc, na, np int
	advs := map[string]bool{}
	for path, body := range rec.bodies {
		if rec.auth[path] != "Bearer s3cret" {
			t.Errorf("%s: Authorization %q", path, rec.auth[path])
		}
		id := path[strings.LastIndexByte(path, '/')+1:]
		switch {
		case strings.HasPrefix(path, "/v1/advertisers/"):
			na++
			a, err := campaign.DecodeAdvertiser(body)
			if err != nil || a.ID != id {
				t.Fatalf("%s: %v (%s)", path, err, body)
			}
			advs[a.ID] = true
			var m map[string]any
			_ = json.Unmarshal(body, &m)
			for _, k := range []string{"id", "name", "api_key", "timezone"} {
				if _, ok := m[k]; !ok {
					t.Errorf("%s: no %s", path, k)
				}
			}
		case strings.HasPrefix(path, "/v1/placements/"):
			np++
			p, err := campaign.DecodePlacement(body)
			if err != nil || p.ID != id || p.Format != "banner" || len(p.Sizes) == 0 || p.Floor <= 0 {
				t.Fatalf("%s: %v (%s)", path, err, body)
			}
		case strings.HasPrefix(path, "/v1/campaigns/"):
			nc++
			c, err := campaign.DecodeCampaign(body)
			if err != nil || c.ID != id {
				t.Fatalf("%s: %v (%s)", path, err, body)
			}
			if c.Status != "active" || !c.Live(now) || len(c.Creatives) == 0 {
				t.Errorf("%s: not live now: %s", path, body)
			}
			for _, cr := range c.Creatives {
				if cr.Format != "banner" || !strings.Contains(cr.HTML, "{{CLICK_URL}}") || len(cr.Adomain) == 0 {
					t.Errorf("%s: creative %+v", path, cr)
				}
			}
		default:
			t.Errorf("unexpected PUT %s", path)
		}
	}
	if nc != 200 || na != 7 || np != len(sc.Placements) {
		t.Errorf("PUTs: %d campaigns, %d advertisers, %d placements", nc, na, np)
	}
	// Campaigns come after the advertisers they refer to.
	firstCampaign := len(rec.order)
	lastAdvertiser := 0
	for i, p := range rec.order {
		if strings.HasPrefix(p, "/v1/campaigns/") && i < firstCampaign {
			firstCampaign = i
		}
		if strings.HasPrefix(p, "/v1/advertisers/") {
			lastAdvertiser = i
		}
	}
	if lastAdvertiser > firstCampaign {
		t.Error("a campaign was created before its advertiser")
	}
}

func TestSeedReportsFailures(t *testing.T) {
	url := startServer(t, func(ctx *fasthttp.RequestCtx) {
		if strings.HasPrefix(string(ctx.Path()), "/v1/campaigns/c-1") { // c-1, c-10..c-19
			ctx.SetStatusCode(fasthttp.StatusBadRequest)
			ctx.SetBodyString(`{"error":{"code":"invalid","message":"nope"}}`)
			return
		}
		ctx.SetStatusCode(fasthttp.StatusNoContent)
	})
	res, err := Seed(context.Background(), SeedConfig{Admin: url, Campaigns: 20})
	if err != nil {
		t.Fatal(err)
	}
	if res.Failed != 11 || res.Created["campaigns"] != 9 || len(res.Errors) != 10 || !strings.Contains(res.Errors[0], "400") {
		t.Errorf("result %+v", res)
	}
}

// matches evaluates targeting against a request's attributes, as the
// server's index is meant to: any clause whose predicates all hold, and a
// creative whose size is one of the request's slots.
func matches(c *Campaign, attrs map[string]map[string]bool) bool {
	size := false
	for _, cr := range c.Creatives {
		if attrs["size"][itoa(cr.W)+"x"+itoa(cr.H)] {
			size = true
		}
	}
	return size && targetingMatches(c, attrs)
}

// targetingMatches reports whether c's targeting matches attrs: what the
// server's index answers.
func targetingMatches(c *Campaign, attrs map[string]map[string]bool) bool {
	if len(c.Targeting.Any) == 0 {
		return true
	}
	for _, cl := range c.Targeting.Any {
		ok := true
		for _, p := range cl.All {
			has := false
			for _, v := range append(p.In, p.NotIn...) {
				if attrs[p.Attr][strings.ToLower(v)] {
					has = true
				}
			}
			if (len(p.In) > 0) != has {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// A realistic share of the catalog matches a request: 1-5% on average by
// targeting (what the server's index returns), about 1% with a creative of
// the slot's size too.
func TestCatalogMatchShare(t *testing.T) {
	sc := DefaultScenario()
	cat := BuildCatalog(sc, 1000, 50, 9, time.Now())
	g := NewGenerator(sc, 9)
	src := g.NewSource(77)
	var r Request
	const n = 1000
	total, targeted := 0, 0
	zero := 0
	for range n {
		g.Next(src, &r)
		attrs := map[string]map[string]bool{}
		g.Attrs(&r, func(a, v string) {
			if attrs[a] == nil {
				attrs[a] = map[string]bool{}
			}
			attrs[a][v] = true
		})
		k := 0
		for i := range cat.Campaigns {
			if matches(&cat.Campaigns[i], attrs) {
				k++
			}
			if targetingMatches(&cat.Campaigns[i], attrs) {
				targeted++
			}
		}
		if k == 0 {
			zero++
		}
		total += k
	}
	share := float64(total) / n / float64(len(cat.Campaigns))
	tshare := float64(targeted) / n / float64(len(cat.Campaigns))
	t.Logf("mean share of campaigns matching a request: %.2f%% by targeting (estimate %.2f%%), %.2f%% with a fitting creative (estimate %.2f%%); requests matching none: %d of %d",
		100*tshare, 100*cat.EstimatedMatch, 100*share, 100*cat.EstimatedFit, zero, n)
	if tshare < 0.01 || tshare > 0.05 {
		t.Errorf("a request's targeting matches %.2f%% of the campaigns, want 1-5%%", 100*tshare)
	}
	if share < 0.005 || share > tshare {
		t.Errorf("a request matches %.2f%% of the campaigns with a fitting creative, want 0.5%%-%.2f%%", 100*share, 100*tshare)
	}
	for name, est := range map[string][2]float64{"match": {tshare, cat.EstimatedMatch}, "fit": {share, cat.EstimatedFit}} {
		if r := est[0] / est[1]; r < 0.5 || r > 2 {
			t.Errorf("%s: measured %.2f%%, estimated %.2f%%: the estimate is off", name, 100*est[0], 100*est[1])
		}
	}
	// Targeting uses several attributes, not just one.
	attrs := map[string]int{}
	for _, c := range cat.Campaigns {
		for _, cl := range c.Targeting.Any {
			for _, p := range cl.All {
				attrs[p.Attr]++
			}
		}
	}
	if len(attrs) < 8 {
		t.Errorf("targeting uses only %v", attrs)
	}
}

func TestCatalogDeterministic(t *testing.T) {
	sc := DefaultScenario()
	now := time.Now()
	a, _ := json.Marshal(BuildCatalog(sc, 50, 5, 1, now))
	b, _ := json.Marshal(BuildCatalog(sc, 50, 5, 1, now))
	if string(a) != string(b) {
		t.Error("same seed, different catalog")
	}
}
