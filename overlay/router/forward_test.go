package router

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

func TestWakeupOnFirstAnnouncementOncePerKey(t *testing.T) {
	r := New(privA, Options{})
	r.PeerUp(t0, 1, keyB, PeerRemote)
	r.PeerUp(t0, 2, keyB, PeerMulticast)
	bAnn := (&wire.TreeAnnouncement{Root: wire.Root{Key: keyB, Seq: 1}})
	acts := feed(t, r, t0, 1, bAnn.Signed(privB, 1))
	w := sends(acts, NoPort, int(wire.TypeWakeupBroadcast))
	if len(w) != 1 || w[0].Port != 1 {
		t.Fatalf("wakeups %v, want one to port 1", w)
	}
	m := decode(t, w[0].Frame).(*wire.WakeupBroadcast)
	p, err := wire.ParseSignedRoot(m.Payload)
	if err != nil || !p.Verify(keyA) || m.HopLimit != wire.WakeupHopLimit || p.Root != (wire.Root{Key: keyA, Seq: 1}) || p.Seq != uint64(t0.UnixMilli()) {
		t.Errorf("wakeup %+v payload %+v", m, p)
	}
	// The second link to B gets none: B has had one.
	if w := sends(feed(t, r, t0, 2, bAnn.Signed(privB, 2)), NoPort, int(wire.TypeWakeupBroadcast)); len(w) != 0 {
		t.Errorf("second wakeup to the same key: %v", w)
	}
	// Only the first announcement of a peering counts.
	if w := sends(feed(t, r, t0, 1, (&wire.TreeAnnouncement{Root: wire.Root{Key: keyB, Seq: 2}}).Signed(privB, 1)), NoPort, int(wire.TypeWakeupBroadcast)); len(w) != 0 {
		t.Errorf("wakeup on a later announcement: %v", w)
	}
	d := New(privA, Options{DisableWakeups: true})
	d.PeerUp(t0, 1, keyB, PeerRemote)
	if w := sends(feed(t, d, t0, 1, bAnn.Signed(privB, 1)), NoPort, int(wire.TypeWakeupBroadcast)); len(w) != 0 {
		t.Errorf("wakeup with wakeups disabled: %v", w)
	}
}

func TestWakeupFlooding(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	r.PeerUp(t0, 3, keyM, PeerRemote) // no announcement: not on the tree
	root := r.Root()
	wake := func(hop uint8, seq uint64) *wire.WakeupBroadcast {
		p := wire.NewSignedRoot(privD, seq, root)
		return &wire.WakeupBroadcast{HopLimit: hop, Source: keyD, Payload: p.Append(nil)}
	}
	// Hop limit 5 → 4: classic flood to every peer but the sender.
	acts := feed(t, r, t0, 2, wake(5, 1000))
	if w := sends(acts, NoPort, int(wire.TypeWakeupBroadcast)); len(w) != 2 || w[0].Port != 1 || w[1].Port != 3 ||
		decode(t, w[0].Frame).(*wire.WakeupBroadcast).HopLimit != 4 {
		t.Fatalf("classic flood: %v", w)
	}
	var ev bool
	for _, a := range ofKind(acts, ActionEvent) {
		ev = ev || (a.Event.Kind == EventWakeupReceived && a.Event.Key == keyD)
	}
	if !ev {
		t.Error("no wakeup event")
	}
	// Seen less than 30 s ago: dropped.
	if w := sends(feed(t, r, t0.Add(10*time.Second), 2, wake(5, 2000)), NoPort, -1); len(w) != 0 {
		t.Errorf("repeat within 30 s forwarded: %v", w)
	}
	// Hop limit 4 → 3: tree flood, only to the parent and children (M is
	// neither; B, the sender, is a child).
	if w := sends(feed(t, r, t0.Add(31*time.Second), 2, wake(4, 3000)), NoPort, -1); len(w) != 1 || w[0].Port != 1 {
		t.Errorf("tree flood: %v", w)
	}
	// An older sequence is dropped even after 30 s; hop limit 1 stops.
	if w := sends(feed(t, r, t0.Add(70*time.Second), 2, wake(5, 2500)), NoPort, -1); len(w) != 0 {
		t.Errorf("older sequence forwarded: %v", w)
	}
	if w := sends(feed(t, r, t0.Add(110*time.Second), 2, wake(1, 9000)), NoPort, -1); len(w) != 0 {
		t.Errorf("hop limit 1 forwarded: %v", w)
	}
	st := r.Stats()
	if st.Drops[DropWakeupDuplicate.String()] != 2 {
		t.Errorf("drops %v", st.Drops)
	}
}

func TestHopLimiting(t *testing.T) {
	for _, on := range []bool{false, true} {
		r := childOfC(t, Options{DisableWakeups: true, HopLimiting: on})
		for _, hl := range []uint8{5, 1} {
			f := &wire.Traffic{HopLimit: hl, DestinationCoords: wire.Coordinates{1, 2}, Destination: keyB, Source: keyC}
			s := sends(feed(t, r, t0, 1, f), 2, int(wire.TypeTraffic))
			switch {
			case !on && (len(s) != 1 || decode(t, s[0].Frame).(*wire.Traffic).HopLimit != hl):
				t.Errorf("hop limiting off, hop limit %d: %v, want forwarded unchanged", hl, s)
			case on && hl == 5 && (len(s) != 1 || decode(t, s[0].Frame).(*wire.Traffic).HopLimit != 4):
				t.Errorf("hop limiting on, hop limit 5: %v, want forwarded with 4", s)
			case on && hl == 1 && len(s) != 0:
				t.Errorf("hop limiting on, hop limit 1: forwarded")
			}
		}
		if got := r.Stats().Drops[DropHopLimit.String()]; (got == 1) != on {
			t.Errorf("hop limiting %v: %d hop_limit drops", on, got)
		}
	}
}

func TestTrafficDrops(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	// SNEK's next hop for C is C itself, where the frame came from.
	f := &wire.Traffic{HopLimit: 10, Destination: keyC, Source: keyB, Watermark: wire.StartWatermark}
	if s := sends(feed(t, r, t0, 1, f), NoPort, -1); len(s) != 0 {
		t.Errorf("sent back to the ingress: %v", s)
	}
	// D does not exist; A is its successor, but the frame already went by
	// a route to a key below A's, so delivering here would go backwards.
	f = &wire.Traffic{HopLimit: 10, Destination: keyD, Source: keyC, Watermark: wire.Watermark{Key: keyD, Seq: 0}}
	if acts := feed(t, r, t0, 1, f); len(acts) != 0 {
		t.Errorf("watermark not honoured: %v", acts)
	}
	st := r.Stats()
	if st.Drops[DropIngress.String()] != 1 || st.Drops[DropWatermark.String()] != 1 {
		t.Errorf("drops %v", st.Drops)
	}
}

// A frame we originate without a route is a no-route drop, not an ingress
// one (issue 10), both on a node alone and on one that is itself the
// closest known key to the destination.
func TestOwnTrafficWithoutRoute(t *testing.T) {
	alone := New(privA, Options{DisableWakeups: true})
	placed := childOfC(t, Options{DisableWakeups: true})
	for name, r := range map[string]*Router{"alone": alone, "successor of D": placed} {
		s := r.Snapshot()
		f := s.NewTraffic(t0, keyD, []byte("first packet"))
		if v := s.Route(t0, &f, LocalPort); v.Kind != VerdictDrop || v.Reason != DropTrafficNoRoute {
			t.Errorf("%s: verdict %+v, want a %s drop", name, v, DropTrafficNoRoute)
		}
		st := r.Stats()
		if st.Drops[DropTrafficNoRoute.String()] != 1 || st.Drops[DropIngress.String()] != 0 {
			t.Errorf("%s: drops %v, want one traffic_no_route and no ingress", name, st.Drops)
		}
	}
	// A frame from a peer that would go back to it stays an ingress drop.
	f := &wire.Traffic{HopLimit: 10, Destination: keyC, Source: keyB, Watermark: wire.StartWatermark}
	feed(t, placed, t0, 1, f)
	if st := placed.Stats(); st.Drops[DropIngress.String()] != 1 || st.Drops[DropTrafficNoRoute.String()] != 1 {
		t.Errorf("drops %v", st.Drops)
	}
}

func TestSuccessorDeliveryAndTreeFallback(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	// A key just below A that no node has: SNEK ends at A, which hands the
	// frame to its application with the frame's destination key.
	f := &wire.Traffic{HopLimit: 10, Destination: keyD, Source: keyC, Watermark: wire.StartWatermark, Payload: []byte("lookup")}
	d := ofKind(feed(t, r, t0, 1, f), ActionDeliver)
	if len(d) != 1 || d[0].Destination != keyD || d[0].Source != keyC || string(d[0].Payload) != "lookup" {
		t.Fatalf("successor delivery: %v", d)
	}
	// Coordinates below B that lead nowhere from B's side: from B the tree
	// has no closer peer, so the frame continues by SNEK towards C.
	f = &wire.Traffic{HopLimit: 10, DestinationCoords: wire.Coordinates{1, 2, 7}, Destination: keyC, Source: keyB}
	s := sends(feed(t, r, t0, 2, f), 1, int(wire.TypeTraffic))
	if len(s) != 1 {
		t.Fatalf("no fallback")
	}
	out := decode(t, s[0].Frame).(*wire.Traffic)
	if len(out.DestinationCoords) != 0 || out.Watermark != (wire.Watermark{Key: keyC}) {
		t.Errorf("fallback frame has coords %v watermark %v", out.DestinationCoords, out.Watermark)
	}
	if st := r.Stats(); st.TreeFallbacks != 1 || st.RoutedBySNEK < 1 || st.Delivered != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestPeerDownCleanup(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	r.PeerUp(t0, 3, keyM, PeerRemote)
	feed(t, r, t0, 3, rootedAt(privC, 1, 4).Signed(privM, 1))
	root := r.Root()
	// D's bootstrap comes from B and ends here (route source 2); M's comes
	// from M and goes on up to C (source 3, destination 1).
	feed(t, r, t0, 2, bootstrapFrom(privD, t0, root))
	feed(t, r, t0, 3, bootstrapFrom(privM, t0, root))
	if n := len(r.SNEKEntries(t0)); n != 2 {
		t.Fatalf("%d routes, want 2", n)
	}
	r.PeerDown(t0, 2)
	for _, e := range r.SNEKEntries(t0) {
		if e.Source == 2 || e.Destination == 2 {
			t.Errorf("route via the lost peer kept: %+v", e)
		}
	}
	if _, ok := r.Descending(t0); ok {
		t.Error("descending via the lost peer kept")
	}
	// Losing the parent: M offers the same root, so it becomes the parent.
	r.PeerDown(t0, 1)
	if r.Parent() != 3 || !r.Coords().Equal(wire.Coordinates{4, 1}) {
		t.Fatalf("parent %v coords %v after losing the parent, want port 3 and [4 1]", r.Parent(), r.Coords())
	}
	// The last peer gone: a fresh start as root, with a newer sequence.
	seq := r.seq
	r.PeerDown(t0, 3)
	if r.Parent() != NoPort || r.Root() != (wire.Root{Key: keyA, Seq: seq + 1}) || len(r.table) != 0 || len(r.Peers()) != 0 {
		t.Errorf("after the last peer: parent %v root %v, %d routes", r.Parent(), r.Root(), len(r.table))
	}
	acts := own(r.PeerUp(t0, 1, keyB, PeerRemote))
	if a := decode(t, acts[0].Frame).(*wire.TreeAnnouncement); a.Root != r.Root() || len(a.Hops) != 1 || a.Hops[0].Port != 1 {
		t.Errorf("first frame after the reset: %s", describe(acts[0].Frame))
	}
}
