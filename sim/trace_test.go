package sim

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

// lossTotal is the number of losses counted.
func lossTotal(l Losses) int {
	n := 0
	for _, v := range l {
		n += v
	}
	return n
}

// TestTraceLossesColdStart probes a line before its tree exists: every
// lost request and reply gets exactly one cause, and none is "in flight"
// since the window is far longer than the paths and no link goes down.
// Once the network has converged nothing is lost and nothing is counted.
func TestTraceLossesColdStart(t *testing.T) {
	net := New(Config{})
	nodes, err := net.Build(Line(8), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	net.TraceLosses(true)
	pairs := []Pair{{nodes[0], nodes[7]}, {nodes[7], nodes[0]}, {nodes[2], nodes[5]}, {nodes[6], nodes[1]}}
	net.RunFor(time.Millisecond)
	r := net.Probe(pairs, probeWindow)
	lost := (r.Pairs - r.Requests) + (r.Requests - r.Replies)
	if lost == 0 {
		t.Fatalf("nothing lost 1 ms after a cold start: %v", r)
	}
	t.Logf("%v: losses %v", r, r.Losses)
	if got := lossTotal(r.Losses); got != lost {
		t.Errorf("%d losses attributed, %d lost: %v", got, lost, r.Losses)
	}
	for k := range r.Losses {
		if strings.Contains(k, LossInFlight) {
			t.Errorf("cause %q with a %v window on an idle line", k, probeWindow)
		}
	}
	if len(net.fates) != 0 {
		t.Errorf("%d probe records kept after the round", len(net.fates))
	}
	net.RunFor(20 * time.Second)
	net.ForgetCoords()
	if r := net.Probe(pairs, probeWindow); !r.OK() || len(r.Losses) != 0 {
		t.Errorf("converged line: %v, losses %v", r, r.Losses)
	}
}

// TestTraceLossesInFlight: a window shorter than one link's latency
// leaves every request on its link, which is what the tracer must say.
func TestTraceLossesInFlight(t *testing.T) {
	net := New(Config{Latency: 50 * time.Millisecond})
	nodes, err := net.Build(Line(4), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	net.RunFor(30 * time.Second)
	net.TraceLosses(true)
	net.ForgetCoords()
	r := net.Probe([]Pair{{nodes[0], nodes[3]}, {nodes[3], nodes[0]}}, 10*time.Millisecond)
	if want := (Losses{"request " + LossInFlight: 2}); !maps.Equal(r.Losses, want) {
		t.Errorf("losses %v, want %v", r.Losses, want)
	}
}

// TestLossCause checks the classification of a probe's last hop: a drop
// names the Router's reason, a delivery at the destination's successor
// without a route to it is a successor dead end, anywhere else a dead end
// elsewhere, and frames that had come by tree say so. Nothing has run, so
// no node holds a route to the destination.
func TestLossCause(t *testing.T) {
	net := New(Config{})
	nodes, err := net.Build(Line(6), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	keys := net.liveKeys()
	byKey := slices.Clone(nodes)
	slices.SortFunc(byKey, func(a, b *Node) int { return a.Key.Compare(b.Key) })
	to, succ, other := byKey[2], byKey[3], byKey[5]
	for _, c := range []struct {
		fate *probeFate
		want string
	}{
		{nil, LossInFlight},
		{&probeFate{at: succ}, LossInFlight},
		{&probeFate{at: other, dropped: true, reason: "watermark"}, "drop:watermark"},
		{&probeFate{at: succ, delivered: true}, LossDeadEndSuccessor + " (bootstrap ends nowhere)"},
		{&probeFate{at: other, delivered: true}, LossDeadEndElsewhere},
		{&probeFate{at: other, delivered: true, byTree: true}, "tree→" + LossDeadEndElsewhere},
		{&probeFate{at: other, dropped: true, reason: "ingress", byTree: true, fellBack: true}, "tree_fallback→drop:ingress"},
	} {
		if got := net.lossCause(c.fate, to, keys); got != c.want {
			t.Errorf("%+v: cause %q, want %q", c.fate, got, c.want)
		}
	}
}

// TestTraceLossesInRecovery: with the tracer on, the rounds after each
// failure of an Experiment have their losses counted too, at least one
// cause for every pair whose round trip failed (a pair may lose both its
// request and its reply) and none while every round delivered.
func TestTraceLossesInRecovery(t *testing.T) {
	res, err := Experiment{Graph: ScaleFree(80, 2, 5), Seed: 3, Pairs: 300, TraceLosses: true,
		Window: 10 * time.Second, Recovery: 20 * time.Second}.Run()
	if err != nil {
		t.Fatal(err)
	}
	for _, rec := range []Recovery{res.LinkFailure, res.NodeFailure} {
		lost := 0
		for _, p := range rec.Series {
			lost += p.Pairs - int(p.Ratio*float64(p.Pairs)+0.5)
		}
		got := lossTotal(rec.Losses)
		t.Logf("%s: %d round trips lost, causes %v", rec.What, lost, rec.Losses)
		if got < lost || (lost == 0) != (got == 0) {
			t.Errorf("%s: %d round trips lost, %d losses attributed", rec.What, lost, got)
		}
	}
	if lossTotal(res.NodeFailure.Losses) == 0 {
		t.Error("removing the best-connected node of a scale-free graph lost nothing: the test shows nothing")
	}
}
