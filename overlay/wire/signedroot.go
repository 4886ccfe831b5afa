package wire

import (
	"crypto/ed25519"
	"fmt"
)

// SignedRoot is the payload of a Bootstrap and of a WakeupBroadcast
// (docs/protocol.md §3.5, §3.7): a sequence number (the originator's clock in Unix
// milliseconds), the root the originator follows, and the originator's
// signature over vu64(seq) ‖ rootKey ‖ vu64(rootSeq). The two frame types sign
// the same bytes, so their signatures are interchangeable (docs/protocol.md §11.5).
type SignedRoot struct {
	Seq       uint64
	Root      Root
	Signature Signature
}

// appendSigned encodes the bytes the signature covers.
func (p *SignedRoot) appendSigned(dst []byte) []byte {
	dst = AppendVarint(dst, p.Seq)
	dst = append(dst, p.Root.Key[:]...)
	return AppendVarint(dst, p.Root.Seq)
}

// NewSignedRoot builds and signs a payload for the given sequence and root.
func NewSignedRoot(priv ed25519.PrivateKey, seq uint64, root Root) SignedRoot {
	p := SignedRoot{Seq: seq, Root: root}
	p.Signature = Signature(ed25519.Sign(priv, p.appendSigned(nil)))
	return p
}

// Verify checks the signature with the originator's key over a fresh minimal
// encoding, as the reference does.
func (p *SignedRoot) Verify(originator PublicKey) bool {
	return ed25519.Verify(originator.Ed25519(), p.appendSigned(make([]byte, 0, 2*MaxVarintLen+KeySize)), p.Signature[:])
}

// Append encodes the payload onto dst.
func (p *SignedRoot) Append(dst []byte) []byte {
	return append(p.appendSigned(dst), p.Signature[:]...)
}

// ParseSignedRoot decodes a bootstrap or wakeup payload; trailing bytes are an
// error.
func ParseSignedRoot(b []byte) (SignedRoot, error) {
	var p SignedRoot
	seq, used, err := ReadVarint(b)
	if err != nil {
		return p, fmt.Errorf("sequence: %w", err)
	}
	p.Seq = seq
	b = b[used:]
	if len(b) < KeySize {
		return p, fmt.Errorf("root key: %w", errShort)
	}
	p.Root.Key = PublicKey(b[:KeySize])
	b = b[KeySize:]
	if p.Root.Seq, used, err = ReadVarint(b); err != nil {
		return p, fmt.Errorf("root sequence: %w", err)
	}
	b = b[used:]
	if len(b) != SignatureSize {
		return p, fmt.Errorf("signature: %d bytes, want %d", len(b), SignatureSize)
	}
	p.Signature = Signature(b)
	return p, nil
}
