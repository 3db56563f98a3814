package campaign

import (
	"encoding/json"
	"reflect"
	"time"
)

var durationType = reflect.TypeOf(Duration(0))

// Campaign statuses.
const (
	StatusActive   = "active"
	StatusPaused   = "paused"
	StatusArchived = "archived"
)

// Bid models.
const (
	BidCPM = "cpm"
	BidCPC = "cpc"
)

// Pacing modes.
const (
	PacingEven = "even"
	PacingASAP = "asap"
)

// Creative formats.
const (
	FormatBanner = "banner"
	FormatVideo  = "video"
)

// Campaign is one line of business: a budget, a bid, targeting and the
// creatives it may show. Its JSON is the management API body and the value of
// the adserver.campaigns Kafka record.
type Campaign struct {
	ID           string        `json:"id"`
	AdvertiserID string        `json:"advertiser_id"`
	Status       string        `json:"status"`
	Start        time.Time     `json:"start"`
	End          time.Time     `json:"end"`
	Timezone     string        `json:"timezone,omitempty"`
	Budget       Budget        `json:"budget"`
	Pacing       string        `json:"pacing,omitempty"`
	Bid          Bid           `json:"bid"`
	FrequencyCap *FrequencyCap `json:"frequency_cap,omitempty"`
	Priority     int           `json:"priority,omitempty"`
	Targeting    Targeting     `json:"targeting"`
	Creatives    []Creative    `json:"creatives"`
	// Deals lists the private-marketplace deal ids this campaign may buy
	// through; an OpenRTB request with pmp.private_auction=1 admits only
	// campaigns that name one of its deals. Empty means open auction only.
	Deals []string `json:"deals,omitempty"`
	// Categories are the IAB content categories of the campaign's ads,
	// matched against OpenRTB bcat.
	Categories []string `json:"categories,omitempty"`

	// loc is the campaign's time zone, resolved by Validate.
	loc *time.Location
}

// Location returns the campaign's time zone (UTC when none was given).
func (c *Campaign) Location() *time.Location {
	if c.loc == nil {
		return time.UTC
	}
	return c.loc
}

// Live reports whether the campaign may serve at t: active and inside its
// flight [Start, End).
func (c *Campaign) Live(t time.Time) bool {
	return c.Status == StatusActive && !t.Before(c.Start) && t.Before(c.End)
}

// Budget holds the campaign's spend limits. A zero limit means none; at
// least one must be set.
type Budget struct {
	Daily Micros `json:"daily,omitempty"`
	Total Micros `json:"total,omitempty"`
}

// Bid is what the campaign offers: a CPM (per thousand impressions) or a CPC
// (per click) amount.
type Bid struct {
	Model  string `json:"model"`
	Amount Micros `json:"amount"`
}

// FrequencyCap limits how often one user sees the campaign.
type FrequencyCap struct {
	Count  int      `json:"count"`
	Window Duration `json:"window"`
}

// Creative is one ad the campaign can show.
type Creative struct {
	ID         string   `json:"id"`
	Format     string   `json:"format"`
	W          int      `json:"w"`
	H          int      `json:"h"`
	HTML       string   `json:"html,omitempty"`
	Duration   int      `json:"duration,omitempty"`
	VASTURL    string   `json:"vast_url,omitempty"`
	VASTXML    string   `json:"vast_xml,omitempty"`
	LandingURL string   `json:"landing_url"`
	Adomain    []string `json:"adomain,omitempty"`
	// Weight sets the creative's share of rotation within its campaign;
	// zero means 1.
	Weight int `json:"weight,omitempty"`
}

// Size returns the creative's size as the targeting attribute spells it.
func (cr *Creative) Size() string { return SizeString(cr.W, cr.H) }

// Placement is a publisher's ad slot definition.
type Placement struct {
	ID          string   `json:"id"`
	PublisherID string   `json:"publisher_id"`
	Name        string   `json:"name,omitempty"`
	Format      string   `json:"format,omitempty"`
	Sizes       [][2]int `json:"sizes,omitempty"`
	Floor       Micros   `json:"floor,omitempty"`
	// Auction is "second" (the default) or "first": the price rule of the
	// internal auction for this placement.
	Auction string `json:"auction,omitempty"`
}

// Advertiser owns campaigns and reads reports with its API key. The key is
// write-only: decoding hashes it, and only the hash is kept and published.
type Advertiser struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Timezone string `json:"timezone,omitempty"`
	// APIKey is the plain key as sent by an operator; Validate replaces it
	// with APIKeyHash and clears it.
	APIKey string `json:"api_key,omitempty"`
	// APIKeyHash is the hex SHA-256 of the API key.
	APIKeyHash string `json:"api_key_sha256,omitempty"`
}

// Duration is a time.Duration that reads and writes Go duration strings
// ("24h", "90m"), plus a "d" suffix for days ("7d").
type Duration time.Duration

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Duration(d).String() + `"`), nil
}

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var v time.Duration
	var err error = errDurationSyntax
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		v, err = ParseDuration(string(b[1 : len(b)-1]))
	}
	if err != nil {
		// encoding/json fills in the field path of an UnmarshalTypeError.
		return &json.UnmarshalTypeError{Value: "duration " + string(b) + " (" + err.Error() + ")", Type: durationType}
	}
	*d = Duration(v)
	return nil
}
