package clickhouse

import "github.com/adserver/adserver/events"

// Column lists of the inserts; columns.eventColumns and decisionColumns
// return values in exactly this order.
const (
	eventColumnList = `(event_id, type, time, node_id, seq, auction_id, slot_id, advertiser_id, ` +
		`campaign_id, creative_id, placement_id, publisher_id, country, user_id, price_micros, cost_micros, test)`
	decisionColumnList = `(time, node_id, seq, auction_id, slot_id, placement_id, publisher_id, country, ` +
		`candidates, bids, winner_advertiser_id, winner_campaign_id, winner_creative_id, bid_micros, ` +
		`price_micros, floor_micros, no_fill_reason, latency_micros, test)`
)

// columns accumulates one insert's values column by column (the fast path
// of clickhouse-go: one Append per column instead of per row). The slices
// are reused between inserts.
type columns struct {
	nEv, nDec int

	evID                                      [][]byte
	evType                                    []int8
	evTime                                    []int64
	evNode, evAuction, evSlot, evAdv, evCamp  []string
	evCreative, evPlacement, evPub, evCountry []string
	evUser                                    []string
	evSeq                                     []uint64
	evPrice, evCost                           []int64
	evTest                                    []uint8
	dTime                                     []int64
	dNode, dAuction, dSlot, dPlacement, dPub  []string
	dCountry, dWinAdv, dWinCamp, dWinCreative []string
	dReason                                   []string
	dSeq                                      []uint64
	dCandidates, dBids                        []uint32
	dBid, dPrice, dFloor, dLatency            []int64
	dTest                                     []uint8
}

func (c *columns) reset() {
	c.nEv, c.nDec = 0, 0
	c.evID = c.evID[:0]
	c.evType, c.evTime, c.evSeq = c.evType[:0], c.evTime[:0], c.evSeq[:0]
	for _, p := range []*[]string{&c.evNode, &c.evAuction, &c.evSlot, &c.evAdv, &c.evCamp, &c.evCreative,
		&c.evPlacement, &c.evPub, &c.evCountry, &c.evUser, &c.dNode, &c.dAuction, &c.dSlot, &c.dPlacement,
		&c.dPub, &c.dCountry, &c.dWinAdv, &c.dWinCamp, &c.dWinCreative, &c.dReason} {
		*p = (*p)[:0]
	}
	c.evPrice, c.evCost, c.evTest = c.evPrice[:0], c.evCost[:0], c.evTest[:0]
	c.dTime, c.dSeq, c.dCandidates, c.dBids = c.dTime[:0], c.dSeq[:0], c.dCandidates[:0], c.dBids[:0]
	c.dBid, c.dPrice, c.dFloor, c.dLatency, c.dTest = c.dBid[:0], c.dPrice[:0], c.dFloor[:0], c.dLatency[:0], c.dTest[:0]
}

// unixSeconds clamps t into DateTime's range.
func unixSeconds(e int64) int64 {
	switch {
	case e < 0:
		return 0
	case e > 1<<32-1:
		return 1<<32 - 1
	}
	return e
}

func bool8(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// addEvent appends e; the event_id value aliases e.ID, so e must stay put
// until the insert is sent.
func (c *columns) addEvent(e *events.Event) {
	c.nEv++
	c.evID = append(c.evID, e.ID[:])
	c.evType = append(c.evType, int8(e.Type))
	c.evTime = append(c.evTime, unixSeconds(e.Time.Unix()))
	c.evNode = append(c.evNode, e.NodeID)
	c.evSeq = append(c.evSeq, e.Seq)
	c.evAuction = append(c.evAuction, e.AuctionID)
	c.evSlot = append(c.evSlot, e.SlotID)
	c.evAdv = append(c.evAdv, e.AdvertiserID)
	c.evCamp = append(c.evCamp, e.CampaignID)
	c.evCreative = append(c.evCreative, e.CreativeID)
	c.evPlacement = append(c.evPlacement, e.PlacementID)
	c.evPub = append(c.evPub, e.PublisherID)
	c.evCountry = append(c.evCountry, e.Country)
	c.evUser = append(c.evUser, e.UserID)
	c.evPrice = append(c.evPrice, e.PriceMicros)
	c.evCost = append(c.evCost, e.CostMicros)
	c.evTest = append(c.evTest, bool8(e.Test))
}

func (c *columns) addDecision(d *events.Decision) {
	c.nDec++
	c.dTime = append(c.dTime, unixSeconds(d.Time.Unix()))
	c.dNode = append(c.dNode, d.NodeID)
	c.dSeq = append(c.dSeq, d.Seq)
	c.dAuction = append(c.dAuction, d.AuctionID)
	c.dSlot = append(c.dSlot, d.SlotID)
	c.dPlacement = append(c.dPlacement, d.PlacementID)
	c.dPub = append(c.dPub, d.PublisherID)
	c.dCountry = append(c.dCountry, d.Country)
	c.dCandidates = append(c.dCandidates, uint32(max(d.Candidates, 0)))
	c.dBids = append(c.dBids, uint32(max(d.Bids, 0)))
	c.dWinAdv = append(c.dWinAdv, d.WinnerAdvertiserID)
	c.dWinCamp = append(c.dWinCamp, d.WinnerCampaignID)
	c.dWinCreative = append(c.dWinCreative, d.WinnerCreativeID)
	c.dBid = append(c.dBid, d.BidMicros)
	c.dPrice = append(c.dPrice, d.PriceMicros)
	c.dFloor = append(c.dFloor, d.FloorMicros)
	c.dReason = append(c.dReason, d.NoFillReason)
	c.dLatency = append(c.dLatency, d.LatencyMicros)
	c.dTest = append(c.dTest, bool8(d.Test))
}

func (c *columns) eventColumns() []any {
	return []any{c.evID, c.evType, c.evTime, c.evNode, c.evSeq, c.evAuction, c.evSlot, c.evAdv,
		c.evCamp, c.evCreative, c.evPlacement, c.evPub, c.evCountry, c.evUser, c.evPrice, c.evCost, c.evTest}
}

func (c *columns) decisionColumns() []any {
	return []any{c.dTime, c.dNode, c.dSeq, c.dAuction, c.dSlot, c.dPlacement, c.dPub, c.dCountry,
		c.dCandidates, c.dBids, c.dWinAdv, c.dWinCamp, c.dWinCreative, c.dBid, c.dPrice, c.dFloor,
		c.dReason, c.dLatency, c.dTest}
}
