package auction

import (
	"math"
	"testing"

	"github.com/adserver/adserver/campaign"
)

func TestECPM(t *testing.T) {
	cpmBid := func(a campaign.Micros) campaign.Bid { return campaign.Bid{Model: campaign.BidCPM, Amount: a} }
	cpcBid := func(a campaign.Micros) campaign.Bid { return campaign.Bid{Model: campaign.BidCPC, Amount: a} }
	tests := []struct {
		name string
		bid  campaign.Bid
		pctr float64
		want campaign.Micros
	}{
		{"cpm is its amount", cpmBid(2_500_000), 0, 2_500_000},
		{"cpm ignores pctr", cpmBid(2_500_000), 0.5, 2_500_000},
		{"cpc 0.5 at 1%", cpcBid(500_000), 0.01, 5_000_000},
		{"cpc rounds down", cpcBid(333_333), 0.001234567891, 411_521}, // ppb 1234567 → 411521.92
		{"cpc 1.234567 at 0.345%", cpcBid(1_234_567), 0.00345, 4_259_256},
		{"cpc pctr above 1 is 1", cpcBid(1_000), 7, 1_000_000},
		{"cpc pctr 0", cpcBid(1_000_000), 0, 0},
		{"cpc pctr negative", cpcBid(1_000_000), -0.1, 0},
		{"cpc pctr NaN", cpcBid(1_000_000), math.NaN(), 0},
		{"cpc tiny pctr truncates to 0", cpcBid(1_000_000), 1e-10, 0},
		{"cpc huge saturates", cpcBid(MaxECPM), 1, MaxECPM},
		{"cpm huge saturates", cpmBid(math.MaxInt64), 0, MaxECPM},
		{"zero amount", cpmBid(0), 0, 0},
		{"negative amount", cpmBid(-5), 0, 0},
		{"unknown model", campaign.Bid{Model: "cpa", Amount: 1_000_000}, 0.5, 0},
	}
	for _, tt := range tests {
		if got := ECPM(tt.bid, tt.pctr); got != tt.want {
			t.Errorf("%s: ECPM(%+v, %v) = %d, want %d", tt.name, tt.bid, tt.pctr, got, tt.want)
		}
	}
}

func TestSecondPriceECPM(t *testing.T) {
	tests := []struct {
		name                      string
		winner, runnerUp, reserve campaign.Micros
		want                      campaign.Micros
	}{
		{"runner-up plus a cent", 2_500_000, 1_000_000, 500_000, 1_010_000},
		{"reserve plus a cent", 2_500_000, 300_000, 500_000, 510_000},
		{"no runner-up, no reserve: one cent", 2_500_000, 0, 0, 10_000},
		{"one cent capped at a smaller bid", 5_000, 0, 0, 5_000},
		{"capped at the winner", 2_500_000, 2_500_000, 0, 2_500_000},
		{"runner-up above winner (lower tier)", 1_000_000, 3_000_000, 0, 1_000_000},
		{"winner at reserve pays reserve", 500_000, 0, 500_000, 500_000},
		{"negative reserve is 0", 2_500_000, 0, -7, 10_000},
		{"huge values do not overflow", MaxECPM, MaxECPM, math.MaxInt64, MaxECPM},
	}
	for _, tt := range tests {
		if got := secondPriceECPM(tt.winner, tt.runnerUp, tt.reserve); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestCPCPrice(t *testing.T) {
	tests := []struct {
		name          string
		clearing, bid campaign.Micros
		ppb           uint64
		want          campaign.Micros
	}{
		{"2.01 eCPM at 1%", 2_010_000, 500_000, 10_000_000, 201_000},
		{"rounds up", 1_000_001, 500_000, 10_000_000, 100_001},            // 100000.1
		{"3.01 eCPM at 0.345%", 3_010_000, 1_234_567, 3_450_000, 872_464}, // 872463.77
		{"capped at the bid", 5_000_000, 500_000, 10_000_000, 500_000},
		{"winner's own eCPM is at most its bid", 4_259_256, 1_234_567, 3_450_000, 1_234_567}, // 1234566.96 → 1234567
		{"zero ctr", 10_000, 500_000, 0, 10_000},
		{"huge quotient", MaxECPM, 7, 1, 7},
	}
	for _, tt := range tests {
		if got := cpcPrice(tt.clearing, tt.bid, tt.ppb); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestRTBBidPrice(t *testing.T) {
	tests := []struct {
		name                      string
		at                        int
		winner, runnerUp, reserve campaign.Micros
		want                      campaign.Micros
	}{
		{"at=2 bids full eCPM", 2, 2_500_000, 1_000_000, 500_000, 2_500_000},
		{"at=1 bids runner-up plus a cent", 1, 2_500_000, 1_000_000, 500_000, 1_010_000},
		{"at=1 bids floor plus a cent", 1, 2_500_000, 0, 500_000, 510_000},
		{"at=1 never above winner", 1, 2_500_000, 2_499_999, 0, 2_500_000},
		{"at=1 no runner-up, no floor", 1, 2_500_000, 0, 0, 10_000},
		{"at=0 (unset) is second price", 0, 2_500_000, 1_000_000, 0, 2_500_000},
		{"exchange-specific at=501 is second price", 501, 2_500_000, 1_000_000, 0, 2_500_000},
	}
	for _, tt := range tests {
		if got := RTBBidPrice(tt.at, tt.winner, tt.runnerUp, tt.reserve); got != tt.want {
			t.Errorf("%s: got %d, want %d", tt.name, got, tt.want)
		}
	}
}

func TestRuleOf(t *testing.T) {
	for _, tt := range []struct {
		p    *campaign.Placement
		want Rule
	}{
		{nil, SecondPrice},
		{&campaign.Placement{}, SecondPrice},
		{&campaign.Placement{Auction: "second"}, SecondPrice},
		{&campaign.Placement{Auction: "first"}, FirstPrice},
	} {
		if got := RuleOf(tt.p); got != tt.want {
			t.Errorf("RuleOf(%+v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if SecondPrice.String() != "second" || FirstPrice.String() != "first" {
		t.Errorf("Rule.String: %q %q", SecondPrice, FirstPrice)
	}
}
