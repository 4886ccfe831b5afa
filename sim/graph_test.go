package sim

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

func TestParseGraph(t *testing.T) {
	g, err := ParseGraph(strings.NewReader("a b c\n\nb a\nc c\nd  e\nc a b\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(g.Names, ","); got != "a,b,c,d,e" {
		t.Errorf("names %s", got)
	}
	// a-b, b-c, d-e, c-a: "b a" repeats a-b, "c c" is a self-link, "c a b"
	// adds c-a and repeats a-b.
	want := [][2]int{{0, 1}, {1, 2}, {3, 4}, {0, 2}}
	if len(g.Edges) != len(want) {
		t.Fatalf("edges %v, want %v", g.Edges, want)
	}
	for i := range want {
		if g.Edges[i] != want[i] {
			t.Fatalf("edges %v, want %v", g.Edges, want)
		}
	}
}

func TestGenerators(t *testing.T) {
	check := func(name string, g Graph, nodes, links int) {
		t.Helper()
		if g.N() != nodes || len(g.Edges) != links {
			t.Errorf("%s: %d nodes %d links, want %d and %d", name, g.N(), len(g.Edges), nodes, links)
		}
		seen := map[[2]int]bool{}
		for _, e := range g.Edges {
			k := [2]int{min(e[0], e[1]), max(e[0], e[1])}
			if e[0] == e[1] || seen[k] || e[0] < 0 || e[1] >= g.N() {
				t.Errorf("%s: bad or repeated link %v", name, e)
			}
			seen[k] = true
		}
	}
	check("line", Line(20), 20, 19)
	check("ring", Ring(30), 30, 30)
	check("grid", Grid(8, 8), 64, 112)
	sf := ScaleFree(500, 2, 42)
	check("scale-free", sf, 500, 3+497*2)
	again := ScaleFree(500, 2, 42)
	for i := range sf.Edges {
		if sf.Edges[i] != again.Edges[i] {
			t.Fatal("scale-free graph differs for the same seed")
		}
	}
	degree := make([]int, sf.N())
	for _, e := range sf.Edges {
		degree[e[0]]++
		degree[e[1]]++
	}
	top := 0
	for _, d := range degree {
		top = max(top, d)
	}
	// Preferential attachment grows hubs far above the mean degree of 4.
	if top < 20 {
		t.Errorf("highest degree %d: no hubs", top)
	}
}

// TestDeterministic: the same topology, seed and calls give the same run.
func TestDeterministic(t *testing.T) {
	run := func() (Stats, []Delivery) {
		net := New(Config{})
		nodes, err := net.Build(Ring(12), 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		net.RunFor(15 * time.Second)
		net.Send(nodes[0], nodes[6].Key, []byte("hi"))
		net.RunFor(time.Second)
		return net.Stats(), net.Deliveries()
	}
	s1, d1 := run()
	s2, d2 := run()
	if s1 != s2 || len(d1) != 1 || len(d2) != 1 || !d1[0].At.Equal(d2[0].At) || d1[0].Node.ID != d2[0].Node.ID {
		t.Errorf("runs differ: %+v %v / %+v %v", s1, d1, s2, d2)
	}
}

func TestQueueBound(t *testing.T) {
	net := New(Config{MaxQueued: 3})
	if _, err := net.Build(Line(3), 1, 0); err != nil {
		t.Fatal(err)
	}
	net.RunFor(10 * time.Second)
	if net.Stats().QueueDrops == 0 {
		t.Error("no frames dropped with at most 3 in flight")
	}
	if net.queue.frames > 3 {
		t.Errorf("%d frames in flight", net.queue.frames)
	}
}

func TestFramesOnARemovedLinkAreLost(t *testing.T) {
	net := New(Config{})
	nodes, err := net.Build(Line(3), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	net.RunFor(20 * time.Second)
	lost := net.Stats().FramesLost
	net.Send(nodes[0], nodes[2].Key, []byte("x"))
	net.Disconnect(net.LinkBetween(nodes[0], nodes[1]))
	net.RunFor(time.Second)
	if net.Stats().FramesLost != lost+1 || len(net.Deliveries()) != 0 {
		t.Errorf("frames lost %d (was %d), deliveries %v", net.Stats().FramesLost, lost, net.Deliveries())
	}
}

// TestSharedGraph runs the simulator on a real topology from
// ../shared/graphs (the dn42 BGP graph, 261 nodes), skipping when the
// shared files are not beside the checkout.
func TestSharedGraph(t *testing.T) {
	if testing.Short() {
		t.Skip("large topology skipped in -short mode")
	}
	path := filepath.Join(testhelp.ModuleRoot(t), "..", "shared", "graphs", "dn42.txt")
	if _, err := os.Stat(path); err != nil {
		t.Skipf("skipping: the shared graphs are not beside the checkout: %v", err)
	}
	g, err := LoadGraph(path)
	if err != nil {
		t.Fatal(err)
	}
	if g.N() != 261 || len(g.Edges) != 336 {
		t.Fatalf("dn42: %d nodes, %d links; the README says 261 and 336", g.N(), len(g.Edges))
	}
	net := New(Config{Router: router.Options{InsecureSkipSignatures: true}})
	if _, err := net.Build(g, 1, 0); err != nil {
		t.Fatal(err)
	}
	comps := net.Components()
	tree := waitTree(t, net, time.Minute)
	largest := comps[0]
	for _, c := range comps {
		if len(c) > len(largest) {
			largest = c
		}
	}
	inLargest := map[*Node]bool{}
	for _, n := range largest {
		inLargest[n] = true
	}
	var pairs []Pair
	for _, p := range samplePairs(net, 4000, 3) {
		if inLargest[p.From] && inLargest[p.To] && len(pairs) < 2000 {
			pairs = append(pairs, p)
		}
	}
	took, res := probeUntilOK(t, net, func() []Pair { return pairs }, 2*time.Minute)
	t.Logf("dn42: %d components (largest %d nodes); tree after %v, 100%% of %d pairs %v later; %v",
		len(comps), len(largest), tree, len(pairs), took, res)
}

// TestTickJitter: by default each tick comes up to DefaultTickJitter late,
// so a node's maintenance grid drifts; the same seed gives the same run,
// another seed another one; SyncedClocks and a negative jitter tick in
// lockstep.
func TestTickJitter(t *testing.T) {
	ticks := func(cfg Config) []time.Duration {
		var at []time.Duration
		net := New(cfg)
		nodes, err := net.Build(Line(3), 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		// The middle node's bootstraps (it is never the root of a line of
		// three with these keys, or the test says so) mark its ticks.
		mid := nodes[1]
		last := mid.Sent(wire.TypeBootstrap).Frames
		for net.Elapsed() < 40*time.Second {
			net.Step()
			if n := mid.Sent(wire.TypeBootstrap).Frames; n != last {
				last = n
				at = append(at, net.Elapsed())
			}
		}
		if len(at) < 4 {
			t.Fatalf("middle node bootstrapped %d times in 40 s", len(at))
		}
		return at
	}
	offGrid := func(at []time.Duration) int {
		n := 0
		for _, d := range at {
			if d%time.Second != at[0]%time.Second {
				n++
			}
		}
		return n
	}
	lockstep := ticks(Config{TickJitter: -1})
	if n := offGrid(lockstep); n != 0 {
		t.Errorf("lockstep: %d of %d bootstraps off the 1 s grid: %v", n, len(lockstep), lockstep)
	}
	if n := offGrid(ticks(Config{SyncedClocks: true})); n != 0 {
		t.Errorf("synced clocks: %d bootstraps off the grid", n)
	}
	a, b := ticks(Config{JitterSeed: 1}), ticks(Config{JitterSeed: 1})
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different runs:\n%v\n%v", a, b)
	}
	if n := offGrid(a); n < len(a)/2 {
		t.Errorf("jittered: only %d of %d bootstraps off the first one's grid: %v", n, len(a), a)
	}
	for i := 1; i < len(a); i++ {
		// Ticks are 1 s apart plus up to 20 ms; bootstraps whole ticks.
		gap := a[i] - a[i-1]
		if r := gap % time.Second; gap < time.Second || r >= time.Duration(gap/time.Second)*DefaultTickJitter {
			t.Errorf("bootstraps %v apart: not whole seconds plus at most %v a tick", gap, DefaultTickJitter)
		}
	}
	if c := ticks(Config{JitterSeed: 2}); slices.Equal(a, c) {
		t.Errorf("seeds 1 and 2 gave the same ticks %v", a)
	}
}
