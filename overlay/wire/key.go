package wire

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"fmt"
	"log/slog"
)

// KeySize is the length of an ed25519 public key, which is also a node's
// identity and its address in the overlay.
const KeySize = ed25519.PublicKeySize

// SignatureSize is the length of an ed25519 signature.
const SignatureSize = ed25519.SignatureSize

// PublicKey is a node's ed25519 public key. Keys are ordered as unsigned
// big-endian byte strings: the root of the spanning tree is the highest key,
// and SNEK routes towards the smallest known key at or above a destination.
type PublicKey [KeySize]byte

// Signature is a raw ed25519 signature.
type Signature [SignatureSize]byte

// FullMask is the highest possible key. Frames start with it as their
// watermark key, the "worst" watermark (docs/protocol.md §2.2, §6.3).
var FullMask = PublicKey{
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
}

// Compare orders keys as unsigned big-endian integers: -1, 0 or +1.
func (k PublicKey) Compare(o PublicKey) int { return bytes.Compare(k[:], o[:]) }

// Less reports whether k sorts strictly before o.
func (k PublicKey) Less(o PublicKey) bool { return k.Compare(o) < 0 }

// String is the lowercase hex form used in logs, URIs and the admin API.
func (k PublicKey) String() string { return hex.EncodeToString(k[:]) }

// Network makes PublicKey usable as a net.Addr.
func (k PublicKey) Network() string { return "ed25519" }

// IsZero reports whether the key is all zero bytes (an unset key).
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// Ed25519 returns the key in the form crypto/ed25519 expects.
func (k PublicKey) Ed25519() ed25519.PublicKey { return ed25519.PublicKey(k[:]) }

// PublicKeyOf returns the public half of an ed25519 private key.
func PublicKeyOf(priv ed25519.PrivateKey) PublicKey {
	var k PublicKey
	copy(k[:], priv.Public().(ed25519.PublicKey))
	return k
}

// ParsePublicKey decodes a 64-character hex key.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	b, err := hex.DecodeString(s)
	if err != nil {
		return k, fmt.Errorf("public key %q: %w", s, err)
	}
	if len(b) != KeySize {
		return k, fmt.Errorf("public key %q: want %d bytes, got %d", s, KeySize, len(b))
	}
	copy(k[:], b)
	return k, nil
}

// DHTOrdered reports a < b < c with strict inequalities and no wrap-around,
// the ordering test SNEK uses (docs/protocol.md §2.2).
func DHTOrdered(a, b, c PublicKey) bool { return a.Less(b) && b.Less(c) }

// LogValue formats the key for log/slog only when a handler writes the
// record, so a debug line that names a key costs no hex encoding while
// debug logging is off: pass the key itself, not k.String().
func (k PublicKey) LogValue() slog.Value { return slog.StringValue(k.String()) }
