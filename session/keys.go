package session

import (
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"math/big"

	"github.com/pineconed/pineconed/overlay/wire"
	"golang.org/x/crypto/curve25519"
)

// fieldP is 2^255 - 19, the prime of both curve forms.
var fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))

// ErrBadKey reports an ed25519 public key that has no X25519 counterpart
// (a non-canonical y coordinate, or the point with y = 1).
var ErrBadKey = errors.New("session: ed25519 key cannot be converted to X25519")

// PrivateToX25519 derives the X25519 private key of an ed25519 identity:
// the first half of SHA-512 of the seed, clamped. This is the scalar that
// ed25519 signs with, so its X25519 public key is PublicToX25519 of the
// ed25519 public key.
func PrivateToX25519(priv ed25519.PrivateKey) [32]byte {
	h := sha512.Sum512(priv.Seed())
	var s [32]byte
	copy(s[:], h[:32])
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return s
}

// PublicToX25519 maps an ed25519 public key (an Edwards point) to the
// Montgomery u-coordinate of the same point: u = (1 + y) / (1 - y) mod p.
// The key is public, so the variable-time big.Int arithmetic leaks nothing.
func PublicToX25519(k wire.PublicKey) ([32]byte, error) {
	var out [32]byte
	// The encoding is y in little-endian with the sign of x in the top bit.
	var be [32]byte
	for i := range 32 {
		be[i] = k[31-i]
	}
	be[0] &= 0x7f
	y := new(big.Int).SetBytes(be[:])
	if y.Cmp(fieldP) >= 0 {
		return out, ErrBadKey
	}
	den := new(big.Int).Sub(big.NewInt(1), y)
	den.Mod(den, fieldP)
	if den.Sign() == 0 {
		return out, ErrBadKey
	}
	den.ModInverse(den, fieldP)
	u := new(big.Int).Add(big.NewInt(1), y)
	u.Mul(u, den)
	u.Mod(u, fieldP)
	u.FillBytes(be[:])
	for i := range 32 {
		out[i] = be[31-i]
	}
	return out, nil
}

// x25519Public is the X25519 public key of a private scalar.
func x25519Public(priv [32]byte) ([32]byte, error) {
	var out [32]byte
	pub, err := curve25519.X25519(priv[:], curve25519.Basepoint)
	if err != nil {
		return out, err
	}
	copy(out[:], pub)
	return out, nil
}
