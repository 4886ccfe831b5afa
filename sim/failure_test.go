package sim

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
)

// convergedGrid builds an 8×8 grid and waits until every first packet and
// reply gets through.
func convergedGrid(t *testing.T) (*Network, []*Node) {
	t.Helper()
	net := New(Config{})
	nodes, err := net.Build(Grid(8, 8), 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	waitTree(t, net, time.Minute)
	probeUntilOK(t, net, net.AllPairs, 2*time.Minute)
	return net, nodes
}

// rootOf returns the node that is the root of node's tree.
func rootOf(net *Network, node *Node) *Node {
	key := node.Router.Root().Key
	for _, n := range net.Nodes() {
		if n.Key == key {
			return n
		}
	}
	return nil
}

// recoverAll probes every virtual second after a failure until all pairs get
// through again, and logs how long that took.
func recoverAll(t *testing.T, net *Network, what string, pairs func() []Pair) time.Duration {
	t.Helper()
	took, res := probeUntilOK(t, net, pairs, 3*time.Minute)
	t.Logf("%s: 100%% delivery again %v later (%v)", what, took, res)
	return took
}

func TestRecoveryAfterLinkRemoval(t *testing.T) {
	t.Parallel()
	net, nodes := convergedGrid(t)
	// A link every path into one of the root's subtrees uses: from the
	// root to one of its children.
	root := rootOf(net, nodes[0])
	var cut *Link
	for _, n := range nodes {
		if n.Router.Parent() != router.NoPort && rootOf(net, n) == root {
			if l := n.LinkOn(n.Router.Parent()); l != nil {
				if far, _ := l.Far(n); far == root {
					cut = l
					break
				}
			}
		}
	}
	if cut == nil {
		t.Fatal("root has no children")
	}
	net.Disconnect(cut)
	recoverAll(t, net, "tree link next to the root removed", net.AllPairs)
	if err := net.TreeConverged(); err != nil {
		t.Error(err)
	}
}

func TestRecoveryAfterRootRemoval(t *testing.T) {
	t.Parallel()
	net, nodes := convergedGrid(t)
	root := rootOf(net, nodes[0])
	net.RemoveNode(root)
	recoverAll(t, net, "root "+root.Name+" removed", net.AllPairs)
	if err := net.TreeConverged(); err != nil {
		t.Error(err)
	}
	if newRoot := rootOf(net, nodes[0]); newRoot == root || newRoot == nil {
		t.Errorf("root is still %v", newRoot)
	}
}

func TestRecoveryAfterSplitAndRejoin(t *testing.T) {
	t.Parallel()
	net, nodes := convergedGrid(t)
	// Cut the grid between columns 3 and 4.
	type cut struct{ a, b *Node }
	var cuts []cut
	for y := 0; y < 8; y++ {
		a, b := nodes[y*8+3], nodes[y*8+4]
		l := net.LinkBetween(a, b)
		if l == nil {
			t.Fatalf("no link %s–%s", a, b)
		}
		net.Disconnect(l)
		cuts = append(cuts, cut{a, b})
	}
	if comps := net.Components(); len(comps) != 2 {
		t.Fatalf("%d components after the split, want 2", len(comps))
	}
	withinHalves := func() []Pair {
		var out []Pair
		for _, comp := range net.Components() {
			for _, a := range comp {
				for _, b := range comp {
					if a != b {
						out = append(out, Pair{a, b})
					}
				}
			}
		}
		return out
	}
	recoverAll(t, net, "split in two halves (pairs within each half)", withinHalves)
	if err := net.TreeConverged(); err != nil {
		t.Error(err)
	}
	for _, c := range cuts {
		if _, err := net.Connect(c.a, c.b, 0); err != nil {
			t.Fatal(err)
		}
	}
	recoverAll(t, net, "halves joined again (all pairs)", net.AllPairs)
	if err := net.TreeConverged(); err != nil {
		t.Error(err)
	}
}
