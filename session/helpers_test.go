package session

import (
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type msg struct {
	src, dst wire.PublicKey
	payload  []byte
}

type echo struct {
	src  wire.PublicKey
	id   uint64
	data string
}

// node is one Manager on the fabric plus what it received.
type node struct {
	key         wire.PublicKey
	m           *Manager
	got         []uint32 // sequence numbers of delivered packets
	gotFrom     []wire.PublicKey
	unreachable [][]byte
	echoes      []echo
	established int
}

// funcs is a Transport of optional functions; send sees the message
// without the room in front of it.
type funcs struct {
	send        func(dst wire.PublicKey, p []byte)
	deliver     func(src wire.PublicKey, pkt []byte)
	echo        func(src wire.PublicKey, id uint64, data []byte)
	established func(remote wire.PublicKey, initiator bool, latency time.Duration)
	unreachable func(dst wire.PublicKey, packets [][]byte)
}

func (f funcs) Send(dst wire.PublicKey, buf []byte, off int) {
	if f.send != nil {
		f.send(dst, buf[off:])
	}
}

func (f funcs) Deliver(src wire.PublicKey, pkt []byte) {
	if f.deliver != nil {
		f.deliver(src, pkt)
	}
}

func (f funcs) EchoReply(src wire.PublicKey, id uint64, data []byte) {
	if f.echo != nil {
		f.echo(src, id, data)
	}
}

func (f funcs) Established(remote wire.PublicKey, initiator bool, latency time.Duration) {
	if f.established != nil {
		f.established(remote, initiator, latency)
	}
}

func (f funcs) Unreachable(dst wire.PublicKey, packets [][]byte) {
	if f.unreachable != nil {
		f.unreachable(dst, packets)
	}
}

// fabric is an in-memory overlay: messages wait in flight until the test
// delivers them, in order, shuffled, or through a filter that may drop,
// hold or duplicate them. Single goroutine unless a test says otherwise.
type fabric struct {
	t        *testing.T
	nodes    map[wire.PublicKey]*node
	inflight []msg
	errs     int
}

func newFabric(t *testing.T) *fabric {
	return &fabric{t: t, nodes: map[wire.PublicKey]*node{}}
}

func (f *fabric) add(seed byte, cfg Config) *node {
	priv := testhelp.SeedKey(seed)
	n := &node{key: wire.PublicKeyOf(priv)}
	m, err := NewManager(priv, cfg, funcs{
		send: func(dst wire.PublicKey, p []byte) {
			f.inflight = append(f.inflight, msg{n.key, dst, p})
		},
		deliver: func(src wire.PublicKey, pkt []byte) {
			n.got = append(n.got, binary.BigEndian.Uint32(pkt[40:]))
			n.gotFrom = append(n.gotFrom, src)
		},
		echo: func(src wire.PublicKey, id uint64, data []byte) {
			n.echoes = append(n.echoes, echo{src, id, string(data)})
		},
		established: func(wire.PublicKey, bool, time.Duration) { n.established++ },
		unreachable: func(dst wire.PublicKey, pk [][]byte) { n.unreachable = append(n.unreachable, pk...) },
	})
	if err != nil {
		f.t.Fatal(err)
	}
	n.m = m
	f.nodes[n.key] = n
	return n
}

// take removes and returns everything in flight.
func (f *fabric) take() []msg {
	out := f.inflight
	f.inflight = nil
	return out
}

func (f *fabric) deliver(now time.Time, m msg) {
	if n := f.nodes[m.dst]; n != nil {
		if n.m.HandlePayload(now, m.src, m.payload) != nil {
			f.errs++
		}
	}
}

// run delivers until nothing is in flight, in order.
func (f *fabric) run(now time.Time) {
	for i := 0; len(f.inflight) > 0; i++ {
		if i > 100000 {
			f.t.Fatal("fabric did not settle")
		}
		for _, m := range f.take() {
			f.deliver(now, m)
		}
	}
}

// tick ticks every node.
func (f *fabric) tick(now time.Time) {
	for _, n := range f.nodes {
		n.m.Tick(now)
	}
}

// packet builds an IPv6 packet from src to dst carrying seq.
func packet(src, dst wire.PublicKey, seq uint32) []byte {
	return packetFromAddr(addressing.NodeAddr(src), dst, seq)
}

func packetFromAddr(src netip.Addr, dst wire.PublicKey, seq uint32) []byte {
	p := make([]byte, 60)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], 20)
	p[6] = 17
	p[7] = 64
	s, d := src.As16(), addressing.NodeAddr(dst).As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint32(p[40:], seq)
	return p
}

func shuffle(r *rand.Rand, ms []msg) {
	r.Shuffle(len(ms), func(i, j int) { ms[i], ms[j] = ms[j], ms[i] })
}

// establish makes a and b share a session (a initiates) and clears the
// fabric.
func establish(t *testing.T, f *fabric, now time.Time, a, b *node) {
	t.Helper()
	a.m.SendEcho(now, b.key, 0, nil)
	f.run(now)
	if len(a.echoes) == 0 {
		t.Fatal("session not established")
	}
	a.echoes = nil
}

// establishedPair is a fabric with node 1 (a) and node 2 (b), configured by
// ca and cb, that share a session a began at t0.
func establishedPair(t *testing.T, ca, cb Config) (f *fabric, a, b *node) {
	t.Helper()
	f = newFabric(t)
	a, b = f.add(1, ca), f.add(2, cb)
	establish(t, f, t0, a, b)
	return f, a, b
}

func seqs(from, to uint32) []uint32 {
	var s []uint32
	for i := from; i < to; i++ {
		s = append(s, i)
	}
	return s
}

func missing(got []uint32, n uint32) []uint32 {
	var out []uint32
	for i := range n {
		if !slices.Contains(got, i) {
			out = append(out, i)
		}
	}
	return out
}
