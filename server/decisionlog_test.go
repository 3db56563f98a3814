package server

import (
	"encoding/json"
	"math"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/adserver/adserver/events"
	"github.com/valyala/fasthttp"
)

// decisionLogServer is testServer (over cs, or two campaigns by default)
// with a Recorder over a fresh event log and its switches (the decision
// log sample rate) held in *rate: set them with setRate before use.
func decisionLogServer(t testing.TB, rate *atomic.Pointer[decision.Switches], cs ...*campaign.Campaign) (*Server, *events.Log) {
	t.Helper()
	l, err := events.OpenLog(events.LogConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := events.NewRecorder(events.RecorderConfig{NodeID: "n1", Log: l})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close(); l.Close() })
	if len(cs) == 0 {
		cs = []*campaign.Campaign{
			mustCampaign(t, camp("c-kr", "adv-1", "3.0", `{"any":[{"all":[{"attr":"country","in":["KR"]}]}]}`, 0, 300, 250)),
			mustCampaign(t, camp("c-ron", "adv-2", "2.0", `{}`, 0, 300, 250)),
		}
	}
	s := testServer(t, cs...)
	s.Tracker = &Tracker{Recorder: rec}
	s.Switches = rate.Load
	return s, l
}

// loggedDecisions syncs l and returns every decision in it.
func loggedDecisions(t testing.TB, l *events.Log) []events.Decision {
	t.Helper()
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	r := l.NewReader(events.Pos{})
	defer r.Close()
	var out []events.Decision
	for {
		recs, err := r.Read(nil, 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) == 0 {
			return out
		}
		for _, rec := range recs {
			if events.PayloadKind(rec.Payload) != events.KindDecision {
				t.Fatalf("record %d is not a decision", rec.Seq)
			}
			d := events.Decision{Seq: rec.Seq}
			if err := d.Unmarshal(rec.Payload); err != nil {
				t.Fatal(err)
			}
			out = append(out, d)
		}
	}
}

func setRate(r *atomic.Pointer[decision.Switches], v float64) {
	r.Store(&decision.Switches{Serving: true, Charging: true, DecisionLogSample: v})
}

// TestDecisionLogRecords: at rate 1 every auction of both endpoints lands
// in the log with what the answer said; at 0 none does.
func TestDecisionLogRecords(t *testing.T) {
	var rate atomic.Pointer[decision.Switches]
	s, l := decisionLogServer(t, &rate)
	setRate(&rate, 0)
	for range 20 {
		if st, body := doAd(s, adReq, ""); st != 200 {
			t.Fatalf("/v1/ad: %d %s", st, body)
		}
	}
	if ds := loggedDecisions(t, l); len(ds) != 0 {
		t.Fatalf("rate 0 logged %d decisions", len(ds))
	}

	setRate(&rate, 1)
	st, body := doAd(s, adReq, "")
	var ans struct {
		AuctionID string `json:"auction_id"`
		Ads       []struct {
			CampaignID string `json:"campaign_id"`
			Price      json.Number
		}
	}
	if err := json.Unmarshal([]byte(body), &ans); st != 200 || err != nil || len(ans.Ads) != 1 {
		t.Fatalf("/v1/ad: %d %s %v", st, body, err)
	}
	// No candidate has this size.
	noFill := `{"id":"r-2","placement_id":"p-1","geo":{"country":"KR"},"slots":[{"id":"s9","w":728,"h":90}]}`
	var nf fasthttp.RequestCtx
	nf.Request.Header.SetMethod("POST")
	nf.Request.SetRequestURI("/v1/ad")
	nf.Request.SetBodyString(noFill)
	s.serveServing(&nf)
	reason := string(nf.Response.Header.Peek("X-No-Fill-Reason"))
	if nf.Response.StatusCode() != 204 || reason == "" {
		t.Fatalf("no-fill request: %d %q", nf.Response.StatusCode(), reason)
	}
	rtb := `{"id":"b-1","at":1,"imp":[{"id":"i1","tagid":"p-1","banner":{"w":300,"h":250},"bidfloor":0.1},
		{"id":"i2","banner":{"w":728,"h":90}}],"site":{"domain":"news.example","publisher":{"id":"pub-9"}},
		"device":{"geo":{"country":"KOR"}}}`
	if st, body := doRTB(s, rtb, ""); st != 200 {
		t.Fatalf("openrtb: %d %s", st, body)
	}

	ds := loggedDecisions(t, l)
	if len(ds) != 4 {
		t.Fatalf("logged %d decisions, want 4 (1 + 1 + 2 slots): %+v", len(ds), ds)
	}
	price, _ := strconv.ParseFloat(ans.Ads[0].Price.String(), 64)
	d := ds[0]
	if d.AuctionID != ans.AuctionID || d.SlotID != "s1" || d.PlacementID != "p-1" || d.PublisherID != "pub-1" ||
		d.Country != "KR" || d.NodeID != "n1" || d.WinnerCampaignID != "c-kr" || d.WinnerAdvertiserID != "adv-1" ||
		d.WinnerCreativeID != "cr-c-kr" || d.BidMicros != 3_000_000 || d.PriceMicros != int64(math.Round(price*1e6)) ||
		d.FloorMicros != 500_000 || d.NoFillReason != "" || !d.Time.Equal(testNow) || d.Seq == 0 ||
		d.Candidates < 1 || d.Bids < 1 || d.Bids > d.Candidates {
		t.Errorf("filled decision: %+v (answer %s)", d, body)
	}
	if d := ds[1]; d.SlotID != "s9" || d.WinnerCampaignID != "" || d.NoFillReason != reason ||
		d.AuctionID == ans.AuctionID || d.Bids != 0 {
		t.Errorf("unfilled decision: %+v", d)
	}
	// OpenRTB: one record per imp, same auction; the second imp did not
	// fill although the first did.
	a, b := ds[2], ds[3]
	if a.AuctionID != b.AuctionID || a.SlotID != "i1" || b.SlotID != "i2" || a.WinnerCampaignID == "" ||
		a.BidMicros <= 0 || a.PriceMicros <= 0 || b.WinnerCampaignID != "" || b.NoFillReason != decision.NoFillNoWinner {
		t.Errorf("openrtb decisions: %+v / %+v", a, b)
	}
}

// TestDecisionSampled pins the sampling rule: none at 0 (or below, or
// NaN), all at 1, and a share within five standard deviations of the rate
// over 200,000 auction ids in the engine's format; the same seed picks the
// same auctions, another seed others.
func TestDecisionSampled(t *testing.T) {
	ids := make([]string, 200_000)
	for i := range ids {
		ids[i] = "node-a.t4x2k1." + strconv.FormatUint(uint64(i+1), 36)
	}
	for _, c := range []struct {
		rate float64
		want int
	}{{0, 0}, {-1, 0}, {math.NaN(), 0}, {1, len(ids)}, {2, len(ids)}} {
		n := 0
		for _, id := range ids {
			if DecisionSampled(42, id, c.rate) {
				n++
			}
		}
		if n != c.want {
			t.Errorf("rate %v: %d sampled, want %d", c.rate, n, c.want)
		}
	}
	for _, rate := range []float64{0.25, 0.01, 0.5, 0.999} {
		for _, seed := range []uint64{0, 1, 42} {
			n := 0
			for _, id := range ids {
				if DecisionSampled(seed, id, rate) {
					n++
				}
			}
			mean := rate * float64(len(ids))
			sd := math.Sqrt(mean * (1 - rate))
			if math.Abs(float64(n)-mean) > 5*sd {
				t.Errorf("seed %d rate %v: %d of %d sampled, want %.0f ± %.0f", seed, rate, n, len(ids), mean, 5*sd)
			}
		}
	}
	same, overlap := 0, 0
	for _, id := range ids[:10000] {
		a, b := DecisionSampled(42, id, 0.25), DecisionSampled(43, id, 0.25)
		if a == DecisionSampled(42, id, 0.25) {
			same++
		}
		if a && b {
			overlap++
		}
	}
	if same != 10000 {
		t.Fatal("DecisionSampled is not deterministic")
	}
	// Independent seeds overlap on about 1/16 of the ids (625 ± 5σ).
	if overlap < 500 || overlap > 750 {
		t.Errorf("seeds 42 and 43 both sample %d of 10,000 ids, want about 625", overlap)
	}
}

// TestDecisionLogServerSampling: the server logs exactly the auctions that
// DecisionSampled picks for its engine's seed.
func TestDecisionLogServerSampling(t *testing.T) {
	var rate atomic.Pointer[decision.Switches]
	s, l := decisionLogServer(t, &rate)
	setRate(&rate, 0.25)
	want := map[string]bool{}
	const n = 2000
	for range n {
		st, body := doAd(s, adReq, "")
		var ans struct {
			AuctionID string `json:"auction_id"`
		}
		if err := json.Unmarshal([]byte(body), &ans); st != 200 || err != nil {
			t.Fatalf("/v1/ad: %d %s", st, body)
		}
		if DecisionSampled(s.Engine.Seed, ans.AuctionID, 0.25) {
			want[ans.AuctionID] = true
		}
	}
	ds := loggedDecisions(t, l)
	got := map[string]bool{}
	for _, d := range ds {
		if !want[d.AuctionID] || got[d.AuctionID] {
			t.Fatalf("logged auction %s: not sampled, or twice", d.AuctionID)
		}
		got[d.AuctionID] = true
	}
	if len(got) != len(want) {
		t.Fatalf("logged %d auctions, want %d", len(got), len(want))
	}
	if sd := math.Sqrt(n * 0.25 * 0.75); math.Abs(float64(len(got))-n*0.25) > 5*sd {
		t.Errorf("%d of %d sampled at 0.25", len(got), n)
	}
	t.Logf("rate 0.25: %d of %d auctions logged, exactly those the seed picks", len(got), n)
}

// BenchmarkLoggedDecision is BenchmarkDecision with a Recorder wired:
// not_sampled runs the full sampling check (rate > 0, hash of the auction
// id) and never samples; sampled logs every decision to a real event log.
func BenchmarkLoggedDecision(b *testing.B) {
	for _, c := range []struct {
		name string
		rate float64
	}{{"not_sampled", 1e-300}, {"sampled", 1}} {
		b.Run(c.name, func(b *testing.B) {
			var rate atomic.Pointer[decision.Switches]
			s, l := decisionLogServer(b, &rate, benchCatalog(b, 10000)...)
			setRate(&rate, c.rate)
			benchServeAd(b, s)
			if c.rate < 1 {
				if n := len(loggedDecisions(b, l)); n != 0 {
					b.Fatalf("not_sampled logged %d decisions", n)
				}
			}
		})
	}
}

// BenchmarkDecisionSampledCheck is the sampling check alone, on an auction
// id of the engine's usual length.
func BenchmarkDecisionSampledCheck(b *testing.B) {
	id := "node-a.t4x2k1.1z141z3"
	b.ReportAllocs()
	n := 0
	for i := 0; i < b.N; i++ {
		if DecisionSampled(uint64(i), id, 0.01) {
			n++
		}
	}
	if n > b.N/10+100 {
		b.Fatalf("%d of %d sampled at 0.01", n, b.N)
	}
}
