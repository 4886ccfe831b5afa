// Package grafana_test checks the dashboard: well-formed panels, every
// query valid PromQL (compiled by promtool as recording rules) over
// metrics pineconed really exports, and the areas operators look at all
// covered.
package grafana_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pineconed/pineconed/admin/metrics/metricstest"
)

const dashboardFile = "pineconed.json"

type panel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
}

func load(t *testing.T) []panel {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct{ Name, Type string } `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	vars := map[string]string{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v.Type
	}
	if d.UID == "" || d.Title == "" || vars["datasource"] != "datasource" || vars["instance"] != "query" {
		t.Errorf("dashboard needs a uid, a title and the datasource and instance variables: %q %q %v", d.UID, d.Title, vars)
	}
	return d.Panels
}

// TestDashboardShape: unique ids, panels inside the 24-column grid and not
// overlapping, each graph on the chosen data source with queries.
func TestDashboardShape(t *testing.T) {
	panels := load(t)
	ids := map[int]bool{}
	type cell struct{ x, y int }
	taken := map[cell]string{}
	for _, p := range panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the grid", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if other, ok := taken[cell{x, y}]; ok {
					t.Fatalf("panel %q overlaps %q at %d,%d", p.Title, other, x, y)
				}
				taken[cell{x, y}] = p.Title
			}
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: needs the ${datasource} variable and at least one query", p.Title)
		}
		for _, tg := range p.Targets {
			if !strings.Contains(tg.Expr, `instance=~"$instance"`) {
				t.Errorf("panel %q query %s: not filtered by $instance: %s", p.Title, tg.RefID, tg.Expr)
			}
		}
	}
}

// TestDashboardQueries compiles every query with promtool (as a recording
// rule, with Grafana's variables filled in) and checks the metric names
// against pineconed's registry and that each area is on the dashboard.
func TestDashboardQueries(t *testing.T) {
	var exprs []string
	for _, p := range load(t) {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	all := strings.Join(exprs, "\n")
	unknown, err := metricstest.Unknown(all)
	if err != nil {
		t.Fatal(err)
	}
	if len(unknown) > 0 {
		t.Errorf("the dashboard queries metrics pineconed does not export: %v", unknown)
	}
	for area, metric := range map[string]string{
		"peers": "pineconed_peers", "traffic": "pineconed_frame_bytes_total", "drops": "pineconed_drops_total",
		"sessions": "pineconed_sessions", "handshakes": "pineconed_handshakes_total", "lookups": "pineconed_lookups_total",
		"lookup latency": "pineconed_lookup_duration_seconds_bucket", "tree churn": "pineconed_tree_root_changes_total",
		"TUN": "pineconed_tun_bytes_total",
	} {
		if !strings.Contains(all, metric) {
			t.Errorf("no panel shows %s (%s)", area, metric)
		}
	}

	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (apt-get install prometheus); CI installs it")
	}
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	fill := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*")
	for i, e := range exprs {
		q, _ := json.Marshal(fill.Replace(e)) // a JSON string is a YAML string
		fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
	}
	path := filepath.Join(t.TempDir(), "dashboard.rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", path).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
	}
}
