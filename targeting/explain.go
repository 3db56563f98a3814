package targeting

import (
	"strconv"
	"strings"
	"time"

	"github.com/adserver/adserver/campaign"
)

// Explanation says whether a campaign matches a request and, if not, why.
// It is for people (the decision endpoint's debug mode), not for the hot
// path: computing it allocates.
type Explanation struct {
	CampaignID string `json:"campaign_id"`
	// Match is the verdict of a direct evaluation (the one Scan makes).
	Match bool `json:"match"`
	// IndexMatch is whether Query returned the campaign. It differs from
	// Match only through a bug in the index.
	IndexMatch bool `json:"index_match"`
	// Reasons lists what excludes the campaign as a whole: "unknown
	// campaign", "status paused", "outside flight ...", "no conjunction
	// matches". Empty when it matches.
	Reasons []string `json:"reasons,omitempty"`
	// Conjunctions has one verdict per conjunction of the targeting (none
	// for run-of-network).
	Conjunctions []ConjunctionExplanation `json:"conjunctions,omitempty"`
}

// ConjunctionExplanation is the verdict on one conjunction.
type ConjunctionExplanation struct {
	Index int  `json:"index"`
	Match bool `json:"match"`
	// Failed describes the first predicate that does not hold, such as
	// "country in [kr us]: request has [jp]" or
	// "hour in [9] (Asia/Seoul): request hour 3".
	Failed string `json:"failed,omitempty"`
}

// String renders the explanation on one line.
func (e Explanation) String() string {
	var b strings.Builder
	b.WriteString(e.CampaignID)
	if e.Match {
		b.WriteString(": match")
	} else {
		b.WriteString(": no match")
	}
	if len(e.Reasons) > 0 {
		b.WriteString(" (" + strings.Join(e.Reasons, "; ") + ")")
	}
	for _, c := range e.Conjunctions {
		b.WriteString("; any[" + strconv.Itoa(c.Index) + "] ")
		if c.Match {
			b.WriteString("holds")
		} else {
			b.WriteString("fails at " + c.Failed)
		}
	}
	return b.String()
}

// Explain evaluates one campaign of ix against a at now and says why it
// matches or which check excluded it: the campaign's status, its flight,
// and for each conjunction the first failing predicate. It allocates; the
// index's verdict is computed once for a series of calls with the same a,
// now and ix.
func (ix *Index) Explain(a *Attrs, now time.Time, campaignID string) Explanation {
	e := Explanation{CampaignID: campaignID}
	c := ix.Get(campaignID)
	if c == nil {
		e.Reasons = append(e.Reasons, "unknown campaign")
		return e
	}
	e.IndexMatch = a.indexMatches(ix, now)[c]
	if c.Status != campaign.StatusActive {
		e.Reasons = append(e.Reasons, "status "+c.Status)
	}
	switch {
	case now.Before(c.Start):
		e.Reasons = append(e.Reasons, "outside flight: starts "+c.Start.Format(time.RFC3339)+", now "+now.UTC().Format(time.RFC3339))
	case !now.Before(c.End):
		e.Reasons = append(e.Reasons, "outside flight: ended "+c.End.Format(time.RFC3339)+", now "+now.UTC().Format(time.RFC3339))
	}
	lt := localTime{c: c, now: now}
	targeted := len(c.Targeting.Any) == 0
	for i := range c.Targeting.Any {
		preds := c.Targeting.Any[i].All
		ce := ConjunctionExplanation{Index: i, Match: true}
		if f := failing(preds, a, &lt); f >= 0 {
			ce.Match = false
			ce.Failed = describe(&preds[f], c, a, &lt)
		}
		targeted = targeted || ce.Match
		e.Conjunctions = append(e.Conjunctions, ce)
	}
	if !targeted {
		e.Reasons = append(e.Reasons, "no conjunction matches")
	}
	e.Match = len(e.Reasons) == 0
	return e
}

// describe explains why predicate p fails.
func describe(p *campaign.Predicate, c *campaign.Campaign, a *Attrs, lt *localTime) string {
	attr, known := lookupAttr(p.Attr)
	if !known {
		return "unknown attribute " + strconv.Quote(p.Attr)
	}
	var b strings.Builder
	b.WriteString(p.Attr)
	if len(p.In) > 0 {
		b.WriteString(" in " + list(p.In))
	}
	if len(p.NotIn) > 0 {
		if len(p.In) > 0 {
			b.WriteString(" and")
		}
		b.WriteString(" not_in " + list(p.NotIn))
	}
	if timeAttr(attr) {
		b.WriteString(" (" + c.Location().String() + "): request " + p.Attr + " " + lt.value(attr))
		return b.String()
	}
	vals := a.vals[attr]
	switch {
	case len(p.In) > 0 && !anyIn(vals, p.In) && len(vals) == 0:
		b.WriteString(": request has none")
	case len(p.In) > 0 && !anyIn(vals, p.In):
		b.WriteString(": request has " + list(vals))
	default: // a NOT IN value is present: name the offending ones
		var bad []string
		for _, v := range vals {
			if contains(p.NotIn, v) {
				bad = append(bad, v)
			}
		}
		b.WriteString(": request has " + list(bad))
	}
	return b.String()
}

// list spells values as "[a b c]", naming at most ten of them.
func list(vs []string) string {
	const show = 10
	if len(vs) <= show {
		return "[" + strings.Join(vs, " ") + "]"
	}
	return "[" + strings.Join(vs[:show], " ") + " … " + strconv.Itoa(len(vs)-show) + " more]"
}

// indexMatches returns the set of campaigns ix.Query returns for a at now,
// computed once for a series of Explain calls on the same request.
func (a *Attrs) indexMatches(ix *Index, now time.Time) map[*campaign.Campaign]bool {
	if a.xset != nil && a.xix == ix && a.xgen == a.gen && a.xnow.Equal(now) {
		return a.xset
	}
	if a.xset == nil {
		a.xset = make(map[*campaign.Campaign]bool)
	}
	clear(a.xset)
	for _, c := range ix.Query(a, now, nil) {
		a.xset[c] = true
	}
	a.xix, a.xnow, a.xgen = ix, now, a.gen
	return a.xset
}
