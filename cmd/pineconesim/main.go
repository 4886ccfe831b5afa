// Command pineconesim is the routing simulator: it runs thousands of real
// overlay/router state machines in one process over simulated links with
// a virtual clock (package sim), and prints the figures users and protocol
// designers ask for first: convergence from a cold start, path stretch of
// first packets (SNEK) and replies (tree), routing state and control
// traffic per node, and recovery from a link and a node failure.
//
// One topology:
//
//	go run ./cmd/pineconesim -graph ../shared/graphs/dn42.txt -json dn42.json -svg /tmp/plots
//	go run ./cmd/pineconesim -gen scalefree:500:2
//
// The results table of docs/simulation (every shared graph, each in its own
// process so that its wall time and peak memory are its own):
//
//	go run ./cmd/pineconesim -suite ../shared/graphs -out docs/simulation
//
// Progress goes to stderr every few seconds of wall time; the figures to
// stdout.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pineconed/pineconed/sim"
)

// Report is what one run writes as JSON: the figures and what the run cost.
type Report struct {
	Name string `json:"name"`
	// Source is the graph file or generator.
	Source            string      `json:"source"`
	Seed              uint64      `json:"seed"`
	WakeupOriginators int         `json:"wakeup_originators"`
	Result            *sim.Result `json:"result"`
	WallSeconds       float64     `json:"wall_s"`
	// UserCPUSeconds is the process's user CPU time: unlike wall time,
	// it hardly depends on what else the machine runs.
	UserCPUSeconds float64 `json:"user_cpu_s"`
	PeakRSSBytes   uint64  `json:"peak_rss_bytes"`
	GoVersion      string  `json:"go_version"`
	CPUs           int     `json:"cpus"`
	// StretchSNEK and StretchTree are the stretch samples' CDF points
	// (value, share of samples ≤ value), for plots.
	StretchSNEK [][2]float64 `json:"stretch_cdf_snek"`
	StretchTree [][2]float64 `json:"stretch_cdf_tree"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "pineconesim:", err)
		var ue usageError
		if errors.As(err, &ue) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

type usageError struct{ error }

// memoryLimit is the simulator's soft heap limit (runtime/debug), below
// the 2 GiB the skitter run must fit in.
const memoryLimit = 1536 << 20

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pineconesim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	graphPath := fs.String("graph", "", "topology file (format of ../shared/graphs/README.md)")
	gen := fs.String("gen", "", "generated topology: line:N, ring:N, grid:WxH or scalefree:N:M")
	seed := fs.Uint64("seed", 1, "seed for keys, generated graphs, sampled pairs and failures")
	pairs := fs.Int("pairs", 2000, "sampled (source, destination) pairs")
	latency := fs.Duration("latency", sim.DefaultLatency, "one-way latency of every link")
	sigs := fs.Bool("signatures", false, "sign and verify everything as real nodes do (off: InsecureSkipSignatures, same routing decisions, ~9× faster)")
	wakeups := fs.Int("wakeup-originators", 0, "only this many sampled nodes originate wakeups, figures scaled up (0: all)")
	refTimers := fs.Bool("reference-timers", false, "run the routers with the reference's timers (60 s wakeups, 5 s bootstraps) instead of the tuned ones")
	wakeupRefresh := fs.Duration("wakeup-refresh", 0, "tuned timers: mean period of each node's periodic wakeup flood (0: the router's default, negative: none)")
	fastWindow := fs.Duration("fast-bootstrap-window", 0, "tuned timers: how long after a parent, root or descending change a node bootstraps every second (0: the router's default, negative: never)")
	handoffAge := fs.Duration("bootstrap-handoff-age", 0, "tuned timers: how young a relayed bootstrap must be to be passed on again towards a closer key just learnt (0: the router's default, negative: never)")
	terminalAge := fs.Duration("terminal-handoff-age", 0, "tuned timers: the same bound for a bootstrap that ended at the node (0: the router's default, negative: -bootstrap-handoff-age's)")
	tickJitter := fs.Duration("tick-jitter", sim.DefaultTickJitter, "each router tick comes late by up to this much, seeded (negative: lockstep ticks)")
	traceLosses := fs.Bool("trace-losses", false, "follow every probe hop by hop and print why each lost first packet or reply was lost, counted by cause, for the late cold-start rounds (from the first ≥ 99 % round) and the steady state")
	window := fs.Duration("window", time.Minute, "steady-state window for control traffic, delivery and stretch")
	recovery := fs.Duration("recovery", time.Minute, "how long delivery is followed after each failure")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the run to this file")
	memProfile := fs.String("memprofile", "", "write an allocation profile (everything the run allocated, and the heap live at its end) to this file")
	jsonOut := fs.String("json", "", "write the figures as JSON to this file")
	svgDir := fs.String("svg", "", "write the plots (stretch CDF, delivery during recovery) as SVG into this directory")
	suite := fs.String("suite", "", "run the shared graphs in this directory (sim-skitter, yggdrasil, fc00, dn42), each in its own process")
	out := fs.String("out", "docs/simulation", "with -suite: where RESULTS.md, the JSON and the plots go")
	only := fs.String("graphs", "", "with -suite: run only these suite graphs, comma-separated names (e.g. dn42,fc00); RESULTS.md then has only their columns")
	reuse := fs.Bool("reuse", false, "with -suite: take a graph's figures from its JSON in -out if it is there instead of running it (to rebuild RESULTS.md and the plots, or to run the graphs separately)")
	progressEvery := fs.Duration("progress", 5*time.Second, "wall time between progress lines on stderr")
	if err := fs.Parse(args); err != nil {
		return usageError{err}
	}
	if *suite != "" {
		return runSuite(*suite, *out, *seed, *pairs, *sigs, *reuse, *only, stdout, stderr)
	}
	var g sim.Graph
	var name string
	switch {
	case *graphPath != "" && *gen != "":
		return usageError{errors.New("-graph and -gen are exclusive")}
	case *graphPath != "":
		var err error
		if g, err = sim.LoadGraph(*graphPath); err != nil {
			return err
		}
		name = strings.TrimSuffix(filepath.Base(*graphPath), filepath.Ext(*graphPath))
	case *gen != "":
		var err error
		if g, err = generate(*gen, *seed); err != nil {
			return usageError{err}
		}
		name = strings.ReplaceAll(*gen, ":", "-")
	default:
		return usageError{errors.New("need -graph, -gen or -suite")}
	}
	// The simulation's live heap is small next to its allocation rate
	// (every frame is a fresh buffer); collecting less often trades some
	// memory for a quarter less CPU.
	debug.SetGCPercent(400)
	// That lets the heap grow to five times the live data: on skitter
	// (~300 MB live) past 1.5 GiB. Near the limit the collector runs
	// as often as it must instead, so the peak stays under it.
	debug.SetMemoryLimit(memoryLimit)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *memProfile != "" {
		defer writeAllocs(*memProfile, stderr)
	}
	begin := time.Now()
	lastProgress := begin
	x := sim.Experiment{Graph: g, Seed: *seed, Pairs: *pairs, Latency: *latency, Signatures: *sigs,
		WakeupOriginators: *wakeups, Window: *window, Recovery: *recovery,
		ReferenceTimers: *refTimers, WakeupRefresh: *wakeupRefresh, FastBootstrapWindow: *fastWindow, BootstrapHandoffAge: *handoffAge, TerminalHandoffAge: *terminalAge, TickJitter: *tickJitter,
		TraceLosses: *traceLosses,
		Progress: func(p sim.Progress) {
			if time.Since(lastProgress) < *progressEvery {
				return
			}
			lastProgress = time.Now()
			wall := time.Since(begin)
			fmt.Fprintf(stderr, "%s: virtual %6.1fs  wall %6.1fs  %8.0f events/s  rss %4d MiB  %s\n",
				name, p.Virtual.Seconds(), wall.Seconds(), float64(p.Stats.Events)/wall.Seconds(), currentRSS()>>20, p.Phase)
		}}
	fmt.Fprintf(stderr, "%s: %d nodes, %d links; signatures %v; reference timers %v; tick jitter %v\n", name, g.N(), len(g.Edges), *sigs, *refTimers, *tickJitter)
	res, err := x.Run()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	rep := Report{Name: name, Source: *graphPath + *gen, Seed: *seed, WakeupOriginators: *wakeups, Result: res,
		WallSeconds: time.Since(begin).Seconds(), UserCPUSeconds: userCPU(), PeakRSSBytes: peakRSS(), GoVersion: runtime.Version(), CPUs: runtime.NumCPU(),
		StretchSNEK: cdf(res.StretchSNEKSamples), StretchTree: cdf(res.StretchTreeSamples)}
	printReport(stdout, &rep)
	if *traceLosses {
		printLosses(stdout, "losses in cold-start rounds from the first ≥ 99 % one", res.LateLosses)
		printLosses(stdout, "losses in the steady state", res.SteadyLosses)
		printLosses(stdout, "losses after the link failure", res.LinkFailure.Losses)
		printLosses(stdout, "losses after the node failure", res.NodeFailure.Losses)
	}
	if *jsonOut != "" {
		b, err := json.MarshalIndent(&rep, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if *svgDir != "" {
		if err := writePlots(*svgDir, []*Report{&rep}); err != nil {
			return err
		}
	}
	return nil
}

// generate builds a generated topology from its flag.
func generate(spec string, seed uint64) (sim.Graph, error) {
	parts := strings.Split(spec, ":")
	nums := make([]int, 0, 2)
	for _, p := range parts[1:] {
		for _, q := range strings.Split(p, "x") {
			v, err := strconv.Atoi(q)
			if err != nil || v < 1 {
				return sim.Graph{}, fmt.Errorf("-gen %s: bad number %q", spec, q)
			}
			nums = append(nums, v)
		}
	}
	switch {
	case parts[0] == "line" && len(nums) == 1:
		return sim.Line(nums[0]), nil
	case parts[0] == "ring" && len(nums) == 1:
		return sim.Ring(nums[0]), nil
	case parts[0] == "grid" && len(nums) == 2:
		return sim.Grid(nums[0], nums[1]), nil
	case parts[0] == "scalefree" && len(nums) == 2:
		return sim.ScaleFree(nums[0], nums[1], seed), nil
	}
	return sim.Graph{}, fmt.Errorf("-gen %s: want line:N, ring:N, grid:WxH or scalefree:N:M", spec)
}

// cdf thins sorted samples to at most ~400 (value, share ≤ value) points.
func cdf(sorted []float64) [][2]float64 {
	var out [][2]float64
	n := len(sorted)
	for i := 0; i < n; i++ {
		// The last sample of each run of equal values carries the step.
		if i+1 < n && sorted[i+1] == sorted[i] {
			continue
		}
		out = append(out, [2]float64{sorted[i], float64(i+1) / float64(n)})
	}
	if len(out) > 400 {
		step := float64(len(out)) / 400
		thin := make([][2]float64, 0, 401)
		for f := 0.0; int(f) < len(out); f += step {
			thin = append(thin, out[int(f)])
		}
		if thin[len(thin)-1] != out[len(out)-1] {
			thin = append(thin, out[len(out)-1])
		}
		out = thin
	}
	return out
}

// peakRSS is the process's peak resident set (VmHWM), or 0 if unknown.
func peakRSS() uint64 { return procStatus("VmHWM:") }

// currentRSS is the process's resident set (VmRSS), or 0 if unknown.
func currentRSS() uint64 { return procStatus("VmRSS:") }

func procStatus(field string) uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// userCPU is the user CPU time this process used so far, in seconds (0
// if the system does not say).
func userCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano()).Seconds()
}

// suiteGraphs are the graph files of the results table. Every node of
// every graph originates wakeups: with the tuned timers a node floods one
// on a peer's first announcement and then about twice a day, so even
// skitter's 9 204 originators fit (docs/simulation/README.md).
var suiteGraphs = []string{"dn42.txt", "fc00.txt", "yggdrasil.txt", "sim-skitter.txt"}

// runSuite runs every suite graph in a child process (so its wall time and
// peak RSS are its own), then writes RESULTS.md and the plots into out.
// With reuse, a graph whose JSON is already in out is not run again; only,
// if not empty, names the graphs to run (comma-separated).
func runSuite(dir, out string, seed uint64, pairs int, sigs, reuse bool, only string, stdout, stderr io.Writer) error {
	graphs := suiteGraphs[:0:0]
	for _, sg := range suiteGraphs {
		if only == "" || slices.Contains(strings.Split(only, ","), strings.TrimSuffix(sg, ".txt")) {
			graphs = append(graphs, sg)
		}
	}
	if len(graphs) == 0 {
		return usageError{fmt.Errorf("-graphs %q names none of the suite's graphs", only)}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	var reps []*Report
	for _, sg := range graphs {
		path := filepath.Join(dir, sg)
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("suite: %w", err)
		}
		name := strings.TrimSuffix(sg, ".txt")
		jsonPath := filepath.Join(out, name+".json")
		args := []string{"-graph", path, "-seed", fmt.Sprint(seed), "-pairs", fmt.Sprint(pairs),
			"-signatures=" + fmt.Sprint(sigs), "-json", jsonPath}
		if _, err := os.Stat(jsonPath); reuse && err == nil {
			fmt.Fprintf(stderr, "suite: %s: reusing %s\n", name, jsonPath)
		} else {
			fmt.Fprintf(stderr, "suite: pineconesim %s\n", strings.Join(args, " "))
			cmd := exec.Command(self, args...)
			cmd.Stdout, cmd.Stderr = stdout, stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("suite: %s: %w", name, err)
			}
		}
		b, err := os.ReadFile(jsonPath)
		if err != nil {
			return err
		}
		var rep Report
		if err := json.Unmarshal(b, &rep); err != nil {
			return fmt.Errorf("%s: %w", jsonPath, err)
		}
		rep.Source = filepath.Join("../shared/graphs", sg)
		reps = append(reps, &rep)
	}
	if err := writePlots(out, reps); err != nil {
		return err
	}
	return writeResults(filepath.Join(out, "RESULTS.md"), reps)
}

// writeAllocs writes the allocation profile to path. The run's result is
// already out, so a failure here is reported and not returned.
func writeAllocs(path string, stderr io.Writer) {
	f, err := os.Create(path)
	if err == nil {
		runtime.GC() // the live heap as of the end of the run
		err = pprof.Lookup("allocs").WriteTo(f, 0)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "pineconesim: -memprofile: %v\n", err)
	}
}
