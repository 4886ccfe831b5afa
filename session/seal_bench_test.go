package session

import (
	"encoding/binary"
	"fmt"
	"testing"
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
				p := newDirectPair(b, size)
				x, ky := p.x, p.ky
				buf := make([]byte, 1+size)
				copy(buf[1:], packet(p.kx, ky, 0))
				binary.BigEndian.PutUint16(buf[1+4:], uint16(size-40))
				p.establish(b, buf[1:])
				p.tx.peer = nil // from here on, sealed messages are only dropped
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
