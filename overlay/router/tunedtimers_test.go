package router

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// wakeupFloods ticks r every second for d and returns when it flooded its
// own wakeup broadcast.
func wakeupFloods(t *testing.T, r *Router, d time.Duration) []time.Duration {
	t.Helper()
	var at []time.Duration
	for s := time.Duration(0); s <= d; s += time.Second {
		// One flood is one copy per port.
		if w := sends(r.Tick(t0.Add(s)), NoPort, int(wire.TypeWakeupBroadcast)); len(w) > 0 {
			if f := decode(t, w[0].Frame).(*wire.WakeupBroadcast); f.Source != r.PublicKey() {
				t.Fatalf("flooded a wakeup from %s", f.Source)
			}
			at = append(at, s)
		}
	}
	return at
}

func TestPeriodicWakeupTimers(t *testing.T) {
	peered := func(priv []byte, opts Options) *Router {
		r := New(priv, opts)
		mustNoDisconnect(t, r.PeerUp(t0, 1, keyB, PeerRemote))
		mustNoDisconnect(t, r.PeerUp(t0, 2, keyD, PeerRemote))
		return r
	}
	t.Run("reference: every 60 s from the start", func(t *testing.T) {
		at := wakeupFloods(t, peered(privA, Options{ReferenceTimers: true}), 5*time.Minute)
		want := []time.Duration{60 * time.Second, 120 * time.Second, 180 * time.Second, 240 * time.Second, 300 * time.Second}
		if len(at) != len(want) {
			t.Fatalf("floods at %v, want %v", at, want)
		}
		for i := range at {
			if at[i] != want[i] {
				t.Fatalf("floods at %v, want %v", at, want)
			}
		}
	})
	t.Run("tuned: first within one mean, then ½–1½ means apart, per-key phase", func(t *testing.T) {
		const mean = 10 * time.Minute
		var firsts []time.Duration
		for _, priv := range [][]byte{privA, privC, privM} {
			at := wakeupFloods(t, peered(priv, Options{WakeupRefresh: mean}), 2*time.Hour)
			if len(at) < 8 || len(at) > 16 {
				t.Fatalf("%d floods in 2 h with a %v mean: %v", len(at), mean, at)
			}
			if at[0] >= mean {
				t.Errorf("first flood at %v, want before %v", at[0], mean)
			}
			for i := 1; i < len(at); i++ {
				if gap := at[i] - at[i-1]; gap < mean/2 || gap > mean*3/2+time.Second {
					t.Errorf("floods %v apart, want within [%v, %v]", gap, mean/2, mean*3/2)
				}
			}
			firsts = append(firsts, at[0])
		}
		if firsts[0] == firsts[1] && firsts[1] == firsts[2] {
			t.Errorf("three keys flood first at the same %v: no jitter", firsts[0])
		}
	})
	t.Run("tuned default: none in the first minutes for most keys", func(t *testing.T) {
		floods := 0
		for i := byte(10); i < 30; i++ {
			floods += len(wakeupFloods(t, peered(testhelp.SeedKey(i), Options{}), 3*time.Minute))
		}
		// 20 nodes, each with its first flood uniform over the default
		// mean (12 h): the chance of more than 2 in 3 minutes is below 1e-4.
		if floods > 2 {
			t.Errorf("%d of 20 nodes flooded within 3 minutes with the default mean", floods)
		}
	})
	t.Run("negative refresh: never", func(t *testing.T) {
		if at := wakeupFloods(t, peered(privA, Options{WakeupRefresh: -1}), 3*time.Hour); len(at) != 0 {
			t.Fatalf("floods at %v", at)
		}
	})
}

// TestWakeupSeenSetEvictsOldest: a full seen set makes room for a new
// originator by forgetting the oldest one, and forwards the newcomer's
// broadcast.
func TestWakeupSeenSetEvictsOldest(t *testing.T) {
	r := New(privA, Options{DisableWakeups: true, MaxWakeupSeen: 2})
	mustNoDisconnect(t, r.PeerUp(t0, 1, keyB, PeerRemote))
	mustNoDisconnect(t, r.PeerUp(t0, 2, keyC, PeerRemote))
	wakeup := func(now time.Time, seed byte) []Action {
		t.Helper()
		from := New(testhelp.SeedKey(seed), Options{})
		sr := from.signRoot(unixMilli(now), r.Root())
		acts := own(r.HandleFrame(now, 1, &wire.WakeupBroadcast{HopLimit: wire.WakeupHopLimit, Source: from.key, Payload: sr.Append(nil)}))
		mustNoDisconnect(t, acts)
		return acts
	}
	keyOf := func(seed byte) wire.PublicKey { return wire.PublicKeyOf(testhelp.SeedKey(seed)) }
	wakeup(t0, 20)
	wakeup(t0.Add(time.Second), 21)
	before := r.Stats().Drops[DropWakeupSeenFull.String()]
	acts := wakeup(t0.Add(2*time.Second), 22)
	if len(sends(acts, 2, int(wire.TypeWakeupBroadcast))) != 1 {
		t.Fatalf("a new originator's wakeup with the set full was not forwarded: %v", acts)
	}
	if _, ok := r.seen[keyOf(20)]; ok {
		t.Error("the oldest originator was kept")
	}
	for _, s := range []byte{21, 22} {
		if _, ok := r.seen[keyOf(s)]; !ok {
			t.Errorf("originator %d forgotten", s)
		}
	}
	if len(r.seen) != 2 || len(r.verified) != 2 {
		t.Errorf("seen %d, verified %d records; bound 2", len(r.seen), len(r.verified))
	}
	if got := r.Stats().Drops[DropWakeupSeenFull.String()] - before; got != 1 {
		t.Errorf("evictions counted %d, want 1", got)
	}
	// The evicted originator is accepted again as new, evicting 21.
	if len(sends(wakeup(t0.Add(3*time.Second), 20), 2, int(wire.TypeWakeupBroadcast))) != 1 {
		t.Error("the evicted originator's next wakeup was not forwarded")
	}
	if _, ok := r.seen[keyOf(21)]; ok {
		t.Error("after 20 came back, 21 (now the oldest) was kept")
	}
}

// TestDescendingChangeStartsFastBootstraps: a new descending neighbour,
// not only a parent change, makes the node bootstrap every second again.
func TestDescendingChangeStartsFastBootstraps(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	bootstrapsIn := func(from, to time.Duration) int {
		n := 0
		for s := from; s < to; s += time.Second {
			n += len(sends(r.Tick(t0.Add(s)), NoPort, int(wire.TypeBootstrap)))
		}
		return n
	}
	if n := bootstrapsIn(DefaultFastBootstrapWindow, DefaultFastBootstrapWindow+20*time.Second); n != 4 {
		t.Fatalf("%d bootstraps in 20 s once settled, want 4", n)
	}
	// B (below A) bootstraps through its parent A: A's descending node.
	now := t0.Add(DefaultFastBootstrapWindow + 20*time.Second)
	mustNoDisconnect(t, feed(t, r, now, 2, bootstrapFrom(privB, now, r.Root())))
	if d, ok := r.Descending(now); !ok || d.Originator != keyB {
		t.Fatalf("descending %v %v, want B", d, ok)
	}
	start := DefaultFastBootstrapWindow + 20*time.Second
	if n := bootstrapsIn(start, start+5*time.Second); n != 5 {
		t.Errorf("%d bootstraps in the 5 s after the descending change, want 5", n)
	}
}

// TestParentMovedIsFollowedAtOnce: the parent re-signs the same root
// update with a new path (it changed its own parent). The reference takes
// that as bad news and flaps for ReparentWait; tuned, the node keeps its
// parent, takes the new coordinates and passes the update on at once.
func TestParentMovedIsFollowedAtOnce(t *testing.T) {
	for _, ref := range []bool{false, true} {
		// A under M (port 1) under the root C; B is A's other peer.
		r := New(privA, Options{DisableWakeups: true, ReferenceTimers: ref})
		r.PeerUp(t0, 1, keyM, PeerRemote)
		r.PeerUp(t0, 2, keyB, PeerRemote)
		mustNoDisconnect(t, feed(t, r, t0, 1, rootedAt(privC, 1, 1).Signed(privM, 1)))
		if r.Parent() != 1 {
			t.Fatalf("set-up: parent %v", r.Parent())
		}
		r.Tick(t0)
		now := t0.Add(1300 * time.Millisecond)
		// M moved under D: C's port 4 to D, D's port 5 to M, M's port 1.
		moved := rootedAt(privC, 1, 4).Signed(privD, 5).Signed(privM, 1)
		acts := feed(t, r, now, 1, moved)
		mustNoDisconnect(t, acts)
		announced := len(sends(acts, NoPort, int(wire.TypeTreeAnnouncement)))
		if ref {
			if r.Parent() != NoPort || r.Root().Key != keyA {
				t.Errorf("reference: parent %v root %v after the parent moved, want bad news (own root)", r.Parent(), r.Root())
			}
			continue
		}
		if r.Parent() != 1 || r.Root() != (wire.Root{Key: keyC, Seq: 1}) || !r.Coords().Equal(wire.Coordinates{4, 5, 1}) {
			t.Fatalf("tuned: parent %v root %v coords %v, want parent 1, C's root, coords [4 5 1]", r.Parent(), r.Root(), r.Coords())
		}
		if announced != 2 {
			t.Errorf("tuned: the new path went to %d peers, want both", announced)
		}
		if r.waiting {
			t.Errorf("tuned: waiting %v after the parent moved", r.waiting)
		}
		// An identical repeat is still bad news, as in the reference.
		mustNoDisconnect(t, feed(t, r, now.Add(time.Second), 1, moved))
		if r.Parent() != NoPort || !r.waiting {
			t.Errorf("tuned: after an identical repeat from the parent: parent %v, waiting %v; want bad news", r.Parent(), r.waiting)
		}
	}
}

// TestCrossingAnswerIsNotBadNews: A announces M's root to C, then takes C
// (stronger) as parent; C answers the weaker announcement, which crossed
// its own, with an identical copy of what A now follows. The reference
// takes that copy as bad news and waits ReparentWait; tuned, A keeps its
// parent. An identical repeat with no weaker announcement of ours in the
// ReparentWait before it is still bad news.
func TestCrossingAnswerIsNotBadNews(t *testing.T) {
	for _, ref := range []bool{false, true} {
		r := New(privA, Options{DisableWakeups: true, ReferenceTimers: ref})
		r.PeerUp(t0, 1, keyC, PeerRemote)
		r.PeerUp(t0, 2, keyB, PeerRemote)
		// B follows M (M > A): A follows B and tells C, which follows a
		// stronger root of its own.
		acts := feed(t, r, t0, 2, rootedAt(privM, 1, 7).Signed(privB, 1))
		if r.Parent() != 2 || len(sends(acts, 1, int(wire.TypeTreeAnnouncement))) != 1 {
			t.Fatalf("set-up: parent %v, announcements to C %d", r.Parent(), len(sends(acts, 1, int(wire.TypeTreeAnnouncement))))
		}
		fromC := rootedAt(privC, 1, 1)
		now := t0.Add(time.Millisecond)
		mustNoDisconnect(t, feed(t, r, now, 1, fromC))
		if r.Parent() != 1 || r.Root() != (wire.Root{Key: keyC, Seq: 1}) {
			t.Fatalf("parent %v root %v, want C on port 1", r.Parent(), r.Root())
		}
		// C's answer to A's announcement of M's root.
		now = now.Add(time.Millisecond)
		acts = feed(t, r, now, 1, fromC)
		mustNoDisconnect(t, acts)
		if ref {
			if r.Parent() != NoPort || !r.waiting {
				t.Errorf("reference: parent %v, waiting %v after the crossing answer; want bad news", r.Parent(), r.waiting)
			}
			continue
		}
		if r.Parent() != 1 || r.waiting || r.Root() != (wire.Root{Key: keyC, Seq: 1}) {
			t.Fatalf("tuned: parent %v, waiting %v, root %v after the crossing answer; want C kept", r.Parent(), r.waiting, r.Root())
		}
		if n := len(sends(acts, NoPort, int(wire.TypeTreeAnnouncement))); n != 0 {
			t.Errorf("tuned: the crossing answer made %d announcements, want none", n)
		}
		// The same copy once the weaker announcement is ReparentWait old.
		mustNoDisconnect(t, feed(t, r, t0.Add(ReparentWait), 1, fromC))
		if r.Parent() != NoPort || !r.waiting {
			t.Errorf("tuned: parent %v, waiting %v after a late identical repeat; want bad news", r.Parent(), r.waiting)
		}
	}
}

// TestParentLoopTakesAnotherPeer: the parent's new path runs through us
// (it took an older announcement of ours). The reference becomes root for
// ReparentWait; tuned, a peer that offers the same root loop-free is taken
// at once, and with none the node still waits.
func TestParentLoopTakesAnotherPeer(t *testing.T) {
	// M's new path: C, D, A (us), M.
	looped := rootedAt(privC, 1, 4).Signed(privD, 5).Signed(privA, 7).Signed(privM, 1)
	for _, tc := range []struct {
		name     string
		ref, alt bool
	}{{"tuned", false, true}, {"tuned, no other peer", false, false}, {"reference", true, true}} {
		r := New(privA, Options{DisableWakeups: true, ReferenceTimers: tc.ref})
		r.PeerUp(t0, 1, keyM, PeerRemote)
		r.PeerUp(t0, 2, keyB, PeerRemote)
		mustNoDisconnect(t, feed(t, r, t0, 1, rootedAt(privC, 1, 1).Signed(privM, 1)))
		if tc.alt {
			mustNoDisconnect(t, feed(t, r, t0, 2, rootedAt(privC, 1, 3).Signed(privB, 1)))
		}
		if r.Parent() != 1 {
			t.Fatalf("%s: set-up: parent %v", tc.name, r.Parent())
		}
		now := t0.Add(1300 * time.Millisecond)
		mustNoDisconnect(t, feed(t, r, now, 1, looped))
		wantWait := tc.ref || !tc.alt
		if wantWait {
			if r.Parent() != NoPort || !r.waiting {
				t.Errorf("%s: parent %v, waiting %v after the parent's loop; want bad news", tc.name, r.Parent(), r.waiting)
			}
			continue
		}
		if r.Parent() != 2 || r.waiting || r.Root() != (wire.Root{Key: keyC, Seq: 1}) || !r.Coords().Equal(wire.Coordinates{3, 1}) {
			t.Errorf("%s: parent %v, waiting %v, root %v, coords %v; want B on port 2 at once", tc.name, r.Parent(), r.waiting, r.Root(), r.Coords())
		}
	}
}

// handoffSetUp is router A under the root C (port 1) with three more peers
// that send no announcements, so that A's bootstrap search knows only the
// keys of its routes below its own.
func handoffSetUp(t *testing.T, opts Options) *Router {
	t.Helper()
	opts.DisableWakeups = true
	r := New(privA, opts)
	for port, seed := range map[Port]byte{1: 3, 2: 9, 3: 7, 4: 15} {
		mustNoDisconnect(t, r.PeerUp(t0, port, wire.PublicKeyOf(testhelp.SeedKey(seed)), PeerRemote))
	}
	mustNoDisconnect(t, feed(t, r, t0, 1, rootedAt(privC, 1, 1)))
	if r.Parent() != 1 {
		t.Fatalf("set-up: parent %v", r.Parent())
	}
	return r
}

// bootstrapsOf returns the bootstraps from origin among acts, by port.
func bootstrapsOf(t *testing.T, acts []Action, origin wire.PublicKey) map[Port]*wire.Bootstrap {
	t.Helper()
	out := map[Port]*wire.Bootstrap{}
	for _, a := range sends(acts, NoPort, int(wire.TypeBootstrap)) {
		if b := decode(t, a.Frame).(*wire.Bootstrap); b.Originator == origin {
			out[a.Port] = b
		}
	}
	return out
}

// TestBootstrapHandoff: D's bootstrap passed through A towards the key H,
// or ended at A; then a route to S (D < S < H) arrives. Tuned, A passes D's
// bootstrap on towards S at once, the same signed frame, if it came through
// within BootstrapHandoffAge, or ended at A within TerminalHandoffAge; the
// reference waits for D's next bootstrap.
// Seeds in key order: 26 < 11 < 5 < 6 < A (1).
func TestBootstrapHandoff(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ref         bool
		viaH        bool          // D's bootstrap went on towards H (else it ended at A)
		after       time.Duration // S's bootstrap after D's
		wantHandoff bool
	}{
		{"tuned, ended here", false, false, 100 * time.Millisecond, true},
		{"tuned, ended here 2 s ago", false, false, 2 * time.Second, true},
		{"tuned, ended here too long ago", false, false, DefaultTerminalHandoffAge, false},
		{"tuned, passed through", false, true, 100 * time.Millisecond, true},
		{"tuned, passed through too long ago", false, true, DefaultBootstrapHandoffAge, false},
		{"reference", true, true, 100 * time.Millisecond, false},
	} {
		r := handoffSetUp(t, Options{ReferenceTimers: tc.ref})
		now := t0.Add(time.Second)
		d, s, dPort := testhelp.SeedKey(26), testhelp.SeedKey(11), Port(3)
		if !tc.viaH {
			d, s = testhelp.SeedKey(5), testhelp.SeedKey(6)
		} else {
			// H's bootstrap ends at A; D's then goes on to H's port 2.
			mustNoDisconnect(t, feed(t, r, now, 2, bootstrapFrom(testhelp.SeedKey(5), now, r.Root())))
		}
		fromD := bootstrapFrom(d, now, r.Root())
		acts := feed(t, r, now, dPort, fromD)
		if got := bootstrapsOf(t, acts, wire.PublicKeyOf(d)); tc.viaH != (got[2] != nil) || len(got) > 1 {
			t.Fatalf("%s: set-up: D's bootstrap went to %v", tc.name, got)
		}
		now = now.Add(tc.after)
		acts = feed(t, r, now, 4, bootstrapFrom(s, now, r.Root()))
		mustNoDisconnect(t, acts)
		got := bootstrapsOf(t, acts, wire.PublicKeyOf(d))
		if !tc.wantHandoff {
			if len(got) != 0 {
				t.Errorf("%s: D's bootstrap passed on again: %v", tc.name, got)
			}
			continue
		}
		b := got[4]
		if len(got) != 1 || b == nil {
			t.Fatalf("%s: D's bootstrap went to %v, want port 4 (towards S) only", tc.name, got)
		}
		if string(b.Payload) != string(fromD.Payload) || b.Watermark.Key != wire.PublicKeyOf(s) {
			t.Errorf("%s: passed on payload %x watermark %v; want D's payload and S's key", tc.name, b.Payload, b.Watermark)
		}
		// S's next bootstrap only refreshes a route A knows: nothing more.
		now = now.Add(time.Second)
		if got := bootstrapsOf(t, feed(t, r, now, 4, bootstrapFrom(s, now, r.Root())), wire.PublicKeyOf(d)); len(got) != 0 {
			t.Errorf("%s: D's bootstrap passed on again on S's refresh: %v", tc.name, got)
		}
	}
}
