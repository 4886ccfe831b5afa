package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/pineconed/pineconed/sim"
)

// row is one figure: its label and its value in each report.
type row struct {
	label string
	value func(r *Report) string
}

func f1(v float64) string { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string { return fmt.Sprintf("%.2f", v) }

func secs(v float64) string {
	if v < 0 {
		return "never"
	}
	return fmt.Sprintf("%.1f s", v)
}

func pct(v float64) string { return fmt.Sprintf("%.3f %%", 100*v) }

func summary(s sim.Summary, format func(float64) string) string {
	return fmt.Sprintf("%s / %s / %s / %s", format(s.Mean), format(s.P50), format(s.P99), format(s.Max))
}

func rate(r sim.Rate) string {
	return fmt.Sprintf("%.2f / %.1f fr/s, %s / %s", r.FramesMean, r.FramesMax, byteRate(r.BytesMean), byteRate(r.BytesMax))
}

func byteRate(v float64) string {
	switch {
	case v >= 10<<10:
		return fmt.Sprintf("%.0f KiB/s", v/1024)
	default:
		return fmt.Sprintf("%.0f B/s", v)
	}
}

func mib(v float64) string { return fmt.Sprintf("%.0f MiB", v/(1<<20)) }

func recovery(rec sim.Recovery) string {
	return fmt.Sprintf("min %.1f %%, ≥99 %% after %s, 100 %% after %s", 100*rec.Min, secs(rec.Seconds99), secs(rec.Seconds100))
}

var rows = []row{
	{"nodes / links simulated", func(r *Report) string {
		return fmt.Sprintf("%d / %d", r.Result.Nodes, r.Result.Links)
	}},
	{"links left out (253-port cap)", func(r *Report) string { return fmt.Sprint(r.Result.LinksDropped) }},
	{"largest component", func(r *Report) string { return fmt.Sprint(r.Result.Largest) }},
	{"sampled pairs", func(r *Report) string { return fmt.Sprint(r.Result.Pairs) }},
	{"shortest path mean / max (hops)", func(r *Report) string {
		return fmt.Sprintf("%.2f / %d", r.Result.ShortestMean, r.Result.Diameter)
	}},
	{"tree converged", func(r *Report) string { return secs(r.Result.TreeSeconds) }},
	{"convergence: ≥99 % of pairs", func(r *Report) string { return secs(r.Result.Converge99Seconds) }},
	{"convergence: 100 % of pairs", func(r *Report) string { return secs(r.Result.ConvergeSeconds) }},
	{"steady state from (every node's fast bootstraps over)", func(r *Report) string {
		if r.Result.SettleTimedOut {
			return fmt.Sprintf("%s (not over within the window)", secs(r.Result.SettledSeconds))
		}
		return secs(r.Result.SettledSeconds)
	}},
	{"steady state: first packets delivered", func(r *Report) string { return pct(r.Result.SteadyRequests) }},
	{"steady state: round trips delivered", func(r *Report) string {
		return fmt.Sprintf("%s (%d rounds)", pct(r.Result.SteadyRoundTrips), r.Result.SteadyRounds)
	}},
	{"stretch, first packet (SNEK): mean / p50 / p99 / max", func(r *Report) string { return summary(r.Result.StretchSNEK, f2) }},
	{"stretch, reply (tree): mean / p50 / p99 / max", func(r *Report) string { return summary(r.Result.StretchTree, f2) }},
	{"SNEK entries per node: mean / p50 / p99 / max", func(r *Report) string { return summary(r.Result.SNEKEntries, f1) }},
	{"SNEK state per node (bytes): mean / p50 / p99 / max", func(r *Report) string {
		return summary(r.Result.SNEKBytes, func(v float64) string { return fmt.Sprintf("%.0f", v) })
	}},
	{"simulator heap per node (real Router + sim)", func(r *Report) string {
		return fmt.Sprintf("%.0f KiB", r.Result.HeapPerNode/1024)
	}},
	{"control before the steady state, per node mean / max", func(r *Report) string { return rate(r.Result.ColdStartControl) }},
	{"control: all, per node mean / max", func(r *Report) string { return rate(r.Result.ControlTotal) }},
	{"control: bootstraps", func(r *Report) string { return rate(r.Result.Control["bootstrap"]) }},
	{"control: tree announcements", func(r *Report) string { return rate(r.Result.Control["tree_announcement"]) }},
	{"bootstrap path: frames per bootstrap (shortest path to the successor)", func(r *Report) string {
		p := r.Result.BootstrapPath
		return fmt.Sprintf("%.1f (%.1f)", p.Hops, p.SuccessorShortest)
	}},
	{"bootstrap frames up / down / across the tree", func(r *Report) string {
		p := r.Result.BootstrapPath
		return fmt.Sprintf("%.0f / %.0f / %.0f %%", 100*p.Up, 100*p.Down, 100*p.Across)
	}},
	{"control: wakeup broadcasts", func(r *Report) string {
		s := rate(r.Result.Control["wakeup_broadcast"])
		if r.Result.WakeupScale > 1 {
			s += fmt.Sprintf(" (×%.0f from %d originators)", r.Result.WakeupScale, r.WakeupOriginators)
		}
		return s
	}},
	{"recovery, one random link removed", func(r *Report) string { return recovery(r.Result.LinkFailure) }},
	{"recovery, highest-degree node removed", func(r *Report) string { return recovery(r.Result.NodeFailure) }},
	{"virtual time / events", func(r *Report) string {
		return fmt.Sprintf("%.0f s / %.1f M", r.Result.VirtualSeconds, float64(r.Result.Events)/1e6)
	}},
	{"wall time / user CPU / peak RSS", func(r *Report) string {
		return fmt.Sprintf("%.0f s / %.0f s / %s", r.WallSeconds, r.UserCPUSeconds, mib(float64(r.PeakRSSBytes)))
	}},
}

// printReport prints one run's figures as an aligned table.
func printReport(w io.Writer, r *Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%s\t(signatures %v, latency %.0f ms, seed %d)\n", r.Name, r.Result.Signatures, r.Result.LatencyMs, r.Seed)
	for _, rw := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", rw.label, rw.value(r))
	}
	fmt.Fprintf(tw, "failures\t%s; %s\n", r.Result.LinkFailure.What, r.Result.NodeFailure.What)
	tw.Flush()
}

// printLosses prints the loss tracer's counts by cause, most frequent
// first.
func printLosses(w io.Writer, title string, l sim.Losses) {
	total := 0
	causes := make([]string, 0, len(l))
	for k, v := range l {
		causes = append(causes, k)
		total += v
	}
	slices.SortFunc(causes, func(a, b string) int {
		if l[a] != l[b] {
			return l[b] - l[a]
		}
		return strings.Compare(a, b)
	})
	fmt.Fprintf(w, "%s: %d\n", title, total)
	for _, k := range causes {
		fmt.Fprintf(w, "  %6d  %s\n", l[k], k)
	}
}

// writeResults writes docs/simulation/RESULTS.md: one column per graph.
func writeResults(path string, reps []*Report) error {
	var b strings.Builder
	b.WriteString("# Routing simulator results\n\n")
	b.WriteString("Generated by `go run ./cmd/pineconesim -suite ../shared/graphs -out docs/simulation`\n")
	b.WriteString("(do not edit; see README.md beside this file for what each figure means).\n")
	b.WriteString("Every node is a real `overlay/router` state machine; links have 1 ms latency;\n")
	fmt.Fprintf(&b, "signatures: %v; reference timers: %v; tick jitter %.0f ms; seed %d; %s on %d CPUs.\n\n",
		reps[0].Result.Signatures, reps[0].Result.ReferenceTimers, reps[0].Result.TickJitterMs, reps[0].Seed, reps[0].GoVersion, reps[0].CPUs)
	b.WriteString("| figure |")
	for _, r := range reps {
		fmt.Fprintf(&b, " %s |", r.Name)
	}
	b.WriteString("\n|---|")
	for range reps {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	for _, rw := range rows {
		fmt.Fprintf(&b, "| %s |", rw.label)
		for _, r := range reps {
			fmt.Fprintf(&b, " %s |", rw.value(r))
		}
		b.WriteString("\n")
	}
	b.WriteString("\nFailures:\n\n")
	for _, r := range reps {
		fmt.Fprintf(&b, "- %s: %s; %s (%d and %d sampled pairs cut off).\n", r.Name, r.Result.LinkFailure.What,
			r.Result.NodeFailure.What, r.Result.LinkFailure.CutOff, r.Result.NodeFailure.CutOff)
	}
	b.WriteString("\nPlots: ")
	for i, r := range reps {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s: [stretch](stretch-%s.svg), [recovery](recovery-%s.svg), [cold start](convergence-%s.svg)", r.Name, r.Name, r.Name, r.Name)
	}
	b.WriteString(".\n")
	return os.WriteFile(path, []byte(b.String()), 0o644)
}
