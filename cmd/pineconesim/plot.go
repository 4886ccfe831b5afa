package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/pineconed/pineconed/sim"
)

// series is one line of a chart.
type series struct {
	name   string
	color  string
	points [][2]float64
	// step draws a staircase (for a CDF) instead of straight segments.
	step bool
}

// chart is a small line chart written as standalone SVG.
type chart struct {
	title, xlabel, ylabel  string
	xmin, xmax, ymin, ymax float64
	xticks, yticks         []float64
	yformat                func(float64) string
	lines                  []series
}

const (
	svgW, svgH                      = 640, 400
	padL, padR, padT, padB          = 70, 20, 40, 50
	plotW, plotH                    = svgW - padL - padR, svgH - padT - padB
	colorSNEK, colorTree, colorNode = "#d9480f", "#1c7ed6", "#2b8a3e"
)

func (c *chart) x(v float64) float64 {
	return padL + (min(max(v, c.xmin), c.xmax)-c.xmin)/(c.xmax-c.xmin)*plotW
}

func (c *chart) y(v float64) float64 {
	return padT + plotH - (min(max(v, c.ymin), c.ymax)-c.ymin)/(c.ymax-c.ymin)*plotH
}

func (c *chart) svg() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", padL, esc(c.title))
	for _, t := range c.xticks {
		x := c.x(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#e9ecef"/>`+"\n", x, padT, x, padT+plotH)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x, padT+plotH+16, trimNum(t))
	}
	for _, t := range c.yticks {
		y := c.y(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#e9ecef"/>`+"\n", padL, y, padL+plotW, y)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", padL-6, y+4, c.yformat(t))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#495057"/>`+"\n", padL, padT, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", padL+plotW/2, svgH-10, esc(c.xlabel))
	fmt.Fprintf(&b, `<text transform="translate(16 %d) rotate(-90)" text-anchor="middle">%s</text>`+"\n", padT+plotH/2, esc(c.ylabel))
	for i, s := range c.lines {
		var pts []string
		for j, p := range s.points {
			if s.step && j > 0 {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(p[0]), c.y(s.points[j-1][1])))
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", c.x(p[0]), c.y(p[1])))
		}
		fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		ly := padT + plotH - 12 - 18*(len(c.lines)-1-i)
		if i == 0 {
			fmt.Fprintf(&b, `<rect x="%d" y="%d" width="232" height="%d" fill="white" fill-opacity="0.85"/>`+"\n", padL+plotW-236, ly-16, 18*len(c.lines)+4)
		}
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="3"/>`+"\n", padL+plotW-230, ly-4, padL+plotW-205, ly-4, s.color)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", padL+plotW-198, ly, esc(s.name))
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func trimNum(v float64) string {
	if v == math.Trunc(v) {
		return fmt.Sprintf("%.0f", v)
	}
	return fmt.Sprintf("%.1f", v)
}

func ticks(lo, hi float64, n int) []float64 {
	step := (hi - lo) / float64(n)
	mag := math.Pow(10, math.Floor(math.Log10(step)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*mag >= step {
			step = m * mag
			break
		}
	}
	var out []float64
	for t := math.Ceil(lo/step) * step; t <= hi+step/1e6; t += step {
		out = append(out, t)
	}
	return out
}

// writePlots writes stretch-NAME.svg, recovery-NAME.svg and
// convergence-NAME.svg for each report.
func writePlots(dir string, reps []*Report) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, r := range reps {
		res := r.Result
		// The x axis ends past the larger p99 so that the body of both
		// distributions shows; the longest tail is in the legend.
		xmax := math.Ceil(max(res.StretchSNEK.P99, res.StretchTree.P99, 1.5) * 1.25)
		st := chart{
			title:  fmt.Sprintf("%s: path stretch over delivered pairs (CDF)", r.Name),
			xlabel: "stretch = hops taken / shortest-path hops", ylabel: "share of delivered pairs",
			xmin: 1, xmax: xmax, ymin: 0, ymax: 1,
			xticks: ticks(1, xmax, 8), yticks: ticks(0, 1, 5),
			yformat: func(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) },
			lines: []series{
				{name: fmt.Sprintf("first packet, SNEK (max %.1f)", res.StretchSNEK.Max), color: colorSNEK, points: r.StretchSNEK, step: true},
				{name: fmt.Sprintf("reply, tree (max %.1f)", res.StretchTree.Max), color: colorTree, points: r.StretchTree, step: true},
			},
		}
		if err := os.WriteFile(filepath.Join(dir, "stretch-"+r.Name+".svg"), []byte(st.svg()), 0o644); err != nil {
			return err
		}
		lo := min(res.LinkFailure.Min, res.NodeFailure.Min)
		ymin := math.Max(0, math.Floor(lo*20-0.5)/20)
		if lo > 0.99 {
			ymin = 0.98
		}
		tmax := 0.0
		pts := func(rec []sim.Point) [][2]float64 {
			var out [][2]float64
			for _, p := range rec {
				out = append(out, [2]float64{p.T, p.Ratio})
				tmax = max(tmax, p.T)
			}
			return out
		}
		link, node := pts(res.LinkFailure.Series), pts(res.NodeFailure.Series)
		rc := chart{
			title:  fmt.Sprintf("%s: delivery after a failure", r.Name),
			xlabel: "seconds after the failure (probe round every 0.5 s)", ylabel: "round trips delivered",
			xmin: 0, xmax: math.Max(1, tmax), ymin: ymin, ymax: 1,
			xticks: ticks(0, math.Max(1, tmax), 6), yticks: ticks(ymin, 1, 5),
			yformat: func(v float64) string { return fmt.Sprintf("%.1f %%", 100*v) },
			lines: []series{
				{name: "one random link removed", color: colorTree, points: link},
				{name: "highest-degree node removed", color: colorNode, points: node},
			},
		}
		if err := os.WriteFile(filepath.Join(dir, "recovery-"+r.Name+".svg"), []byte(rc.svg()), 0o644); err != nil {
			return err
		}
		var cold [][2]float64
		for _, p := range res.ColdStart {
			cold = append(cold, [2]float64{p.T, p.Ratio})
		}
		cend := math.Max(1, res.ConvergeSeconds)
		if len(cold) > 0 {
			cend = math.Max(cend, cold[len(cold)-1][0])
		}
		cc := chart{
			title:  fmt.Sprintf("%s: delivery from a cold start", r.Name),
			xlabel: "seconds after every node started (probe round every second)", ylabel: "round trips delivered",
			xmin: 0, xmax: cend, ymin: 0, ymax: 1,
			xticks: ticks(0, cend, 6), yticks: ticks(0, 1, 5),
			yformat: func(v float64) string { return fmt.Sprintf("%.0f %%", 100*v) },
			lines:   []series{{name: "first packet and reply", color: colorSNEK, points: cold}},
		}
		if err := os.WriteFile(filepath.Join(dir, "convergence-"+r.Name+".svg"), []byte(cc.svg()), 0o644); err != nil {
			return err
		}
	}
	return nil
}
