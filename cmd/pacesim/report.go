package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"

	"github.com/adserver/adserver/campaign"
	"github.com/adserver/adserver/pacing"
)

// Targets the report checks.
const (
	targetOverspendPct   = 1.0
	targetUtilisationPct = 98.0
	targetRMSEPct        = 10.0
	// A campaign's traffic suffices when the warm-up auction offered it at
	// least this multiple of its daily budget.
	sufficientFactor = 1.1
)

// Report is the outcome of a simulation; -json writes it. Money is in
// integer micros.
type Report struct {
	Nodes       int              `json:"nodes"`
	Days        int              `json:"days"`
	RPS         float64          `json:"rps"`
	Seed        uint64           `json:"seed"`
	SyncEvery   string           `json:"sync_every"`
	Stagger     bool             `json:"stagger"`
	Kafka       bool             `json:"kafka"`
	RouteByUser bool             `json:"route_by_user"`
	Campaigns   []CampaignReport `json:"campaigns"`
	Summary     Summary          `json:"summary"`
	Stats       Stats            `json:"stats"`
	WallSeconds float64          `json:"wall_seconds"`
}

// CampaignReport is one campaign's days.
type CampaignReport struct {
	ID        string      `json:"id"`
	Timezone  string      `json:"timezone"`
	Pacing    string      `json:"pacing"`
	Model     string      `json:"model"`
	Class     string      `json:"class"`
	Potential int64       `json:"potential_micros_per_day"`
	Days      []DayReport `json:"days"`
}

// DayReport is one campaign's local day.
type DayReport struct {
	Day               string  `json:"day"`
	Hours             int     `json:"hours"`
	Budget            int64   `json:"budget_micros"`
	Spent             int64   `json:"spent_micros"`
	Charges           int64   `json:"charges"` // impressions (CPM) or clicks (CPC) charged
	OverspendPct      float64 `json:"overspend_pct"`
	UtilisationPct    float64 `json:"utilisation_pct"`
	RMSEPct           float64 `json:"hourly_rmse_pct,omitempty"` // even campaigns
	TrafficSufficient bool    `json:"traffic_sufficient"`
	PlanShape         string  `json:"plan_shape,omitempty"`
	HourlyPlan        []int64 `json:"hourly_plan_micros,omitempty"`
	HourlyActual      []int64 `json:"hourly_actual_micros"`
}

// Summary checks the targets over every campaign-day.
type Summary struct {
	MaxOverspendPct   float64 `json:"max_overspend_pct"`
	MinUtilisationPct float64 `json:"min_utilisation_pct_traffic_sufficient"`
	MaxEvenRMSEPct    float64 `json:"max_even_hourly_rmse_pct_traffic_sufficient"`
	OverspendOK       bool    `json:"overspend_target_met"`
	UtilisationOK     bool    `json:"utilisation_target_met"`
	RMSEOK            bool    `json:"rmse_target_met"`
}

func (e *engine) report(wall time.Duration) *Report {
	r := &Report{Nodes: e.cfg.Nodes, Days: e.cfg.Days, RPS: e.cfg.RPS, Seed: e.cfg.Seed,
		SyncEvery: e.cfg.SyncEvery.String(), Stagger: e.cfg.Stagger, Kafka: e.cfg.Kafka, RouteByUser: e.cfg.RouteUser,
		Stats: e.stats, WallSeconds: math.Round(wall.Seconds()*10) / 10}
	s := &r.Summary
	s.MinUtilisationPct = math.Inf(1)
	for _, sc := range e.w.campaigns {
		c := sc.c
		cr := CampaignReport{ID: c.ID, Timezone: c.Location().String(), Pacing: c.Pacing, Model: c.Bid.Model,
			Class: sc.class, Potential: int64(sc.potential)}
		d := e.cfg.Start
		for i := 0; i < e.cfg.Days; i++ {
			dr := sc.dayReport(d)
			cr.Days = append(cr.Days, dr)
			s.MaxOverspendPct = max(s.MaxOverspendPct, dr.OverspendPct)
			if dr.TrafficSufficient {
				s.MinUtilisationPct = min(s.MinUtilisationPct, dr.UtilisationPct)
				if c.Pacing == campaign.PacingEven {
					s.MaxEvenRMSEPct = max(s.MaxEvenRMSEPct, dr.RMSEPct)
				}
			}
			_, end := d.Bounds(c.Location())
			d = pacing.DayOf(end, c.Location())
		}
		r.Campaigns = append(r.Campaigns, cr)
	}
	if math.IsInf(s.MinUtilisationPct, 1) {
		s.MinUtilisationPct = 0
	}
	s.OverspendOK = s.MaxOverspendPct <= targetOverspendPct
	s.UtilisationOK = s.MinUtilisationPct >= targetUtilisationPct
	s.RMSEOK = s.MaxEvenRMSEPct <= targetRMSEPct
	return r
}

func (sc *simCampaign) dayReport(d pacing.Day) DayReport {
	loc := sc.c.Location()
	start, end := d.Bounds(loc)
	budget := int64(sc.c.Budget.Daily)
	dr := DayReport{Day: d.String(), Hours: int(end.Sub(start) / time.Hour), Budget: budget,
		TrafficSufficient: sc.potential >= sufficientFactor*float64(budget)}
	pl := sc.plans[d]
	if pl != nil {
		dr.PlanShape = pl.Shape
	}
	var sq, planned float64
	for h := start; h.Before(end); h = h.Add(time.Hour) {
		var got int64
		for q := h.Unix() / 900; q < h.Add(time.Hour).Unix()/900; q++ {
			got += sc.spend[q]
			dr.Charges += sc.charges[q]
		}
		dr.HourlyActual = append(dr.HourlyActual, got)
		dr.Spent += got
		if pl != nil {
			want := int64(pl.Spend(h.Add(time.Hour)) - pl.Spend(h))
			dr.HourlyPlan = append(dr.HourlyPlan, want)
			sq += float64(got-want) * float64(got-want)
			planned += float64(want)
		}
	}
	dr.UtilisationPct = round2(100 * float64(dr.Spent) / float64(budget))
	dr.OverspendPct = math.Round(max(0, 100*float64(dr.Spent-budget)/float64(budget))*1000) / 1000
	if pl != nil && planned > 0 {
		n := float64(len(dr.HourlyPlan))
		dr.RMSEPct = round2(100 * math.Sqrt(sq/n) / (planned / n))
	}
	return dr
}

func round2(v float64) float64 { return math.Round(v*100) / 100 }

// printTable writes one line per campaign-day and the target summary.
func (r *Report) printTable(out io.Writer) {
	fmt.Fprintf(out, "%-5s %-16s %-5s %-3s %-7s %-10s %11s %11s %7s %7s %7s\n",
		"id", "timezone", "pace", "bid", "class", "day", "budget", "spent", "over%", "util%", "rmse%")
	for _, c := range r.Campaigns {
		for _, d := range c.Days {
			rmse := "-"
			if c.Pacing == campaign.PacingEven {
				rmse = fmt.Sprintf("%.2f", d.RMSEPct)
			}
			mark := ""
			if !d.TrafficSufficient {
				mark = "  (traffic < 1.1x budget)"
			}
			fmt.Fprintf(out, "%-5s %-16s %-5s %-3s %-7s %-10s %11s %11s %7.3f %7.2f %7s%s\n",
				c.ID, c.Timezone, c.Pacing, c.Model, c.Class, d.Day, money(d.Budget), money(d.Spent),
				d.OverspendPct, d.UtilisationPct, rmse, mark)
		}
	}
	s := r.Summary
	sync := "off"
	if r.Kafka {
		sync = "over Kafka (kfake) every " + r.SyncEvery
		if r.Stagger {
			sync += ", staggered"
		}
	}
	fmt.Fprintf(out, "\n%d node(s), %d day(s), %.0f req/s, seed %d, spend sync %s, routing %s; %.1fs wall\n",
		r.Nodes, r.Days, r.RPS, r.Seed, sync, map[bool]string{true: "by user", false: "random"}[r.RouteByUser], r.WallSeconds)
	st := r.Stats
	fmt.Fprintf(out, "requests %d, wins %d, charges %d, throttled %d, exhausted %d, capped %d, reserve refused %d, sync rounds %d, records published %d applied %d malformed %d\n",
		st.Requests, st.Wins, st.Charges, st.Throttled, st.Exhausted, st.Capped, st.ReserveFailed, st.SyncRounds,
		st.Published, st.Applied, st.Malformed)
	fmt.Fprintf(out, "max overspend          %6.3f%% of the daily budget   (target <= %.0f%%)  %s\n",
		s.MaxOverspendPct, targetOverspendPct, okString(s.OverspendOK))
	fmt.Fprintf(out, "min utilisation        %6.2f%% (traffic suffices)   (target >= %.0f%%) %s\n",
		s.MinUtilisationPct, targetUtilisationPct, okString(s.UtilisationOK))
	fmt.Fprintf(out, "max even hourly RMSE   %6.2f%% of the hourly plan   (target <= %.0f%%) %s\n",
		s.MaxEvenRMSEPct, targetRMSEPct, okString(s.RMSEOK))
}

func okString(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

func money(m int64) string {
	s := campaign.Micros(m / 10_000 * 10_000).String()
	if i := strings.IndexByte(s, '.'); i < 0 {
		s += ".00"
	} else if len(s)-i == 2 {
		s += "0"
	}
	return s
}

func writeJSON(path string, r *Report) error {
	b, err := json.MarshalIndent(r, "", " ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
