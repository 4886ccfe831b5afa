package router

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestBootstrapSearchMatchesSnapshot: the bootstrap next hop computed from
// the unsorted table, without rebuilding the snapshot, is the one the
// rebuilt snapshot's §5.3 search gives, for random destinations and
// watermarks after every bootstrap that changed the table.
func TestBootstrapSearchMatchesSnapshot(t *testing.T) {
	r := childOfC(t, Options{DisableWakeups: true, InsecureSkipSignatures: true})
	rng := rand.New(rand.NewPCG(1, 2))
	randomKey := func() wire.PublicKey {
		var k wire.PublicKey
		for i := range k {
			k[i] = byte(rng.IntN(256))
		}
		return k
	}
	now := t0
	origins := make([][]byte, 40)
	for i := range origins {
		origins[i] = testhelp.SeedKey(byte(10 + i))
	}
	checked := 0
	for round := 0; round < 400; round++ {
		now = now.Add(37 * time.Millisecond)
		priv := origins[rng.IntN(len(origins))]
		mustNoDisconnect(t, r.HandleFrame(now, Port(1+rng.IntN(2)), bootstrapFrom(priv, now, r.Root())))
		if !r.tableDirty {
			continue
		}
		dest := randomKey()
		if rng.IntN(3) == 0 {
			dest = wire.PublicKeyOf(origins[rng.IntN(len(origins))])
		}
		w := wire.StartWatermark
		if rng.IntN(2) == 0 {
			w = wire.Watermark{Key: randomKey(), Seq: uint64(rng.IntN(3)) * uint64(now.UnixMilli())}
		}
		at := now.Add(time.Duration(rng.IntN(12)) * time.Second) // some routes expired
		fastPort, fastWM := r.bootstrapNextHop(at, dest, w)
		slowPort, slowWM := r.Snapshot().nextHopSNEK(at, dest, true, w)
		if fastPort != slowPort || fastWM != slowWM {
			t.Fatalf("round %d: unsorted search %v %v, snapshot %v %v", round, fastPort, fastWM, slowPort, slowWM)
		}
		checked++
	}
	if checked < 100 || len(r.table) < 20 {
		t.Fatalf("only %d comparisons over a table of %d routes", checked, len(r.table))
	}
}
