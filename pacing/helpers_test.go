package pacing

import (
	"sync"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
)

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// testCampaign builds a valid campaign through the campaign package's own
// decoder, so that its time zone is resolved as in production.
func testCampaign(t testing.TB, id, tz, pacing string, daily, total campaign.Micros, fcap string) *campaign.Campaign {
	t.Helper()
	body := `{"id":"` + id + `","advertiser_id":"adv-1","status":"active",
		"start":"2020-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z","timezone":"` + tz + `",
		"budget":{"daily":` + daily.String() + `,"total":` + total.String() + `},"pacing":"` + pacing + `",
		"bid":{"model":"cpm","amount":2},` + fcap + `
		"creatives":[{"id":"cr-1","format":"banner","w":300,"h":250,"html":"x","landing_url":"https://example.com/"}]}`
	c, err := campaign.DecodeCampaign([]byte(body))
	if err != nil {
		t.Fatalf("campaign %s: %v", id, err)
	}
	return c
}

func newTestPacer(t testing.TB, cfg Config) *Pacer {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func mustDate(t testing.TB, s string, loc *time.Location) time.Time {
	t.Helper()
	v, err := time.ParseInLocation("2006-01-02 15:04:05", s, loc)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
