package auction

import (
	"math/rand/v2"
	"testing"

	"github.com/adserver/adserver/campaign"
)

func TestOutcomes(t *testing.T) {
	var (
		a3  = cpmCamp("a3", "adv-a", 0, 3_000_000)
		a4  = cpmCamp("a4", "adv-a", 0, 4_000_000)
		b2  = cpmCamp("b2", "adv-b", 0, 2_000_000)
		c03 = cpmCamp("c03", "adv-c", 0, 300_000)
		c1  = cpmCamp("c1", "adv-c", 0, 1_000_000)
		d5  = cpmCamp("d5", "adv-d", 2, 5_000_000)
		d4  = cpmCamp("d4", "adv-d", 0, 4_000_000)
		a25 = cpmCamp("a25", "adv-a", 0, 2_500_000)
		z0  = camp("z0", "adv-z", 0, "cpc", 1_000_000)
	)
	tests := []struct {
		name  string
		floor campaign.Micros
		slots []Slot
		want  []string
	}{
		{
			"every reason",
			500_000,
			[]Slot{
				{ID: "s1", Candidates: []Candidate{cand(a3), cand(b2), cand(c03)}},
				{ID: "s2", Candidates: []Candidate{cand(a4), cand(c1)}},
			},
			[]string{
				"a3/a3-cr slot s1: excluded: advertiser adv-a already won slot s2 with a4",
				"b2/b2-cr slot s1: won at 0.51 per mille (clearing eCPM 0.51, eCPM 2, reserve 0.5)",
				"c03/c03-cr slot s1: below floor: eCPM 0.3 < reserve 0.5",
				"a4/a4-cr slot s2: won at 1.01 per mille (clearing eCPM 1.01, eCPM 4, reserve 0.5)",
				"c1/c1-cr slot s2: lost to a4 (priority 0, eCPM 4); own priority 0, eCPM 1",
			},
		},
		{
			// s1 (d5, priority 2) is filled first. a3 loses s1 to d5 and
			// then wins s2: in s1 it lost, it was not excluded. a25 is of
			// the advertiser that wins s2 through a3: it lost to its
			// sibling and does not set a3's price (c1 does).
			"lost, then won elsewhere; lost to a sibling",
			0,
			[]Slot{
				{ID: "s1", Candidates: []Candidate{cand(a3), cand(d5), cpcCand(z0, 0)}},
				{ID: "s2", Candidates: []Candidate{cand(a3), cand(c1), cand(d4), cand(a25)}},
			},
			[]string{
				"a3/a3-cr slot s1: lost to d5 (priority 2, eCPM 5); own priority 0, eCPM 3",
				"d5/d5-cr slot s1: won at 3.01 per mille (clearing eCPM 3.01, eCPM 5, reserve 0)",
				"z0/z0-cr slot s1: below floor: eCPM 0 (a bid worth nothing never serves)",
				"a3/a3-cr slot s2: won at 1.01 per mille (clearing eCPM 1.01, eCPM 3, reserve 0)",
				"c1/c1-cr slot s2: lost to a3 (priority 0, eCPM 3); own priority 0, eCPM 1",
				"d4/d4-cr slot s2: excluded: advertiser adv-d already won slot s1 with d5",
				"a25/a25-cr slot s2: lost to a3 (priority 0, eCPM 3); own priority 0, eCPM 2.5",
			},
		},
		{
			"cpc winner",
			0,
			[]Slot{{ID: "s1", Candidates: []Candidate{cpcCand(z0, 0.01), cand(b2)}}},
			[]string{
				"z0/z0-cr slot s1: won at 0.201 per click (clearing eCPM 2.01, eCPM 10, reserve 0)",
				"b2/b2-cr slot s1: lost to z0 (priority 0, eCPM 10); own priority 0, eCPM 2",
			},
		},
	}
	var a Auction
	var outs []Outcome
	for _, tt := range tests {
		a.Run(&Request{Floor: tt.floor, Slots: tt.slots}, rand.New(rand.NewPCG(1, 1)))
		outs = a.AppendOutcomes(outs[:0])
		if len(outs) != len(tt.want) {
			t.Errorf("%s: %d outcomes, want %d", tt.name, len(outs), len(tt.want))
			continue
		}
		for i, o := range outs {
			if got := o.String(); got != tt.want[i] {
				t.Errorf("%s: outcome %d\n got %s\nwant %s", tt.name, i, got, tt.want[i])
			}
			if one := a.Outcome(o.Slot, o.Index); one != o {
				t.Errorf("%s: Outcome(%d, %d) = %+v, want %+v", tt.name, o.Slot, o.Index, one, o)
			}
		}
	}
}

func TestOutcomeFields(t *testing.T) {
	a4 := cpmCamp("a4", "adv-a", 0, 4_000_000)
	c1 := cpmCamp("c1", "adv-c", 0, 1_000_000)
	var a Auction
	a.Run(&Request{Slots: []Slot{{ID: "s1", Floor: 200_000, Candidates: []Candidate{cand(c1), cand(a4)}}}}, nil)
	lost, won := a.Outcome(0, 0), a.Outcome(0, 1)
	if lost.Reason != Lost || lost.By != a4 || lost.ByECPM != 4_000_000 || lost.BySlotID != "s1" || lost.ECPM != 1_000_000 || lost.Reserve != 200_000 {
		t.Errorf("lost outcome %+v", lost)
	}
	if won.Reason != Won || won.Price != 1_010_000 || won.ClearingECPM != 1_010_000 || won.By != nil {
		t.Errorf("won outcome %+v", won)
	}
	if b, _ := BelowFloor.MarshalText(); string(b) != "below_floor" || Excluded.String() != "excluded" || Reason(99).String() != "unknown" {
		t.Errorf("reason names: %s %s %s", b, Excluded, Reason(99))
	}
	defer func() {
		if recover() == nil {
			t.Error("Outcome out of range did not panic")
		}
	}()
	a.Outcome(0, 2)
}
