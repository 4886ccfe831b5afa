package router

import (
	"crypto/ed25519"
	"encoding/binary"
	"slices"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// fuzzKeys are the keys fuzzed frames are made of: the router's own (A,
// seed 1) and five others, so that roots, hops, originators and peers
// collide often. Their private keys sign the frames, so that fuzzing gets
// past the signature checks into the tree and SNEK logic.
var fuzzKeys = func() []ed25519.PrivateKey {
	out := make([]ed25519.PrivateKey, 6)
	for i := range out {
		out[i] = testhelp.SeedKey(byte(i + 1))
	}
	return out
}()

// fuzzInput hands out the fuzzer's bytes; past the end it gives zeros.
type fuzzInput struct{ b []byte }

func (f *fuzzInput) done() bool { return len(f.b) == 0 }
func (f *fuzzInput) byte() byte {
	if len(f.b) == 0 {
		return 0
	}
	c := f.b[0]
	f.b = f.b[1:]
	return c
}
func (f *fuzzInput) u16() uint16 { return uint16(f.byte())<<8 | uint16(f.byte()) }
func (f *fuzzInput) bool() bool  { return f.byte()&1 == 1 }
func (f *fuzzInput) port() Port  { return Port(f.byte()%7) + 1 } // 1..7; 7 is seldom up
func (f *fuzzInput) key() int    { return int(f.byte()) % len(fuzzKeys) }
func (f *fuzzInput) pub() wire.PublicKey {
	if f.byte()%8 == 0 {
		// A key no node has, for successor delivery.
		var k wire.PublicKey
		k[0], k[1] = f.byte(), f.byte()
		return k
	}
	return wire.PublicKeyOf(fuzzKeys[f.key()])
}
func (f *fuzzInput) coords() wire.Coordinates {
	n := int(f.byte() % 5)
	c := make(wire.Coordinates, n)
	for i := range c {
		c[i] = uint64(f.byte() % 8)
	}
	return c
}
func (f *fuzzInput) root(r *Router) wire.Root {
	if f.bool() {
		return r.Root()
	}
	return wire.Root{Key: f.pub(), Seq: uint64(f.byte() % 4)}
}

// announcement builds a signed announcement: a root from the pool, up to 4
// hops, each really signed by its key unless the fuzzer corrupts one. The
// first hop is usually the root and the last usually the sending peer, so
// that most announcements pass the checks.
func (f *fuzzInput) announcement(r *Router, from Port) *wire.TreeAnnouncement {
	rootKey := f.key()
	a := &wire.TreeAnnouncement{Root: wire.Root{Key: wire.PublicKeyOf(fuzzKeys[rootKey]), Seq: uint64(f.byte() % 4)}}
	n := int(f.byte() % 5)
	for i := 0; i < n; i++ {
		k := f.key()
		switch {
		case i == 0 && f.byte()%8 != 0:
			k = rootKey
		case i == n-1 && r.peers[from] != nil && f.byte()%8 != 0:
			for j, p := range fuzzKeys {
				if wire.PublicKeyOf(p) == r.peers[from].key {
					k = j
				}
			}
		}
		port := uint64(f.byte() % 6)
		if port == 0 && f.bool() {
			port = 1
		}
		a = a.Signed(fuzzKeys[k], port)
	}
	if n > 0 && f.byte()%16 == 0 {
		a.Hops[f.byte()%byte(n)].Signature[0] ^= 1
	}
	return a
}

func (f *fuzzInput) signedRoot(r *Router, now time.Time, signer int) []byte {
	p := wire.NewSignedRoot(fuzzKeys[signer], uint64(now.UnixMilli())-uint64(f.byte()), f.root(r))
	if f.byte()%16 == 0 {
		p.Signature[1] ^= 1
	}
	if f.byte()%32 == 0 {
		return []byte{f.byte()}
	}
	return p.Append(nil)
}

// FuzzRouter drives one router with random sequences of peerings, frames
// and ticks, and checks after every step that it did not panic and that its
// state is consistent.
func FuzzRouter(f *testing.F) {
	f.Add([]byte{0, 1, 1, 0, 2, 2, 3, 1, 1, 2, 1, 1, 1, 1, 1, 4, 2, 0, 0, 1, 2, 10, 0, 9})
	f.Add([]byte{0, 1, 2, 0, 2, 3, 3, 1, 2, 1, 0, 1, 1, 1, 3, 2, 2, 1, 1, 1, 0, 5, 1, 0, 3, 1, 2, 3, 6, 2, 1, 1, 5, 0, 4})
	f.Add([]byte{7, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 3, 1, 2, 0, 4, 5, 0, 7, 1, 1, 1, 3, 3, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{b: data}
		opts := Options{HopLimiting: in.bool(), DisableWakeups: in.bool(), MaxSNEKEntries: 3, MaxWakeupSeen: 2, CoordCacheSize: 2}
		r := New(fuzzKeys[0], opts)
		now := t0
		for steps := 0; !in.done() && steps < 64; steps++ {
			var acts []Action
			switch op := in.byte() % 10; op {
			case 0:
				acts = r.PeerUp(now, in.port(), wire.PublicKeyOf(fuzzKeys[in.key()]), PeerType(in.byte()%5))
			case 1:
				acts = r.PeerDown(now, in.port())
			case 2:
				now = now.Add(time.Duration(in.u16()) * 10 * time.Millisecond)
				acts = r.Tick(now)
			case 3:
				now = now.Add(time.Duration(in.byte()) * time.Minute)
				acts = r.Tick(now)
			case 4:
				from := in.port()
				acts = r.HandleFrame(now, from, roundTrip(t, in.announcement(r, from)))
			case 5:
				o := in.key()
				b := &wire.Bootstrap{Originator: wire.PublicKeyOf(fuzzKeys[o]), Watermark: wire.Watermark{Key: in.pub(), Seq: uint64(in.byte())}}
				b.Payload = in.signedRoot(r, now, o)
				acts = r.HandleFrame(now, in.port(), roundTrip(t, b))
			case 6:
				tr := &wire.Traffic{HopLimit: in.byte() % 12, DestinationCoords: in.coords(), SourceCoords: in.coords(),
					Destination: in.pub(), Source: in.pub(), Watermark: wire.Watermark{Key: in.pub(), Seq: uint64(in.byte() % 3)}, Payload: []byte{in.byte()}}
				acts = r.HandleFrame(now, in.port(), roundTrip(t, tr))
			case 7:
				o := in.key()
				w := &wire.WakeupBroadcast{HopLimit: in.byte() % 7, Source: wire.PublicKeyOf(fuzzKeys[o])}
				w.Payload = in.signedRoot(r, now, o)
				acts = r.HandleFrame(now, in.port(), roundTrip(t, w))
			case 8:
				acts = r.SendTraffic(now, in.pub(), []byte{in.byte()})
			case 9:
				// Whatever the codec makes of raw bytes.
				n := int(in.byte() % 24)
				raw := make([]byte, 0, 10+n)
				raw = append(raw, 'p', 'i', 'n', 'e', 0, in.byte()%8, 0, in.byte())
				raw = binary.BigEndian.AppendUint16(raw, uint16(10+n))
				for i := 0; i < n; i++ {
					raw = append(raw, in.byte())
				}
				if m, err := wire.Decode(raw); err == nil {
					acts = r.HandleFrame(now, in.port(), m)
				}
			}
			checkInvariants(t, r, acts)
		}
	})
}

// roundTrip encodes and decodes m, as a frame travels.
func roundTrip(t *testing.T, m wire.Message) wire.Message {
	t.Helper()
	b, err := m.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	out, err := wire.Decode(b)
	if err != nil {
		t.Fatalf("%v\n%x", err, b)
	}
	return out
}

func checkInvariants(t *testing.T, r *Router, acts []Action) {
	t.Helper()
	n := 0
	for port, p := range r.peers {
		if p != nil {
			n++
			if p.port != Port(port) {
				t.Fatalf("peer on %d says port %d", port, p.port)
			}
		}
	}
	if n != r.npeers {
		t.Fatalf("npeers %d, %d peers", r.npeers, n)
	}
	if r.parent != NoPort {
		p := r.peers[r.parent]
		if p == nil || p.ann == nil {
			t.Fatalf("parent %v is not a peer with an announcement", r.parent)
		}
		if r.waiting {
			t.Fatal("a parent during the reparent wait")
		}
		if p.ann.hasKey(r.key) {
			t.Fatal("our key is in the parent's announcement")
		}
		if p.ann.root.Key.Compare(r.key) <= 0 {
			t.Fatalf("parent's root %s is not above our key", p.ann.root.Key)
		}
		if !r.Coords().Equal(p.ann.ann.Coordinates()) || r.Root() != p.ann.root {
			t.Fatalf("coords %v root %v, parent's announcement says %v %v", r.Coords(), r.Root(), p.ann.ann.Coordinates(), p.ann.root)
		}
	} else if len(r.Coords()) != 0 || r.Root() != (wire.Root{Key: r.key, Seq: r.seq}) {
		t.Fatalf("root node with coords %v root %v", r.Coords(), r.Root())
	}
	s := r.Snapshot()
	if !s.Coords().Equal(r.Coords()) || s.Root() != r.Root() || len(s.peers) != n || len(s.entries) != len(r.table) {
		t.Fatal("snapshot differs from the state")
	}
	if len(r.table) > r.opts.MaxSNEKEntries || len(r.seen) > r.opts.MaxWakeupSeen || r.cache.Len() > r.opts.CoordCacheSize {
		t.Fatalf("bounds: %d routes, %d seen, %d cached", len(r.table), len(r.seen), r.cache.Len())
	}
	for k, e := range r.table {
		if e.origin != k || e.source == LocalPort || r.peers[e.source] == nil {
			t.Fatalf("route to %s from %v, not a peer", k, e.source)
		}
		if e.dest != NoPort && e.dest != LocalPort && r.peers[e.dest] == nil {
			t.Fatalf("route to %s towards %v, not a peer", k, e.dest)
		}
	}
	if len(r.routes) != len(r.table) || !slices.IsSortedFunc(r.routes, func(a, b *snekEntry) int { return a.origin.Compare(b.origin) }) {
		t.Fatalf("%d sorted routes for %d in the table, or not in key order", len(r.routes), len(r.table))
	}
	for _, e := range r.routes {
		if r.table[e.origin] != e {
			t.Fatalf("sorted route to %s is not the table's", e.origin)
		}
	}
	if r.hasDescending && r.table[r.descending] == nil {
		t.Fatal("descending points to no route")
	}
	if r.started == r.NextTick().IsZero() {
		t.Fatalf("started %v, next tick %v", r.started, r.NextTick())
	}
	for _, a := range acts {
		switch a.Kind {
		case ActionSend:
			if r.peers[a.Port] == nil {
				t.Fatalf("send on %v, which has no peer", a.Port)
			}
			m, err := wire.Decode(a.Frame)
			if err != nil || m.Type() != a.Type || a.Protocol != a.Type.IsProtocol() {
				t.Fatalf("sent a bad frame (%v): %x", err, a.Frame)
			}
		case ActionDisconnect:
			if a.Port <= MaxPort && r.peers[a.Port] != nil {
				t.Fatalf("disconnected %v is still a peer", a.Port)
			}
		}
	}
}
