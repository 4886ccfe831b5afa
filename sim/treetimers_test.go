package sim

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestTunedTreeConvergesSooner: from a cold start, the tuned routers (which
// ignore a parent's identical repeat and follow a parent that moved instead
// of flapping for ReparentWait) form the tree sooner than the reference's
// rules, on the same graph, keys and clocks. The announcements it costs are
// logged. Virtual time: the result is deterministic.
func TestTunedTreeConvergesSooner(t *testing.T) {
	g := ScaleFree(400, 2, 7)
	converge := func(ref bool) (time.Duration, uint64) {
		net := New(Config{Router: router.Options{InsecureSkipSignatures: true, ReferenceTimers: ref, DisableWakeups: true}})
		nodes, err := net.Build(g, 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for net.TreeConverged() != nil {
			if net.Elapsed() > 30*time.Second {
				t.Fatalf("reference %v: no tree after 30 s: %v", ref, net.TreeConverged())
			}
			net.RunFor(50 * time.Millisecond)
		}
		var ann uint64
		for _, n := range nodes {
			ann += n.Sent(wire.TypeTreeAnnouncement).Frames
		}
		return net.Elapsed(), ann
	}
	refAt, refAnn := converge(true)
	at, ann := converge(false)
	t.Logf("tree converged: reference rules %v (%d announcements), tuned %v (%d announcements)", refAt, refAnn, at, ann)
	if at >= refAt {
		t.Errorf("tuned tree converged at %v, the reference's rules at %v", at, refAt)
	}
}
