package loadtest

import (
	"strconv"
	"strings"

	"github.com/valyala/fastjson"
)

// fill is what a beacon chain needs from one ad of a response. The URLs
// alias the parser's memory: valid until its next parse; copy to keep.
type fill struct {
	imp, click, conv []byte // tracking URLs as the server wrote them (nil if absent)
	// price is the OpenRTB bid price, substituted for ${AUCTION_PRICE} in
	// imp (see job).
	price float64
	ortb  bool
}

// job copies f into a beacon job for t, expanding the OpenRTB price macro
// as an exchange does for a billing URL.
func (f *fill) job(t *target) beaconJob {
	j := beaconJob{t: t, imp: string(f.imp), click: string(f.click), conv: string(f.conv)}
	if f.ortb {
		j.imp = expandPrice(j.imp, f.price)
	}
	return j
}

// responseParser reads answers with a reused fastjson parser: it validates
// the whole body (a malformed answer counts as bad) but decodes only the
// fields the harness follows, so its cost stays small next to the server's
// (encoding/json cost the harness several microseconds per filled answer,
// which the baseline's empty 204s never pay). Not safe for concurrent use:
// one per worker.
type responseParser struct {
	p     fastjson.Parser
	fills []fill
}

// parse reads a 200 answer body and returns its fills (valid until the next
// call). ok is false when the body is not the expected JSON.
func (p *responseParser) parse(openrtb bool, body []byte) (fills []fill, ok bool) {
	p.fills = p.fills[:0]
	v, err := p.p.ParseBytes(body)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, false
	}
	if !openrtb {
		ads := v.Get("ads")
		if ads == nil {
			return p.fills, true
		}
		arr, err := ads.Array()
		if err != nil {
			return nil, false
		}
		for _, a := range arr {
			if a.Type() != fastjson.TypeObject {
				return nil, false
			}
			p.fills = append(p.fills, fill{
				imp: a.GetStringBytes("impression_url"), click: a.GetStringBytes("click_url"),
				// conversion_url is not in the fixed contract; it is
				// followed when present, else the click's postback.
				conv: a.GetStringBytes("conversion_url"),
			})
		}
		return p.fills, true
	}
	seatbids := v.Get("seatbid")
	if seatbids == nil {
		return p.fills, true
	}
	sbs, err := seatbids.Array()
	if err != nil {
		return nil, false
	}
	for _, sb := range sbs {
		bids := sb.Get("bid")
		if bids == nil {
			continue
		}
		arr, err := bids.Array()
		if err != nil {
			return nil, false
		}
		for _, b := range arr {
			f := fill{imp: b.GetStringBytes("burl"), price: b.GetFloat64("price"), ortb: true}
			if ext := b.Get("ext"); ext != nil && ext.Type() == fastjson.TypeObject {
				f.click, f.conv = ext.GetStringBytes("click_url"), ext.GetStringBytes("conversion_url")
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
