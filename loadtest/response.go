package loadtest

import (
	"encoding/json"
	"strconv"
	"strings"
)

// fill is what a beacon chain needs from one ad of a response.
type fill struct {
	imp, click, conv string // tracking URLs as the server wrote them ("" if absent)
}

// adResponse is the part of a `/v1/ad` answer the harness reads.
type adResponse struct {
	Ads []struct {
		Price         float64 `json:"price"`
		ImpressionURL string  `json:"impression_url"`
		ClickURL      string  `json:"click_url"`
		// ConversionURL is not in the fixed contract yet; it is followed
		// when present.
		ConversionURL string `json:"conversion_url"`
	} `json:"ads"`
}

// ortbResponse is the part of an OpenRTB BidResponse the harness reads.
type ortbResponse struct {
	SeatBid []struct {
		Bid []struct {
			Price float64         `json:"price"`
			BURL  string          `json:"burl"`
			Ext   json.RawMessage `json:"ext"`
		} `json:"bid"`
	} `json:"seatbid"`
}

// ortbBidExt holds the optional tracking URLs a bid's ext may carry.
type ortbBidExt struct {
	ClickURL      string `json:"click_url"`
	ConversionURL string `json:"conversion_url"`
}

// responseParser decodes answers into reused structs. Not safe for
// concurrent use: one per worker.
type responseParser struct {
	ad    adResponse
	ortb  ortbResponse
	fills []fill
}

// parse reads a 200 answer body and returns its fills (valid until the next
// call). ok is false when the body is not the expected JSON.
func (p *responseParser) parse(openrtb bool, body []byte) (fills []fill, ok bool) {
	p.fills = p.fills[:0]
	if !openrtb {
		p.ad.Ads = p.ad.Ads[:0]
		if err := json.Unmarshal(body, &p.ad); err != nil {
			return nil, false
		}
		for _, a := range p.ad.Ads {
			p.fills = append(p.fills, fill{imp: a.ImpressionURL, click: a.ClickURL, conv: a.ConversionURL})
		}
		return p.fills, true
	}
	p.ortb.SeatBid = p.ortb.SeatBid[:0]
	if err := json.Unmarshal(body, &p.ortb); err != nil {
		return nil, false
	}
	for _, sb := range p.ortb.SeatBid {
		for _, b := range sb.Bid {
			f := fill{imp: expandPrice(b.BURL, b.Price)}
			if len(b.Ext) > 0 {
				var ext ortbBidExt
				if json.Unmarshal(b.Ext, &ext) == nil {
					f.click, f.conv = ext.ClickURL, ext.ConversionURL
				}
			}
			p.fills = append(p.fills, f)
		}
	}
	return p.fills, true
}

// expandPrice substitutes the OpenRTB ${AUCTION_PRICE} macro (also
// URL-encoded) with the bid price, as an exchange does for a billing URL.
func expandPrice(u string, price float64) string {
	if u == "" || !strings.Contains(u, "AUCTION_PRICE") {
		return u
	}
	p := strconv.FormatFloat(price, 'f', -1, 64)
	u = strings.ReplaceAll(u, "${AUCTION_PRICE}", p)
	return strings.ReplaceAll(u, "%24%7BAUCTION_PRICE%7D", p)
}
