package targeting

import (
	"time"

	"github.com/adserver/adserver/campaign"
)

// Scan is the slow obvious twin of [Index.Query]: it appends to dst every
// campaign of cs that is live at now and whose targeting holds for a,
// evaluating each campaign's expression directly. It defines what Query
// must return (the property tests compare the two) and is the baseline of
// its benchmarks; it allocates nothing, but costs time linear in len(cs).
func Scan(cs []*campaign.Campaign, a *Attrs, now time.Time, dst []*campaign.Campaign) []*campaign.Campaign {
	for _, c := range cs {
		if c.Live(now) && matches(c, a, now) {
			dst = append(dst, c)
		}
	}
	return dst
}

// matches reports whether c's targeting holds for a at now, ignoring its
// status and flight.
func matches(c *campaign.Campaign, a *Attrs, now time.Time) bool {
	if len(c.Targeting.Any) == 0 {
		return true
	}
	lt := localTime{c: c, now: now}
	for i := range c.Targeting.Any {
		if failing(c.Targeting.Any[i].All, a, &lt) < 0 {
			return true
		}
	}
	return false
}

// localTime computes now in a campaign's zone once, when first needed.
type localTime struct {
	c       *campaign.Campaign
	now     time.Time
	done    bool
	hour    string
	weekday string
}

func (lt *localTime) value(attr campaign.AttrID) string {
	if !lt.done {
		t := lt.now.In(lt.c.Location())
		lt.hour, lt.weekday = campaign.Hours[t.Hour()], campaign.Weekdays[t.Weekday()]
		lt.done = true
	}
	if attr == campaign.IDHour {
		return lt.hour
	}
	return lt.weekday
}

// failing returns the index of the first predicate of a conjunction that
// does not hold, or -1 when they all hold.
func failing(preds []campaign.Predicate, a *Attrs, lt *localTime) int {
	for i := range preds {
		if !holds(&preds[i], a, lt) {
			return i
		}
	}
	return -1
}

// holds evaluates one predicate: In holds when the request has one of its
// values (a request without the attribute has none), NotIn when it has
// none of its values. A predicate with both must satisfy both; one on an
// unknown attribute sees a request without values.
func holds(p *campaign.Predicate, a *Attrs, lt *localTime) bool {
	attr, known := lookupAttr(p.Attr)
	if !known {
		return len(p.In) == 0
	}
	if timeAttr(attr) {
		v := lt.value(attr)
		return (len(p.In) == 0 || contains(p.In, v)) && !contains(p.NotIn, v)
	}
	vals := a.vals[attr]
	if len(p.In) > 0 && !anyIn(vals, p.In) {
		return false
	}
	return !anyIn(vals, p.NotIn)
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// anyIn reports whether some value of req is in list.
func anyIn(req, list []string) bool {
	for _, v := range req {
		if contains(list, v) {
			return true
		}
	}
	return false
}

// lookupAttr is campaign.LookupAttr as a switch, which the compiler turns
// into a binary search; it keeps the baseline honest.
func lookupAttr(name string) (campaign.AttrID, bool) {
	switch name {
	case campaign.AttrPlacement:
		return campaign.IDPlacement, true
	case campaign.AttrPublisher:
		return campaign.IDPublisher, true
	case campaign.AttrSize:
		return campaign.IDSize, true
	case campaign.AttrCountry:
		return campaign.IDCountry, true
	case campaign.AttrRegion:
		return campaign.IDRegion, true
	case campaign.AttrCity:
		return campaign.IDCity, true
	case campaign.AttrDeviceType:
		return campaign.IDDeviceType, true
	case campaign.AttrOS:
		return campaign.IDOS, true
	case campaign.AttrBrowser:
		return campaign.IDBrowser, true
	case campaign.AttrLanguage:
		return campaign.IDLanguage, true
	case campaign.AttrSegment:
		return campaign.IDSegment, true
	case campaign.AttrKeyword:
		return campaign.IDKeyword, true
	case campaign.AttrHour:
		return campaign.IDHour, true
	case campaign.AttrWeekday:
		return campaign.IDWeekday, true
	case campaign.AttrDomain:
		return campaign.IDDomain, true
	case campaign.AttrBundle:
		return campaign.IDBundle, true
	}
	return 0, false
}
