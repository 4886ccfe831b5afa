package router

import (
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestPublishBoundsRouteRebuilds: route changes from new originators are
// published at once for SnapshotBurst rebuilds; beyond that they are held
// back: Publish keeps returning the published snapshot, NextTick falls
// due when the budget has refilled by one (SnapshotInterval), and from
// then on the routes are in the snapshot Publish gives. A refresh of a
// known route needs no new snapshot (the published one reads its new
// version in place), and a peer change is published at once.
func TestPublishBoundsRouteRebuilds(t *testing.T) {
	opts := Options{DisableWakeups: true, InsecureSkipSignatures: true, SnapshotInterval: 100 * time.Millisecond}
	r := childOfC(t, opts)
	now := t0.Add(time.Second)
	r.Tick(now) // maintenance next due at now + 1 s
	first := r.Publish(now)
	if r.Publish(now) != first {
		t.Fatal("Publish rebuilt an unchanged snapshot")
	}
	prev := first
	for i := range SnapshotBurst {
		mustNoDisconnect(t, r.HandleFrame(now, 2, bootstrapFrom(testhelp.SeedKey(byte(40+i)), now, r.Root())))
		s := r.Publish(now)
		if s == prev || len(s.entries) != i+1 {
			t.Fatalf("new route %d within the burst: new snapshot %v with %d routes", i, s != prev, len(s.entries))
		}
		prev = s
	}
	// Beyond the burst: held back.
	held := prev
	at := now.Add(40 * time.Millisecond)
	mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(testhelp.SeedKey(60), at, r.Root())))
	if got := r.Publish(at); got != held {
		t.Fatal("a route change beyond the burst was published before the budget refilled")
	}
	if due := r.NextTick(); !due.Equal(now.Add(100 * time.Millisecond)) {
		t.Fatalf("NextTick %v after the held change, want when the budget has one rebuild again", due.Sub(now))
	}
	later := r.Publish(now.Add(100 * time.Millisecond))
	if later == held || len(later.entries) != SnapshotBurst+1 {
		t.Fatalf("after the interval: new snapshot %v with %d routes", later != held, len(later.entries))
	}
	if due := r.NextTick(); !due.Equal(now.Add(MaintenanceInterval)) {
		t.Fatalf("NextTick %v with nothing held back, want the maintenance tick", due.Sub(now))
	}

	// A refresh of a route (same origin, same port, newer sequence) needs
	// no snapshot at all: the published one sees the new version at once.
	origin := testhelp.SeedKey(40)
	at = now.Add(110 * time.Millisecond)
	mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(origin, at, r.Root())))
	if r.Publish(at) != later {
		t.Fatal("a refresh rebuilt the snapshot")
	}
	if v := later.entries[slices.IndexFunc(later.entries, func(e *snekEntry) bool { return e.origin == wire.PublicKeyOf(origin) })].ver.Load(); v.seq != uint64(at.UnixMilli()) || !v.expires.Equal(at.Add(SNEKExpiry)) {
		t.Fatalf("refreshed route in the published snapshot: seq %d expires %v", v.seq, v.expires)
	}

	// A route change held back goes out with a peer change, which is
	// published at once.
	at = now.Add(120 * time.Millisecond)
	mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(testhelp.SeedKey(61), at, r.Root())))
	if r.Publish(at) != later {
		t.Fatal("a route change was published with the budget spent")
	}
	r.PeerUp(at, 3, keyB, PeerRemote)
	s := r.Publish(at)
	if s == later || s.peer(3) == nil || len(s.entries) != SnapshotBurst+2 {
		t.Fatalf("peer change: new %v, port 3 %v, %d routes", s != later, s.peer(3) != nil, len(s.entries))
	}

	every := childOfC(t, Options{DisableWakeups: true, InsecureSkipSignatures: true, SnapshotInterval: -1})
	prev = every.Publish(now)
	for i := range SnapshotBurst + 5 {
		mustNoDisconnect(t, every.HandleFrame(now, 2, bootstrapFrom(testhelp.SeedKey(byte(40+i)), now, every.Root())))
		if s := every.Publish(now); s == prev || len(s.entries) != i+1 {
			t.Fatalf("negative interval: route change %d not published at once", i)
		}
		prev = every.Publish(now)
	}
}

// TestPublishDueIsExact: at the moment NextTick names for a held-back
// route change, Publish rebuilds, whatever fractions of the interval the
// budget went through; a tick at that moment that found nothing to do
// would name the same moment again and never end.
func TestPublishDueIsExact(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true, InsecureSkipSignatures: true, SnapshotInterval: 7 * time.Millisecond})
	now := t0.Add(time.Second)
	r.Tick(now)
	r.Publish(now)
	at, held := now, 0
	for i := range 200 {
		at = at.Add(time.Duration(i%5) * time.Millisecond / 3)
		mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(testhelp.SeedKey(byte(i)), at, r.Root())))
		prev := r.Publish(at)
		due, ok := r.publishDue()
		if !ok {
			continue
		}
		held++
		if r.NextTick().After(due) {
			t.Fatalf("change %d: NextTick %v, after the held change is due at %v", i, r.NextTick(), due)
		}
		if s := r.Publish(due); s == prev {
			t.Fatalf("change %d: nothing published at the moment it was due", i)
		}
		at = due
	}
	if held < 50 {
		t.Fatalf("only %d of 200 changes were held back: the budget was not exercised", held)
	}
}

// TestSnapshotKeepsAMovedRoute: snapshots share the Router's route
// entries, so a route that now comes through another port must be a new
// entry. A snapshot published before the move still routes the old way,
// as a consistent older state; the next one routes the new way.
func TestSnapshotKeepsAMovedRoute(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true, InsecureSkipSignatures: true, SnapshotInterval: -1})
	now := t0.Add(time.Second)
	r.Tick(now)
	r.PeerUp(now, 3, keyB, PeerRemote)
	origin := testhelp.SeedKey(40)
	source := func(s *Snapshot) Port {
		i := slices.IndexFunc(s.entries, func(e *snekEntry) bool { return e.origin == wire.PublicKeyOf(origin) })
		if i < 0 {
			t.Fatal("no route to the originator in the snapshot")
		}
		return s.entries[i].source
	}
	mustNoDisconnect(t, r.HandleFrame(now, 2, bootstrapFrom(origin, now, r.Root())))
	before := r.Publish(now)
	at := now.Add(100 * time.Millisecond)
	mustNoDisconnect(t, r.HandleFrame(at, 3, bootstrapFrom(origin, at, r.Root())))
	after := r.Publish(at)
	if got := source(after); got != 3 {
		t.Fatalf("route after the move comes from port %d, want 3", got)
	}
	if got := source(before); got != 2 {
		t.Fatalf("the snapshot from before the move routes through port %d, want 2 as when it was made", got)
	}
}

// TestDefaultPublishKeepsUpWithAHub: with the default budget, route
// changes at the rate a hub of a large overlay sees them (here 500 a
// second, new originators) are each published at once. A budget that held
// them back made neighbours route with different tables and bounce first
// packets between them (docs/simulation/README.md, skitter).
func TestDefaultPublishKeepsUpWithAHub(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true, InsecureSkipSignatures: true})
	now := t0.Add(time.Second)
	r.Tick(now)
	prev := r.Publish(now)
	for i := range 200 {
		at := now.Add(time.Duration(i) * 2 * time.Millisecond)
		mustNoDisconnect(t, r.HandleFrame(at, 2, bootstrapFrom(testhelp.SeedKey(byte(i)), at, r.Root())))
		s := r.Publish(at)
		if s == prev || len(s.entries) != i+1 {
			t.Fatalf("route change %d at %v: not published at once (%d routes in the snapshot)", i, at.Sub(now), len(s.entries))
		}
		prev = s
	}
}
