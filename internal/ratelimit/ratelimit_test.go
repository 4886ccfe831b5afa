package ratelimit

import (
	"testing"
	"time"
)

var t0 = time.Unix(1_700_000_000, 0)

// TestPerSourceAndGlobal: a source gets its burst and then its rate; the
// others are not held back by it until the global budget runs out.
func TestPerSourceAndGlobal(t *testing.T) {
	l := New[int](Config{PerKey: 2, PerKeyBurst: 3, Global: 10, GlobalBurst: 6, MaxKeys: 100})
	for i := range 3 {
		if v := l.Allow(t0, 1); v != Allowed {
			t.Fatalf("source 1, event %d: %v", i, v)
		}
	}
	if v := l.Allow(t0, 1); v != LimitedSource {
		t.Fatalf("source 1 over its burst: %v", v)
	}
	if v := l.Allow(t0.Add(500*time.Millisecond), 1); v != Allowed {
		t.Fatalf("source 1 after 0.5 s at 2/s: %v", v)
	}
	// Global burst 6: 4 used, two more sources get one each.
	if v := l.Allow(t0.Add(500*time.Millisecond), 2); v != Allowed {
		t.Fatalf("source 2: %v", v)
	}
	at := t0.Add(500 * time.Millisecond)
	allowed := 0
	for k := 3; k < 20; k++ {
		if l.Allow(at, k) == Allowed {
			allowed++
		}
	}
	// 3 of the 6 left at t0; the refill (5 in 0.5 s) stops at the burst
	// of 6, and sources 1 and 2 took 2 of them.
	if allowed != 4 {
		t.Fatalf("%d new sources allowed within the global budget, want 4", allowed)
	}
	if v := l.Allow(at, 50); v != LimitedGlobal {
		t.Fatalf("over the global budget: %v", v)
	}
	if !l.Loaded(at) {
		t.Fatal("not loaded with an empty global bucket")
	}
	if l.Loaded(at.Add(time.Second)) {
		t.Fatal("still loaded after the global bucket refilled")
	}
}

// TestTableBoundAndSweep: sources beyond MaxKeys are refused while the
// table is full of limited sources, and idle sources are forgotten once
// their buckets would be full again.
func TestTableBoundAndSweep(t *testing.T) {
	l := New[int](Config{PerKey: 1, PerKeyBurst: 2, Global: 1e6, GlobalBurst: 1e6, MaxKeys: 4})
	for k := range 4 {
		l.Allow(t0, k)
	}
	if v := l.Allow(t0, 99); v != TableFull {
		t.Fatalf("fifth source: %v", v)
	}
	if l.Sources() != 4 {
		t.Fatalf("%d sources tracked", l.Sources())
	}
	// Refill takes 2 s; the sweep runs at most once a second.
	if v := l.Allow(t0.Add(1500*time.Millisecond), 99); v != TableFull {
		t.Fatalf("fifth source before the refill time: %v", v)
	}
	if v := l.Allow(t0.Add(2600*time.Millisecond), 99); v != Allowed {
		t.Fatalf("fifth source after the sweep: %v", v)
	}
	if l.Sources() != 1 {
		t.Fatalf("%d sources tracked after the sweep, want 1", l.Sources())
	}
}
