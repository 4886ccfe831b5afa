package sim

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Experiment is the routing simulator's standard run (cmd/pineconesim): a
// cold start, convergence, a steady-state window, and recovery from two
// failures, with the figures protocol designers ask for first. The zero
// values of its fields pick the defaults documented on each.
type Experiment struct {
	// Graph is the topology. Links beyond a node's router.MaxPort ports are
	// left out (Graph.CapDegree) and counted in the result.
	Graph Graph
	// Seed derives the node keys, the sampled pairs and the failures.
	Seed uint64
	// Pairs is the number of ordered (source, destination) pairs probed,
	// drawn within the largest component; 0 means 2000.
	Pairs int
	// Latency is the one-way latency of every link; 0 means DefaultLatency.
	Latency time.Duration
	// Signatures makes every node sign and verify as real nodes do;
	// without, routers run with InsecureSkipSignatures.
	Signatures bool
	// WakeupOriginators, if > 0, lets only that many nodes (a seeded
	// sample) originate wakeup broadcasts; every node still forwards them.
	// The wakeup figures are scaled up by nodes/WakeupOriginators. It keeps
	// large graphs affordable with ReferenceTimers: with all 9 204 skitter
	// nodes originating every 60 s, one round is 28 million frames and
	// every node remembers ~8 000 originators. The tuned timers flood
	// rarely enough for every node to originate (the suite's setting).
	WakeupOriginators int
	// ReferenceTimers runs every Router with the reference's timers
	// (router.Options.ReferenceTimers): the stock node's behaviour, the
	// baseline of the tuned ones.
	ReferenceTimers bool
	// WakeupRefresh, FastBootstrapWindow, BootstrapHandoffAge and
	// TerminalHandoffAge set the tuned timers of the same names in
	// router.Options (0: the Router's defaults).
	WakeupRefresh, FastBootstrapWindow, BootstrapHandoffAge, TerminalHandoffAge time.Duration
	// TickJitter is Config.TickJitter (0: DefaultTickJitter, negative:
	// lockstep ticks); the jitter is seeded with Seed.
	TickJitter time.Duration
	// TraceLosses turns the loss tracer on (Network.TraceLosses): every
	// lost first packet and reply is given a cause, counted in
	// Result.LateLosses and Result.SteadyLosses.
	TraceLosses bool
	// ConvergeLimit bounds the wait for convergence; 0 means 5 minutes.
	ConvergeLimit time.Duration
	// Window is the steady-state window for control traffic and delivery;
	// 0 means 60 s (one reference wakeup period, twelve bootstrap
	// periods). It starts once every node's fast bootstraps after the cold
	// start are over (Network.BootstrapsSettled), or Window after
	// convergence if they never are: the frames of the fast rounds belong
	// to the cold start and are counted there (Result.ColdStartControl).
	Window time.Duration
	// Recovery is how long delivery is followed after each failure; 0
	// means 60 s.
	Recovery time.Duration
	// Progress, if set, is called between probe rounds.
	Progress func(p Progress)
}

// Progress describes a running Experiment.
type Progress struct {
	Phase   string
	Virtual time.Duration
	Stats   Stats
}

// Summary is the distribution of a sample.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean"`
	P50  float64 `json:"p50"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
}

// Summarize returns the mean, median, 99th percentile (nearest rank) and
// maximum of xs; xs is sorted in place.
func Summarize(xs []float64) Summary {
	if len(xs) == 0 {
		return Summary{}
	}
	slices.Sort(xs)
	sum := 0.0
	for _, x := range xs {
		sum += x
	}
	rank := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(xs)))) - 1
		return xs[max(0, min(i, len(xs)-1))]
	}
	return Summary{N: len(xs), Mean: sum / float64(len(xs)), P50: rank(0.5), P99: rank(0.99), Max: xs[len(xs)-1]}
}

// Rate is a per-node, per-second rate over the nodes.
type Rate struct {
	FramesMean float64 `json:"frames_mean"`
	FramesMax  float64 `json:"frames_max"`
	BytesMean  float64 `json:"bytes_mean"`
	BytesMax   float64 `json:"bytes_max"`
}

// Point is one probe round during recovery.
type Point struct {
	// T is the round's start, seconds after the failure.
	T float64 `json:"t"`
	// Ratio is the share of eligible pairs whose request and reply both
	// arrived.
	Ratio float64 `json:"ratio"`
	Pairs int     `json:"pairs"`
}

// Recovery follows delivery after one failure.
type Recovery struct {
	What string `json:"what"`
	// Pairs excluded because the failure cut them apart.
	CutOff int     `json:"pairs_cut_off"`
	Series []Point `json:"series"`
	Min    float64 `json:"min_ratio"`
	// Seconds99 is the start of the first round from which every round
	// delivers ≥ 99 % (0 if delivery never fell below); -1 if never.
	Seconds99 float64 `json:"seconds_to_99"`
	// Seconds100 is the same for a round with 100 %, -1 if none.
	Seconds100 float64 `json:"seconds_to_first_100"`
	// TreeSeconds is the start of the first round at which the spanning
	// tree had converged again (Network.TreeConverged), -1 if none.
	TreeSeconds float64 `json:"tree_converged_s"`
	// Losses counts, with Experiment.TraceLosses, the lost requests and
	// replies of all rounds by cause.
	Losses Losses `json:"losses,omitempty"`
}

// Result holds every figure of an Experiment.
type Result struct {
	Nodes        int `json:"nodes"`
	Links        int `json:"links"`
	LinksDropped int `json:"links_dropped_port_cap"`
	Largest      int `json:"largest_component"`
	// ShortestMean and Diameter are over the sampled pairs' shortest
	// paths on the graph as simulated (after the port cap).
	ShortestMean float64 `json:"shortest_path_mean"`
	Diameter     int     `json:"shortest_path_max"`
	Pairs        int     `json:"pairs"`
	Signatures   bool    `json:"signatures"`
	LatencyMs    float64 `json:"latency_ms"`
	// ReferenceTimers and TickJitterMs are the timers the run used.
	ReferenceTimers bool    `json:"reference_timers"`
	TickJitterMs    float64 `json:"tick_jitter_ms"`
	// TreeSeconds is when the spanning tree first converged: checked at
	// the start of each cold-start round and every 100 ms after its probe
	// (so to 0.1 s, or to the probe window's length within one).
	TreeSeconds float64 `json:"tree_converged_s"`
	// ConvergeSeconds is the start of the first probe round (one per
	// virtual second from the cold start, coordinate caches cleared) in
	// which every sampled pair's first packet and reply arrived; -1 if
	// none within the limit. Converge99Seconds is the first with ≥ 99 %.
	ConvergeSeconds   float64 `json:"converged_100_s"`
	Converge99Seconds float64 `json:"converged_99_s"`
	// ColdStart is the share of round trips delivered in each cold-start
	// round (T in seconds from the start).
	ColdStart []Point `json:"cold_start"`
	// LateLosses counts, with Experiment.TraceLosses, the lost requests
	// and replies by cause in the cold-start rounds from the first with
	// ≥ 99 % on: why the last first packets are late.
	LateLosses Losses `json:"late_losses,omitempty"`
	// SteadyLosses counts the same over the steady-state window.
	SteadyLosses Losses `json:"steady_losses,omitempty"`
	// SettledSeconds is when the steady-state window started: the first
	// 100 ms step after convergence at which every node's fast bootstraps
	// were over. SettleTimedOut is set if they were not within a Window of
	// convergence, and the window started then.
	SettledSeconds float64 `json:"settled_s"`
	SettleTimedOut bool    `json:"settle_timed_out,omitempty"`
	// ColdStartControl is the control traffic sent per node per second
	// from the cold start to the window's start.
	ColdStartControl Rate `json:"control_cold_start"`
	// Steady-state delivery over the window's probe rounds.
	SteadyRounds     int     `json:"steady_rounds"`
	SteadyRequests   float64 `json:"steady_first_packet_ratio"`
	SteadyRoundTrips float64 `json:"steady_round_trip_ratio"`
	// Stretch over delivered pairs: hops taken / shortest-path hops.
	StretchSNEK Summary `json:"stretch_first_packet_snek"`
	StretchTree Summary `json:"stretch_reply_tree"`
	// StretchSNEKSamples and StretchTreeSamples are the sorted samples
	// (for plots; not written to JSON).
	StretchSNEKSamples []float64 `json:"-"`
	StretchTreeSamples []float64 `json:"-"`
	// SNEK routing state per node at the end of the window.
	SNEKEntries Summary `json:"snek_entries"`
	SNEKBytes   Summary `json:"snek_bytes"`
	// HeapPerNode is the Go heap in use after a GC at the end of the
	// window divided by the nodes: all of a simulated node's memory, the
	// real Router's tables included.
	HeapPerNode float64 `json:"heap_bytes_per_node"`
	// Control traffic sent per node per second in the window, by frame
	// type and in all.
	Control      map[string]Rate `json:"control"`
	ControlTotal Rate            `json:"control_total"`
	// BootstrapPath is what the window's bootstraps cost each and which
	// way they went, against the shortest path to a successor.
	BootstrapPath  BootstrapPath `json:"bootstrap_path"`
	WakeupScale    float64       `json:"wakeup_scale"`
	WindowSeconds  float64       `json:"window_s"`
	LinkFailure    Recovery      `json:"recovery_link"`
	NodeFailure    Recovery      `json:"recovery_node"`
	VirtualSeconds float64       `json:"virtual_s"`
	Events         uint64        `json:"events"`
	Frames         uint64        `json:"frames"`
}

const (
	treeStep     = 100 * time.Millisecond
	probeRound   = 200 * time.Millisecond
	recoverEvery = 500 * time.Millisecond
	// successorSamples bounds the nodes whose shortest path to their
	// successor BootstrapPath averages: a breadth-first search each.
	successorSamples = 200
)

// Run runs the experiment.
func (x Experiment) Run() (*Result, error) {
	if x.Pairs <= 0 {
		x.Pairs = 2000
	}
	if x.Latency <= 0 {
		x.Latency = DefaultLatency
	}
	if x.ConvergeLimit <= 0 {
		x.ConvergeLimit = 5 * time.Minute
	}
	if x.Window <= 0 {
		x.Window = time.Minute
	}
	if x.Recovery <= 0 {
		x.Recovery = time.Minute
	}
	window := max(probeRound, 40*x.Latency)
	progress := func(net *Network, phase string) {
		if x.Progress != nil {
			x.Progress(Progress{Phase: phase, Virtual: net.Elapsed(), Stats: net.Stats()})
		}
	}
	g, dropped := x.Graph.CapDegree(int(router.MaxPort))
	if x.TickJitter == 0 {
		x.TickJitter = DefaultTickJitter
	}
	res := &Result{Nodes: g.N(), Links: len(g.Edges), LinksDropped: dropped, Signatures: x.Signatures,
		LatencyMs: float64(x.Latency) / float64(time.Millisecond), WakeupScale: 1,
		ReferenceTimers: x.ReferenceTimers, TickJitterMs: max(0, float64(x.TickJitter)/float64(time.Millisecond))}
	opts := router.Options{InsecureSkipSignatures: !x.Signatures, ReferenceTimers: x.ReferenceTimers,
		WakeupRefresh: x.WakeupRefresh, FastBootstrapWindow: x.FastBootstrapWindow,
		BootstrapHandoffAge: x.BootstrapHandoffAge, TerminalHandoffAge: x.TerminalHandoffAge}
	cfg := Config{Router: opts, TickJitter: x.TickJitter, JitterSeed: x.Seed}
	rng := rand.New(rand.NewPCG(x.Seed, 0x5e1ec7))
	if x.WakeupOriginators > 0 && x.WakeupOriginators < g.N() {
		on := make([]bool, g.N())
		for _, i := range rng.Perm(g.N())[:x.WakeupOriginators] {
			on[i] = true
		}
		cfg.NodeOptions = func(i int) router.Options {
			o := opts
			o.DisableWakeups = i < len(on) && !on[i]
			return o
		}
		res.WakeupScale = float64(g.N()) / float64(x.WakeupOriginators)
	}
	net := New(cfg)
	nodes, err := net.Build(g, x.Seed, x.Latency)
	if err != nil {
		return nil, err
	}
	built := sentCounts(nodes)
	if x.TraceLosses {
		net.TraceLosses(true)
		res.LateLosses, res.SteadyLosses = Losses{}, Losses{}
	}
	var largest []*Node
	for _, c := range net.Components() {
		if len(c) > len(largest) {
			largest = c
		}
	}
	res.Largest = len(largest)
	if len(largest) < 2 {
		return nil, fmt.Errorf("largest component has %d nodes", len(largest))
	}
	pairs := make([]Pair, 0, x.Pairs)
	for len(pairs) < x.Pairs {
		a, b := largest[rng.IntN(len(largest))], largest[rng.IntN(len(largest))]
		if a != b {
			pairs = append(pairs, Pair{a, b})
		}
	}
	res.Pairs = len(pairs)
	shortest := make([]int, len(pairs))
	dists := map[*Node][]int{}
	var spSum float64
	for i, p := range pairs {
		d, ok := dists[p.From]
		if !ok {
			d = net.Distances(p.From)
			dists[p.From] = d
		}
		shortest[i] = d[p.To.ID]
		spSum += float64(shortest[i])
		res.Diameter = max(res.Diameter, shortest[i])
	}
	res.ShortestMean = spSum / float64(len(pairs))
	clear(dists)

	// Cold start: one probe round per virtual second.
	res.TreeSeconds, res.ConvergeSeconds, res.Converge99Seconds = -1, -1, -1
	for net.Elapsed() <= x.ConvergeLimit {
		at := net.Elapsed()
		if res.TreeSeconds < 0 && net.TreeConverged() == nil {
			res.TreeSeconds = at.Seconds()
		}
		net.ForgetCoords()
		r := net.Probe(pairs, window)
		ok := roundTrips(r)
		res.ColdStart = append(res.ColdStart, Point{T: at.Seconds(), Ratio: float64(ok) / float64(len(pairs)), Pairs: len(pairs)})
		if res.Converge99Seconds < 0 && float64(ok) >= 0.99*float64(len(pairs)) {
			res.Converge99Seconds = at.Seconds()
		}
		if res.Converge99Seconds >= 0 && r.Losses != nil {
			res.LateLosses.Merge(r.Losses)
		}
		progress(net, fmt.Sprintf("cold start: %d/%d pairs", ok, len(pairs)))
		if ok == len(pairs) {
			res.ConvergeSeconds = at.Seconds()
			break
		}
		// The tree is looked at more finely than the rounds: every
		// treeStep from the end of the probe round until it converged.
		for res.TreeSeconds < 0 && net.Elapsed() < at+time.Second {
			if net.TreeConverged() == nil {
				res.TreeSeconds = net.Elapsed().Seconds()
				break
			}
			net.RunFor(min(treeStep, at+time.Second-net.Elapsed()))
		}
		net.RunUntil(net.cfg.Start.Add(at + time.Second))
	}
	net.TakeDeliveries()

	// The fast bootstrap rounds that follow the cold start's changes are
	// the cold start's cost, not the steady state's.
	for waited := net.Elapsed(); !net.BootstrapsSettled(); {
		if net.Elapsed()-waited >= x.Window {
			res.SettleTimedOut = true
			break
		}
		net.RunFor(treeStep)
	}
	start := net.Elapsed()
	res.SettledSeconds = start.Seconds()
	res.ColdStartControl = controlRate(nodes, built, start.Seconds(), res.WakeupScale, ControlTypes...)

	// Steady state: control traffic in the window, delivery and stretch
	// from a probe round every second.
	before := sentCounts(nodes)
	bootstrapsBefore := net.stats.Bootstraps
	var requests, trips int
	for net.Elapsed()-start < x.Window {
		at := net.Elapsed()
		net.ForgetCoords()
		r := net.Probe(pairs, window)
		res.SteadyRounds++
		if r.Losses != nil {
			res.SteadyLosses.Merge(r.Losses)
		}
		requests += r.Requests
		trips += roundTrips(r)
		for i := range pairs {
			if sp := shortest[i]; sp > 0 {
				if h := r.RequestHops[i]; h >= 0 {
					res.StretchSNEKSamples = append(res.StretchSNEKSamples, float64(h)/float64(sp))
				}
				if h := r.ReplyHops[i]; h >= 0 {
					res.StretchTreeSamples = append(res.StretchTreeSamples, float64(h)/float64(sp))
				}
			}
		}
		progress(net, fmt.Sprintf("steady state: %d/%d pairs", roundTrips(r), len(pairs)))
		net.RunUntil(net.cfg.Start.Add(at + time.Second))
	}
	elapsed := net.Elapsed() - start
	res.WindowSeconds = elapsed.Seconds()
	windowBootstraps := net.stats.Bootstraps.Since(bootstrapsBefore)
	res.SteadyRequests = float64(requests) / float64(res.SteadyRounds*len(pairs))
	res.SteadyRoundTrips = float64(trips) / float64(res.SteadyRounds*len(pairs))
	res.StretchSNEK = Summarize(res.StretchSNEKSamples)
	res.StretchTree = Summarize(res.StretchTreeSamples)
	res.Control = map[string]Rate{}
	for _, t := range ControlTypes {
		res.Control[t.String()] = controlRate(nodes, before, elapsed.Seconds(), res.WakeupScale, t)
	}
	res.ControlTotal = controlRate(nodes, before, elapsed.Seconds(), res.WakeupScale, ControlTypes...)
	entries := make([]float64, 0, len(nodes))
	bytes := make([]float64, 0, len(nodes))
	for _, n := range nodes {
		e := float64(len(n.Router.SNEKEntries(net.Now())))
		entries = append(entries, e)
		bytes = append(bytes, e*SNEKEntryBytes)
	}
	res.SNEKEntries, res.SNEKBytes = Summarize(entries), Summarize(bytes)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res.HeapPerNode = float64(ms.HeapInuse) / float64(len(nodes))
	// After the heap is measured: its breadth-first searches are the
	// simulator's, not the nodes'.
	res.BootstrapPath = net.bootstrapPath(windowBootstraps, largest, successorSamples)

	// Failures: a random link of the largest component, then the node
	// with the most links.
	var links []*Link
	for _, n := range largest {
		for _, l := range n.Links() {
			if l.A == n {
				links = append(links, l)
			}
		}
	}
	cut := links[rng.IntN(len(links))]
	res.LinkFailure = x.recover(net, pairs, window, fmt.Sprintf("link %s–%s removed", cut.A, cut.B), func() { net.Disconnect(cut) }, progress)
	hub := largest[0]
	for _, n := range largest {
		if len(n.Links()) > len(hub.Links()) {
			hub = n
		}
	}
	res.NodeFailure = x.recover(net, pairs, window, fmt.Sprintf("node %s (%d links) removed", hub, len(hub.Links())), func() { net.RemoveNode(hub) }, progress)
	st := net.Stats()
	res.VirtualSeconds, res.Events, res.Frames = net.Elapsed().Seconds(), st.Events, st.Frames
	return res, nil
}

// sentCounts copies every node's counts of frames sent.
func sentCounts(nodes []*Node) [][numSentTypes]SentCount {
	out := make([][numSentTypes]SentCount, len(nodes))
	for i, n := range nodes {
		out[i] = n.sent
	}
	return out
}

// controlRate is the traffic of the given frame types that each node sent
// since the counts in before, per second over seconds: the mean over the
// nodes and the busiest node's. Wakeup broadcasts are scaled by
// wakeupScale (Experiment.WakeupOriginators).
func controlRate(nodes []*Node, before [][numSentTypes]SentCount, seconds, wakeupScale float64, types ...wire.FrameType) Rate {
	var r Rate
	if seconds <= 0 {
		return r
	}
	for i, n := range nodes {
		var fr, by float64
		for _, t := range types {
			k := sentIndex(t)
			f := float64(n.sent[k].Frames - before[i][k].Frames)
			b := float64(n.sent[k].Bytes - before[i][k].Bytes)
			if t == wire.TypeWakeupBroadcast {
				f, b = f*wakeupScale, b*wakeupScale
			}
			fr, by = fr+f/seconds, by+b/seconds
		}
		r.FramesMean += fr / float64(len(nodes))
		r.BytesMean += by / float64(len(nodes))
		r.FramesMax = max(r.FramesMax, fr)
		r.BytesMax = max(r.BytesMax, by)
	}
	return r
}

// roundTrips counts the pairs whose request and reply both arrived.
func roundTrips(r ProbeResult) int {
	n := 0
	for i := range r.RequestHops {
		if r.RequestHops[i] >= 0 && r.ReplyHops[i] >= 0 {
			n++
		}
	}
	return n
}

// recover applies a failure and probes the pairs that still have a path
// every 500 ms for x.Recovery.
func (x Experiment) recover(net *Network, all []Pair, window time.Duration, what string, fail func(), progress func(*Network, string)) Recovery {
	fail()
	rec := Recovery{What: what, Min: 1, Seconds99: 0, Seconds100: -1, TreeSeconds: -1}
	comp := map[*Node]int{}
	for i, c := range net.Components() {
		for _, n := range c {
			comp[n] = i
		}
	}
	var pairs []Pair
	for _, p := range all {
		ca, okA := comp[p.From]
		cb, okB := comp[p.To]
		if okA && okB && ca == cb {
			pairs = append(pairs, p)
		}
	}
	rec.CutOff = len(all) - len(pairs)
	start := net.Elapsed()
	for net.Elapsed()-start < x.Recovery {
		at := net.Elapsed() - start
		if rec.TreeSeconds < 0 && net.TreeConverged() == nil {
			rec.TreeSeconds = at.Seconds()
		}
		net.ForgetCoords()
		r := net.Probe(pairs, window)
		if r.Losses != nil {
			if rec.Losses == nil {
				rec.Losses = Losses{}
			}
			rec.Losses.Merge(r.Losses)
		}
		ratio := float64(roundTrips(r)) / float64(max(1, len(pairs)))
		rec.Series = append(rec.Series, Point{T: at.Seconds(), Ratio: ratio, Pairs: len(pairs)})
		rec.Min = min(rec.Min, ratio)
		if ratio < 0.99 {
			rec.Seconds99 = -1
		} else if rec.Seconds99 < 0 {
			rec.Seconds99 = at.Seconds()
		}
		if ratio == 1 && rec.Seconds100 < 0 {
			rec.Seconds100 = at.Seconds()
		}
		progress(net, fmt.Sprintf("%s: %.1f%% after %v", what, 100*ratio, at))
		net.RunUntil(net.cfg.Start.Add(start + at + recoverEvery))
	}
	net.TakeDeliveries()
	return rec
}
