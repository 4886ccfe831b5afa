package session

import (
	"encoding/binary"
	"fmt"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// BenchmarkSendSeal measures the sending half alone for a packet of the
// default TUN MTU and a 1 280-byte one: Send, which copies the packet
// next to its inner type byte and seals in place, against SendFramed,
// which seals it from where it lies, in the same run. The transport drops
// what it is given (into the pool).
func BenchmarkSendSeal(b *testing.B) {
	for _, size := range []int{65000, 1280} {
		for _, framed := range []bool{false, true} {
			name := "Send"
			if framed {
				name = "SendFramed"
			}
			b.Run(fmt.Sprintf("%s/%d", name, size), func(b *testing.B) {
				px, py := testhelp.SeedKey(1), testhelp.SeedKey(2)
				kx, ky := wire.PublicKeyOf(px), wire.PublicKeyOf(py)
				tx, ty := &direct{src: kx}, &direct{src: ky}
				x, err := NewManager(px, Config{MTU: size}, tx)
				if err != nil {
					b.Fatal(err)
				}
				y, err := NewManager(py, Config{MTU: size}, ty)
				if err != nil {
					b.Fatal(err)
				}
				tx.peer, ty.peer = y, x
				buf := make([]byte, 1+size)
				pkt := packet(kx, ky, 0)
				copy(buf[1:], pkt)
				binary.BigEndian.PutUint16(buf[1+4:], uint16(size-40))
				x.Send(t0, ky, buf[1:]) // handshake, then the queued packet
				if ty.delivered != 1 {
					b.Fatalf("session not established: %d delivered", ty.delivered)
				}
				tx.peer = nil // from here on, sealed messages are only dropped
				b.SetBytes(int64(size))
				b.ReportAllocs()
				for b.Loop() {
					if framed {
						x.SendFramed(t0, ky, buf)
					} else {
						x.Send(t0, ky, buf[1:])
					}
				}
			})
		}
	}
}
