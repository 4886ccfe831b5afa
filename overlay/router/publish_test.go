package router

import (
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// TestPublishBoundsRouteRebuilds: a bootstrap (a SNEK route change only)
// within SnapshotInterval of the last rebuild is held back: Publish keeps
// returning the published snapshot, NextTick falls due when the interval
// ends, and from then on the route is in the snapshot Publish gives.
// A peer change is published at once, and with a negative interval every
// change is.
func TestPublishBoundsRouteRebuilds(t *testing.T) {
	opts := Options{DisableWakeups: true, InsecureSkipSignatures: true, SnapshotInterval: 100 * time.Millisecond}
	r := childOfC(t, opts)
	now := t0.Add(time.Second)
	r.Tick(now) // maintenance next due at now + 1 s
	first := r.Publish(now)
	if r.Publish(now) != first {
		t.Fatal("Publish rebuilt an unchanged snapshot")
	}
	// The first route change after a quiet spell is published at once.
	origin := testhelp.SeedKey(40)
	mustNoDisconnect(t, r.HandleFrame(now, 2, bootstrapFrom(origin, now, r.Root())))
	lead := r.Publish(now)
	if lead == first || len(lead.entries) != 1 {
		t.Fatalf("first route change: new snapshot %v with %d routes", lead != first, len(lead.entries))
	}
	// The next, within the interval, is held back.
	at := now.Add(40 * time.Millisecond)
	mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(testhelp.SeedKey(41), at, r.Root())))
	if got := r.Publish(at); got != lead || len(got.entries) != 1 {
		t.Fatal("a route change was published before the interval passed")
	}
	if due := r.NextTick(); !due.Equal(now.Add(100 * time.Millisecond)) {
		t.Fatalf("NextTick %v after the held change, want the end of the interval", due.Sub(now))
	}
	later := r.Publish(now.Add(100 * time.Millisecond))
	if later == lead || len(later.entries) != 2 {
		t.Fatalf("after the interval: new snapshot %v with %d routes", later != lead, len(later.entries))
	}
	if due := r.NextTick(); !due.Equal(now.Add(MaintenanceInterval)) {
		t.Fatalf("NextTick %v with nothing held back, want the maintenance tick", due.Sub(now))
	}

	// A route change held back goes out with a peer change, which is
	// published at once.
	at = now.Add(120 * time.Millisecond)
	mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(testhelp.SeedKey(42), at, r.Root())))
	if r.Publish(at) != later {
		t.Fatal("third route change published within the interval")
	}
	r.PeerUp(at, 3, keyB, PeerRemote)
	s := r.Publish(at)
	if s == later || s.peer(3) == nil || len(s.entries) != 3 {
		t.Fatalf("peer change: new %v, port 3 %v, %d routes", s != later, s.peer(3) != nil, len(s.entries))
	}

	every := childOfC(t, Options{DisableWakeups: true, InsecureSkipSignatures: true, SnapshotInterval: -1})
	prev := every.Publish(now)
	mustNoDisconnect(t, every.HandleFrame(now, 2, bootstrapFrom(origin, now, every.Root())))
	if s := every.Publish(now); s == prev || len(s.entries) != 1 {
		t.Fatal("with a negative interval the route change was not published at once")
	}
}
