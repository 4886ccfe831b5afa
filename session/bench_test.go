package session

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// direct is a Transport that hands what it sends straight to the peer's
// Manager and gives the buffer back, as the datapath and overlay do
// between them once the frame is written.
type direct struct {
	peer      *Manager
	src       wire.PublicKey
	delivered int
}

func (d *direct) Send(_ wire.PublicKey, buf []byte, off int) {
	if d.peer != nil {
		_ = d.peer.HandlePayload(t0, d.src, buf[off:])
	}
	bufpool.Put(buf)
}
func (d *direct) Deliver(wire.PublicKey, []byte)                { d.delivered++ }
func (*direct) EchoReply(wire.PublicKey, uint64, []byte)        {}
func (*direct) Established(wire.PublicKey, bool, time.Duration) {}
func (*direct) Unreachable(wire.PublicKey, [][]byte)            {}

// directPair is two Managers joined by direct transports.
type directPair struct {
	x, y   *Manager
	tx, ty *direct
	kx, ky wire.PublicKey
}

// newDirectPair makes x and y, both announcing mtu: Send holds back
// larger packets for Packet Too Big, so the benchmark's must fit.
func newDirectPair(b *testing.B, mtu int) *directPair {
	px, py := testhelp.SeedKey(1), testhelp.SeedKey(2)
	p := &directPair{kx: wire.PublicKeyOf(px), ky: wire.PublicKeyOf(py)}
	p.tx, p.ty = &direct{src: p.kx}, &direct{src: p.ky}
	var err error
	if p.x, err = NewManager(px, Config{MTU: mtu}, p.tx); err != nil {
		b.Fatal(err)
	}
	if p.y, err = NewManager(py, Config{MTU: mtu}, p.ty); err != nil {
		b.Fatal(err)
	}
	p.tx.peer, p.ty.peer = p.y, p.x
	return p
}

// establish sends x's first packet: the handshake, then the packet, which
// y must have delivered.
func (p *directPair) establish(b *testing.B, pkt []byte) {
	p.x.Send(t0, p.ky, pkt)
	if p.ty.delivered != 1 {
		b.Fatalf("session not established: %d delivered", p.ty.delivered)
	}
}

// BenchmarkSendReceive1400 sends 1400-byte packets from one Manager to
// another over an established session, through Transport both ways
// (seal into a pool buffer, Send, HandlePayload, replay window, source
// check, Deliver), and reports the rate as a ratio to raw AEAD sealing
// and opening the same bytes, measured in the same run.
func BenchmarkSendReceive1400(b *testing.B) {
	const size = 1400
	p := newDirectPair(b, size)
	x, y, kx, ky, ty := p.x, p.y, p.kx, p.ky, p.ty
	pkt := packet(kx, ky, 0)
	pkt = append(pkt, make([]byte, size-len(pkt))...)
	binary.BigEndian.PutUint16(pkt[4:], uint16(size-40))
	p.establish(b, pkt)
	b.SetBytes(size)
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		x.Send(t0, ky, pkt)
		n++
	}
	el := time.Since(start)
	b.StopTimer()
	if ty.delivered != n+1 {
		b.Fatalf("%d of %d delivered", ty.delivered-1, n)
	}
	s, r := x.peers[ky].cur, y.peers[kx].cur
	buf := make([]byte, size+16)
	var nonce [12]byte
	rawStart := time.Now()
	for i := range n {
		binary.LittleEndian.PutUint64(nonce[4:], uint64(i))
		ct := s.send.Seal(buf[:0], nonce[:], buf[:size], nil)
		if _, err := r.recv.Open(ct[:0], nonce[:], ct, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(time.Since(rawStart).Seconds()/el.Seconds(), "ratio_to_raw_aead")
}
