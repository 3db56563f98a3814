package loadtest

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/prebid/openrtb/v20/openrtb2"
)

func TestDefaultScenario(t *testing.T) {
	sc := DefaultScenario()
	if len(sc.Placements) != sc.PlacementCount || sc.PlacementCount != 40 {
		t.Errorf("placements %d, count %d", len(sc.Placements), sc.PlacementCount)
	}
	if len(sc.DayShape) != 24 {
		t.Fatalf("day shape has %d values", len(sc.DayShape))
	}
	sum := 0.0
	for _, v := range sc.DayShape {
		sum += v
	}
	if math.Abs(sum-1) > 0.01 {
		t.Errorf("day shape sums to %v", sum)
	}
	// The built-in file round-trips through the parser.
	if _, err := ParseScenario(DefaultScenarioJSON()); err != nil {
		t.Fatal(err)
	}
}

func TestParseScenarioErrors(t *testing.T) {
	base := string(DefaultScenarioJSON())
	for name, tc := range map[string]struct{ from, to, want string }{
		"unknown field": {`"name": "default"`, `"nmae": "x"`, "unknown field"},
		"zipf":          {`"zipf_s": 1.2`, `"zipf_s": 0.9`, "zipf_s"},
		"users":         {`"count": 1000000`, `"count": 0`, "users.count"},
		"day shape":     {`"name": "default"`, `"name": "x", "day_shape": [1, 2]`, "day_shape"},
		"weights":       {`{"value": "sports", "weight": 14}`, `{"value": "sports", "weight": -1}`, "segments[0]"},
		"explicit placements": {`"placement_count": 40`,
			`"placements": [{"id": "p-x", "publisher_id": "pub-1", "domain": "a.example", "sizes": [[300, 250]], "floor": 0.1, "weight": 0}]`, "weight"},
	} {
		t.Run(name, func(t *testing.T) {
			in := strings.Replace(base, tc.from, tc.to, 1)
			if in == base {
				t.Fatalf("BUG: %q not in the scenario", tc.from)
			}
			_, err := ParseScenario([]byte(in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one mentioning %q", err, tc.want)
			}
		})
	}
	// Explicit placements replace the generated ones.
	in := strings.Replace(base, `"placement_count": 40`,
		`"placements": [{"id": "p-x", "publisher_id": "pub-1", "domain": "a.example", "sizes": [[300, 250]], "floor": 0.1, "weight": 1}]`, 1)
	sc, err := ParseScenario([]byte(in))
	if err != nil || len(sc.Placements) != 1 || sc.Placements[0].ID != "p-x" {
		t.Fatalf("explicit placements: %v %+v", err, sc)
	}
}

// Users follow a Zipf law: the heaviest users send a large share of the
// requests, and a user keeps the same attributes across requests.
func TestZipfUsers(t *testing.T) {
	sc := DefaultScenario()
	g := NewGenerator(sc, 7)
	src := g.NewSource(0)
	const n = 50000
	counts := map[uint64]int{}
	type profile struct{ country, region, device, os, lang, nseg int }
	profiles := map[uint64]profile{}
	var r Request
	for range n {
		g.Next(src, &r)
		if r.User >= sc.Users.Count {
			t.Fatalf("user %d out of range", r.User)
		}
		counts[r.User]++
		p := profile{r.Country, r.Region, r.Device, r.OS, r.Language, r.NSeg}
		if old, ok := profiles[r.User]; ok && old != p {
			t.Fatalf("user %d changed attributes: %+v then %+v", r.User, old, p)
		}
		profiles[r.User] = p
	}
	if counts[0] < counts[1000] || counts[0] < 50 {
		t.Errorf("user 0 sent %d, user 1000 sent %d: not Zipf", counts[0], counts[1000])
	}
	top := 0
	for u := range uint64(1000) {
		top += counts[u]
	}
	// 0.1% of the users send far more than 0.1% of the traffic.
	if share := float64(top) / n; share < 0.2 {
		t.Errorf("top 1000 users sent %.1f%%", 100*share)
	}
	if len(counts) < n/10 {
		t.Errorf("only %d distinct users in %d requests", len(counts), n)
	}
	t.Logf("distinct users %d, user 0 %d requests, top 1000 share %.1f%%", len(counts), counts[0], 100*float64(top)/n)
}

func TestMixesFollowWeights(t *testing.T) {
	sc := DefaultScenario()
	g := NewGenerator(sc, 1)
	src := g.NewSource(3)
	const n = 40000
	country := map[string]int{}
	device := map[string]int{}
	var r Request
	for range n {
		g.Next(src, &r)
		country[sc.Countries[r.Country].Value]++
		device[sc.Devices[r.Device].Value]++
		if r.NSlots != 1 || r.NKw > sc.Keywords.Max || r.NSeg > sc.Segments.Max {
			t.Fatalf("request %+v out of bounds", r)
		}
	}
	// Per-user attributes follow the weights over users, and requests over
	// a Zipf population: loose bounds.
	if s := float64(country["US"]) / n; s < 0.2 || s > 0.4 {
		t.Errorf("US share %.2f, want ~0.30", s)
	}
	if s := float64(device["mobile"]) / n; s < 0.5 || s > 0.7 {
		t.Errorf("mobile share %.2f, want ~0.60", s)
	}
}

func TestDeterministic(t *testing.T) {
	sc := DefaultScenario()
	gen := func(seed uint64) []byte {
		g := NewGenerator(sc, seed)
		src := g.NewSource(2)
		var r Request
		var out []byte
		for range 50 {
			g.Next(src, &r)
			out = g.AppendAdRequest(out, &r)
		}
		return out
	}
	if !bytes.Equal(gen(5), gen(5)) {
		t.Error("same seed, different traffic")
	}
	if bytes.Equal(gen(5), gen(6)) {
		t.Error("different seeds, same traffic")
	}
}

// The /v1/ad body has the DESIGN.md shape.
func TestAdRequestJSON(t *testing.T) {
	sc := DefaultScenario()
	g := NewGenerator(sc, 1)
	src := g.NewSource(0)
	var r Request
	for i := range 500 {
		g.Next(src, &r)
		b := g.AppendAdRequest(nil, &r)
		var v struct {
			ID          string `json:"id"`
			PlacementID string `json:"placement_id"`
			User        struct {
				ID       string   `json:"id"`
				Segments []string `json:"segments"`
			} `json:"user"`
			Device   struct{ Type, OS, UA, IP, Language string } `json:"device"`
			Geo      struct{ Country, Region, City string }      `json:"geo"`
			Site     struct{ Domain string }                     `json:"site"`
			Keywords []string                                    `json:"keywords"`
			Slots    []struct {
				ID    string  `json:"id"`
				W     int     `json:"w"`
				H     int     `json:"h"`
				Floor float64 `json:"floor"`
			} `json:"slots"`
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		if err := dec.Decode(&v); err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, b)
		}
		if v.ID == "" || v.PlacementID == "" || !strings.HasPrefix(v.User.ID, "u-") || v.Device.Type == "" || v.Device.UA == "" ||
			v.Device.IP == "" || v.Geo.Country == "" || v.Site.Domain == "" || len(v.Slots) != 1 || v.Slots[0].W <= 0 || v.Slots[0].H <= 0 || v.Slots[0].ID == "" {
			t.Fatalf("request %d incomplete: %s", i, b)
		}
		if v.User.Segments == nil || v.Keywords == nil {
			t.Fatalf("request %d: segments and keywords must be arrays: %s", i, b)
		}
	}
}

// OpenRTB requests decode into the OpenRTB 2.6 types with an id and imps.
func TestOpenRTBRequestJSON(t *testing.T) {
	sc := DefaultScenario()
	sc.MaxSlots = 2
	g := NewGenerator(sc, 1)
	src := g.NewSource(0)
	var r Request
	multi := 0
	for i := range 500 {
		g.Next(src, &r)
		b := g.AppendOpenRTB(nil, &r)
		var br openrtb2.BidRequest
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&br); err != nil {
			t.Fatalf("request %d: %v\n%s", i, err, b)
		}
		if br.ID == "" || len(br.Imp) == 0 || br.Site == nil || br.Device == nil || br.User == nil || br.Device.Geo == nil {
			t.Fatalf("request %d incomplete: %s", i, b)
		}
		for _, imp := range br.Imp {
			if imp.ID == "" || imp.Banner == nil || imp.Banner.W == nil || *imp.Banner.W <= 0 || imp.TagID == "" || len(imp.Banner.Format) != 1 {
				t.Fatalf("request %d: bad imp %+v", i, imp)
			}
		}
		if len(br.Device.Geo.Country) != 3 || br.Site.Publisher == nil || br.Site.Publisher.ID == "" {
			t.Fatalf("request %d: geo/publisher: %s", i, b)
		}
		if len(br.Imp) > 1 {
			multi++
		}
	}
	if multi == 0 {
		t.Error("max_slots 2 never gave two imps")
	}
}

func TestAttrsMatchRequest(t *testing.T) {
	sc := DefaultScenario()
	g := NewGenerator(sc, 1)
	var r Request
	g.Next(g.NewSource(0), &r)
	body := string(g.AppendAdRequest(nil, &r))
	got := map[string]bool{}
	g.Attrs(&r, func(attr, v string) { got[attr] = true })
	for _, a := range []string{"placement", "publisher", "size", "country", "region", "city", "device_type", "os", "browser", "language", "domain"} {
		if !got[a] {
			t.Errorf("attribute %s missing", a)
		}
	}
	if !strings.Contains(body, `"placement_id":"`+sc.Placements[r.Placement].ID+`"`) {
		t.Errorf("body %s lacks placement %s", body, sc.Placements[r.Placement].ID)
	}
}
