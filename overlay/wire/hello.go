package wire

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Handshake constants (docs/protocol.md §1.2, §10).
const (
	// HelloSize is the size of the hello each side writes once.
	HelloSize = 104
	// ProtocolVersion is the only handshake version stock nodes accept.
	ProtocolVersion = 1
	// Capabilities is the exact capability word of the current protocol
	// (LengthenedRootInterval, CryptographicSetups, DedupedCoordinateInfo,
	// SoftState, HybridRouting). Stock nodes refuse any other value, a
	// superset included.
	Capabilities uint32 = 0x3b
)

// Hello errors; each says why a handshake was refused.
var (
	ErrHelloVersion      = errors.New("mismatched node version")
	ErrHelloCapabilities = errors.New("mismatched node capabilities")
	ErrHelloSignature    = errors.New("hello signature does not verify")
)

// NewHello builds this node's hello: version, three zero bytes, the
// capability word, the public key, and a signature over those 40 bytes. It is
// the same every time for a key (ed25519 is deterministic).
func NewHello(priv ed25519.PrivateKey) [HelloSize]byte {
	var h [HelloSize]byte
	h[0] = ProtocolVersion
	binary.BigEndian.PutUint32(h[4:8], Capabilities)
	pub := PublicKeyOf(priv)
	copy(h[8:40], pub[:])
	copy(h[40:], ed25519.Sign(priv, h[:40]))
	return h
}

// ParseHello checks a received hello and returns the remote key. The unused
// bytes 1..3 are not checked but are covered by the signature, which is
// verified over the raw bytes received.
func ParseHello(b []byte) (PublicKey, error) {
	var k PublicKey
	if len(b) != HelloSize {
		return k, fmt.Errorf("hello of %d bytes, want %d", len(b), HelloSize)
	}
	if b[0] != ProtocolVersion {
		return k, fmt.Errorf("%w: got %d, want %d", ErrHelloVersion, b[0], ProtocolVersion)
	}
	if caps := binary.BigEndian.Uint32(b[4:8]); caps != Capabilities {
		return k, fmt.Errorf("%w: got %#x, want %#x", ErrHelloCapabilities, caps, Capabilities)
	}
	k = PublicKey(b[8:40])
	if !ed25519.Verify(k.Ed25519(), b[:40], b[40:HelloSize]) {
		return PublicKey{}, ErrHelloSignature
	}
	return k, nil
}
