package campaign

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// FieldError is one validation problem: the JSON path of the offending field
// (empty for the whole document), a stable machine-readable code, and a
// message for people.
type FieldError struct {
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Errors is every problem found in one document.
type Errors []FieldError

func (e Errors) Error() string {
	parts := make([]string, len(e))
	for i, fe := range e {
		parts[i] = fe.Error()
	}
	return strings.Join(parts, "; ")
}

type checker struct{ errs Errors }

func (c *checker) add(field, code, format string, args ...any) {
	c.errs = append(c.errs, FieldError{Field: field, Code: code, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return c.errs
}

// Limits on identifiers and lists, so one record cannot blow up the index.
const (
	maxIDLen        = 128
	maxCreatives    = 100
	maxConjunctions = 64
	maxPredicates   = 32
	maxValues       = 1000
	maxValueLen     = 256
)

func (c *checker) id(field, v string) {
	switch {
	case v == "":
		c.add(field, "required", "is required")
	case len(v) > maxIDLen:
		c.add(field, "too_long", "must be at most %d bytes", maxIDLen)
	default:
		for i := 0; i < len(v); i++ {
			b := v[i]
			if b <= ' ' || b == '/' || b == '?' || b == '#' || b == '%' || b >= 0x7f {
				c.add(field, "invalid_id", "must be printable ASCII without spaces, '/', '?', '#' or '%%', got %q", v)
				return
			}
		}
	}
}

func (c *checker) location(field, tz string) *time.Location {
	if tz == "" {
		return time.UTC
	}
	if loc, ok := zones.Load(tz); ok {
		return loc.(*time.Location)
	}
	loc, err := time.LoadLocation(tz)
	if err != nil || strings.HasPrefix(tz, "/") || strings.Contains(tz, "..") {
		c.add(field, "unknown_timezone", "unknown time zone %q (use an IANA name such as Asia/Seoul)", tz)
		return time.UTC
	}
	zones.Store(tz, loc)
	return loc
}

// zones caches the time zones campaigns name: loading one reads and parses
// the zone file, a fifth of a catalog bootstrap's CPU before it was cached,
// and campaigns of one zone then share one *time.Location. Only names that
// loaded are kept, so it holds at most the IANA database's few hundred.
var zones sync.Map // string -> *time.Location

func (c *checker) httpURL(field, v string, required bool) {
	if v == "" {
		if required {
			c.add(field, "required", "is required")
		}
		return
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		c.add(field, "invalid_url", "must be an absolute http(s) URL, got %q", v)
	}
}

// Validate checks the campaign and resolves its time zone. It returns an
// [Errors] with every problem found, or nil.
func (cp *Campaign) Validate() error {
	var c checker
	c.id("id", cp.ID)
	c.id("advertiser_id", cp.AdvertiserID)
	switch cp.Status {
	case StatusActive, StatusPaused, StatusArchived:
	case "":
		c.add("status", "required", "is required (active, paused or archived)")
	default:
		c.add("status", "invalid_value", "must be active, paused or archived, got %q", cp.Status)
	}
	if cp.Start.IsZero() {
		c.add("start", "required", "is required")
	}
	if cp.End.IsZero() {
		c.add("end", "required", "is required")
	}
	if !cp.Start.IsZero() && !cp.End.IsZero() && !cp.End.After(cp.Start) {
		c.add("end", "end_before_start", "must be after start")
	}
	cp.loc = c.location("timezone", cp.Timezone)

	if cp.Budget.Daily < 0 || (cp.Budget.Daily == 0 && cp.Budget.Total == 0) {
		c.add("budget.daily", "invalid_budget", "must be > 0 (set daily, total or both)")
	}
	if cp.Budget.Total < 0 {
		c.add("budget.total", "invalid_budget", "must be > 0")
	}
	if cp.Budget.Daily > 0 && cp.Budget.Total > 0 && cp.Budget.Daily > cp.Budget.Total {
		c.add("budget.daily", "invalid_budget", "must not exceed budget.total")
	}
	switch cp.Pacing {
	case "":
		cp.Pacing = PacingEven
	case PacingEven, PacingASAP:
	default:
		c.add("pacing", "invalid_value", "must be even or asap, got %q", cp.Pacing)
	}
	switch cp.Bid.Model {
	case BidCPM, BidCPC:
	case "":
		c.add("bid.model", "required", "is required (cpm or cpc)")
	default:
		c.add("bid.model", "invalid_value", "must be cpm or cpc, got %q", cp.Bid.Model)
	}
	if cp.Bid.Amount <= 0 {
		c.add("bid.amount", "invalid_bid", "must be > 0")
	}
	if fc := cp.FrequencyCap; fc != nil {
		if fc.Count <= 0 {
			c.add("frequency_cap.count", "invalid_value", "must be > 0")
		}
		if w := time.Duration(fc.Window); w < time.Second || w > 366*24*time.Hour {
			c.add("frequency_cap.window", "invalid_value", "must be between 1s and 366d")
		}
	}
	if cp.Priority < 0 || cp.Priority > 100 {
		c.add("priority", "invalid_value", "must be between 0 and 100")
	}
	c.targeting("targeting", &cp.Targeting)
	c.creatives(cp.Creatives)
	for i, d := range cp.Deals {
		c.id(fmt.Sprintf("deals[%d]", i), d)
	}
	return c.err()
}

func (c *checker) targeting(field string, t *Targeting) {
	if len(t.Any) > maxConjunctions {
		c.add(field+".any", "too_many", "at most %d conjunctions", maxConjunctions)
		return
	}
	for i := range t.Any {
		cf := fmt.Sprintf("%s.any[%d]", field, i)
		conj := &t.Any[i]
		if len(conj.All) == 0 {
			c.add(cf+".all", "required", "a conjunction needs at least one predicate (leave targeting empty for run-of-network)")
		}
		if len(conj.All) > maxPredicates {
			c.add(cf+".all", "too_many", "at most %d predicates", maxPredicates)
			continue
		}
		for j := range conj.All {
			c.predicate(fmt.Sprintf("%s.all[%d]", cf, j), &conj.All[j])
		}
	}
}

func (c *checker) predicate(field string, p *Predicate) {
	id, ok := LookupAttr(p.Attr)
	if !ok {
		c.add(field+".attr", "unknown_attribute", "unknown attribute %q (known: %s)", p.Attr, strings.Join(Attributes[:], ", "))
		return
	}
	switch {
	case len(p.In) == 0 && len(p.NotIn) == 0:
		c.add(field, "required", "needs in or not_in")
		return
	case len(p.In) > 0 && len(p.NotIn) > 0:
		c.add(field, "invalid_value", "use either in or not_in, not both")
		return
	}
	vals, name := p.In, "in"
	if len(p.NotIn) > 0 {
		vals, name = p.NotIn, "not_in"
	}
	if len(vals) > maxValues {
		c.add(field+"."+name, "too_many", "at most %d values", maxValues)
		return
	}
	for k, v := range vals {
		vf := fmt.Sprintf("%s.%s[%d]", field, name, k)
		nv := NormalizeValue(id, v)
		switch {
		case nv == "" || len(nv) > maxValueLen:
			c.add(vf, "invalid_value", "must be a non-empty value of at most %d bytes", maxValueLen)
		case id == IDHour && !validHour(nv):
			c.add(vf, "invalid_value", "hour must be 0 to 23, got %q", v)
		case id == IDWeekday && !validWeekday(nv):
			c.add(vf, "invalid_value", "weekday must be mon..sun, got %q", v)
		case id == IDSize && !validSize(nv):
			c.add(vf, "invalid_value", "size must be WxH such as 300x250, got %q", v)
		}
		vals[k] = nv
	}
}

func validHour(v string) bool {
	n, err := strconv.Atoi(v)
	return err == nil && n >= 0 && n <= 23
}

func validWeekday(v string) bool {
	for _, d := range Weekdays {
		if d == v {
			return true
		}
	}
	return false
}

func validSize(v string) bool {
	w, h, ok := strings.Cut(v, "x")
	wn, err1 := strconv.Atoi(w)
	hn, err2 := strconv.Atoi(h)
	return ok && err1 == nil && err2 == nil && wn > 0 && hn > 0
}

func (c *checker) creatives(crs []Creative) {
	if len(crs) == 0 {
		c.add("creatives", "required", "at least one creative is required")
	}
	if len(crs) > maxCreatives {
		c.add("creatives", "too_many", "at most %d creatives", maxCreatives)
		return
	}
	seen := make(map[string]bool, len(crs))
	for i := range crs {
		f := fmt.Sprintf("creatives[%d]", i)
		cr := &crs[i]
		c.id(f+".id", cr.ID)
		if seen[cr.ID] {
			c.add(f+".id", "duplicate", "duplicate creative id %q", cr.ID)
		}
		seen[cr.ID] = true
		if cr.W <= 0 || cr.H <= 0 || cr.W > 10000 || cr.H > 10000 {
			c.add(f+".w", "invalid_size", "a creative needs a size: w and h between 1 and 10000")
		}
		switch cr.Format {
		case FormatBanner:
			if cr.HTML == "" {
				c.add(f+".html", "required", "a banner needs html")
			}
		case FormatVideo:
			if (cr.VASTURL == "") == (cr.VASTXML == "") {
				c.add(f+".vast_url", "required", "a video needs exactly one of vast_url and vast_xml")
			}
			c.httpURL(f+".vast_url", cr.VASTURL, false)
			if cr.Duration <= 0 {
				c.add(f+".duration", "required", "a video needs a duration in seconds")
			}
		case "":
			c.add(f+".format", "required", "is required (banner or video)")
		default:
			c.add(f+".format", "invalid_value", "must be banner or video, got %q", cr.Format)
		}
		c.httpURL(f+".landing_url", cr.LandingURL, true)
		if cr.Weight < 0 {
			c.add(f+".weight", "invalid_value", "must be >= 0")
		}
	}
}

// Validate checks the placement.
func (p *Placement) Validate() error {
	var c checker
	c.id("id", p.ID)
	c.id("publisher_id", p.PublisherID)
	switch p.Format {
	case "", FormatBanner, FormatVideo:
	default:
		c.add("format", "invalid_value", "must be banner or video, got %q", p.Format)
	}
	for i, s := range p.Sizes {
		if s[0] <= 0 || s[1] <= 0 {
			c.add(fmt.Sprintf("sizes[%d]", i), "invalid_size", "sizes are [w, h] with both > 0")
		}
	}
	if p.Floor < 0 {
		c.add("floor", "invalid_value", "must be >= 0")
	}
	switch p.Auction {
	case "", "first", "second":
	default:
		c.add("auction", "invalid_value", "must be first or second, got %q", p.Auction)
	}
	return c.err()
}

// Validate checks the advertiser and replaces a plain API key with its hash.
func (a *Advertiser) Validate() error {
	var c checker
	c.id("id", a.ID)
	c.location("timezone", a.Timezone)
	if a.APIKey != "" {
		if len(a.APIKey) < 16 {
			c.add("api_key", "weak_key", "must be at least 16 characters")
		}
		a.APIKeyHash = HashAPIKey(a.APIKey)
		a.APIKey = ""
	}
	if h := a.APIKeyHash; h != "" && (len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "") {
		c.add("api_key_sha256", "invalid_value", "must be 64 lower-case hex digits")
	}
	return c.err()
}
