package tun

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net/netip"
)

// ICMPv6 types and codes we build.
const (
	ICMPv6DestUnreachable = 1
	ICMPv6PacketTooBig    = 2
	ICMPv6EchoRequest     = 128
	ICMPv6EchoReply       = 129

	// CodeNoRoute is Destination Unreachable code 0: no route to the
	// destination (the overlay has no node for the address).
	CodeNoRoute = 0
	// CodeAddressUnreachable is Destination Unreachable code 3: the address
	// lookup failed or timed out.
	CodeAddressUnreachable = 3
)

// icmpErrorMaxLen is the most an ICMPv6 error message may take, IPv6 header
// included (RFC 4443 §2.4c: as much of the invoking packet as fits without
// exceeding the minimum IPv6 MTU).
const icmpErrorMaxLen = MinMTU

// icmpErrorHopLimit is the hop limit of the errors we build; they go back into
// our own TUN, so any value that survives local delivery would do.
const icmpErrorHopLimit = 64

// ErrNoICMPError is returned (wrapped) by the ICMPv6 error builders when RFC
// 4443 §2.4e forbids answering the offending packet with an error.
var ErrNoICMPError = errors.New("no ICMPv6 error may be sent for this packet")

// DestinationUnreachable appends to dst an ICMPv6 Destination Unreachable
// message with the given code (CodeNoRoute or CodeAddressUnreachable) from src
// to the source of offending, quoting as much of offending as fits in 1280
// bytes. It returns the extended slice, or dst unchanged and an error wrapping
// ErrNoICMPError (or a parse error) when no error may be sent.
func DestinationUnreachable(dst []byte, src netip.Addr, code uint8, offending []byte) ([]byte, error) {
	return buildICMPError(dst, src, ICMPv6DestUnreachable, code, 0, offending)
}

// PacketTooBig appends to dst an ICMPv6 Packet Too Big message carrying mtu,
// from src to the source of offending, quoting as much of offending as fits in
// 1280 bytes. mtu below MinMTU is refused: IPv6 links never go below it
// (RFC 8200 §5), so such a value can only be a bug upstream.
func PacketTooBig(dst []byte, src netip.Addr, mtu int, offending []byte) ([]byte, error) {
	if mtu < MinMTU || int64(mtu) > math.MaxUint32 {
		return dst, fmt.Errorf("packet too big: MTU %d outside [%d, 2^32)", mtu, MinMTU)
	}
	return buildICMPError(dst, src, ICMPv6PacketTooBig, 0, uint32(mtu), offending)
}

// MayReplyWithError reports whether RFC 4443 §2.4e allows an ICMPv6 error in
// response to pkt. It is false for packets that do not parse, ICMPv6 error
// messages (types 0–127), multicast destinations, and sources that do not name
// one node (unspecified, multicast). Packet Too Big towards a multicast group
// is allowed by the RFC, but the overlay never carries multicast, so we never
// need it.
func MayReplyWithError(pkt []byte) error {
	h, err := ParseIPv6(pkt)
	if err != nil {
		return err
	}
	switch {
	case h.Dst.IsMulticast():
		return fmt.Errorf("%w: multicast destination %s", ErrNoICMPError, h.Dst)
	case h.Src.IsUnspecified() || h.Src.IsMulticast():
		return fmt.Errorf("%w: source %s is not one node", ErrNoICMPError, h.Src)
	}
	if proto, off, ok := upperLayer(pkt); ok && proto == protoICMPv6 {
		// An ICMPv6 header whose type we cannot see (cut off) is treated as
		// an error message: staying quiet is the safe side.
		if off >= len(pkt) || pkt[off] < 128 {
			return fmt.Errorf("%w: offending packet is an ICMPv6 error", ErrNoICMPError)
		}
	}
	return nil
}

func buildICMPError(dst []byte, src netip.Addr, typ, code uint8, param uint32, offending []byte) ([]byte, error) {
	if !src.Is6() || src.Is4In6() {
		return dst, fmt.Errorf("ICMPv6 source %s is not an IPv6 address", src)
	}
	if err := MayReplyWithError(offending); err != nil {
		return dst, err
	}
	quote := offending
	if max := icmpErrorMaxLen - IPv6HeaderLen - 8; len(quote) > max {
		quote = quote[:max]
	}
	to := netip.AddrFrom16([16]byte(offending[8:24]))
	body := 8 + len(quote)
	start := len(dst)
	dst = grow(dst, IPv6HeaderLen+body)
	p := dst[start:]
	putIPv6Header(p, src, to, protoICMPv6, body)
	m := p[IPv6HeaderLen:]
	m[0], m[1], m[2], m[3] = typ, code, 0, 0
	binary.BigEndian.PutUint32(m[4:8], param)
	copy(m[8:], quote)
	binary.BigEndian.PutUint16(m[2:4], ICMPv6Checksum(src, to, m))
	return dst, nil
}

// EchoReply appends to dst the Echo Reply answering the Echo Request req,
// sourced from the request's destination. It returns an error if req is not a
// well-formed ICMPv6 Echo Request without extension headers.
func EchoReply(dst []byte, req []byte) ([]byte, error) {
	h, err := ParseIPv6(req)
	if err != nil {
		return dst, err
	}
	if h.NextHeader != protoICMPv6 || h.PayloadLen < 8 || req[IPv6HeaderLen] != ICMPv6EchoRequest {
		return dst, errors.New("not an ICMPv6 echo request")
	}
	if h.Dst.IsMulticast() {
		return dst, errors.New("echo request to a multicast group: no unicast source to answer from")
	}
	start := len(dst)
	dst = grow(dst, len(req))
	p := dst[start:]
	putIPv6Header(p, h.Dst, h.Src, protoICMPv6, h.PayloadLen)
	m := p[IPv6HeaderLen:]
	copy(m, req[IPv6HeaderLen:])
	m[0], m[1], m[2], m[3] = ICMPv6EchoReply, 0, 0, 0
	binary.BigEndian.PutUint16(m[2:4], ICMPv6Checksum(h.Dst, h.Src, m))
	return dst, nil
}

func putIPv6Header(p []byte, src, dst netip.Addr, next uint8, payloadLen int) {
	p[0], p[1], p[2], p[3] = 0x60, 0, 0, 0
	binary.BigEndian.PutUint16(p[4:6], uint16(payloadLen))
	p[6] = next
	p[7] = icmpErrorHopLimit
	s, d := src.As16(), dst.As16()
	copy(p[8:24], s[:])
	copy(p[24:40], d[:])
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) >= n {
		return b[:len(b)+n]
	}
	nb := make([]byte, len(b)+n)
	copy(nb, b)
	return nb
}

// ICMPv6Checksum computes the ICMPv6 checksum of msg (the whole ICMPv6
// message, with its checksum field taken as it is) over the RFC 8200 §8.1
// pseudo-header. Callers building a message zero the field first; a receiver
// verifies a message by checking that the result is zero.
func ICMPv6Checksum(src, dst netip.Addr, msg []byte) uint16 {
	s, d := src.As16(), dst.As16()
	var sum uint64
	sum = sumWords(sum, s[:])
	sum = sumWords(sum, d[:])
	sum += uint64(len(msg))
	sum += protoICMPv6
	sum = sumWords(sum, msg)
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

func sumWords(sum uint64, b []byte) uint64 {
	for len(b) >= 8 {
		sum += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:]))
		b = b[8:]
	}
	for len(b) >= 2 {
		sum += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		sum += uint64(b[0]) << 8
	}
	return sum
}
