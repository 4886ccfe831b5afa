package mtu

import (
	"testing"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/session"
)

// The numbers, worked out by hand from the wire format, so that a change in
// overlay or envelope that moves them is noticed.
func TestArithmetic(t *testing.T) {
	// Frame: 10-byte header, u16 payload length, two coordinate lists (u16
	// length + their bytes), destination and source keys, and for SNEK the
	// watermark key and a varint sequence of at most 10 bytes. Session:
	// 6-byte envelope header, 4-byte index, 8-byte counter, 1 inner type
	// byte, 16-byte tag.
	frame := func(coords int) int { return 10 + 2 + 2*(2+coords) + 2*32 + 32 + 10 }
	const sess = 6 + 4 + 8 + 1 + 16
	if SessionOverhead != sess {
		t.Fatalf("SessionOverhead = %d, want %d", SessionOverhead, sess)
	}
	if env := envelope.TransportHeaderSize + 1 + envelope.TagSize; SessionOverhead != env {
		t.Fatalf("SessionOverhead = %d, envelope's sizes make %d", SessionOverhead, env)
	}
	for _, c := range []int{0, CoordAllowance} {
		if wire.MaxTrafficPayload(c) != overlay.MaxPayload(c) {
			t.Fatalf("coordinates %d: mtu's payload %d, the overlay's %d", c, wire.MaxTrafficPayload(c), overlay.MaxPayload(c))
		}
	}
	if got, want := Default(), wire.MaxFrameSize-frame(CoordAllowance)-sess; got != want || got != 65250 {
		t.Fatalf("Default() = %d, want %d (65250)", got, want)
	}
	if got, want := Max(), wire.MaxFrameSize-frame(0)-sess; got != want || got != 65378 {
		t.Fatalf("Max() = %d, want %d (65378)", got, want)
	}
	if Default() < Min || Default() > Max() {
		t.Fatalf("Default() %d outside [%d, %d]", Default(), Min, Max())
	}
	// The session layer takes every packet the largest MTU allows.
	if Max() > session.MaxPacket {
		t.Fatalf("Max() %d above session.MaxPacket %d", Max(), session.MaxPacket)
	}
}

// A packet of Max() bytes, sealed, fits a frame with empty coordinates and
// one byte more does not.
func TestMaxFitsExactly(t *testing.T) {
	for _, n := range []int{Max(), Max() + 1} {
		f := wire.Traffic{Watermark: wire.Watermark{Seq: ^uint64(0)}, Payload: make([]byte, n+SessionOverhead)}
		b, err := f.Append(nil)
		fits := err == nil && len(b) <= wire.MaxFrameSize
		if fits != (n == Max()) {
			t.Fatalf("packet of %d bytes: frame %d bytes, err %v", n, len(b), err)
		}
	}
}
