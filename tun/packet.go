package tun

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/pineconed/pineconed/internal/enum"
)

// MinMTU is the smallest MTU an IPv6 link may have (RFC 8200 §5).
const MinMTU = 1280

// IPv6HeaderLen is the length of the fixed IPv6 header.
const IPv6HeaderLen = 40

// Protocol numbers used when walking IPv6 extension headers.
const (
	protoHopByHop = 0
	protoTCP      = 6
	protoUDP      = 17
	protoRouting  = 43
	protoFragment = 44
	protoAH       = 51
	protoNone     = 59
	protoDstOpts  = 60
	protoICMPv6   = 58
)

// Errors returned by ParseIPv6. They map one to one onto drop reasons.
var (
	ErrNotIPv6       = errors.New("not an IPv6 packet")
	ErrTruncated     = errors.New("packet shorter than the IPv6 header")
	ErrPayloadLength = errors.New("IPv6 payload length does not match the packet size")
)

// Header is the part of an IPv6 header the data path looks at.
type Header struct {
	Src, Dst netip.Addr
	// NextHeader is the Next Header field of the fixed header (the first
	// extension header or the upper-layer protocol).
	NextHeader uint8
	HopLimit   uint8
	// PayloadLen is the payload length field; ParseIPv6 has checked that
	// IPv6HeaderLen+PayloadLen equals the length of the packet.
	PayloadLen int
}

// ParseIPv6 checks that pkt is one whole IPv6 packet (version 6, payload length
// equal to what follows the fixed header) and returns its header. Packets read
// from or written to a TUN device are exactly one datagram, so trailing bytes
// are as wrong as missing ones. A zero payload length (a jumbogram) is refused:
// neither a TUN MTU nor an overlay frame can carry one.
func ParseIPv6(pkt []byte) (Header, error) {
	if len(pkt) < 1 {
		return Header{}, ErrTruncated
	}
	if pkt[0]>>4 != 6 {
		return Header{}, ErrNotIPv6
	}
	if len(pkt) < IPv6HeaderLen {
		return Header{}, ErrTruncated
	}
	pl := int(binary.BigEndian.Uint16(pkt[4:6]))
	if pl == 0 || IPv6HeaderLen+pl != len(pkt) {
		return Header{}, ErrPayloadLength
	}
	return Header{
		Src:        netip.AddrFrom16([16]byte(pkt[8:24])),
		Dst:        netip.AddrFrom16([16]byte(pkt[24:40])),
		NextHeader: pkt[6],
		HopLimit:   pkt[7],
		PayloadLen: pl,
	}, nil
}

// upperLayer walks the extension headers of a parsed packet and returns the
// upper-layer protocol number and the offset of its header. ok is false when
// the chain cannot be followed to an upper-layer header inside pkt: a
// truncated chain, No Next Header, or a fragment other than the first (whose
// upper-layer header is in another fragment).
func upperLayer(pkt []byte) (proto uint8, off int, ok bool) {
	proto = pkt[6]
	off = IPv6HeaderLen
	// Each step consumes at least 8 bytes, so len(pkt)/8 bounds the loop even
	// on a hostile chain.
	for steps := 0; steps <= len(pkt)/8; steps++ {
		switch proto {
		case protoHopByHop, protoRouting, protoDstOpts:
			if off+2 > len(pkt) {
				return 0, 0, false
			}
			next, n := pkt[off], (int(pkt[off+1])+1)*8
			proto, off = next, off+n
		case protoFragment:
			if off+8 > len(pkt) {
				return 0, 0, false
			}
			if binary.BigEndian.Uint16(pkt[off+2:off+4])&^7 != 0 {
				return 0, 0, false // not the first fragment
			}
			proto, off = pkt[off], off+8
		case protoAH:
			if off+2 > len(pkt) {
				return 0, 0, false
			}
			next, n := pkt[off], (int(pkt[off+1])+2)*4
			proto, off = next, off+n
		case protoNone:
			return 0, 0, false
		default:
			if off > len(pkt) {
				return 0, 0, false
			}
			return proto, off, true
		}
	}
	return 0, 0, false
}

// Reason says why a packet was dropped (or that it was not). The String form
// is stable and meant for metrics labels.
type Reason uint8

// Reasons. Accept is the zero value and means "pass the packet on".
const (
	Accept Reason = iota
	// DropNotIPv6: the version nibble is not 6 (IPv4 from a misconfigured
	// host, or garbage).
	DropNotIPv6
	// DropTruncated: shorter than the fixed IPv6 header.
	DropTruncated
	// DropBadLength: payload length field disagrees with the buffer.
	DropBadLength
	// DropNotOverlay: destination outside the overlay prefixes (multicast,
	// link-local and anything the kernel routed to us by mistake).
	DropNotOverlay
	// DropBadSource: source is not one of ours (only checked when the Filter
	// has Sources).
	DropBadSource
	// DropQueueFull: the Writer's queue was full.
	DropQueueFull
	// DropClosed: the Writer or device was closed.
	DropClosed
	// DropWriteError: the kernel refused a write; every packet of the failed
	// batch is counted, though some of it may have gone through.
	DropWriteError
	// DropReadError: a read failed (for instance a malformed GSO packet).
	DropReadError
	// DropTooManySegments: a GSO super-packet had more segments than read
	// buffers; the rest of it is lost (counted once per event).
	DropTooManySegments
	// DropOversize: a packet larger than the buffers (read) or than an IPv6
	// packet can be (write).
	DropOversize
	numReasons
)

var reasonNames = [numReasons]string{
	Accept:              "accept",
	DropNotIPv6:         "not_ipv6",
	DropTruncated:       "truncated",
	DropBadLength:       "bad_length",
	DropNotOverlay:      "not_overlay",
	DropBadSource:       "bad_source",
	DropQueueFull:       "queue_full",
	DropClosed:          "closed",
	DropWriteError:      "write_error",
	DropReadError:       "read_error",
	DropTooManySegments: "too_many_segments",
	DropOversize:        "oversize",
}

// ReasonNames are the names of every drop reason (not Accept), as they
// appear in Stats.Drops; the daemon lists them so that each drop metric
// exists, at zero, even on a node without a TUN.
func ReasonNames() []string {
	out := make([]string, 0, numReasons-1)
	for r := Accept + 1; r < numReasons; r++ {
		out = append(out, r.String())
	}
	return out
}

func (r Reason) String() string {
	return enum.NameOr(reasonNames[:], r, "unknown")
}

func reasonForParseError(err error) Reason {
	switch err {
	case nil:
		return Accept
	case ErrNotIPv6:
		return DropNotIPv6
	case ErrTruncated:
		return DropTruncated
	default:
		return DropBadLength
	}
}

// OverlayPrefixes are the destinations the daemon carries: node addresses in
// fd00::/8 and node subnets in fc00::/8.
var OverlayPrefixes = []netip.Prefix{
	netip.MustParsePrefix("fd00::/8"),
	netip.MustParsePrefix("fc00::/8"),
}

// Filter decides which packets read from the TUN go onto the overlay.
// The zero value refuses everything; use OverlayPrefixes for Destinations.
type Filter struct {
	// Destinations a packet may be sent to.
	Destinations []netip.Prefix
	// Sources, when not empty, lists the prefixes our own packets come from
	// (our address as a /128 and our /64). A packet from elsewhere would be
	// refused by the remote session layer anyway; dropping it here saves a
	// lookup and an encryption.
	Sources []netip.Prefix
}

// Classify parses pkt and says whether it may go onto the overlay. The header
// is valid only when the reason is Accept. It never panics and does not keep
// pkt.
func (f *Filter) Classify(pkt []byte) (Header, Reason) {
	h, err := ParseIPv6(pkt)
	if err != nil {
		return Header{}, reasonForParseError(err)
	}
	if !containsAny(f.Destinations, h.Dst) {
		return h, DropNotOverlay
	}
	if len(f.Sources) > 0 && !containsAny(f.Sources, h.Src) {
		return h, DropBadSource
	}
	return h, Accept
}

func containsAny(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
