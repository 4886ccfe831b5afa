package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGenerate(t *testing.T) {
	for spec, want := range map[string][2]int{
		"line:5": {5, 4}, "ring:6": {6, 6}, "grid:3x4": {12, 17}, "scalefree:50:2": {50, 3 + 47*2},
	} {
		g, err := generate(spec, 1)
		if err != nil || g.N() != want[0] || len(g.Edges) != want[1] {
			t.Errorf("%s: %d nodes %d links (%v), want %v", spec, g.N(), len(g.Edges), err, want)
		}
	}
	for _, bad := range []string{"line", "line:x", "grid:3", "star:5", "ring:0"} {
		if _, err := generate(bad, 1); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestUsage(t *testing.T) {
	var ue usageError
	for _, args := range [][]string{{}, {"-gen", "ring:5", "-graph", "x"}, {"-nosuchflag"}} {
		if err := run(args, io.Discard, io.Discard); !errors.As(err, &ue) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestRunWritesEverything runs a small generated graph end to end: the
// table on stdout, the JSON and both plots, which must be well-formed SVG.
func TestRunWritesEverything(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	jsonPath := filepath.Join(dir, "r.json")
	err := run([]string{"-gen", "grid:4x4", "-pairs", "100", "-window", "10s", "-recovery", "10s",
		"-json", jsonPath, "-svg", dir}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, label := range []string{"convergence: 100 % of pairs", "stretch, first packet (SNEK)", "control: bootstraps", "wall time / user CPU / peak RSS"} {
		if !strings.Contains(out.String(), label) {
			t.Errorf("no %q in\n%s", label, out.String())
		}
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Result.Nodes != 16 || rep.Result.ConvergeSeconds < 0 || len(rep.StretchSNEK) == 0 || rep.PeakRSSBytes == 0 || rep.UserCPUSeconds <= 0 {
		t.Errorf("report %+v", rep.Result)
	}
	if last := rep.StretchTree[len(rep.StretchTree)-1]; last[1] != 1 || last[0] != rep.Result.StretchTree.Max {
		t.Errorf("CDF ends at %v, max %v", last, rep.Result.StretchTree.Max)
	}
	for _, name := range []string{"stretch-grid-4x4.svg", "recovery-grid-4x4.svg", "convergence-grid-4x4.svg"} {
		f, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		d := xml.NewDecoder(bytes.NewReader(f))
		lines := 0
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "polyline" {
				lines++
			}
		}
		if want := map[bool]int{true: 1, false: 2}[strings.HasPrefix(name, "convergence")]; lines != want {
			t.Errorf("%s: %d lines, want %d", name, lines, want)
		}
	}
}

func TestCDF(t *testing.T) {
	got := cdf([]float64{1, 1, 1, 2, 3, 3})
	want := [][2]float64{{1, 0.5}, {2, 4.0 / 6}, {3, 1}}
	if len(got) != len(want) {
		t.Fatalf("%v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("%v, want %v", got, want)
		}
	}
	many := make([]float64, 5000)
	for i := range many {
		many[i] = float64(i)
	}
	if c := cdf(many); len(c) > 402 || c[len(c)-1] != [2]float64{4999, 1} {
		t.Errorf("%d points, last %v", len(c), c[len(c)-1])
	}
}

// TestSuiteReuseOnly: -suite with -reuse and -graphs builds RESULTS.md from
// a graph's JSON already in -out, without running anything, and only for
// the graphs named.
func TestSuiteReuseOnly(t *testing.T) {
	dir, graphs := t.TempDir(), t.TempDir()
	if err := run([]string{"-gen", "grid:3x3", "-pairs", "50", "-window", "5s", "-recovery", "5s",
		"-json", filepath.Join(dir, "dn42.json")}, io.Discard, io.Discard); err != nil {
		t.Fatal(err)
	}
	// The graph file must exist; with -reuse it is not read.
	if err := os.WriteFile(filepath.Join(graphs, "dn42.txt"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	if err := run([]string{"-suite", graphs, "-out", dir, "-reuse", "-graphs", "dn42"}, io.Discard, &stderr); err != nil {
		t.Fatalf("%v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "dn42: reusing") {
		t.Errorf("dn42 not reused:\n%s", stderr.String())
	}
	b, err := os.ReadFile(filepath.Join(dir, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	// The column is the run's name: the generated grid stood in for dn42.
	if !strings.Contains(string(b), "| figure | grid-3x3 |\n") {
		t.Errorf("RESULTS.md does not have exactly the one reused column:\n%s", b)
	}
	var ue usageError
	if err := run([]string{"-suite", graphs, "-out", dir, "-graphs", "nosuch"}, io.Discard, io.Discard); !errors.As(err, &ue) {
		t.Errorf("-graphs nosuch: %v, want a usage error", err)
	}
}
