package auction

import (
	"math/bits"

	"github.com/adserver/adserver/campaign"
)

// maxWeight caps a creative's rotation weight so that the sum of up to
// 2^31 weights cannot overflow.
const maxWeight = 1 << 32

// PickCreative chooses one of c's creatives for which fits returns true (a
// nil fits accepts every creative), at random in proportion to their
// weights (a weight of 0 counts as 1). It returns nil when none fits. fits
// is called twice per creative, so it should be cheap and pure. It does not
// allocate; rnd must be non-nil.
func PickCreative(c *campaign.Campaign, fits func(*campaign.Creative) bool, rnd Rand) *campaign.Creative {
	var total uint64
	for i := range c.Creatives {
		if cr := &c.Creatives[i]; fits == nil || fits(cr) {
			total += weight(cr)
		}
	}
	if total == 0 {
		return nil
	}
	// Lemire's multiply-shift maps a uniform 64-bit draw onto [0, total);
	// the bias, at most total/2^64, is negligible.
	r, _ := bits.Mul64(rnd.Uint64(), total)
	var last *campaign.Creative
	for i := range c.Creatives {
		cr := &c.Creatives[i]
		if fits != nil && !fits(cr) {
			continue
		}
		w := weight(cr)
		if r < w {
			return cr
		}
		r -= w
		last = cr
	}
	return last // only when fits changed its mind between the passes
}

func weight(cr *campaign.Creative) uint64 {
	switch {
	case cr.Weight <= 0:
		return 1
	case cr.Weight > maxWeight:
		return maxWeight
	}
	return uint64(cr.Weight)
}
