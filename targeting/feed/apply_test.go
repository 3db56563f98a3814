package feed

import (
	"fmt"
	"testing"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/targeting"
)

func testCampaign(t *testing.T, id, country string) *campaign.Campaign {
	t.Helper()
	c, err := campaign.DecodeCampaign(fmt.Appendf(nil, `{"id":%q,"advertiser_id":"adv-1","status":"active",
 "start":"2026-01-01T00:00:00Z","end":"2030-01-01T00:00:00Z","budget":{"daily":100.0},"bid":{"model":"cpm","amount":1},
 "targeting":{"any":[{"all":[{"attr":"country","in":[%q]}]}]},
 "creatives":[{"id":"cr-1","format":"banner","w":300,"h":250,"html":"x","landing_url":"https://example.com/"}]}`, id, country))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// An idle feed swaps in the index of a finished background compaction,
// with the same campaigns, instead of waiting for the next change.
func TestIdleFeedPicksUpCompaction(t *testing.T) {
	const n = 2000
	countries := []string{"KR", "US", "DE", "FR"}
	var cs []*campaign.Campaign
	for i := range n {
		cs = append(cs, testCampaign(t, fmt.Sprintf("c-%d", i), countries[i%len(countries)]))
	}
	ix := targeting.Build(cs)
	// Re-target every campaign three times, in batches small enough to be
	// applied incrementally: the dead ids soon outnumber the live ones and
	// a background compaction starts.
	for round := 1; round <= 3 && !ix.Stats().Compacting; round++ {
		for lo := 0; lo < n && !ix.Stats().Compacting; lo += 100 {
			var ups []*campaign.Campaign
			for i := lo; i < lo+100; i++ {
				ups = append(ups, testCampaign(t, fmt.Sprintf("c-%d", i), countries[(i+round)%len(countries)]))
			}
			ix = ix.Update(ups, nil)
		}
	}
	if !ix.Stats().Compacting {
		t.Fatalf("no background compaction started: %+v", ix.Stats())
	}
	before := ix.Stats()
	old := &Snapshot{Index: ix, Built: time.Unix(1, 0)}
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	var next *Snapshot
	for deadline := time.Now().Add(20 * time.Second); next == nil; {
		next = withCompactedIndex(old, now)
		if next == nil && time.Now().After(deadline) {
			t.Fatalf("compaction not picked up within 20s: %+v", ix.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	after := next.Index.Stats()
	if after.Compactions <= before.Compactions || after.Dead != 0 || after.Campaigns != n {
		t.Fatalf("after pick-up %+v, want one more compaction, no dead ids and %d campaigns (before %+v)", after, n, before)
	}
	if next.Built != now || old.Index != ix {
		t.Fatalf("snapshot not rebuilt as a copy: built %v, old index replaced %v", next.Built, old.Index != ix)
	}
	a := targeting.AcquireAttrs()
	defer targeting.ReleaseAttrs(a)
	a.Set(campaign.IDCountry, "KR")
	got := next.Index.Query(a, now, nil)
	want := ix.Query(a, now, nil)
	if len(got) != len(want) || len(got) == 0 {
		t.Fatalf("compacted index answers %d campaigns for KR, the uncompacted one %d", len(got), len(want))
	}
	if withCompactedIndex(next, now) != nil {
		t.Fatal("a compacted index picked up again")
	}
}
