package accept

import (
	"sync"
	"sync/atomic"
	"testing"
)

// Spawn runs and counts goroutines until the owner is closed, then refuses
// without running f; Wait sees every goroutine Spawn started.
func TestOwnerSpawn(t *testing.T) {
	var (
		mu     sync.Mutex
		closed bool
		wg     sync.WaitGroup
		ran    atomic.Int32
	)
	o := Owner{Mu: &mu, Closed: &closed, WG: &wg}
	release := make(chan struct{})
	for range 3 {
		if !o.Spawn(func() { <-release; ran.Add(1) }) {
			t.Fatal("refused before close")
		}
	}
	mu.Lock()
	closed = true
	mu.Unlock()
	if o.Spawn(func() { ran.Add(100) }) || o.Track() {
		t.Fatal("started after close")
	}
	close(release)
	wg.Wait()
	if n := ran.Load(); n != 3 {
		t.Fatalf("%d ran before Wait returned, want 3", n)
	}
}
