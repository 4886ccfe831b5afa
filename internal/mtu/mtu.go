// Package mtu is the TUN MTU arithmetic: how large an IPv6 packet can be
// and still travel in one Pinecone Traffic frame after the session layer's
// encryption and the frame's own header, keys, watermark and coordinates.
//
// It is its own small package so that config (which refuses a tun.mtu that
// cannot work, with file and line) and daemon (which picks the automatic
// MTU and announces it in handshakes) use the same numbers: config must not
// import daemon. It imports only the wire codec, never the overlay runtime
// or the session's envelope package, so that config does not pull them in
// (`go list -deps ./config`); the test checks SessionOverhead against
// envelope's own sizes. Nothing here has state.
package mtu

import "github.com/pineconed/pineconed/overlay/wire"

// Min is the smallest TUN MTU: the IPv6 minimum link MTU (RFC 8200 §5).
const Min = 1280

// CoordAllowance is the number of bytes reserved for each of the two
// coordinate lists a Traffic frame may carry (source and destination) when
// working out the default MTU. A coordinate is a varint port number, at most
// 2 bytes for the 253 usable ports, so 64 bytes covers a tree 32 hops deep
// even with only high port numbers, and 64 hops with low ones; real Pinecone
// trees are a handful of hops deep. A frame whose coordinates are longer
// still travels if its packet is smaller than the MTU by the difference;
// larger ones are refused by the overlay.
const CoordAllowance = 64

// SessionOverhead is what the session layer adds around an IPv6 packet in a
// Traffic payload: the envelope's transport header (6-byte marker, version
// and type; 4-byte receiver index; 8-byte counter), the inner type byte and
// the 16-byte AEAD tag. TestArithmetic holds it equal to
// envelope.TransportHeaderSize + 1 + envelope.TagSize.
const SessionOverhead = (6 + 4 + 8) + 1 + 16

// Default is the MTU used when the configuration leaves it at 0: the largest
// IPv6 packet that still fits one Traffic frame after the frame header, both
// keys, the SNEK watermark, CoordAllowance bytes of coordinates on each side
// and SessionOverhead (65 250 bytes). It is never below Min.
func Default() int {
	return max(wire.MaxTrafficPayload(CoordAllowance)-SessionOverhead, Min)
}

// Max is the largest MTU whose packets fit one Traffic frame at all: with
// empty coordinates on both sides (a node talking to the root) and
// SessionOverhead (65 378 bytes). A configured MTU above it cannot work and
// is refused.
func Max() int {
	return wire.MaxTrafficPayload(0) - SessionOverhead
}
