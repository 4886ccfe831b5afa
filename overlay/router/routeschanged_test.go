package router

import (
	"testing"
	"time"
)

// routesChanged counts the EventRoutesChanged in acts.
func routesChanged(acts []Action) int {
	n := 0
	for _, a := range ofKind(acts, ActionEvent) {
		if a.Event.Kind == EventRoutesChanged {
			n++
		}
	}
	return n
}

// EventRoutesChanged comes once for a call that gave the node a route (a
// parent, a peer's first announcement, a new or expired-and-renewed SNEK
// route) and never for a refresh of what it already had: lookups are
// retried on it (issue 10), so it must neither be missed nor fire on every
// refresh.
func TestRoutesChangedEvent(t *testing.T) {
	r := New(privA, Options{DisableWakeups: true})
	r.PeerUp(t0, 1, keyC, PeerRemote)
	step := func(what string, want int, acts []Action) {
		t.Helper()
		if got := routesChanged(acts); got != want {
			t.Errorf("%s: %d routes-changed events, want %d", what, got, want)
		}
	}
	step("first announcement from C, our new parent", 1, feed(t, r, t0, 1, rootedAt(privC, 1, 1)))
	if r.Parent() != 1 {
		t.Fatalf("parent %v, want port 1", r.Parent())
	}
	step("C's root refresh, same parent and coordinates", 0, feed(t, r, t0.Add(time.Second), 1, rootedAt(privC, 2, 1)))
	r.PeerUp(t0, 2, keyB, PeerRemote)
	step("first announcement from B, a child", 1, feed(t, r, t0.Add(time.Second), 2, rootedAt(privC, 2, 1).Signed(privA, 2).Signed(privB, 1)))
	step("a tick with nothing new", 0, own(r.Tick(t0.Add(1500*time.Millisecond))))

	at := t0.Add(2 * time.Second)
	step("B's first bootstrap: a route back to B", 1, feed(t, r, at, 2, bootstrapFrom(privB, at, r.Root())))
	at = at.Add(time.Second)
	step("B's next bootstrap on the same path", 0, feed(t, r, at, 2, bootstrapFrom(privB, at, r.Root())))
	at = at.Add(SNEKExpiry + time.Second)
	r.Tick(at)
	step("B's bootstrap after its route expired", 1, feed(t, r, at, 2, bootstrapFrom(privB, at, r.Root())))

	// Losing the parent is a change of routes too: traffic goes elsewhere.
	step("parent gone", 1, own(r.PeerDown(at, 1)))
}
