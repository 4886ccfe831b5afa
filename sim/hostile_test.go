package sim

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// seedKey returns the key with the seed byte repeated, as in docs/protocol.md §12:
// 1 = A, 2 = B, 3 = C (the highest), 4 = M (between A and C), 5 = D.
func seedKey(b byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{b}, ed25519.SeedSize))
}

// hostile is the chain B – A – C of the stock capture with a hostile peer
// M attached to A. M runs a real Router, but the tests also put frames of
// their own making on its link to A.
type hostile struct {
	net        *Network
	a, b, c, m *Node
	link       *Link       // A–M
	mPort      router.Port // M's port on that link
	aPort      router.Port // A's port on that link
	privM      ed25519.PrivateKey
}

func newHostile(t *testing.T) *hostile {
	t.Helper()
	h := &hostile{net: New(Config{}), privM: seedKey(4)}
	h.a = h.net.AddNode("A", seedKey(1))
	h.b = h.net.AddNode("B", seedKey(2))
	h.c = h.net.AddNode("C", seedKey(3))
	h.m = h.net.AddNode("M", h.privM)
	for _, pair := range [][2]*Node{{h.b, h.a}, {h.a, h.c}} {
		if _, err := h.net.Connect(pair[0], pair[1], 0); err != nil {
			t.Fatal(err)
		}
	}
	l, err := h.net.Connect(h.a, h.m, 0)
	if err != nil {
		t.Fatal(err)
	}
	h.link, h.aPort, h.mPort = l, l.PortA, l.PortB
	h.net.RunFor(20 * time.Second)
	if err := h.net.TreeConverged(); err != nil {
		t.Fatal(err)
	}
	h.mustRoute(t)
	return h
}

// mustRoute checks that A still carries traffic between B and C, both
// ways, and reaches both itself.
func (h *hostile) mustRoute(t *testing.T) {
	t.Helper()
	h.net.ForgetCoords()
	pairs := []Pair{{h.b, h.c}, {h.c, h.b}, {h.a, h.b}, {h.a, h.c}}
	if res := h.net.Probe(pairs, 100*time.Millisecond); !res.OK() {
		t.Fatalf("A no longer routes for its honest peers: %v", res)
	}
}

// inject puts frames back to back on M's link to A (before M's own Router
// can react to anything) and lets A handle them.
func (h *hostile) inject(t *testing.T, ms ...wire.Message) {
	t.Helper()
	raw := make([][]byte, len(ms))
	for i, m := range ms {
		raw[i] = encode(m)
	}
	h.injectRaw(t, raw...)
}

func (h *hostile) injectRaw(t *testing.T, frames ...[]byte) {
	t.Helper()
	for _, f := range frames {
		if err := h.net.InjectFrame(h.m, h.mPort, f); err != nil {
			t.Fatal(err)
		}
	}
	h.net.RunFor(50 * time.Millisecond)
}

func (h *hostile) nowMS() uint64 { return uint64(h.net.Now().UnixMilli()) }

// selfRooted is M's own announcement as root with seq, signed for port.
func (h *hostile) selfRooted(seq uint64, port uint64) *wire.TreeAnnouncement {
	return (&wire.TreeAnnouncement{Root: wire.Root{Key: h.m.Key, Seq: seq}}).Signed(h.privM, port)
}

func TestHostilePeerIsDisconnected(t *testing.T) {
	privD := seedKey(5)
	cases := []struct {
		name   string
		reason router.DisconnectReason
		frames func(h *hostile) []wire.Message
	}{
		{"forged signature", router.DisconnectBadSignature, func(h *hostile) []wire.Message {
			a := h.selfRooted(9, uint64(h.mPort))
			a.Hops[0].Signature[5] ^= 1
			return []wire.Message{a}
		}},
		{"replayed older root sequence", router.DisconnectOldSequence, func(h *hostile) []wire.Message {
			return []wire.Message{h.selfRooted(7, uint64(h.mPort)), h.selfRooted(6, uint64(h.mPort))}
		}},
		{"duplicate key", router.DisconnectDuplicateKey, func(h *hostile) []wire.Message {
			return []wire.Message{h.selfRooted(9, 3).Signed(privD, 4).Signed(h.privM, uint64(h.mPort))}
		}},
		{"wrong last-hop key", router.DisconnectWrongSender, func(h *hostile) []wire.Message {
			return []wire.Message{h.selfRooted(9, 3).Signed(privD, uint64(h.mPort))}
		}},
		{"first hop not the root", router.DisconnectRootHop, func(h *hostile) []wire.Message {
			a := h.selfRooted(9, uint64(h.mPort))
			a.Root.Key = h.c.Key
			return []wire.Message{a}
		}},
		{"port 0", router.DisconnectPortZero, func(h *hostile) []wire.Message {
			return []wire.Message{h.selfRooted(9, 0)}
		}},
		{"zero hops", router.DisconnectNoHops, func(h *hostile) []wire.Message {
			return []wire.Message{&wire.TreeAnnouncement{Root: wire.Root{Key: h.m.Key, Seq: 9}}}
		}},
		{"bad wakeup signature", router.DisconnectBadWakeupSignature, func(h *hostile) []wire.Message {
			p := wire.NewSignedRoot(h.privM, h.nowMS(), h.a.Router.Root())
			p.Signature[0] ^= 1
			return []wire.Message{&wire.WakeupBroadcast{HopLimit: 5, Source: h.m.Key, Payload: p.Append(nil)}}
		}},
		{"malformed wakeup payload", router.DisconnectBadWakeupPayload, func(h *hostile) []wire.Message {
			return []wire.Message{&wire.WakeupBroadcast{HopLimit: 5, Source: h.m.Key, Payload: []byte{1, 2, 3}}}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHostile(t)
			h.inject(t, c.frames(h)...)
			st := h.a.Router.Stats()
			if st.Disconnects[c.reason.String()] != 1 || len(st.Disconnects) != 1 {
				t.Fatalf("A's disconnects: %v, want one %s", st.Disconnects, c.reason)
			}
			var perr *router.ProtocolError
			if last := h.net.Stats().LastDisconnect; !errors.As(last, &perr) || perr.Reason != c.reason || perr.Port != h.aPort {
				t.Errorf("disconnect reason %v, want a ProtocolError %s on %s", last, c.reason, h.aPort)
			}
			if h.link.Up() {
				t.Error("the link to M is still up")
			}
			for _, p := range h.a.Router.Peers() {
				if p.Key == h.m.Key {
					t.Errorf("A still lists M as a peer: %+v", p)
				}
			}
			h.mustRoute(t)
		})
	}
}

func TestBadFramesAreDroppedAndThePeerStays(t *testing.T) {
	cases := []struct {
		name string
		drop router.DropReason
		raw  func(h *hostile) []byte
	}{
		{"bad bootstrap signature", router.DropBadBootstrapSignature, func(h *hostile) []byte {
			p := wire.NewSignedRoot(h.privM, h.nowMS(), h.a.Router.Root())
			p.Signature[0] ^= 1
			return encode(&wire.Bootstrap{Originator: h.m.Key, Watermark: wire.StartWatermark, Payload: p.Append(nil)})
		}},
		{"bootstrap for another root", router.DropBootstrapWrongRoot, func(h *hostile) []byte {
			root := h.a.Router.Root()
			root.Seq += 5
			p := wire.NewSignedRoot(h.privM, h.nowMS(), root)
			return encode(&wire.Bootstrap{Originator: h.m.Key, Watermark: wire.StartWatermark, Payload: p.Append(nil)})
		}},
		{"replayed bootstrap", router.DropBootstrapReplay, func(h *hostile) []byte {
			// M's real bootstraps pass A on their way to C, so A has a route
			// to M from a newer bootstrap than this one.
			p := wire.NewSignedRoot(h.privM, h.nowMS()-60_000, h.a.Router.Root())
			return encode(&wire.Bootstrap{Originator: h.m.Key, Watermark: wire.StartWatermark, Payload: p.Append(nil)})
		}},
		{"malformed bootstrap payload", router.DropBadBootstrapPayload, func(h *hostile) []byte {
			return encode(&wire.Bootstrap{Originator: h.m.Key, Watermark: wire.StartWatermark, Payload: []byte{0x80}})
		}},
		{"unknown frame type", router.DropUnknownType, func(h *hostile) []byte {
			return []byte{'p', 'i', 'n', 'e', 0, 9, 0, 0, 0, 14, 1, 2, 3, 4}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHostile(t)
			before := h.a.Router.Stats().Drops[c.drop.String()]
			h.injectRaw(t, c.raw(h))
			st := h.a.Router.Stats()
			if got := st.Drops[c.drop.String()]; got != before+1 {
				t.Errorf("drops %s: %d, want %d (all drops %v)", c.drop, got, before+1, st.Drops)
			}
			if len(st.Disconnects) != 0 || !h.link.Up() {
				t.Fatalf("M was disconnected: %v", st.Disconnects)
			}
			h.mustRoute(t)
			// M still counts for routing: A reaches it.
			h.net.ForgetCoords()
			if res := h.net.Probe([]Pair{{h.b, h.m}, {h.m, h.c}}, 100*time.Millisecond); !res.OK() {
				t.Errorf("traffic with M: %v", res)
			}
		})
	}
}

// TestKeepaliveIsNotDropped: a keepalive reaching the router is link-local
// liveness: never a drop, and the peer stays.
func TestKeepaliveIsNotDropped(t *testing.T) {
	h := newHostile(t)
	before := h.a.Router.Stats()
	h.injectRaw(t, encode(&wire.Keepalive{}))
	st := h.a.Router.Stats()
	// Drops lists every reason, zeros too: compare the counts, not the keys.
	if !maps.Equal(st.Drops, before.Drops) || len(st.Disconnects) != 0 || !h.link.Up() {
		t.Fatalf("keepalive dropped or disconnected: drops %v, disconnects %v", st.Drops, st.Disconnects)
	}
	h.mustRoute(t)
}

// TestOwnKeyInHopsIsNotAnError: an announcement that passed through the
// receiver is a loop the decision table ignores (docs/protocol.md §4.5); only a key that
// signs twice is a protocol error (docs/protocol.md §4.4).
func TestOwnKeyInHopsIsNotAnError(t *testing.T) {
	h := newHostile(t)
	root := h.a.Router.Root()
	a := (&wire.TreeAnnouncement{Root: root}).Signed(seedKey(3), 1).Signed(seedKey(1), 2).Signed(h.privM, uint64(h.mPort))
	parent := h.a.Router.Parent()
	h.inject(t, a)
	if st := h.a.Router.Stats(); len(st.Disconnects) != 0 || !h.link.Up() {
		t.Fatalf("A disconnected M: %v", st.Disconnects)
	}
	if h.a.Router.Parent() != parent {
		t.Errorf("A changed parent from %v to %v on a looping announcement", parent, h.a.Router.Parent())
	}
	h.mustRoute(t)
}

// TestMalformedBytesThroughTheSim: bytes the codec refuses close that one
// link (as a link reader does) and A keeps routing for the others.
func TestMalformedBytesThroughTheSim(t *testing.T) {
	for _, raw := range [][]byte{
		{'p', 'i', 'n', 'e', 0, 1, 0, 0, 0, 5},              // declared length below the header
		{'p', 'i', 'n', 'e', 0, 3, 0, 10, 0, 11, 0},         // traffic without its payload length
		{'x', 'x', 'x', 'x', 0, 0, 0, 0, 0, 10},             // no magic
		append(encode(&wire.Keepalive{}), 0xff),             // trailing byte
		{'p', 'i', 'n', 'e', 0, 1, 0, 0, 0, 14, 0, 9, 1, 2}, // announcement shorter than it says
	} {
		h := newHostile(t)
		h.injectRaw(t, raw)
		if h.link.Up() || h.net.Stats().DecodeErrors != 1 {
			t.Errorf("%x: link up %v, %d decode errors; want the link closed", raw, h.link.Up(), h.net.Stats().DecodeErrors)
		}
		h.mustRoute(t)
	}
}

func encode(m wire.Message) []byte {
	b, err := m.Append(nil)
	if err != nil {
		panic(err)
	}
	return b
}
