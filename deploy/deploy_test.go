// Package deploy holds no code: its test checks the deploy artefacts (the
// Grafana dashboard and the Prometheus alerting rules) against the code, so
// that a renamed metric cannot silently blank a panel or an alert.
package deploy

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// pending lists metric names the artefacts use that the code does not
// export yet (issue 9, point 1). Remove a name once it exists.
var pending = []string{
	"adserver_decision_nofill_total",       // counter {reason}: serving_off, deadline, no_candidates, ...
	"adserver_campaign_spend_micros_total", // counter {campaign_id}, bounded label set
	"adserver_pacing_throttle_ratio",       // gauge {campaign_id} in [0, 1], bounded label set
	"adserver_eventlog_unshipped_records",  // gauge: records appended but not yet shipped
}

var metricName = regexp.MustCompile(`\badserver_[a-z0-9_]*[a-z0-9]\b`)

type dashboard struct {
	UID    string  `json:"uid"`
	Title  string  `json:"title"`
	Panels []panel `json:"panels"`
	Anns   struct {
		List []struct {
			Expr string `json:"expr"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Name string `json:"name"`
		} `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID      int    `json:"id"`
	Type    string `json:"type"`
	Title   string `json:"title"`
	GridPos struct{ X, Y, W, H int }
	Targets []struct {
		RefID      string `json:"refId"`
		Expr       string `json:"expr"`
		Datasource struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

func loadDashboard(t *testing.T) (*dashboard, []string) {
	t.Helper()
	b, err := os.ReadFile("grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("grafana-dashboard.json: %v", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	for _, a := range d.Anns.List {
		if a.Expr != "" {
			exprs = append(exprs, a.Expr)
		}
	}
	return &d, exprs
}

func TestDashboardShape(t *testing.T) {
	d, _ := loadDashboard(t)
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatal("dashboard needs a uid, a title and panels")
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Name)
	}
	for _, v := range []string{"datasource", "job", "instance"} {
		if !slices.Contains(vars, v) {
			t.Errorf("template variable %q missing", v)
		}
	}
	ids := map[int]string{}
	for _, p := range d.Panels {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panel id %d used by %q and %q", p.ID, prev, p.Title)
		}
		ids[p.ID] = p.Title
		if p.GridPos.W <= 0 || p.GridPos.X+p.GridPos.W > 24 || p.GridPos.H <= 0 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			if tg.Expr == "" || tg.RefID == "" || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: target %+v needs expr, refId and the ${datasource} variable", p.Title, tg)
			}
		}
	}
}

// TestArtefactsUseExistingMetrics checks that every adserver_* name in the
// dashboard and the alerting rules is declared somewhere in the code (or is
// listed in pending).
func TestArtefactsUseExistingMetrics(t *testing.T) {
	_, exprs := loadDashboard(t)
	rules, err := os.ReadFile("alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{}
	for _, e := range exprs {
		for _, m := range metricName.FindAllString(e, -1) {
			used[m] = "grafana-dashboard.json"
		}
	}
	for _, m := range metricName.FindAllString(string(rules), -1) {
		used[m] = "alerts.yml"
	}
	src := goSources(t)
	var missing []string
	for m, where := range used {
		declared := func(name string) bool {
			return strings.Contains(src, "`"+name) || strings.Contains(src, `"`+name)
		}
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok && !declared(m) {
				base = b // a histogram's series
			}
		}
		if declared(base) {
			if slices.Contains(pending, base) {
				t.Logf("%s now exists in the code: drop it from pending", base)
			}
			continue
		}
		if slices.Contains(pending, base) {
			missing = append(missing, base)
			continue
		}
		t.Errorf("%s uses %s, which no Go source declares (renamed?)", where, m)
	}
	slices.Sort(missing)
	if missing = slices.Compact(missing); len(missing) > 0 {
		t.Logf("metrics the artefacts expect but the code does not export yet: %s", strings.Join(missing, ", "))
	}
}

// goSources returns the text of every non-test Go file of the module.
func goSources(t *testing.T) string {
	t.Helper()
	var sb strings.Builder
	err := filepath.WalkDir("..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case ".git", "data", "testdata", "node_modules":
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			sb.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

// TestDashboardQueriesParse runs the dashboard's queries through promtool
// as recording rules (Grafana variables replaced), when promtool is there.
func TestDashboardQueriesParse(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("ADSERVER_TEST_REQUIRE_ALL") != "" {
			t.Fatal("promtool not found (Debian package prometheus)")
		}
		t.Skip("promtool not found (Debian package prometheus)")
	}
	_, exprs := loadDashboard(t)
	var sb strings.Builder
	sb.WriteString("groups:\n- name: dashboard\n  rules:\n")
	r := strings.NewReplacer("$__rate_interval", "5m", "$job", ".*", "$instance", ".*")
	for i, e := range exprs {
		q, _ := json.Marshal(r.Replace(e)) // a JSON string is a YAML double-quoted scalar
		fmt.Fprintf(&sb, "  - record: dashboard:query%d\n    expr: %s\n", i, q)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("dashboard queries do not parse: %v\n%s", err, out)
	}
}
