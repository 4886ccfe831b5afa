package router

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// cloneEvents returns the EventKeyClone events in acts.
func cloneEvents(acts []Action) []Event {
	var out []Event
	for _, a := range ofKind(acts, ActionEvent) {
		if a.Event.Kind == EventKeyClone {
			out = append(out, a.Event)
		}
	}
	return out
}

// tickClones ticks r every second from from to to (inclusive) and returns
// the clone events with the time each came.
func tickClones(t *testing.T, r *Router, from, to time.Time) (evs []Event, at []time.Time) {
	t.Helper()
	for now := from; !now.After(to); now = now.Add(time.Second) {
		acts := own(r.Tick(now))
		mustNoDisconnect(t, acts)
		for _, e := range cloneEvents(acts) {
			evs, at = append(evs, e), append(at, now)
		}
	}
	return evs, at
}

// Announcements that prove another node signs with our key are reported
// once per peering, KeyCloneConfirm after they arrive, and the peer stays
// (tickClones fails on a disconnect).
func TestKeyCloneReportedOncePerPeering(t *testing.T) {
	cases := []struct {
		name string
		// setup returns a router and the port the clone's announcement
		// comes from, with that announcement.
		setup func(t *testing.T) (*Router, Port, *wire.TreeAnnouncement)
	}{
		{"root sequence we never issued", func(t *testing.T) (*Router, Port, *wire.TreeAnnouncement) {
			// A is root at sequence 1; B repeats root A at sequence 5.
			r := New(privA, Options{})
			r.PeerUp(t0, 1, keyB, PeerRemote)
			return r, 1, rootedAt(privA, 5, 1).Signed(privB, 1)
		}},
		{"our hop towards a peer we do not have there", func(t *testing.T) (*Router, Port, *wire.TreeAnnouncement) {
			// The clone of A, also C's child, signed for its child D on
			// its port 2; D reached B. Our port 2 is B, not D.
			r := childOfC(t, Options{})
			return r, 2, rootedAt(privC, 1, 5).Signed(privA, 2).Signed(privD, 3).Signed(privB, 1)
		}},
		{"our hop on a port we cannot have", func(t *testing.T) (*Router, Port, *wire.TreeAnnouncement) {
			r := childOfC(t, Options{})
			return r, 2, rootedAt(privC, 1, 5).Signed(privA, uint64(MaxPort)+1).Signed(privB, 1)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, port, ann := tc.setup(t)
			start := t0.Add(time.Second)
			acts := feed(t, r, start, port, ann)
			mustNoDisconnect(t, acts)
			if evs := cloneEvents(acts); len(evs) != 0 {
				t.Fatalf("reported at once, before KeyCloneConfirm: %v", evs)
			}
			evs, at := tickClones(t, r, start, start.Add(3*KeyCloneConfirm))
			if len(evs) != 1 {
				t.Fatalf("%d clone events, want 1: %v", len(evs), evs)
			}
			if r.peers[port] == nil {
				t.Fatal("the peer that showed the clone was dropped")
			}
			if e := evs[0]; e.Port != port || e.Key != r.peers[port].key || e.Root != ann.Root {
				t.Errorf("event %v, want port %d key %s root %v", e, port, r.peers[port].key, ann.Root)
			}
			if d := at[0].Sub(start); d != KeyCloneConfirm {
				t.Errorf("reported after %s, want %s", d, KeyCloneConfirm)
			}
			// The same announcement again on the same peering: no second
			// report.
			mustNoDisconnect(t, feed(t, r, at[0].Add(time.Second), port, ann))
			if evs, _ := tickClones(t, r, at[0].Add(time.Second), at[0].Add(3*KeyCloneConfirm)); len(evs) != 0 {
				t.Errorf("reported again on the same peering: %v", evs)
			}
			// A new peering on the port is a new link to name.
			later := at[0].Add(4 * KeyCloneConfirm)
			r.PeerDown(later, port)
			r.PeerUp(later, port, ann.Hops[len(ann.Hops)-1].Key, PeerRemote)
			mustNoDisconnect(t, feed(t, r, later, port, ann))
			if evs, _ := tickClones(t, r, later, later.Add(KeyCloneConfirm)); len(evs) != 1 {
				t.Errorf("%d clone events on the new peering, want 1", len(evs))
			}
		})
	}
}

// Our own announcements coming back round a loop, and copies that vanish
// within KeyCloneConfirm (what a restart leaves in the network), are not a
// clone.
func TestKeyCloneNotReportedForLoops(t *testing.T) {
	t.Run("our root announcement round a loop", func(t *testing.T) {
		// A is root (sequence 1) with B on port 1 and D on port 2; B and
		// D are linked. What A sent B comes back from B and from D.
		r := New(privA, Options{})
		r.PeerUp(t0, 1, keyB, PeerRemote)
		r.PeerUp(t0, 2, keyD, PeerRemote)
		mustNoDisconnect(t, feed(t, r, t0, 1, rootedAt(privA, 1, 1).Signed(privB, 7)))
		mustNoDisconnect(t, feed(t, r, t0, 2, rootedAt(privA, 1, 1).Signed(privB, 3).Signed(privD, 4)))
		if evs, _ := tickClones(t, r, t0, t0.Add(3*KeyCloneConfirm)); len(evs) != 0 {
			t.Errorf("loop reported as a clone: %v", evs)
		}
	})
	t.Run("our hop as child round a loop", func(t *testing.T) {
		// childOfC has had B echo what A signed for it; D on port 3 is
		// linked to B and sends it on.
		r := childOfC(t, Options{})
		r.PeerUp(t0, 3, keyD, PeerRemote)
		mustNoDisconnect(t, feed(t, r, t0, 3, rootedAt(privC, 1, 1).Signed(privA, 2).Signed(privB, 5).Signed(privD, 6)))
		if evs, _ := tickClones(t, r, t0, t0.Add(3*KeyCloneConfirm)); len(evs) != 0 {
			t.Errorf("loop reported as a clone: %v", evs)
		}
	})
	t.Run("a stale copy replaced in time", func(t *testing.T) {
		r := New(privA, Options{})
		r.PeerUp(t0, 1, keyB, PeerRemote)
		mustNoDisconnect(t, feed(t, r, t0, 1, rootedAt(privA, 5, 1).Signed(privB, 1)))
		if evs, _ := tickClones(t, r, t0, t0.Add(KeyCloneConfirm/2)); len(evs) != 0 {
			t.Fatalf("reported before KeyCloneConfirm: %v", evs)
		}
		// B learns of another tree.
		mustNoDisconnect(t, feed(t, r, t0.Add(KeyCloneConfirm/2), 1, rootedAt(privC, 1, 4).Signed(privB, 1)))
		if evs, _ := tickClones(t, r, t0.Add(KeyCloneConfirm/2), t0.Add(3*KeyCloneConfirm)); len(evs) != 0 {
			t.Errorf("a copy gone before KeyCloneConfirm reported: %v", evs)
		}
	})
}
