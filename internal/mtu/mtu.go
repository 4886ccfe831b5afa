// Package mtu is the TUN MTU arithmetic: how large an IPv6 packet can be
// and still travel in one Pinecone Traffic frame after the session layer's
// encryption and the frame's own header, keys, watermark and coordinates.
//
// It is its own small package so that config (which refuses a tun.mtu that
// cannot work, with file and line) and daemon (which picks the automatic
// MTU and announces it in handshakes) use the same numbers: config must not
// import daemon, and the numbers come from overlay and envelope, which
// config has no other reason to know about. Nothing here has state.
package mtu

import (
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay"
)

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
// Traffic payload: the envelope's transport header (marker, version, type,
// receiver index, counter), the inner type byte and the AEAD tag.
const SessionOverhead = envelope.TransportHeaderSize + 1 + envelope.TagSize

// Default is the MTU used when the configuration leaves it at 0: the largest
// IPv6 packet that still fits one Traffic frame after the frame header, both
// keys, the SNEK watermark, CoordAllowance bytes of coordinates on each side
// and SessionOverhead (65 250 bytes). It is never below Min.
func Default() int {
	return max(overlay.MaxPayload(CoordAllowance)-SessionOverhead, Min)
}

// Max is the largest MTU whose packets fit one Traffic frame at all: with
// empty coordinates on both sides (a node talking to the root) and
// SessionOverhead (65 378 bytes). A configured MTU above it cannot work and
// is refused.
func Max() int {
	return overlay.MaxPayload(0) - SessionOverhead
}
