package auction

import (
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/adserver/adserver/campaign"
)

// randomRequest builds a request of 1–4 slots over a pool of 1–12
// campaigns of 1–6 advertisers, with frequent ties, shared candidates, CPC
// bids, zero pCTRs and floors.
func randomRequest(r *rand.Rand) *Request {
	advs := 1 + r.IntN(6)
	pool := make([]*campaign.Campaign, 1+r.IntN(12))
	for i := range pool {
		model, amount := campaign.BidCPM, campaign.Micros(250_000*(1+r.IntN(12)))
		if r.IntN(3) == 0 {
			amount = campaign.Micros(1 + r.IntN(5_000_000))
		}
		if r.IntN(3) == 0 {
			model = campaign.BidCPC
			amount /= 20
			if amount == 0 {
				amount = 1
			}
		}
		prio := []int{0, 0, 0, 1, 3}[r.IntN(5)]
		pool[i] = camp(fmt.Sprintf("c%d", i), fmt.Sprintf("adv%d", r.IntN(advs)), prio, model, amount)
	}
	floor := func() campaign.Micros {
		switch r.IntN(4) {
		case 0:
			return 500_000
		case 1:
			return campaign.Micros(r.IntN(2_000_000))
		}
		return 0
	}
	req := &Request{Floor: floor(), Slots: make([]Slot, 1+r.IntN(4))}
	if r.IntN(4) == 0 {
		req.Rule = FirstPrice
	}
	for s := range req.Slots {
		req.Slots[s] = Slot{ID: fmt.Sprintf("s%d", s), Floor: floor()}
		if r.IntN(4) == 0 {
			req.Slots[s].Rule = FirstPrice
		}
		for _, c := range pool {
			if r.IntN(5) < 3 {
				pctr := []float64{0, 0.001, 0.01, 0.05 * r.Float64()}[r.IntN(4)]
				cand := cpcCand(c, pctr)
				if r.IntN(4) == 0 {
					cand.Floor = floor() // a deal's floor
				}
				req.Slots[s].Candidates = append(req.Slots[s].Candidates, cand)
			}
		}
	}
	return req
}

func TestProperties(t *testing.T) {
	gen := rand.New(rand.NewPCG(2026, 11))
	var a, b Auction
	var outs, outs2 []Outcome
	for n := range 5000 {
		req := randomRequest(gen)
		seed := gen.Uint64()
		wins := slices.Clone(a.Run(req, rand.New(rand.NewPCG(seed, 0))))
		outs = a.AppendOutcomes(outs[:0])
		if err := checkInvariants(req, wins, outs); err != nil {
			t.Fatalf("case %d: %v\nrequest %s", n, err, describe(req))
		}

		// Deterministic for a seed, also on a different Auction.
		again := b.Run(req, rand.New(rand.NewPCG(seed, 0)))
		outs2 = b.AppendOutcomes(outs2[:0])
		if !slices.Equal(wins, again) || !slices.Equal(outs, outs2) {
			t.Fatalf("case %d: not deterministic for seed %d", n, seed)
		}

		// Second price never exceeds first price for the same candidates.
		other := *req
		other.Rule = SecondPrice + FirstPrice - req.Rule
		alt := b.Run(&other, rand.New(rand.NewPCG(seed, 0)))
		second, first := wins, alt
		if req.Rule == FirstPrice {
			second, first = alt, wins
		}
		if len(second) != len(first) {
			t.Fatalf("case %d: rules filled %d and %d slots", n, len(second), len(first))
		}
		for i := range second {
			s, f := second[i], first[i]
			if s.Slot != f.Slot || s.Index != f.Index || s.Price > f.Price || s.ClearingECPM > f.ClearingECPM ||
				f.Price != f.Candidate.Campaign.Bid.Amount || f.ClearingECPM != f.ECPM {
				t.Fatalf("case %d: second price %+v vs first price %+v", n, s, f)
			}
		}

		// Without a random source the result equals the slow twin's.
		if err := compareWithTwin(req, a.Run(req, nil)); err != nil {
			t.Fatalf("case %d: %v\nrequest %s", n, err, describe(req))
		}
	}
}

func checkInvariants(req *Request, wins []Win, outs []Outcome) error {
	advWon := map[string]int{} // advertiser → slot
	winBySlot := map[int]Win{}
	for _, w := range wins {
		c := w.Candidate.Campaign
		if s, dup := advWon[c.AdvertiserID]; dup {
			return fmt.Errorf("advertiser %s won slots %d and %d", c.AdvertiserID, s, w.Slot)
		}
		advWon[c.AdvertiserID], winBySlot[w.Slot] = w.Slot, w
		priceECPM := w.Price // eCPM of the price, in its own unit
		if c.Bid.Model == campaign.BidCPC {
			priceECPM = ECPM(campaign.Bid{Model: campaign.BidCPC, Amount: w.Price}, w.Candidate.PCTR)
		}
		switch {
		case w.Price <= 0 || w.Price > c.Bid.Amount:
			return fmt.Errorf("slot %d: price %d outside (0, bid %d]", w.Slot, w.Price, c.Bid.Amount)
		case w.ECPM < w.Reserve || w.ClearingECPM < w.Reserve || priceECPM < w.Reserve:
			return fmt.Errorf("slot %d: eCPM %d, clearing %d, price eCPM %d below reserve %d", w.Slot, w.ECPM, w.ClearingECPM, priceECPM, w.Reserve)
		case w.ClearingECPM > w.ECPM:
			return fmt.Errorf("slot %d: clearing %d above eCPM %d", w.Slot, w.ClearingECPM, w.ECPM)
		case w.ClearingECPM < min(w.RunnerUpECPM+OneCent, w.ECPM):
			return fmt.Errorf("slot %d: clearing %d below runner-up %d + a cent", w.Slot, w.ClearingECPM, w.RunnerUpECPM)
		}
	}
	for _, o := range outs {
		w, filled := winBySlot[o.Slot]
		reserve := max(req.Floor, req.Slots[o.Slot].Floor, req.Slots[o.Slot].Candidates[o.Index].Floor)
		below := o.ECPM == 0 || o.ECPM < reserve
		if o.ECPM != ECPM(o.Campaign.Bid, req.Slots[o.Slot].Candidates[o.Index].PCTR) || (o.Reason == BelowFloor) != below {
			return fmt.Errorf("slot %d: %s with eCPM %d, reserve %d", o.Slot, o, o.ECPM, reserve)
		}
		switch o.Reason {
		case Won:
			if !filled || w.Index != o.Index {
				return fmt.Errorf("slot %d: outcome won but win is %+v", o.Slot, w)
			}
		case Lost:
			wc := w.Candidate.Campaign
			if !filled || o.By != wc || wc.Priority < o.Campaign.Priority ||
				(wc.Priority == o.Campaign.Priority && w.ECPM < o.ECPM) {
				return fmt.Errorf("slot %d: %s, but the slot's win is %s", o.Slot, o, wc.ID)
			}
		case Excluded:
			s, ok := advWon[o.Campaign.AdvertiserID]
			if !ok || s == o.Slot {
				return fmt.Errorf("slot %d: %s, but its advertiser won no other slot", o.Slot, o)
			}
		case BelowFloor:
		default:
			return fmt.Errorf("slot %d: no reason for %s", o.Slot, o.Campaign.ID)
		}
	}
	return nil
}

// compareWithTwin runs the obvious slow algorithm (sort every slot, fill
// the best slot, repeat) with ties broken by position, and compares.
func compareWithTwin(req *Request, wins []Win) error {
	type item struct {
		slot, idx, global int
		ecpm              campaign.Micros
		c                 *Candidate
	}
	rank := func(x, y item) int { // x first: negative
		switch {
		case x.c.Campaign.Priority != y.c.Campaign.Priority:
			return y.c.Campaign.Priority - x.c.Campaign.Priority
		case x.ecpm != y.ecpm:
			return int(y.ecpm - x.ecpm)
		}
		return x.global - y.global
	}
	var slots [][]item
	global := 0
	for s := range req.Slots {
		var list []item
		reserve := max(req.Floor, req.Slots[s].Floor, 0)
		for i := range req.Slots[s].Candidates {
			c := &req.Slots[s].Candidates[i]
			if e := ECPM(c.Campaign.Bid, c.PCTR); e > 0 && e >= max(reserve, c.Floor) {
				list = append(list, item{s, i, global, e, c})
			}
			global++
		}
		slices.SortFunc(list, rank)
		slots = append(slots, list)
	}
	placed := map[string]bool{}
	var want []Win
	open := func(list []item) []item {
		return slices.DeleteFunc(slices.Clone(list), func(it item) bool { return placed[it.c.Campaign.AdvertiserID] })
	}
	for {
		best := -1
		for s, list := range slots {
			if l := open(list); len(l) > 0 && (best < 0 || rank(l[0], open(slots[best])[0]) < 0) {
				best = s
			}
		}
		if best < 0 {
			break
		}
		top := open(slots[best])[0]
		placed[top.c.Campaign.AdvertiserID] = true
		w := Win{Slot: best, Index: top.idx, ECPM: top.ecpm, RunnerUp: -1}
		if rest := open(slots[best]); len(rest) > 0 {
			w.RunnerUp, w.RunnerUpECPM = rest[0].idx, rest[0].ecpm
		}
		reserve := max(req.Floor, req.Slots[best].Floor, top.c.Floor, 0)
		bid := top.c.Campaign.Bid
		w.ClearingECPM, w.Price = top.ecpm, bid.Amount
		if req.Rule == SecondPrice && req.Slots[best].Rule == SecondPrice {
			w.ClearingECPM = min(max(w.RunnerUpECPM, reserve)+OneCent, top.ecpm)
			w.Price = w.ClearingECPM
			if bid.Model == campaign.BidCPC { // ceil(clearing × 1e9 / (ppb × 1000)), at most the bid
				ppb := big.NewInt(int64(top.c.PCTR * 1e9))
				num := new(big.Int).Mul(big.NewInt(int64(w.ClearingECPM)), big.NewInt(1e9))
				den := new(big.Int).Mul(ppb, big.NewInt(1000))
				q, m := new(big.Int).QuoRem(num, den, new(big.Int))
				if m.Sign() != 0 {
					q.Add(q, big.NewInt(1))
				}
				w.Price = campaign.Micros(min(q.Int64(), int64(bid.Amount)))
			}
		}
		slots[best] = nil // filled
		want = append(want, w)
	}
	slices.SortFunc(want, func(x, y Win) int { return x.Slot - y.Slot })
	if len(want) != len(wins) {
		return fmt.Errorf("twin fills %d slots, auction %d", len(want), len(wins))
	}
	for i, w := range want {
		g := wins[i]
		if g.Slot != w.Slot || g.Index != w.Index || g.ECPM != w.ECPM || g.RunnerUp != w.RunnerUp ||
			g.RunnerUpECPM != w.RunnerUpECPM || g.ClearingECPM != w.ClearingECPM || g.Price != w.Price {
			return fmt.Errorf("twin win %+v, auction win %+v", w, g)
		}
	}
	return nil
}

func describe(req *Request) string {
	s := fmt.Sprintf("rule=%v floor=%d", req.Rule, req.Floor)
	for _, sl := range req.Slots {
		s += fmt.Sprintf("\n  %s floor=%d:", sl.ID, sl.Floor)
		for _, c := range sl.Candidates {
			cp := c.Campaign
			s += fmt.Sprintf(" %s(%s p%d %s %d ctr %.4f)", cp.ID, cp.AdvertiserID, cp.Priority, cp.Bid.Model, cp.Bid.Amount, c.PCTR)
		}
	}
	return s
}
