package auction

import (
	"math/rand/v2"
	"testing"

	"github.com/adserver/adserver/campaign"
)

// camp returns a campaign with one 300x250 creative; model is "cpm" or
// "cpc".
func camp(id, adv string, prio int, model string, amount campaign.Micros) *campaign.Campaign {
	return &campaign.Campaign{
		ID: id, AdvertiserID: adv, Status: campaign.StatusActive, Priority: prio,
		Bid:       campaign.Bid{Model: model, Amount: amount},
		Creatives: []campaign.Creative{{ID: id + "-cr", Format: campaign.FormatBanner, W: 300, H: 250}},
	}
}

func cpmCamp(id, adv string, prio int, amount campaign.Micros) *campaign.Campaign {
	return camp(id, adv, prio, campaign.BidCPM, amount)
}

func cand(c *campaign.Campaign) Candidate {
	return Candidate{Campaign: c, Creative: &c.Creatives[0]}
}

func cpcCand(c *campaign.Campaign, pctr float64) Candidate {
	return Candidate{Campaign: c, Creative: &c.Creatives[0], PCTR: pctr}
}

// wantWin is the part of a Win a table checks.
type wantWin struct {
	slot     int
	campaign string
	ecpm     campaign.Micros
	clearing campaign.Micros
	price    campaign.Micros
	runnerUp int
}

func checkWins(t *testing.T, name string, got []Win, want []wantWin) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d wins %+v, want %d", name, len(got), got, len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		gw := wantWin{g.Slot, g.Candidate.Campaign.ID, g.ECPM, g.ClearingECPM, g.Price, g.RunnerUp}
		if gw != w {
			t.Errorf("%s: win %d = %+v, want %+v", name, i, gw, w)
		}
	}
}

func TestRunSingleSlot(t *testing.T) {
	var (
		a25    = cpmCamp("a25", "adv-a", 0, 2_500_000)
		b10    = cpmCamp("b10", "adv-b", 0, 1_000_000)
		c03    = cpmCamp("c03", "adv-c", 0, 300_000)
		d30    = cpmCamp("d30", "adv-d", 0, 3_000_000)
		half   = cpmCamp("half", "adv-h", 0, 5_000)
		hi10   = cpmCamp("hi10", "adv-p", 5, 1_000_000)
		hi30   = cpmCamp("hi30", "adv-p", 5, 3_000_000)
		a30    = cpmCamp("a30", "adv-a", 0, 3_000_000)
		e25    = cpmCamp("e25", "adv-e", 0, 2_500_000)
		cpc05  = camp("cpc05", "adv-k", 0, campaign.BidCPC, 500_000)
		cpc123 = camp("cpc123", "adv-k", 0, campaign.BidCPC, 1_234_567)
	)
	tests := []struct {
		name       string
		rule       Rule
		floor      campaign.Micros // placement floor
		slotFloor  campaign.Micros
		candidates []Candidate
		want       []wantWin
	}{
		{"alone, no reserve: one cent", SecondPrice, 0, 0,
			[]Candidate{cand(a25)},
			[]wantWin{{0, "a25", 2_500_000, 10_000, 10_000, -1}}},
		{"alone, bid under a cent: its bid", SecondPrice, 0, 0,
			[]Candidate{cand(half)},
			[]wantWin{{0, "half", 5_000, 5_000, 5_000, -1}}},
		{"runner-up plus a cent", SecondPrice, 500_000, 0,
			[]Candidate{cand(b10), cand(a25)},
			[]wantWin{{0, "a25", 2_500_000, 1_010_000, 1_010_000, 0}}},
		{"runner-up below floor: reserve plus a cent", SecondPrice, 500_000, 0,
			[]Candidate{cand(a25), cand(c03)},
			[]wantWin{{0, "a25", 2_500_000, 510_000, 510_000, -1}}},
		{"slot floor above placement floor", SecondPrice, 400_000, 700_000,
			[]Candidate{cand(a25)},
			[]wantWin{{0, "a25", 2_500_000, 710_000, 710_000, -1}}},
		{"placement floor above slot floor", SecondPrice, 700_000, 400_000,
			[]Candidate{cand(a25)},
			[]wantWin{{0, "a25", 2_500_000, 710_000, 710_000, -1}}},
		{"at the reserve exactly: pays the reserve", SecondPrice, 1_000_000, 0,
			[]Candidate{cand(b10), cand(c03)},
			[]wantWin{{0, "b10", 1_000_000, 1_000_000, 1_000_000, -1}}},
		{"all below floor: no fill", SecondPrice, 5_000_000, 0,
			[]Candidate{cand(a25), cand(b10)}, nil},
		{"higher tier wins; lower-tier runner-up above caps at own bid", SecondPrice, 0, 0,
			[]Candidate{cand(d30), cand(hi10)},
			[]wantWin{{0, "hi10", 1_000_000, 1_000_000, 1_000_000, 0}}},
		{"higher tier wins; lower-tier runner-up sets the price", SecondPrice, 0, 0,
			[]Candidate{cand(b10), cand(hi30)},
			[]wantWin{{0, "hi30", 3_000_000, 1_010_000, 1_010_000, 0}}},
		{"same advertiser never sets its own price", SecondPrice, 0, 0,
			[]Candidate{cand(a30), cand(a25), cand(b10)},
			[]wantWin{{0, "a30", 3_000_000, 1_010_000, 1_010_000, 2}}},
		{"equal runner-up pays its own eCPM", SecondPrice, 0, 0,
			[]Candidate{cand(a25), cand(e25)},
			[]wantWin{{0, "a25", 2_500_000, 2_500_000, 2_500_000, 1}}},
		{"cpc winner priced per click", SecondPrice, 0, 0,
			[]Candidate{cpcCand(cpc05, 0.01), cand(b10)}, // eCPM 5.0
			[]wantWin{{0, "cpc05", 5_000_000, 1_010_000, 101_000, 1}}},
		{"cpc winner, odd numbers, price rounded up", SecondPrice, 0, 0,
			[]Candidate{cand(d30), cpcCand(cpc123, 0.00345)}, // eCPM 4.259256
			[]wantWin{{0, "cpc123", 4_259_256, 3_010_000, 872_464, 0}}},
		{"cpc loses on eCPM", SecondPrice, 0, 0,
			[]Candidate{cpcCand(cpc05, 0.001), cand(b10)}, // eCPM 0.5
			[]wantWin{{0, "b10", 1_000_000, 510_000, 510_000, 0}}},
		{"cpc below floor", SecondPrice, 600_000, 0,
			[]Candidate{cpcCand(cpc05, 0.001)}, nil},
		{"cpc with zero pctr never serves", SecondPrice, 0, 0,
			[]Candidate{cpcCand(cpc05, 0)}, nil},
		{"first price pays the bid", FirstPrice, 500_000, 0,
			[]Candidate{cand(b10), cand(a25)},
			[]wantWin{{0, "a25", 2_500_000, 2_500_000, 2_500_000, 0}}},
		{"first price cpc pays its cpc bid", FirstPrice, 0, 0,
			[]Candidate{cpcCand(cpc05, 0.01), cand(b10)},
			[]wantWin{{0, "cpc05", 5_000_000, 5_000_000, 500_000, 1}}},
		{"no candidates", SecondPrice, 0, 0, nil, nil},
	}
	var a Auction
	for _, tt := range tests {
		req := &Request{Rule: tt.rule, Floor: tt.floor, Slots: []Slot{{ID: "s1", Floor: tt.slotFloor, Candidates: tt.candidates}}}
		checkWins(t, tt.name, a.Run(req, nil), tt.want) // nil: ties go to the earlier candidate
	}
}

func TestRunTies(t *testing.T) {
	x := cpmCamp("x", "adv-x", 0, 1_000_000)
	y := cpmCamp("y", "adv-y", 0, 1_000_000)
	z := cpmCamp("z", "adv-z", 0, 900_000)
	req := &Request{Slots: []Slot{{ID: "s1", Candidates: []Candidate{cand(z), cand(x), cand(y)}}}}
	var a Auction

	// Without a random source the earlier candidate wins a tie.
	checkWins(t, "nil rand", a.Run(req, nil), []wantWin{{0, "x", 1_000_000, 1_000_000, 1_000_000, 2}})

	// With one, each tied candidate wins about half the time, the
	// loser of the tie sets the price, and a seed replays.
	wins := map[string]int{}
	for seed := range uint64(2000) {
		w := a.Run(req, rand.New(rand.NewPCG(seed, 7)))
		if len(w) != 1 || w[0].ClearingECPM != 1_000_000 {
			t.Fatalf("seed %d: %+v", seed, w)
		}
		id := w[0].Candidate.Campaign.ID
		wins[id]++
		again := a.Run(req, rand.New(rand.NewPCG(seed, 7)))
		if again[0].Candidate.Campaign.ID != id {
			t.Fatalf("seed %d: not deterministic", seed)
		}
	}
	if wins["z"] != 0 || wins["x"] < 900 || wins["y"] < 900 {
		t.Errorf("tie split %v, want about 1000 each for x and y", wins)
	}
}

func TestRunMultiSlot(t *testing.T) {
	var (
		a3 = cpmCamp("a3", "adv-a", 0, 3_000_000)
		a4 = cpmCamp("a4", "adv-a", 0, 4_000_000)
		b2 = cpmCamp("b2", "adv-b", 0, 2_000_000)
		c1 = cpmCamp("c1", "adv-c", 0, 1_000_000)
		d5 = cpmCamp("d5", "adv-d", 0, 5_000_000)
		p1 = cpmCamp("p1", "adv-p", 9, 100_000)
	)
	tests := []struct {
		name  string
		floor campaign.Micros
		slots []Slot
		want  []wantWin
	}{
		{
			// s2 is worth more (a4), so it is filled first; adv-a is
			// then excluded from s1, where b2 wins with no runner-up.
			"exclusion after the most valuable slot",
			0,
			[]Slot{
				{ID: "s1", Candidates: []Candidate{cand(a3), cand(b2)}},
				{ID: "s2", Candidates: []Candidate{cand(a4), cand(c1)}},
			},
			[]wantWin{
				{0, "b2", 2_000_000, 10_000, 10_000, -1},
				{1, "a4", 4_000_000, 1_010_000, 1_010_000, 1},
			},
		},
		{
			// One campaign listed in both slots wins only one; in s1 it is
			// the runner-up of d5 before it wins s2.
			"one campaign in two slots",
			0,
			[]Slot{
				{ID: "s1", Candidates: []Candidate{cand(d5), cand(a3)}},
				{ID: "s2", Candidates: []Candidate{cand(a3), cand(c1)}},
			},
			[]wantWin{
				{0, "d5", 5_000_000, 3_010_000, 3_010_000, 1},
				{1, "a3", 3_000_000, 1_010_000, 1_010_000, 1},
			},
		},
		{
			// A priority candidate makes s2 the most valuable slot even
			// with a tiny bid.
			"priority decides the fill order",
			0,
			[]Slot{
				{ID: "s1", Candidates: []Candidate{cand(d5)}},
				{ID: "s2", Candidates: []Candidate{cand(d5), cand(p1)}},
			},
			[]wantWin{
				{0, "d5", 5_000_000, 10_000, 10_000, -1},
				{1, "p1", 100_000, 100_000, 100_000, 0},
			},
		},
		{
			// s2 (a4) is filled first; adv-a is then excluded from s1 and
			// s3, and b2 is below s1's floor: both stay empty.
			"slot floors differ; slots left empty",
			0,
			[]Slot{
				{ID: "s1", Floor: 2_500_000, Candidates: []Candidate{cand(a3), cand(b2)}},
				{ID: "s2", Candidates: []Candidate{cand(a4), cand(b2)}},
				{ID: "s3", Candidates: []Candidate{cand(a3)}},
			},
			[]wantWin{{1, "a4", 4_000_000, 2_010_000, 2_010_000, 1}},
		},
	}
	var a Auction
	for _, tt := range tests {
		req := &Request{Floor: tt.floor, Slots: tt.slots}
		got := a.Run(req, rand.New(rand.NewPCG(3, 4)))
		checkWins(t, tt.name, got, tt.want)
	}
}

// A candidate's own floor (an OpenRTB deal's) excludes it below the floor
// and, when it wins, is its reserve; it does not raise another winner's.
func TestRunCandidateFloor(t *testing.T) {
	a3 := cpmCamp("a3", "adv-a", 0, 3_000_000)
	b2 := cpmCamp("b2", "adv-b", 0, 2_000_000)
	c1 := cpmCamp("c1", "adv-c", 0, 1_000_000)
	withFloor := func(c *campaign.Campaign, f campaign.Micros) Candidate {
		x := cand(c)
		x.Floor = f
		return x
	}
	var a Auction
	cases := []struct {
		name  string
		cands []Candidate
		want  []wantWin
	}{
		{"floor below the runner-up: second price", []Candidate{withFloor(a3, 1_500_000), cand(b2)},
			[]wantWin{{0, "a3", 3_000_000, 2_010_000, 2_010_000, 1}}},
		{"floor above the runner-up: pays the floor", []Candidate{withFloor(a3, 2_500_000), cand(b2)},
			[]wantWin{{0, "a3", 3_000_000, 2_510_000, 2_510_000, 1}}},
		{"below its floor: out, the next wins", []Candidate{withFloor(a3, 3_500_000), cand(b2), cand(c1)},
			[]wantWin{{0, "b2", 2_000_000, 1_010_000, 1_010_000, 2}}},
		{"another's floor does not raise the winner's price", []Candidate{cand(a3), withFloor(b2, 1_900_000)},
			[]wantWin{{0, "a3", 3_000_000, 2_010_000, 2_010_000, 1}}},
	}
	for _, tc := range cases {
		req := Request{Slots: []Slot{{ID: "s", Floor: 500_000, Candidates: tc.cands}}}
		checkWins(t, tc.name, a.Run(&req, nil), tc.want)
	}
}

// A slot whose Rule is FirstPrice pays its bid in a second-price request,
// while the request's other slots keep second price.
func TestRunSlotRule(t *testing.T) {
	a3 := cpmCamp("a3", "adv-a", 0, 3_000_000)
	b2 := cpmCamp("b2", "adv-b", 0, 2_000_000)
	c1 := cpmCamp("c1", "adv-c", 0, 1_000_000)
	d05 := cpmCamp("d05", "adv-d", 0, 500_000)
	req := Request{Rule: SecondPrice, Slots: []Slot{
		{ID: "first", Rule: FirstPrice, Candidates: []Candidate{cand(a3), cand(b2)}},
		{ID: "second", Candidates: []Candidate{cand(c1), cand(d05)}},
	}}
	var a Auction
	checkWins(t, "per-slot rule", a.Run(&req, nil), []wantWin{
		{0, "a3", 3_000_000, 3_000_000, 3_000_000, 1},
		{1, "c1", 1_000_000, 510_000, 510_000, 1},
	})
}
