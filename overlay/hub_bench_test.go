package overlay

import (
	"crypto/ed25519"
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// sinkLink is a Link that drops everything it is given, as a peer that
// reads fast would: the benchmark measures the node, not the links.
type sinkLink struct{}

func (sinkLink) Send(frame []byte, _ bool) bool { bufpool.Put(frame); return true }
func (sinkLink) Close(error)                    {}

// benchKey is a deterministic private key for benchmark identities.
func benchKey(tag byte, i int) ed25519.PrivateKey {
	var seed [ed25519.SeedSize]byte
	seed[0] = tag
	binary.BigEndian.PutUint32(seed[1:], uint32(i))
	return ed25519.NewKeyFromSeed(seed[:])
}

// BenchmarkHubControlFrames measures how many bootstraps a second a hub
// node processes (Node.Receive: decode, state machine, relay, publish)
// with 50 and 250 peers and a SNEK table of 2 000 routes, each bootstrap
// refreshing one of them as relayed bootstraps mostly do. The baseline is
// the same benchmark on the code before Router.Publish, run in the same
// session (the file compiles unchanged there). Signatures are off
// (InsecureSkipSignatures) so that the figure is the routing-state work:
// ed25519 verification costs the same per bootstrap either way. The hub's
// clock is virtual (frameGap per frame, an offered load of 10 000 frames a
// second), so that routes do not expire however slow the shared machine
// is during the run.
func BenchmarkHubControlFrames(b *testing.B) {
	const (
		routes = 2000
		// frameGap is the hub clock's step per frame: an offered load of
		// 10 000 control frames a second.
		frameGap = 100 * time.Microsecond
	)
	for _, peers := range []int{50, 250} {
		b.Run(fmt.Sprintf("peers=%d", peers), func(b *testing.B) {
			hubPriv := benchKey(1, 0)
			opts := router.Options{InsecureSkipSignatures: true}
			// The hub's clock advances frameGap per frame received: the
			// policy is measured at a stated offered load, whatever the
			// speed of the (shared, noisy) machine.
			var ticks atomic.Int64
			start := time.Now()
			clock := func() time.Time { return start.Add(time.Duration(ticks.Load()) * frameGap) }
			hub := New(hubPriv, Config{Router: opts, Now: clock})
			defer hub.Close()
			root := hub.Self().Root
			ports := make([]router.Port, peers)
			for i := range ports {
				child := benchKey(2, i)
				port, err := hub.Attach(PeerInfo{Key: wire.PublicKeyOf(child), Transport: "mem"}, sinkLink{})
				if err != nil {
					b.Fatal(err)
				}
				ports[i] = port
				// The peer is our child: it announces our tree back.
				ann := (&wire.TreeAnnouncement{Root: root}).Signed(hubPriv, uint64(port)).Signed(child, 1)
				frame, err := ann.Append(nil)
				if err != nil {
					b.Fatal(err)
				}
				if err := hub.Receive(port, frame); err != nil {
					b.Fatal(err)
				}
			}
			origins := make([]wire.PublicKey, routes)
			for i := range origins {
				origins[i] = wire.PublicKeyOf(benchKey(3, i))
			}
			bootstrap := func(i int) []byte {
				sr := wire.SignedRoot{Seq: uint64(1 + i/routes), Root: root}
				f := &wire.Bootstrap{Originator: origins[i%routes], Watermark: wire.StartWatermark, Payload: sr.Append(nil)}
				frame, err := f.Append(nil)
				if err != nil {
					b.Fatal(err)
				}
				return frame
			}
			i := 0
			for ; i < routes; i++ {
				ticks.Add(1)
				if err := hub.Receive(ports[i%peers], bootstrap(i)); err != nil {
					b.Fatal(err)
				}
			}
			if got := hub.Stats().SNEKEntries; got != routes {
				b.Fatalf("%d SNEK routes after filling, want %d", got, routes)
			}
			// Frames are encoded ahead, outside the timer, in batches
			// with rising sequence numbers (a repeated one would be a
			// cheap replay drop).
			frames := make([][]byte, 4*routes)
			next := len(frames)
			for b.Loop() {
				if next == len(frames) {
					b.StopTimer()
					for j := range frames {
						frames[j] = bootstrap(i + j)
					}
					next = 0
					b.StartTimer()
				}
				ticks.Add(1)
				if err := hub.Receive(ports[i%peers], frames[next]); err != nil {
					b.Fatal(err)
				}
				next++
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "frames/s")
			if got := hub.Stats().SNEKEntries; got != routes {
				b.Fatalf("%d SNEK routes after the run, want %d", got, routes)
			}
		})
	}
}
