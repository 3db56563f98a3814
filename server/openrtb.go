package server

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/adserver/adserver/auction"
	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/prebid/openrtb/v20/openrtb2"
	"github.com/prebid/openrtb/v20/openrtb3"
	"github.com/valyala/fasthttp"
)

// Currency is the account currency; a bidfloorcur other than it makes that
// imp ineligible.
const Currency = "USD"

// OpenRTB no-bid reasons (nbr), from the 2.6 specification's list (the
// same codes as openrtb3.NoBidReason). A no-bid whose reason has a code is
// answered 200 with nbr; any other no-bid is 204.
const (
	// nbrBlocked is "Blocked Publisher or Site" (7): every candidate was
	// removed by the request's bcat or badv. The list has no closer code.
	nbrBlocked = 7
	// nbrInsufficientTime is "Insufficient Auction Time" (15): tmax left
	// no time to decide.
	nbrInsufficientTime = 15
)

// noBidReasons maps the engine's no-fill reasons that have an OpenRTB code.
var noBidReasons = map[string]int{
	decision.NoFillBlocked:  nbrBlocked,
	decision.NoFillDeadline: nbrInsufficientTime,
}

// handleOpenRTB serves POST /openrtb2/bid. The body is decoded into the
// prebid/openrtb types; unknown fields and ext objects are ignored, and a
// missing Content-Type is fine (Prebid Server sends none).
func (s *Server) handleOpenRTB(ctx *fasthttp.RequestCtx) {
	if !ctx.IsPost() {
		methodNotAllowed(ctx, "POST")
		return
	}
	if !s.admitIP(ctx, s.now()) {
		return
	}
	var br openrtb2.BidRequest
	if err := json.Unmarshal(ctx.PostBody(), &br); err != nil {
		field := ""
		if te, ok := err.(*json.UnmarshalTypeError); ok {
			field = te.Field
		}
		writeError(ctx, fasthttp.StatusBadRequest, "invalid_json", "cannot parse the bid request: "+err.Error(), field)
		return
	}
	if br.ID == "" {
		writeError(ctx, fasthttp.StatusBadRequest, "required", "id is required", "id")
		return
	}
	if len(br.Imp) == 0 {
		writeError(ctx, fasthttp.StatusBadRequest, "required", "at least one imp is required", "imp")
		return
	}
	for i := range br.Imp {
		if br.Imp[i].ID == "" {
			writeError(ctx, fasthttp.StatusBadRequest, "required", "imp id is required", "imp["+strconv.Itoa(i)+"].id")
			return
		}
	}
	if n := len(br.Imp) - maxImps; n > 0 {
		impsIgnored.Add(n)
	}
	debug := rtbDebug(br.Ext)
	if debug && !s.isAdmin(ctx) {
		writeError(ctx, fasthttp.StatusForbidden, "debug_forbidden", "debug requests need Authorization: Bearer <admin token>", "ext.debug")
		return
	}
	now := s.now()
	st := acquireAdState()
	defer releaseAdState(st)
	req := &st.req
	mapBidRequest(&br, req, now)
	req.Debug = debug
	if !s.admitRequest(ctx, req, now) {
		return
	}
	s.decide(req, &st.res)
	res := &st.res
	if len(res.Ads) == 0 && !debug {
		if nbr, ok := noBidReasons[res.NoFill]; ok {
			writeJSON(ctx, fasthttp.StatusOK, openrtb2.BidResponse{ID: br.ID, NBR: ptrNBR(nbr)})
			return
		}
		ctx.Response.Header.Set("X-No-Fill-Reason", res.NoFill)
		ctx.SetStatusCode(fasthttp.StatusNoContent)
		return
	}
	resp := openrtb2.BidResponse{ID: br.ID, BidID: res.AuctionID, Cur: Currency}
	var bids []openrtb2.Bid
	for i := range res.Ads {
		ad := &res.Ads[i]
		imp := &br.Imp[ad.SlotIndex]
		cr := ad.Creative
		bid := openrtb2.Bid{
			ID:      res.AuctionID + "-" + ad.SlotID,
			ImpID:   imp.ID,
			Price:   float64(ad.RTBBid) / campaign.MicrosPerUnit,
			ADomain: cr.Adomain,
			CrID:    cr.ID,
			CID:     ad.Campaign.ID,
			DealID:  ad.DealID,
			W:       int64(cr.W),
			H:       int64(cr.H),
			NURL:    string(res.URL(ad, decision.URLWin)),
			BURL:    string(res.URL(ad, decision.URLBilling)),
			LURL:    string(res.URL(ad, decision.URLLoss)),
		}
		click := string(res.URL(ad, decision.URLClick))
		if cr.Format == campaign.FormatVideo {
			bid.MType = openrtb2.MarkupVideo
			bid.AdM = vastMarkup(cr, click, string(res.URL(ad, decision.URLImpression)))
		} else {
			bid.MType = openrtb2.MarkupBanner
			adm := appendReplaced(nil, cr.HTML, "{{CLICK_URL}}", click)
			bid.AdM = string(appendPixel(adm, res.URL(ad, decision.URLImpression)))
		}
		bids = append(bids, bid)
	}
	resp.SeatBid = []openrtb2.SeatBid{{Bid: bids, Seat: "adserver"}}
	if debug {
		b, _ := json.Marshal(resp)
		out := append(b[:len(b)-1], `,"ext":{"debug":{"no_fill_reason":`...)
		out = appendJSONString(out, res.NoFill)
		out = append(out, `,"candidates":`...)
		d, _ := json.Marshal(res.Debug)
		out = append(out, d...)
		out = append(out, "}}}"...)
		writeRawJSON(ctx, fasthttp.StatusOK, out)
		return
	}
	writeJSON(ctx, fasthttp.StatusOK, resp)
}

func ptrNBR(n int) *openrtb3.NoBidReason {
	v := openrtb3.NoBidReason(n)
	return &v
}

func rtbDebug(ext json.RawMessage) bool {
	if len(ext) == 0 {
		return false
	}
	var e struct {
		Debug json.RawMessage `json:"debug"`
	}
	if json.Unmarshal(ext, &e) != nil {
		return false
	}
	return string(e.Debug) == "1" || string(e.Debug) == "true"
}

// maxImps is how many imps of a bid request are considered; the others
// get no bid (a bidder may bid on any subset). Each imp costs a targeting
// query, and a 64 KiB body could otherwise carry a thousand of them.
const maxImps = 32

var impsIgnored = metrics.NewCounter(`adserver_openrtb_imps_ignored_total`)

// mapBidRequest turns an OpenRTB request into the engine's terms: its
// first maxImps imps become slots, in order.
func mapBidRequest(br *openrtb2.BidRequest, r *decision.Request, now time.Time) {
	r.ID = br.ID
	r.Test = br.Test == 1
	r.AuctionType = int(br.AT)
	if r.AuctionType == 0 {
		r.AuctionType = 2 // the specification's default
	}
	if br.TMax > 0 {
		// Keep a margin for the network: answer no-bid rather than late.
		r.Deadline = now.Add(time.Duration(br.TMax)*time.Millisecond - 5*time.Millisecond)
	}
	r.BlockedCats = append(r.BlockedCats, br.BCat...)
	r.BlockedDomains = append(r.BlockedDomains, br.BAdv...)
	if br.Site != nil {
		r.Domain = br.Site.Domain
		if br.Site.Publisher != nil {
			r.PublisherID = br.Site.Publisher.ID
		}
		r.Keywords = appendKeywords(r.Keywords, br.Site.Keywords)
	}
	if br.App != nil {
		r.Bundle = br.App.Bundle
		if br.App.Publisher != nil {
			r.PublisherID = br.App.Publisher.ID
		}
		r.Keywords = appendKeywords(r.Keywords, br.App.Keywords)
	}
	if d := br.Device; d != nil {
		r.UA, r.IP, r.OS, r.Language = d.UA, d.IP, d.OS, d.Language
		if r.IP == "" {
			r.IP = d.IPv6
		}
		switch d.DeviceType {
		case 1, 4:
			r.DeviceType = "mobile"
		case 5:
			r.DeviceType = "tablet"
		case 2:
			r.DeviceType = "desktop"
		case 3, 7:
			r.DeviceType = "ctv"
		}
		if g := d.Geo; g != nil {
			r.Country, r.Region, r.City = alpha3to2(g.Country), g.Region, g.City
		}
	}
	if u := br.User; u != nil {
		r.UserID = u.ID
		if r.UserID == "" {
			r.UserID = u.BuyerUID
		}
		r.Keywords = appendKeywords(r.Keywords, u.Keywords)
		for _, d := range u.Data {
			for _, seg := range d.Segment {
				if seg.ID != "" {
					r.Segments = append(r.Segments, seg.ID)
				}
			}
		}
		if r.Country == "" && u.Geo != nil {
			r.Country = alpha3to2(u.Geo.Country)
		}
	}
	for i := range br.Imp[:min(len(br.Imp), maxImps)] {
		imp := &br.Imp[i]
		if r.PlacementID == "" {
			r.PlacementID = imp.TagID
		}
		s := r.AddSlot()
		s.ID = imp.ID
		// Each imp is its own placement (floor, price rule, targeting); one
		// without a tagid takes the request's, the first imp's that has one.
		s.PlacementID = imp.TagID
		s.Floor = floatMicros(imp.BidFloor)
		if imp.BidFloorCur != "" && imp.BidFloorCur != Currency {
			s.Ineligible, s.IneligibleReason = true, "bidfloorcur "+imp.BidFloorCur+" is not "+Currency
		}
		if imp.PMP != nil && imp.PMP.PrivateAuction == 1 {
			s.PrivateAuction = true
		}
		if imp.PMP != nil {
			// Deals count in an open auction too: a campaign bidding
			// through one names it and pays at least its floor.
			for _, d := range imp.PMP.Deals {
				s.Deals = append(s.Deals, d.ID)
				f := floatMicros(d.BidFloor)
				if d.BidFloorCur != "" && d.BidFloorCur != Currency {
					f = auction.MaxECPM // a floor in another currency: out of reach
				}
				s.DealFloors = append(s.DealFloors, f)
			}
		}
		switch {
		case imp.Video != nil && (imp.Banner == nil || !bannerHasSize(imp.Banner)):
			// A multi-format imp is served as a banner when it names a
			// size; one slot gets one format.
			s.Video = true
			s.MinDuration, s.MaxDuration = int(imp.Video.MinDuration), int(imp.Video.MaxDuration)
			if imp.Video.W != nil && imp.Video.H != nil && *imp.Video.W > 0 && *imp.Video.H > 0 {
				s.Sizes = append(s.Sizes, decision.Size{W: int(*imp.Video.W), H: int(*imp.Video.H)})
			}
		case imp.Banner != nil:
			b := imp.Banner
			if b.W != nil && b.H != nil && *b.W > 0 && *b.H > 0 {
				s.Sizes = append(s.Sizes, decision.Size{W: int(*b.W), H: int(*b.H)})
			}
			for _, f := range b.Format {
				if f.W > 0 && f.H > 0 {
					s.Sizes = append(s.Sizes, decision.Size{W: int(f.W), H: int(f.H)})
				}
			}
			if len(s.Sizes) == 0 {
				s.Ineligible, s.IneligibleReason = true, "banner without a size"
			}
		default:
			s.Ineligible, s.IneligibleReason = true, "only banner and video imps are served"
		}
	}
}

func bannerHasSize(b *openrtb2.Banner) bool {
	return (b.W != nil && b.H != nil && *b.W > 0 && *b.H > 0) || len(b.Format) > 0
}

// floatMicros converts an OpenRTB float amount to micros, rounding to the
// nearest micro. OpenRTB's types carry money as float64; this is the only
// place a float becomes money.
func floatMicros(f float64) campaign.Micros {
	if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) || f > 1e9 {
		return 0
	}
	return campaign.Micros(math.Round(f * campaign.MicrosPerUnit))
}

func appendKeywords(dst []string, kw string) []string {
	start := 0
	for i := 0; i <= len(kw); i++ {
		if i == len(kw) || kw[i] == ',' {
			if w := trimSpace(kw[start:i]); w != "" {
				dst = append(dst, w)
			}
			start = i + 1
		}
	}
	return dst
}

func trimSpace(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	for len(s) > 0 && s[len(s)-1] == ' ' {
		s = s[:len(s)-1]
	}
	return s
}

// alpha3to2 maps the ISO-3166-1 alpha-3 codes OpenRTB uses to the alpha-2
// codes campaigns target, for the common countries; others pass unchanged.
func alpha3to2(c string) string {
	if len(c) != 3 {
		return c
	}
	if v, ok := iso3to2[c]; ok {
		return v
	}
	return c
}

var iso3to2 = map[string]string{
	"USA": "US", "KOR": "KR", "GBR": "GB", "DEU": "DE", "FRA": "FR", "JPN": "JP", "CHN": "CN",
	"CAN": "CA", "AUS": "AU", "BRA": "BR", "IND": "IN", "ITA": "IT", "ESP": "ES", "MEX": "MX",
	"NLD": "NL", "SWE": "SE", "NOR": "NO", "DNK": "DK", "FIN": "FI", "POL": "PL", "RUS": "RU",
	"TUR": "TR", "IDN": "ID", "THA": "TH", "VNM": "VN", "PHL": "PH", "SGP": "SG", "TWN": "TW",
	"HKG": "HK", "ARG": "AR", "CHL": "CL", "COL": "CO", "ZAF": "ZA", "EGY": "EG", "NGA": "NG",
	"ISR": "IL", "ARE": "AE", "SAU": "SA", "CHE": "CH", "AUT": "AT", "BEL": "BE", "IRL": "IE",
	"PRT": "PT", "NZL": "NZ", "UKR": "UA", "CZE": "CZ", "HUN": "HU", "ROU": "RO", "GRC": "GR",
}

// vastMarkup returns VAST 4 markup for a video creative: a wrapper around
// its VAST URL or its inline XML, with the impression and click trackers.
func vastMarkup(cr *campaign.Creative, click, imp string) string {
	if cr.VASTXML != "" {
		return string(injectVASTTrackers(nil, cr.VASTXML, click, imp))
	}
	b := []byte(`<VAST version="4.0"><Ad id="`)
	b = appendXMLEscaped(b, cr.ID)
	b = append(b, `"><Wrapper><AdSystem>adserver</AdSystem><VASTAdTagURI><![CDATA[`...)
	b = append(b, cr.VASTURL...)
	b = append(b, `]]></VASTAdTagURI><Impression><![CDATA[`...)
	b = append(b, imp...)
	b = append(b, `]]></Impression><Creatives><Creative><Linear><VideoClicks><ClickTracking><![CDATA[`...)
	b = append(b, click...)
	b = append(b, `]]></ClickTracking></VideoClicks></Linear></Creative></Creatives></Wrapper></Ad></VAST>`...)
	return string(b)
}

// injectVASTTrackers appends the advertiser's inline VAST x with this
// server's impression and click trackers added, so that an inline video
// counts its impressions and clicks as a wrapped one does: an <Impression>
// after the <AdSystem> of each <InLine> or <Wrapper> ad (or right after its
// opening tag), and a <ClickTracking> at the start of each <VideoClicks>.
// A player fires every Impression and ClickTracking it finds, the
// advertiser's own included. Markup without an InLine or Wrapper is
// appended unchanged.
func injectVASTTrackers(b []byte, x, click, imp string) []byte {
	impTag := "<Impression><![CDATA[" + imp + "]]></Impression>"
	clickTag := "<ClickTracking><![CDATA[" + click + "]]></ClickTracking>"
	for len(x) > 0 {
		at, tag, insert := nextVASTAnchor(x)
		if at < 0 {
			break
		}
		b = append(b, x[:at]...)
		b = append(b, tag...)
		x = x[at+len(tag):]
		if insert == vastAdBody {
			// VAST lists an ad's elements in order: the tracker goes just
			// before the ad's first Impression, or else after its leading
			// AdSystem and AdTitle.
			n := strings.Index(x, "<Impression")
			if close := strings.Index(x, "</"+strings.TrimPrefix(tagName(tag), "<")+">"); n < 0 || (close >= 0 && close < n) {
				n = skipElements(x, "AdSystem", "AdTitle")
			}
			b = append(b, x[:n]...)
			x = x[n:]
			b = append(b, impTag...)
		} else {
			b = append(b, clickTag...)
		}
	}
	return append(b, x...)
}

// tagName returns "<Name" of an opening tag "<Name ...>".
func tagName(tag string) string {
	if i := strings.IndexAny(tag, " \t\r\n>"); i >= 0 {
		return tag[:i]
	}
	return tag
}

// skipElements returns the length of the leading whitespace and elements
// of x named names, in that order (each optional).
func skipElements(x string, names ...string) int {
	n := 0
	for _, name := range names {
		rest := x[n:]
		trimmed := strings.TrimLeft(rest, " \t\r\n")
		if !strings.HasPrefix(trimmed, "<"+name) {
			continue
		}
		end := strings.Index(trimmed, "</"+name+">")
		if end < 0 {
			break
		}
		n += len(rest) - len(trimmed) + end + len("</"+name+">")
	}
	return n
}

const (
	vastAdBody = iota
	vastClicks
)

// nextVASTAnchor finds the next opening tag of x after which trackers go:
// <InLine>, <Wrapper> (with any attributes) or <VideoClicks>. It returns
// its offset and text, or -1.
func nextVASTAnchor(x string) (at int, tag string, kind int) {
	at = -1
	for _, a := range [...]struct {
		name string
		kind int
	}{{"<InLine", vastAdBody}, {"<Wrapper", vastAdBody}, {"<VideoClicks", vastClicks}} {
		off := 0
		for {
			i := strings.Index(x[off:], a.name)
			if i < 0 {
				break
			}
			i += off
			rest := x[i+len(a.name):]
			end := strings.IndexByte(rest, '>')
			if end < 0 {
				break
			}
			// The whole name, not a prefix of another (<InLineX>), and not
			// a self-closing element (<VideoClicks/>) with nothing inside.
			c := rest[0]
			whole := c == '>' || c == ' ' || c == '\t' || c == '\r' || c == '\n'
			selfClosing := end > 0 && rest[end-1] == '/'
			if whole && !selfClosing {
				if at < 0 || i < at {
					at, tag, kind = i, x[i:i+len(a.name)+end+1], a.kind
				}
				break
			}
			off = i + len(a.name)
		}
	}
	return at, tag, kind
}

// appendPixel appends a 1x1 image that fires the impression beacon u, so
// that a banner served through OpenRTB counts its impressions (and its
// creative's CTR learns from them) as one served through /v1/ad does; the
// impression charges nothing there, the billing notice does.
func appendPixel(b, u []byte) []byte {
	b = append(b, `<img src="`...)
	b = appendXMLEscaped(b, b2s(u))
	return append(b, `" width="1" height="1" alt="" style="display:none">`...)
}

func appendXMLEscaped(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			b = append(b, "&lt;"...)
		case '>':
			b = append(b, "&gt;"...)
		case '&':
			b = append(b, "&amp;"...)
		case '"':
			b = append(b, "&quot;"...)
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendReplaced appends s with every old replaced by repl.
func appendReplaced(b []byte, s, old, repl string) []byte {
	for {
		i := strings.Index(s, old)
		if i < 0 {
			return append(b, s...)
		}
		b = append(b, s[:i]...)
		b = append(b, repl...)
		s = s[i+len(old):]
	}
}
