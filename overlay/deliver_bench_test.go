package overlay

import (
	"fmt"
	"testing"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/overlay/wire"
)

// BenchmarkReceiveDeliver measures the node's half of the inbound path:
// a Traffic frame for us, in the pool buffer a link read it into, through
// Receive to the application and back to the pool. "queue" takes it from
// Deliveries on the same goroutine (the hand-off itself is not measured),
// "direct" through HandleDeliveries. Frames of a 64 KiB TUN packet and of
// a 1 280-byte one (the IPv6 minimum MTU).
func BenchmarkReceiveDeliver(b *testing.B) {
	for _, size := range []int{65000, 1280} {
		for _, mode := range []string{"queue", "direct"} {
			b.Run(fmt.Sprintf("%s/payload=%d", mode, size), func(b *testing.B) {
				n := New(benchKey(3, 0), Config{})
				defer n.Close()
				port, err := n.Attach(PeerInfo{Key: wire.PublicKeyOf(benchKey(3, 1)), Transport: "mem"}, sinkLink{})
				if err != nil {
					b.Fatal(err)
				}
				f := n.snap.Load().NewTraffic(n.now(), n.PublicKey(), make([]byte, size))
				enc, err := f.Append(nil)
				if err != nil {
					b.Fatal(err)
				}
				delivered := 0
				if mode == "direct" {
					n.HandleDeliveries(func(d Delivery) { delivered++; d.Release() })
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					frame := bufpool.Alloc(len(enc))
					copy(frame, enc)
					if err := n.Receive(port, frame); err != nil {
						b.Fatal(err)
					}
					if mode == "queue" {
						select {
						case d := <-n.Deliveries():
							delivered++
							d.Release()
						default:
						}
					}
				}
				if delivered == 0 {
					b.Fatal("nothing delivered")
				}
			})
		}
	}
}
