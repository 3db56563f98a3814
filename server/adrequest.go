package server

import (
	"strconv"
	"unsafe"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/decision"
	"github.com/valyala/fastjson"
)

// reqError is a caller's mistake in an ad request, with the JSON path of
// the offending field.
type reqError struct {
	field, code, msg string
}

func (e *reqError) Error() string { return e.field + ": " + e.msg }

// b2s returns a string that aliases b. b must outlive the string and must
// not change while it is in use: the parser's memory lives until the
// request is released.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

const maxSlots = 16

// slotPaths[i] is "slots[i]" and slotIDPaths[i] "slots[i].id": built once,
// not per request.
var slotPaths, slotIDPaths = func() (p, id [maxSlots]string) {
	for i := range p {
		p[i] = "slots[" + strconv.Itoa(i) + "]"
		id[i] = p[i] + ".id"
	}
	return p, id
}()

// parseAdRequest fills r from a POST /v1/ad body. Unknown fields are
// ignored (SDKs may be newer than the server); known fields of the wrong
// type, missing required fields and invalid values are errors. Strings in
// r alias p's memory.
func parseAdRequest(p *fastjson.Parser, body []byte, r *decision.Request) *reqError {
	v, err := p.ParseBytes(body)
	if err != nil {
		return &reqError{"", "invalid_json", "malformed JSON: " + err.Error()}
	}
	if v.Type() != fastjson.TypeObject {
		return &reqError{"", "invalid_json", "the body must be a JSON object"}
	}
	var e *reqError
	str := func(parent *fastjson.Value, field, path string, required bool) string {
		if e != nil {
			return ""
		}
		x := parent.Get(field)
		if x == nil || x.Type() == fastjson.TypeNull {
			if required {
				e = &reqError{path, "required", "is required"}
			}
			return ""
		}
		b, err := x.StringBytes()
		if err != nil {
			e = &reqError{path, "wrong_type", "must be a string"}
			return ""
		}
		if required && len(b) == 0 {
			e = &reqError{path, "required", "must not be empty"}
		}
		if len(b) > 1024 {
			e = &reqError{path, "too_long", "must be at most 1024 bytes"}
		}
		return b2s(b)
	}
	strs := func(parent *fastjson.Value, field, path string, dst []string) []string {
		if e != nil {
			return dst
		}
		x := parent.Get(field)
		if x == nil || x.Type() == fastjson.TypeNull {
			return dst
		}
		arr, err := x.Array()
		if err != nil {
			e = &reqError{path, "wrong_type", "must be an array of strings"}
			return dst
		}
		if len(arr) > 256 {
			e = &reqError{path, "too_many", "at most 256 values"}
			return dst
		}
		for i, s := range arr {
			b, err := s.StringBytes()
			if err != nil {
				e = &reqError{path + "[" + strconv.Itoa(i) + "]", "wrong_type", "must be a string"}
				return dst
			}
			dst = append(dst, b2s(b))
		}
		return dst
	}
	obj := func(parent *fastjson.Value, field string) *fastjson.Value {
		if e != nil {
			return nil
		}
		x := parent.Get(field)
		if x == nil || x.Type() == fastjson.TypeNull {
			return emptyObject
		}
		if x.Type() != fastjson.TypeObject {
			e = &reqError{field, "wrong_type", "must be an object"}
			return nil
		}
		return x
	}
	boolean := func(parent *fastjson.Value, field string) bool {
		if e != nil {
			return false
		}
		x := parent.Get(field)
		if x == nil || x.Type() == fastjson.TypeNull {
			return false
		}
		switch x.Type() {
		case fastjson.TypeTrue:
			return true
		case fastjson.TypeFalse:
			return false
		}
		e = &reqError{field, "wrong_type", "must be true or false"}
		return false
	}

	r.ID = str(v, "id", "id", true)
	r.PlacementID = str(v, "placement_id", "placement_id", true)
	r.Debug = boolean(v, "debug")
	r.Test = boolean(v, "test")
	r.Keywords = strs(v, "keywords", "keywords", r.Keywords)
	if u := obj(v, "user"); u != nil {
		r.UserID = str(u, "id", "user.id", false)
		r.Segments = strs(u, "segments", "user.segments", r.Segments)
	}
	if d := obj(v, "device"); d != nil {
		r.DeviceType = str(d, "type", "device.type", false)
		r.OS = str(d, "os", "device.os", false)
		r.UA = str(d, "ua", "device.ua", false)
		r.IP = str(d, "ip", "device.ip", false)
		r.Language = str(d, "language", "device.language", false)
		r.Browser = str(d, "browser", "device.browser", false)
	}
	if g := obj(v, "geo"); g != nil {
		r.Country = str(g, "country", "geo.country", false)
		r.Region = str(g, "region", "geo.region", false)
		r.City = str(g, "city", "geo.city", false)
	}
	if s := obj(v, "site"); s != nil {
		r.Domain = str(s, "domain", "site.domain", false)
	}
	if a := obj(v, "app"); a != nil {
		r.Bundle = str(a, "bundle", "app.bundle", false)
	}
	if e != nil {
		return e
	}
	slots := v.Get("slots")
	if slots == nil || slots.Type() == fastjson.TypeNull {
		return &reqError{"slots", "required", "at least one slot is required"}
	}
	arr, err := slots.Array()
	if err != nil {
		return &reqError{"slots", "wrong_type", "must be an array of slot objects"}
	}
	if len(arr) == 0 || len(arr) > maxSlots {
		return &reqError{"slots", "invalid_value", "must hold 1 to " + strconv.Itoa(maxSlots) + " slots"}
	}
	for i, sv := range arr {
		path := slotPaths[i]
		if sv.Type() != fastjson.TypeObject {
			return &reqError{path, "wrong_type", "must be an object"}
		}
		s := r.AddSlot()
		s.ID = str(sv, "id", slotIDPaths[i], true)
		if e != nil {
			return e
		}
		for j := 0; j < i; j++ {
			if r.Slots[j].ID == s.ID {
				return &reqError{path + ".id", "duplicate", "slot ids must be unique"}
			}
		}
		w, err1 := intField(sv, "w")
		h, err2 := intField(sv, "h")
		switch {
		case err1 != nil:
			return &reqError{path + ".w", err1.code, err1.msg}
		case err2 != nil:
			return &reqError{path + ".h", err2.code, err2.msg}
		}
		s.Sizes = append(s.Sizes, decision.Size{W: w, H: h})
		if f := sv.Get("format"); f != nil {
			fb, err := f.StringBytes()
			if err != nil {
				return &reqError{path + ".format", "wrong_type", "must be a string"}
			}
			switch string(fb) {
			case "banner", "":
			case "video":
				s.Video = true
			default:
				return &reqError{path + ".format", "invalid_value", "must be banner or video"}
			}
		}
		if f := sv.Get("floor"); f != nil && f.Type() != fastjson.TypeNull {
			m, re := money(f)
			if re != nil {
				return &reqError{path + ".floor", re.code, re.msg}
			}
			s.Floor = m
		}
	}
	return nil
}

// emptyObject stands for an absent or null object field. It is shared by
// every request, so it must never be written: fastjson's first Get on an
// object marks its keys unescaped, done here once, before any request.
var emptyObject = func() *fastjson.Value {
	v := fastjson.MustParse(`{}`)
	v.Get("")
	return v
}()

func intField(v *fastjson.Value, field string) (int, *reqError) {
	x := v.Get(field)
	if x == nil {
		return 0, &reqError{field, "required", "is required"}
	}
	n, err := x.Int()
	if err != nil {
		return 0, &reqError{field, "wrong_type", "must be an integer"}
	}
	if n <= 0 || n > 10000 {
		return 0, &reqError{field, "invalid_value", "must be between 1 and 10000"}
	}
	return n, nil
}

// money reads a JSON number in currency units as micros, exactly.
func money(v *fastjson.Value) (campaign.Micros, *reqError) {
	if v.Type() != fastjson.TypeNumber {
		return 0, &reqError{"", "wrong_type", "must be a number"}
	}
	var buf [64]byte
	raw := v.MarshalTo(buf[:0])
	m, err := campaign.ParseMicros(b2s(raw))
	if err != nil {
		return 0, &reqError{"", "invalid_money", "money " + string(raw) + " " + err.Error()}
	}
	if m < 0 {
		return 0, &reqError{"", "invalid_value", "must be >= 0"}
	}
	return m, nil
}
