package sim

import (
	"math"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// bootstrapFrame encodes a bootstrap from originator, as a Router would
// put it on a link.
func bootstrapFrame(t *testing.T, originator wire.PublicKey) []byte {
	t.Helper()
	b, err := (&wire.Bootstrap{Originator: originator, Watermark: wire.StartWatermark}).Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBootstrapHopsClasses: in a triangle the root is both other nodes'
// parent, so a frame to the root goes up, one from it goes down, and one
// between the two children goes across; only a frame its originator
// sends counts as a bootstrap originated.
func TestBootstrapHopsClasses(t *testing.T) {
	net, nodes := converged(t, Graph{Names: numbered(3), Edges: [][2]int{{0, 1}, {1, 2}, {0, 2}}})
	var root *Node
	var kids []*Node
	for _, n := range nodes {
		if IsRoot(n) {
			root = n
		} else {
			kids = append(kids, n)
		}
	}
	if root == nil || len(kids) != 2 {
		t.Fatalf("root %v, others %v", root, kids)
	}
	a, b := kids[0], kids[1]
	for _, k := range kids {
		if far, _ := k.LinkOn(k.Router.Parent()).Far(k); far != root {
			t.Fatalf("%s's parent is %s, not the root %s", k, far, root)
		}
	}
	var h BootstrapHops
	h.count(a, net.LinkBetween(a, root), bootstrapFrame(t, a.Key))
	h.count(root, net.LinkBetween(root, b), bootstrapFrame(t, a.Key))
	h.count(b, net.LinkBetween(b, a), bootstrapFrame(t, a.Key))
	h.count(a, net.LinkBetween(a, b), bootstrapFrame(t, b.Key))
	if want := (BootstrapHops{Up: 1, Down: 1, Across: 2, Originated: 1}); h != want {
		t.Errorf("counted %+v, want %+v", h, want)
	}
	if d := h.Since(BootstrapHops{Up: 1, Across: 1}); d != (BootstrapHops{Down: 1, Across: 1, Originated: 1}) || d.Frames() != 2 {
		t.Errorf("Since: %+v (%d frames)", d, d.Frames())
	}
}

// TestBootstrapPathOnAStar: every link of a star is a tree link, so no
// bootstrap frame goes across; with the reference's timers each of its
// non-root nodes (the hub and all leaves but one: a star has n+1 nodes)
// originates one bootstrap per 5 s, and a bootstrap crosses one link
// (to or from the hub) or two (leaf to leaf through the hub). A leaf's
// successor is one or two hops away in the same way.
func TestBootstrapPathOnAStar(t *testing.T) {
	const leaves = 8
	net, nodes := convergedWith(t, star(leaves), Config{Router: router.Options{ReferenceTimers: true}})
	net.RunFor(10 * time.Second)
	before := net.Stats().Bootstraps
	net.RunFor(time.Minute)
	h := net.Stats().Bootstraps.Since(before)
	if h.Across != 0 || h.Up == 0 || h.Down == 0 {
		t.Errorf("star: %+v", h)
	}
	// A tick that comes a little earlier after the last bootstrap than the
	// one before it finds 5 s not quite over, so some intervals are 6 s.
	if h.Originated < 10*leaves || h.Originated > 12*leaves {
		t.Errorf("%d bootstraps originated in a minute by %d non-root nodes, want 10 to 12 each", h.Originated, leaves)
	}
	p := net.bootstrapPath(h, nodes, 100)
	if p.Hops < 1 || p.Hops > 2 || math.Abs(p.Up+p.Down-1) > 1e-9 || p.Across != 0 {
		t.Errorf("path %+v", p)
	}
	if p.SuccessorSamples != leaves || p.SuccessorShortest < 1 || p.SuccessorShortest > 2 {
		t.Errorf("successors: %+v", p)
	}
}
