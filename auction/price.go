package auction

import (
	"math/bits"

	"github.com/adserver/adserver/campaign"
)

// OneCent is the second-price increment and the minimum clearing price:
// 0.01 currency units.
const OneCent campaign.Micros = 10_000

// MaxECPM bounds every eCPM and reserve (it is the largest amount the
// campaign codec accepts), so that price arithmetic cannot overflow.
const MaxECPM campaign.Micros = 1_000_000_000_000_000_000

// ctrScale is the fixed-point scale of a quantised pCTR: parts per billion.
const ctrScale = 1_000_000_000

// microsPerMilleScale is ctrScale/1000: eCPM = amount × ppb × 1000 / ctrScale.
const microsPerMilleScale = ctrScale / 1000

// Rand is the random source that breaks ties and rotates creatives.
// *rand.Rand, *rand.PCG and *rand.ChaCha8 from math/rand/v2 satisfy it. It is
// used by one goroutine at a time: give each goroutine its own.
type Rand interface{ Uint64() uint64 }

// Rule is the price rule of a placement's internal auction.
type Rule uint8

// Price rules.
const (
	// SecondPrice: the winner pays the runner-up's eCPM or the reserve,
	// whichever is larger, plus one cent, never more than its bid.
	SecondPrice Rule = iota
	// FirstPrice: the winner pays its bid.
	FirstPrice
)

// RuleOf returns the price rule of a placement: [FirstPrice] when its
// auction field is "first", otherwise (also for a nil placement)
// [SecondPrice].
func RuleOf(p *campaign.Placement) Rule {
	if p != nil && p.Auction == "first" {
		return FirstPrice
	}
	return SecondPrice
}

func (r Rule) String() string {
	if r == FirstPrice {
		return "first"
	}
	return "second"
}

// OpenRTB auction types (BidRequest.at).
const (
	RTBFirstPrice  = 1
	RTBSecondPrice = 2
)

// RTBBidPrice returns the CPM price, in micros, that the server bids to an
// exchange for an impression whose internal auction was won at winnerECPM,
// with the runner-up at runnerUpECPM (0 when there was none) and the given
// reserve (the larger of imp.bidfloor and the placement floor).
//
// For at = 1 (the exchange runs a first-price auction) the server shades
// its bid to the internal clearing price: min(max(runnerUpECPM, reserve) +
// OneCent, winnerECPM). For at = 2 (second price plus) and any other value
// (OpenRTB's default is 2; exchange-specific values above 500 are treated
// like it) it bids the winner's full eCPM and lets the exchange discount.
func RTBBidPrice(at int, winnerECPM, runnerUpECPM, reserve campaign.Micros) campaign.Micros {
	if at == RTBFirstPrice {
		return secondPriceECPM(winnerECPM, runnerUpECPM, reserve)
	}
	return winnerECPM
}

// ECPM returns what bid is worth per thousand impressions, in micros,
// rounded down; pctr, the predicted click-through rate, matters only for a
// CPC bid. An unknown bid model or a non-positive amount is worth 0.
func ECPM(bid campaign.Bid, pctr float64) campaign.Micros {
	return ecpm(bid, quantizeCTR(pctr))
}

// quantizeCTR converts a predicted CTR to parts per billion, truncating;
// NaN and values ≤ 0 give 0, values ≥ 1 give ctrScale.
func quantizeCTR(p float64) uint64 {
	switch {
	case !(p > 0):
		return 0
	case p >= 1:
		return ctrScale
	}
	return uint64(p * ctrScale)
}

// ecpm is ECPM with a quantised CTR.
func ecpm(bid campaign.Bid, ppb uint64) campaign.Micros {
	if bid.Amount <= 0 {
		return 0
	}
	switch bid.Model {
	case campaign.BidCPM:
		return min(bid.Amount, MaxECPM)
	case campaign.BidCPC:
		hi, lo := bits.Mul64(uint64(bid.Amount), ppb)
		if hi == 0 { // the common case: a cheap division by a constant
			return campaign.Micros(min(lo/microsPerMilleScale, uint64(MaxECPM)))
		}
		if hi >= microsPerMilleScale {
			return MaxECPM // the quotient would not fit in 64 bits
		}
		q, _ := bits.Div64(hi, lo, microsPerMilleScale)
		return campaign.Micros(min(q, uint64(MaxECPM)))
	}
	return 0
}

// secondPriceECPM is the clearing eCPM of a second-price win.
func secondPriceECPM(winner, runnerUp, reserve campaign.Micros) campaign.Micros {
	reserve = clampMicros(reserve)
	return min(max(clampMicros(runnerUp), reserve)+OneCent, winner)
}

// cpcPrice converts a clearing eCPM to a price per click for a CPC bid whose
// pCTR is ppb parts per billion: clearing / (pCTR × 1000), rounded up, never
// more than bid.
func cpcPrice(clearing, bid campaign.Micros, ppb uint64) campaign.Micros {
	if ppb == 0 || clearing <= 0 {
		// A zero-CTR bid has eCPM 0 and cannot win; keep the cap anyway.
		return min(max(clearing, 0), bid)
	}
	hi, lo := bits.Mul64(uint64(clearing), microsPerMilleScale)
	if hi >= ppb {
		return bid
	}
	q, r := bits.Div64(hi, lo, ppb)
	if r != 0 {
		q++
	}
	if q >= uint64(bid) {
		return bid
	}
	return campaign.Micros(q)
}

func clampMicros(m campaign.Micros) campaign.Micros {
	return min(max(m, 0), MaxECPM)
}
