package router

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// TestDataPlaneWithoutTheControlLock does what the concurrent node does:
// forwarding goroutines route traffic with the published Snapshot, read
// and fill the coordinate cache and count, while the control goroutine
// feeds the Router and publishes new snapshots. Run with -race.
func TestDataPlaneWithoutTheControlLock(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true})
	var snap atomic.Pointer[Snapshot]
	snap.Store(r.Snapshot())
	var done atomic.Bool
	var wg sync.WaitGroup
	var routed atomic.Int64
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; !done.Load() || i < 100; i++ {
				s := snap.Load()
				now := t0.Add(time.Duration(i) * time.Millisecond)
				in := wire.Traffic{HopLimit: 10, SourceCoords: wire.Coordinates{1, 2, uint64(g)}, Destination: keyA, Source: keyB}
				s.Route(now, &in, 2)
				out := s.NewTraffic(now, []wire.PublicKey{keyB, keyC, keyD}[i%3], []byte("x"))
				if v := s.Route(now, &out, LocalPort); v.Kind == VerdictForward && v.Port > MaxPort {
					t.Errorf("forward to %v", v.Port)
				}
				routed.Add(2)
			}
		}(g)
	}
	for i := 0; i < 200; i++ {
		now := t0.Add(time.Duration(i) * 100 * time.Millisecond)
		var acts []Action
		switch i % 4 {
		case 0:
			acts = feed(t, r, now, 2, bootstrapFrom(privD, now, r.Root()))
		case 1:
			acts = feed(t, r, now, 1, rootedAt(privC, uint64(2+i), 1))
		case 2:
			acts = own(r.Tick(now))
		case 3:
			acts = feed(t, r, now, 2, &wire.Traffic{HopLimit: 10, DestinationCoords: wire.Coordinates{1}, Destination: keyC, Source: keyB})
		}
		mustNoDisconnect(t, acts)
		snap.Store(r.Snapshot())
	}
	done.Store(true)
	wg.Wait()
	if st := r.Stats(); st.Delivered == 0 || st.Originated == 0 || routed.Load() == 0 {
		t.Errorf("nothing routed: %+v", st)
	}
}
