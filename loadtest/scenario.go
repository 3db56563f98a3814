package loadtest

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"strconv"
)

//go:embed testdata/scenario-default.json
var defaultScenarioJSON []byte

//go:embed testdata/traffic-hourly.json
var defaultDayShapeJSON []byte

// DefaultScenarioJSON returns the built-in scenario file, a template for
// writing one's own (`loadtest scenario` prints it).
func DefaultScenarioJSON() []byte { return bytes.Clone(defaultScenarioJSON) }

// Scenario describes the traffic: who asks for ads, from where, on what, for
// which placements. The seed command draws campaign targeting from the same
// distributions, so that a realistic share of campaigns matches a request.
//
// Weights are relative (they need not sum to 1). A Scenario is read-only once
// passed to NewGenerator or BuildCatalog.
type Scenario struct {
	Name  string    `json:"name,omitempty"`
	Users UserModel `json:"users"`
	// Placements lists the placements explicitly. When empty, PlacementCount
	// placements are generated (ids p-1..p-N, see GeneratePlacements).
	Placements     []PlacementSpec `json:"placements,omitempty"`
	PlacementCount int             `json:"placement_count,omitempty"`
	PublisherCount int             `json:"publisher_count,omitempty"`
	// SizeSets are the slot size sets that generated placements cycle through.
	SizeSets [][][2]int `json:"size_sets,omitempty"`
	// MaxSlots caps the slots of one request (each a distinct size of the
	// placement); default 1.
	MaxSlots  int           `json:"max_slots,omitempty"`
	Countries []CountrySpec `json:"countries"`
	Devices   []DeviceSpec  `json:"devices"`
	// Segments are per user (a user keeps the same segments); Keywords per request.
	Segments ValueSet `json:"segments"`
	Keywords ValueSet `json:"keywords"`
	// DayShape is the share of traffic in each UTC hour (24 values); default
	// the embedded traffic-hourly.json.
	DayShape  []float64     `json:"day_shape,omitempty"`
	Campaigns CampaignModel `json:"campaigns"`
}

// UserModel draws user ids from a Zipf distribution: P(k) ∝ (v+k)^-s over
// k in [0, count), so a few heavy users send much of the traffic.
type UserModel struct {
	Count uint64  `json:"count"`
	ZipfS float64 `json:"zipf_s"`
	ZipfV float64 `json:"zipf_v"`
}

// Weighted is one value of a categorical distribution.
type Weighted struct {
	Value  string  `json:"value"`
	Weight float64 `json:"weight"`
}

// ValueSet is a multi-valued attribute: between Min and Max distinct values
// drawn by weight.
type ValueSet struct {
	Min    int        `json:"min"`
	Max    int        `json:"max"`
	Values []Weighted `json:"values"`
}

// PlacementSpec is one publisher placement the traffic asks for.
type PlacementSpec struct {
	ID          string   `json:"id"`
	PublisherID string   `json:"publisher_id"`
	Name        string   `json:"name,omitempty"`
	Domain      string   `json:"domain"`
	Sizes       [][2]int `json:"sizes"`
	Floor       float64  `json:"floor"`
	Weight      float64  `json:"weight"`
}

// CountrySpec is a country (ISO 3166-1 alpha-2 value, alpha-3 for OpenRTB)
// with its regions and languages.
type CountrySpec struct {
	Value     string       `json:"value"`
	ISO3      string       `json:"iso3"`
	Weight    float64      `json:"weight"`
	Regions   []RegionSpec `json:"regions"`
	Languages []Weighted   `json:"languages"`
}

// RegionSpec is a region of a country and its main city.
type RegionSpec struct {
	Value  string  `json:"value"`
	City   string  `json:"city"`
	Weight float64 `json:"weight"`
}

// DeviceSpec is a device type with the operating systems seen on it.
type DeviceSpec struct {
	Value  string   `json:"value"`
	Weight float64  `json:"weight"`
	OS     []OSSpec `json:"os"`
}

// OSSpec is an operating system with its browsers.
type OSSpec struct {
	Value    string        `json:"value"`
	Weight   float64       `json:"weight"`
	Browsers []BrowserSpec `json:"browsers"`
}

// BrowserSpec is a browser and the User-Agent it sends.
type BrowserSpec struct {
	Value  string  `json:"value"`
	Weight float64 `json:"weight"`
	UA     string  `json:"ua"`
}

// CampaignModel parameterises the catalog that `loadtest seed` creates.
type CampaignModel struct {
	// MatchMin and MatchMax bound the estimated share of requests each
	// targeted campaign's targeting matches (drawn log-uniformly between
	// them): what the server's targeting index returns. Whether one of the
	// campaign's creatives fits the slot's size is apart.
	MatchMin float64 `json:"match_min"`
	MatchMax float64 `json:"match_max"`
	// ROSShare is the share of run-of-network campaigns (empty targeting).
	ROSShare          float64    `json:"ros_share"`
	CPCShare          float64    `json:"cpc_share"`
	ASAPShare         float64    `json:"asap_share"`
	FrequencyCapShare float64    `json:"frequency_cap_share"`
	BidCPM            [2]float64 `json:"bid_cpm"`
	BidCPC            [2]float64 `json:"bid_cpc"`
	DailyBudget       [2]float64 `json:"daily_budget"`
	Creatives         [2]int     `json:"creatives"`
	Timezones         []string   `json:"timezones"`
}

// DefaultScenario returns the built-in scenario with its placements generated.
func DefaultScenario() *Scenario {
	sc, err := ParseScenario(defaultScenarioJSON)
	if err != nil {
		panic("BUG: built-in scenario: " + err.Error())
	}
	return sc
}

// LoadScenario reads a scenario file; an empty path means the built-in one.
func LoadScenario(path string) (*Scenario, error) {
	if path == "" {
		return DefaultScenario(), nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read scenario: %w", err)
	}
	sc, err := ParseScenario(b)
	if err != nil {
		return nil, fmt.Errorf("scenario %s: %w", path, err)
	}
	return sc, nil
}

// ParseScenario decodes a scenario (unknown fields are errors), fills in the
// defaults (day shape, placements) and validates it.
func ParseScenario(b []byte) (*Scenario, error) {
	sc := new(Scenario)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sc); err != nil {
		return nil, fmt.Errorf("cannot parse scenario JSON: %w", err)
	}
	if len(sc.DayShape) == 0 {
		sc.DayShape = DefaultDayShape()
	}
	if len(sc.Placements) == 0 {
		sc.SetPlacementCount(sc.PlacementCount)
	}
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	return sc, nil
}

// DefaultDayShape returns the embedded hourly traffic shares (24 values,
// UTC hours, summing to about 1).
func DefaultDayShape() []float64 {
	var f struct {
		Shares []float64 `json:"hourly_share_utc"`
	}
	if err := json.Unmarshal(defaultDayShapeJSON, &f); err != nil || len(f.Shares) != 24 {
		panic(fmt.Sprintf("BUG: embedded traffic-hourly.json: %v (%d values)", err, len(f.Shares)))
	}
	return f.Shares
}

// SetPlacementCount replaces the placements with n generated ones (see
// GeneratePlacements). n <= 0 keeps the scenario's placement_count (or 20).
func (sc *Scenario) SetPlacementCount(n int) {
	if n <= 0 {
		n = sc.PlacementCount
	}
	if n <= 0 {
		n = 20
	}
	sc.PlacementCount = n
	sc.Placements = GeneratePlacements(n, sc.PublisherCount, sc.SizeSets)
}

var defaultSizeSets = [][][2]int{{{300, 250}, {728, 90}}, {{320, 50}, {300, 250}}, {{300, 250}}}

// GeneratePlacements makes n placements p-1..p-n spread over publishers
// pub-1..pub-k (k = publishers, default 10), cycling through sizeSets, with
// floors between 0.05 and 0.40 and Zipf-like popularity (weight 1/i^0.8). The
// result depends only on the arguments, so the traffic and the seed command
// agree on it.
func GeneratePlacements(n, publishers int, sizeSets [][][2]int) []PlacementSpec {
	if publishers <= 0 {
		publishers = 10
	}
	if len(sizeSets) == 0 {
		sizeSets = defaultSizeSets
	}
	ps := make([]PlacementSpec, n)
	for i := range ps {
		k := i + 1
		pub := "pub-" + strconv.Itoa(i%publishers+1)
		ps[i] = PlacementSpec{
			ID:          "p-" + strconv.Itoa(k),
			PublisherID: pub,
			Name:        "Placement " + strconv.Itoa(k),
			Domain:      "site-" + strconv.Itoa(i%publishers+1) + ".example",
			Sizes:       sizeSets[i%len(sizeSets)],
			Floor:       float64(5+5*((k*7)%8)) / 100,
			Weight:      1 / math.Pow(float64(k), 0.8),
		}
	}
	return ps
}

// Validate reports the first problem found, naming the field.
func (sc *Scenario) Validate() error {
	if sc.Users.Count == 0 {
		return fmt.Errorf("users.count must be > 0")
	}
	if !(sc.Users.ZipfS > 1) {
		return fmt.Errorf("users.zipf_s must be > 1, got %v", sc.Users.ZipfS)
	}
	if !(sc.Users.ZipfV >= 1) {
		return fmt.Errorf("users.zipf_v must be >= 1, got %v", sc.Users.ZipfV)
	}
	if sc.MaxSlots < 0 || sc.MaxSlots > maxSlots {
		return fmt.Errorf("max_slots must be between 0 and %d, got %d", maxSlots, sc.MaxSlots)
	}
	if len(sc.Placements) == 0 {
		return fmt.Errorf("no placements")
	}
	seen := make(map[string]bool, len(sc.Placements))
	for i, p := range sc.Placements {
		switch {
		case p.ID == "" || p.PublisherID == "":
			return fmt.Errorf("placements[%d]: id and publisher_id are required", i)
		case seen[p.ID]:
			return fmt.Errorf("placements[%d]: duplicate id %q", i, p.ID)
		case len(p.Sizes) == 0:
			return fmt.Errorf("placements[%d]: sizes are required", i)
		case !(p.Weight > 0):
			return fmt.Errorf("placements[%d]: weight must be > 0", i)
		case p.Floor < 0:
			return fmt.Errorf("placements[%d]: floor must be >= 0", i)
		}
		for j, s := range p.Sizes {
			if s[0] <= 0 || s[1] <= 0 {
				return fmt.Errorf("placements[%d].sizes[%d]: w and h must be > 0", i, j)
			}
		}
		seen[p.ID] = true
	}
	if len(sc.Countries) == 0 {
		return fmt.Errorf("no countries")
	}
	for i, c := range sc.Countries {
		if c.Value == "" || !(c.Weight > 0) || len(c.Regions) == 0 || len(c.Languages) == 0 {
			return fmt.Errorf("countries[%d]: value, weight > 0, regions and languages are required", i)
		}
		if err := checkWeights(fmt.Sprintf("countries[%d].languages", i), c.Languages); err != nil {
			return err
		}
		for j, r := range c.Regions {
			if r.Value == "" || !(r.Weight > 0) {
				return fmt.Errorf("countries[%d].regions[%d]: value and weight > 0 are required", i, j)
			}
		}
	}
	if len(sc.Devices) == 0 {
		return fmt.Errorf("no devices")
	}
	for i, d := range sc.Devices {
		if d.Value == "" || !(d.Weight > 0) || len(d.OS) == 0 {
			return fmt.Errorf("devices[%d]: value, weight > 0 and os are required", i)
		}
		for j, o := range d.OS {
			if o.Value == "" || !(o.Weight > 0) || len(o.Browsers) == 0 {
				return fmt.Errorf("devices[%d].os[%d]: value, weight > 0 and browsers are required", i, j)
			}
			for k, b := range o.Browsers {
				if b.Value == "" || !(b.Weight > 0) {
					return fmt.Errorf("devices[%d].os[%d].browsers[%d]: value and weight > 0 are required", i, j, k)
				}
			}
		}
	}
	for _, vs := range []struct {
		name string
		set  ValueSet
		max  int
	}{{"segments", sc.Segments, maxSegments}, {"keywords", sc.Keywords, maxKeywords}} {
		if vs.set.Min < 0 || vs.set.Max < vs.set.Min || vs.set.Max > vs.max || vs.set.Max > len(vs.set.Values) {
			return fmt.Errorf("%s: need 0 <= min <= max <= min(%d, number of values)", vs.name, vs.max)
		}
		if err := checkWeights(vs.name, vs.set.Values); err != nil && len(vs.set.Values) > 0 {
			return err
		}
	}
	if len(sc.DayShape) != 24 {
		return fmt.Errorf("day_shape must have 24 values, got %d", len(sc.DayShape))
	}
	sum := 0.0
	for h, v := range sc.DayShape {
		if v < 0 {
			return fmt.Errorf("day_shape[%d] must be >= 0", h)
		}
		sum += v
	}
	if !(sum > 0) {
		return fmt.Errorf("day_shape must not be all zero")
	}
	cm := sc.Campaigns
	if cm.MatchMin < 0 || cm.MatchMax < cm.MatchMin || cm.MatchMax > 1 {
		return fmt.Errorf("campaigns: need 0 <= match_min <= match_max <= 1")
	}
	return nil
}

func checkWeights(field string, ws []Weighted) error {
	if len(ws) == 0 {
		return fmt.Errorf("%s: at least one value is required", field)
	}
	for i, w := range ws {
		if w.Value == "" || !(w.Weight > 0) {
			return fmt.Errorf("%s[%d]: value and weight > 0 are required", field, i)
		}
	}
	return nil
}
