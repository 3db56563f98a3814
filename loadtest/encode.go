package loadtest

import "strconv"

// AppendRequestID appends r's id ("r-<worker>-<seq>") to dst.
func AppendRequestID(dst []byte, r *Request) []byte {
	dst = append(dst, "r-"...)
	dst = strconv.AppendUint(dst, uint64(r.Worker), 10)
	dst = append(dst, '-')
	return strconv.AppendUint(dst, r.Seq, 10)
}

func appendIP(dst []byte, ip [4]byte) []byte {
	for i, b := range ip {
		if i > 0 {
			dst = append(dst, '.')
		}
		dst = strconv.AppendUint(dst, uint64(b), 10)
	}
	return dst
}

// AppendAdRequest appends r as a `POST /v1/ad` JSON body (DESIGN.md section
// 3) to dst and returns the extended buffer. It allocates nothing when dst
// has room.
func (g *Generator) AppendAdRequest(dst []byte, r *Request) []byte {
	p := &g.pl[r.Placement]
	c := &g.co[r.Country]
	d := &g.dev[r.Device]
	o := &d.oses[r.OS]

	dst = append(dst, `{"id":"`...)
	dst = AppendRequestID(dst, r)
	dst = append(dst, `","placement_id":`...)
	dst = append(dst, p.id...)
	dst = append(dst, `,"user":{"id":"u-`...)
	dst = strconv.AppendUint(dst, r.User, 10)
	dst = append(dst, `","segments":[`...)
	for i, s := range r.Segs[:r.NSeg] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, g.segQ[s]...)
	}
	dst = append(dst, `]},"device":{"type":`...)
	dst = append(dst, d.value...)
	dst = append(dst, `,"os":`...)
	dst = append(dst, o.value...)
	dst = append(dst, `,"ua":`...)
	dst = append(dst, o.ua[r.Browser]...)
	dst = append(dst, `,"ip":"`...)
	dst = appendIP(dst, r.IP)
	dst = append(dst, `","language":`...)
	dst = append(dst, g.langQ[r.Language]...)
	dst = append(dst, `},"geo":{"country":`...)
	dst = append(dst, c.value...)
	dst = append(dst, `,"region":`...)
	dst = append(dst, c.region[r.Region]...)
	dst = append(dst, `,"city":`...)
	dst = append(dst, c.city[r.Region]...)
	dst = append(dst, `},"site":{"domain":`...)
	dst = append(dst, p.domain...)
	dst = append(dst, `},"keywords":[`...)
	for i, k := range r.Kws[:r.NKw] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, g.kwQ[k]...)
	}
	dst = append(dst, `],"slots":[`...)
	for i, s := range r.Slots[:r.NSlots] {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"id":"s`...)
		dst = strconv.AppendInt(dst, int64(i+1), 10)
		dst = append(dst, `","w":`...)
		dst = strconv.AppendInt(dst, int64(p.sizes[s][0]), 10)
		dst = append(dst, `,"h":`...)
		dst = strconv.AppendInt(dst, int64(p.sizes[s][1]), 10)
		dst = append(dst, `,"floor":`...)
		dst = append(dst, p.floor...)
		dst = append(dst, '}')
	}
	return append(dst, "]}"...)
}

// AppendOpenRTB appends r as an OpenRTB 2.6 BidRequest (`POST
// /openrtb2/bid`) to dst: one banner imp per slot (tagid = placement id), a
// site with its publisher and keywords, the device with its geo (alpha-3
// country), and the user with its segments as a data object.
func (g *Generator) AppendOpenRTB(dst []byte, r *Request) []byte {
	p := &g.pl[r.Placement]
	c := &g.co[r.Country]
	d := &g.dev[r.Device]
	o := &d.oses[r.OS]

	dst = append(dst, `{"id":"`...)
	dst = AppendRequestID(dst, r)
	dst = append(dst, `","at":1,"tmax":150,"cur":["USD"],"imp":[`...)
	for i, s := range r.Slots[:r.NSlots] {
		if i > 0 {
			dst = append(dst, ',')
		}
		w, h := p.sizes[s][0], p.sizes[s][1]
		dst = append(dst, `{"id":"`...)
		dst = strconv.AppendInt(dst, int64(i+1), 10)
		dst = append(dst, `","tagid":`...)
		dst = append(dst, p.id...)
		dst = append(dst, `,"secure":1,"bidfloor":`...)
		dst = append(dst, p.floor...)
		dst = append(dst, `,"bidfloorcur":"USD","banner":{"w":`...)
		dst = strconv.AppendInt(dst, int64(w), 10)
		dst = append(dst, `,"h":`...)
		dst = strconv.AppendInt(dst, int64(h), 10)
		dst = append(dst, `,"format":[{"w":`...)
		dst = strconv.AppendInt(dst, int64(w), 10)
		dst = append(dst, `,"h":`...)
		dst = strconv.AppendInt(dst, int64(h), 10)
		dst = append(dst, `}]}}`...)
	}
	dst = append(dst, `],"site":{"id":`...)
	dst = append(dst, p.id...)
	dst = append(dst, `,"domain":`...)
	dst = append(dst, p.domain...)
	dst = append(dst, `,"page":`...)
	dst = append(dst, p.page...)
	dst = append(dst, `,"publisher":{"id":`...)
	dst = append(dst, p.pub...)
	dst = append(dst, '}')
	if r.NKw > 0 {
		dst = append(dst, `,"keywords":"`...)
		for i, k := range r.Kws[:r.NKw] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, g.kwRaw[k]...)
		}
		dst = append(dst, '"')
	}
	dst = append(dst, `},"device":{"ua":`...)
	dst = append(dst, o.ua[r.Browser]...)
	dst = append(dst, `,"ip":"`...)
	dst = appendIP(dst, r.IP)
	dst = append(dst, `","devicetype":`...)
	dst = strconv.AppendInt(dst, int64(g.ortbDevType[r.Device]), 10)
	dst = append(dst, `,"os":`...)
	dst = append(dst, o.value...)
	dst = append(dst, `,"language":`...)
	dst = append(dst, g.langQ[r.Language]...)
	dst = append(dst, `,"geo":{"country":`...)
	dst = append(dst, c.iso3...)
	dst = append(dst, `,"region":`...)
	dst = append(dst, c.region[r.Region]...)
	dst = append(dst, `,"city":`...)
	dst = append(dst, c.city[r.Region]...)
	dst = append(dst, `}},"user":{"id":"u-`...)
	dst = strconv.AppendUint(dst, r.User, 10)
	dst = append(dst, '"')
	if r.NSeg > 0 {
		dst = append(dst, `,"data":[{"id":"segments","segment":[`...)
		for i, s := range r.Segs[:r.NSeg] {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"id":`...)
			dst = append(dst, g.segQ[s]...)
			dst = append(dst, '}')
		}
		dst = append(dst, "]}]"...)
	}
	return append(dst, "}}"...)
}
