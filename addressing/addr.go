// Package addressing is the address arithmetic of the overlay: node keys to
// IPv6 node addresses and /64 subnets, addresses back to the key prefixes
// they carry, and the inbound source-address rule. It is pure (no I/O, no
// state) and imports only the standard library.
//
// # Addresses
//
// A node's address is 0xfd followed by the first 15 bytes of its ed25519
// public key, assigned with a /8 route: the same mapping as the reference
// pineconeip, so both agree on who owns an address. A node also owns a routed
// /64 subnet in a separate prefix: 0xfc followed by the first 7 bytes of its
// key, then the 64-bit interface part, which is the subnet's to assign.
//
// # Why addresses cannot be forged cheaply
//
// Only the key prefix is in the address, so the address alone does not name
// a key: a lookup asks the overlay for the full key, and the session handshake
// then proves possession of that key's private half. Packets arriving on a
// session are accepted only if their IPv6 source belongs to the session's key
// (CheckSource). To send from, or receive for, somebody else's node address,
// an attacker needs its own key whose first 120 bits equal the victim's: about
// 2^120 key generations, which is out of reach. A subnet carries only 56 key
// bits, so claiming somebody's /64 takes about 2^56 key generations; that is
// expensive but not impossible for a large attacker, so treat a /64 as weaker
// than a node address and prefer node addresses for anything that relies on
// the address as an identity.
//
// # Keys
//
// Keys are taken as [32]byte, the ed25519 public key bytes, so that this
// package needs nothing but the standard library: a wire.PublicKey is
// assignable to [32]byte. The lookup protocol that finds the full key behind
// an address is package addressing/lookup.
package addressing

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
)

// First bytes of the two overlay ranges.
const (
	NodeByte   = 0xfd
	SubnetByte = 0xfc
)

// Key prefix lengths carried in each kind of address.
const (
	NodePrefixBytes   = 15
	SubnetPrefixBytes = 7
)

// Overlay ranges: NodeRange is the /8 route every node address is assigned
// with; SubnetRange holds every node's /64.
var (
	NodeRange   = netip.PrefixFrom(netip.AddrFrom16([16]byte{NodeByte}), 8)
	SubnetRange = netip.PrefixFrom(netip.AddrFrom16([16]byte{SubnetByte}), 8)
)

// NodeAddr is the node address of k: 0xfd ‖ k[0:15].
func NodeAddr(k [32]byte) netip.Addr {
	var a [16]byte
	a[0] = NodeByte
	copy(a[1:], k[:NodePrefixBytes])
	return netip.AddrFrom16(a)
}

// NodeAddrPrefix is the node address with the /8 length it is assigned with
// on the TUN device.
func NodeAddrPrefix(k [32]byte) netip.Prefix {
	return netip.PrefixFrom(NodeAddr(k), 8)
}

// Subnet is the /64 that k routes: 0xfc ‖ k[0:7] ‖ 0…/64.
func Subnet(k [32]byte) netip.Prefix {
	var a [16]byte
	a[0] = SubnetByte
	copy(a[1:], k[:SubnetPrefixBytes])
	return netip.PrefixFrom(netip.AddrFrom16(a), 64)
}

// InOverlay reports whether a is inside one of the overlay ranges at all.
func InOverlay(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() {
		return false
	}
	b := a.As16()
	return b[0] == NodeByte || b[0] == SubnetByte
}

// Belongs reports whether a is k's node address or inside k's /64.
func Belongs(a netip.Addr, k [32]byte) bool {
	return a == NodeAddr(k) || Subnet(k).Contains(a)
}

// Kind says which kind of address a key prefix comes from.
type Kind uint8

// Prefix kinds. The zero Kind is invalid. The values are also the kind
// byte of a lookup on the wire (envelope.LookupKind is this type), so they
// never change.
const (
	// KindNode: a node address, carrying 15 key bytes.
	KindNode Kind = 1
	// KindSubnet: a /64 subnet, carrying 7 key bytes.
	KindSubnet Kind = 2
)

// PrefixLen is the number of key bytes an address of this kind carries, or
// 0 for an invalid kind.
func (k Kind) PrefixLen() int {
	switch k {
	case KindNode:
		return NodePrefixBytes
	case KindSubnet:
		return SubnetPrefixBytes
	}
	return 0
}

func (k Kind) String() string {
	switch k {
	case KindNode:
		return "node"
	case KindSubnet:
		return "subnet"
	}
	return fmt.Sprintf("kind_%d", uint8(k))
}

// KeyPrefix is the part of a key that an overlay address reveals: 15 bytes
// (120 bits) for a node address, 7 bytes (56 bits) for a subnet address. It
// is comparable and usable as a map key.
type KeyPrefix struct {
	kind  Kind
	bytes [NodePrefixBytes]byte // only the first Len() are meaningful, the rest zero
}

// PrefixOf returns the key prefix an overlay address names, or false if a is
// not in an overlay range.
func PrefixOf(a netip.Addr) (KeyPrefix, bool) {
	if !InOverlay(a) {
		return KeyPrefix{}, false
	}
	b := a.As16()
	if b[0] == NodeByte {
		return newPrefix(KindNode, b[1:1+NodePrefixBytes]), true
	}
	return newPrefix(KindSubnet, b[1:1+SubnetPrefixBytes]), true
}

// NodeKeyPrefix is the prefix of k that its node address carries.
func NodeKeyPrefix(k [32]byte) KeyPrefix {
	return newPrefix(KindNode, k[:NodePrefixBytes])
}

// SubnetKeyPrefix is the prefix of k that its subnet carries.
func SubnetKeyPrefix(k [32]byte) KeyPrefix {
	return newPrefix(KindSubnet, k[:SubnetPrefixBytes])
}

// ErrPrefix reports a lookup prefix with an unknown kind or wrong length.
var ErrPrefix = errors.New("addressing: bad key prefix")

// NewKeyPrefix builds a prefix from a kind and its bytes, as carried in a
// lookup request.
func NewKeyPrefix(kind Kind, b []byte) (KeyPrefix, error) {
	n := kind.PrefixLen()
	if n == 0 || len(b) != n {
		return KeyPrefix{}, fmt.Errorf("%w: kind %s with %d bytes", ErrPrefix, kind, len(b))
	}
	return newPrefix(kind, b), nil
}

func newPrefix(kind Kind, b []byte) KeyPrefix {
	p := KeyPrefix{kind: kind}
	copy(p.bytes[:], b)
	return p
}

// Kind is the prefix's kind: node or subnet.
func (p KeyPrefix) Kind() Kind { return p.kind }

// Len is the prefix length in bytes.
func (p KeyPrefix) Len() int { return p.kind.PrefixLen() }

// Bits is the prefix length in bits (120 or 56).
func (p KeyPrefix) Bits() int { return 8 * p.Len() }

// Bytes returns a copy of the prefix bytes.
func (p KeyPrefix) Bytes() []byte { return append([]byte(nil), p.bytes[:p.Len()]...) }

// LookupKey is prefix ‖ 00…, the overlay key a lookup for p is sent to.
func (p KeyPrefix) LookupKey() [32]byte {
	var k [32]byte
	copy(k[:], p.bytes[:p.Len()])
	return k
}

// Matches reports whether k starts with p.
func (p KeyPrefix) Matches(k [32]byte) bool {
	n := p.Len()
	return n > 0 && p.bytes == prefixArray(k, n)
}

func prefixArray(k [32]byte, n int) [NodePrefixBytes]byte {
	var a [NodePrefixBytes]byte
	copy(a[:n], k[:n])
	return a
}

// Addr is the lowest address the prefix names: the node address, or the
// subnet's network address.
func (p KeyPrefix) Addr() netip.Addr {
	var a [16]byte
	if p.kind == KindNode {
		a[0] = NodeByte
	} else {
		a[0] = SubnetByte
	}
	copy(a[1:], p.bytes[:p.Len()])
	return netip.AddrFrom16(a)
}

// LogValue formats the prefix for log/slog only when a handler writes the
// record (as String does; a JSON handler would otherwise write {}), so pass
// the prefix itself to a debug line.
func (p KeyPrefix) LogValue() slog.Value { return slog.StringValue(p.String()) }

func (p KeyPrefix) String() string {
	if p.kind == KindNode {
		return p.Addr().String()
	}
	return netip.PrefixFrom(p.Addr(), 64).String()
}

// IPv6 header facts CheckSource needs.
const (
	ipv6HeaderLen = 40
	ipv6SrcOffset = 8
	ipv6DstOffset = 24
)

// Errors from CheckSource.
var (
	ErrNotIPv6     = errors.New("addressing: not an IPv6 packet")
	ErrSourceOwner = errors.New("addressing: source address does not belong to the sender")
)

// CheckSource is the inbound rule: a packet that arrived on a session with
// key k must carry k's node address, or an address in k's /64, as its IPv6
// source. Anything else is spoofed (or not IPv6) and must be dropped.
func CheckSource(packet []byte, k [32]byte) error {
	src, ok := SourceAddr(packet)
	if !ok {
		return ErrNotIPv6
	}
	if !Belongs(src, k) {
		return fmt.Errorf("%w: %s from %x", ErrSourceOwner, src, k)
	}
	return nil
}

// SourceAddr returns the IPv6 source address of packet.
func SourceAddr(packet []byte) (netip.Addr, bool) {
	if len(packet) < ipv6HeaderLen || packet[0]>>4 != 6 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(packet[ipv6SrcOffset : ipv6SrcOffset+16])), true
}

// DestAddr returns the IPv6 destination address of packet.
func DestAddr(packet []byte) (netip.Addr, bool) {
	if len(packet) < ipv6HeaderLen || packet[0]>>4 != 6 {
		return netip.Addr{}, false
	}
	return netip.AddrFrom16([16]byte(packet[ipv6DstOffset : ipv6DstOffset+16])), true
}
