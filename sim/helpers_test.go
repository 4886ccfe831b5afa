package sim

import (
	"math/rand/v2"
	"testing"
	"time"
)

// probeWindow is how long a probe round waits for requests and again for
// replies: far more than any path here takes at 1 ms per hop.
const probeWindow = 250 * time.Millisecond

// waitTree runs the network in 100 ms steps until the tree has converged,
// for at most limit, and returns the virtual time that took.
func waitTree(t *testing.T, net *Network, limit time.Duration) time.Duration {
	t.Helper()
	start := net.Elapsed()
	var err error
	for net.Elapsed()-start <= limit {
		if err = net.TreeConverged(); err == nil {
			return net.Elapsed() - start
		}
		net.RunFor(100 * time.Millisecond)
	}
	t.Fatalf("tree not converged after %v: %v", limit, err)
	return 0
}

// probeUntilOK probes pairs at every whole virtual second until a round
// delivers every request and reply, for at most limit. Coordinate caches
// are cleared before each round, so every request is a first packet (by
// SNEK) and every reply goes by tree (the request cached the requester's
// coordinates), except replies to a root, whose coordinates are empty. It
// returns the virtual time from the call to the start of the first fully
// successful round, and that round's result, whose routing it checks.
func probeUntilOK(t *testing.T, net *Network, pairs func() []Pair, limit time.Duration) (time.Duration, ProbeResult) {
	t.Helper()
	start := net.Elapsed()
	var res ProbeResult
	for {
		at := net.Elapsed() - start
		net.ForgetCoords()
		ps := pairs()
		res = net.Probe(ps, probeWindow)
		if res.OK() {
			checkRouting(t, ps, res)
			return at, res
		}
		if at > limit {
			t.Fatalf("after %v: %v; first failures %v", limit, res, firstPairs(res.Failed, 5))
		}
		// Next whole second.
		next := (net.Elapsed()/time.Second + 1) * time.Second
		net.RunFor(next - net.Elapsed())
	}
}

func firstPairs(p []Pair, n int) []Pair { return p[:min(n, len(p))] }

// samplePairs draws n ordered pairs of distinct live nodes, deterministically.
func samplePairs(net *Network, n int, seed uint64) []Pair {
	var live []*Node
	for _, node := range net.Nodes() {
		if !node.Removed() {
			live = append(live, node)
		}
	}
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]Pair, 0, n)
	for len(out) < n {
		a, b := live[rng.IntN(len(live))], live[rng.IntN(len(live))]
		if a != b {
			out = append(out, Pair{a, b})
		}
	}
	return out
}

// checkRouting requires a probe round's requests to have gone by SNEK and
// its replies by tree, except replies to a root.
func checkRouting(t *testing.T, pairs []Pair, res ProbeResult) {
	t.Helper()
	toRoot := 0
	for _, p := range pairs {
		if IsRoot(p.From) {
			toRoot++
		}
	}
	if res.RequestsByTree != 0 || res.RepliesByTree != len(pairs)-toRoot {
		t.Errorf("%v: want every request by SNEK and %d replies by tree (%d replies go to the root)", res, len(pairs)-toRoot, toRoot)
	}
}
