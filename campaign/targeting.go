package campaign

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Targeting is an OR of ANDs: the campaign is eligible when any conjunction
// holds. An empty Targeting is run-of-network: it matches every request.
type Targeting struct {
	Any []Conjunction `json:"any,omitempty"`
}

// Conjunction holds when all its predicates hold.
type Conjunction struct {
	All []Predicate `json:"all"`
}

// Predicate tests one attribute: In holds when the request has at least one
// of the values; NotIn holds when it has none of them. Exactly one of In and
// NotIn is set.
type Predicate struct {
	Attr  string `json:"attr"`
	In    Values `json:"in,omitempty"`
	NotIn Values `json:"not_in,omitempty"`
}

// Values is a list of attribute values. JSON numbers are accepted and read
// as their decimal text, so {"attr":"hour","in":[9,10]} works.
type Values []string

// UnmarshalJSON reads an array of strings or numbers.
func (v *Values) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	out := make(Values, 0, len(raw))
	for _, r := range raw {
		var s string
		if err := json.Unmarshal(r, &s); err == nil {
			out = append(out, s)
			continue
		}
		var n json.Number
		if err := json.Unmarshal(r, &n); err != nil {
			return &json.UnmarshalTypeError{Value: string(r), Type: stringType}
		}
		out = append(out, n.String())
	}
	*v = out
	return nil
}

// Attribute names, the targeting vocabulary.
const (
	AttrPlacement  = "placement"
	AttrPublisher  = "publisher"
	AttrSize       = "size"
	AttrCountry    = "country"
	AttrRegion     = "region"
	AttrCity       = "city"
	AttrDeviceType = "device_type"
	AttrOS         = "os"
	AttrBrowser    = "browser"
	AttrLanguage   = "language"
	AttrSegment    = "segment"
	AttrKeyword    = "keyword"
	AttrHour       = "hour"
	AttrWeekday    = "weekday"
	AttrDomain     = "domain"
	AttrBundle     = "bundle"
)

// Attributes lists every targetable attribute in a fixed order; an
// attribute's index in it is its [AttrID].
var Attributes = [...]string{
	AttrPlacement, AttrPublisher, AttrSize, AttrCountry, AttrRegion, AttrCity,
	AttrDeviceType, AttrOS, AttrBrowser, AttrLanguage, AttrSegment, AttrKeyword,
	AttrHour, AttrWeekday, AttrDomain, AttrBundle,
}

// NumAttrs is the number of targetable attributes.
const NumAttrs = len(Attributes)

// AttrID is an attribute's index in [Attributes].
type AttrID uint8

// Attribute ids, in the order of [Attributes].
const (
	IDPlacement AttrID = iota
	IDPublisher
	IDSize
	IDCountry
	IDRegion
	IDCity
	IDDeviceType
	IDOS
	IDBrowser
	IDLanguage
	IDSegment
	IDKeyword
	IDHour
	IDWeekday
	IDDomain
	IDBundle
)

// LookupAttr returns the id of a named attribute.
func LookupAttr(name string) (AttrID, bool) {
	for i, a := range Attributes {
		if a == name {
			return AttrID(i), true
		}
	}
	return 0, false
}

// Weekdays spells the weekday attribute's values, Sunday first as in
// time.Weekday.
var Weekdays = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// Hours spells the hour attribute's values, "0" to "23".
var Hours = func() (h [24]string) {
	for i := range h {
		h[i] = strconv.Itoa(i)
	}
	return h
}()

// NormalizeValue returns the canonical spelling of an attribute value, the
// one the targeting index stores and request extraction produces: trimmed
// and lower-case. Weekdays are cut to their first three letters ("Monday" →
// "mon"); hours lose leading zeros ("09" → "9").
func NormalizeValue(attr AttrID, v string) string {
	v = strings.ToLower(strings.TrimSpace(v))
	switch attr {
	case IDWeekday:
		if len(v) > 3 {
			v = v[:3]
		}
	case IDHour:
		if n, err := strconv.Atoi(v); err == nil {
			v = strconv.Itoa(n)
		}
	}
	return v
}

// SizeString spells a width and height as the size attribute does: "300x250".
func SizeString(w, h int) string {
	return strconv.Itoa(w) + "x" + strconv.Itoa(h)
}
