package wire

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
)

// Root names a spanning tree and its freshness: the root's key and the
// sequence number of its latest announcement.
type Root struct {
	Key PublicKey
	Seq uint64
}

// AnnouncementHop is one signer on the path from the root: the port the
// signer sent this copy out of, its key, and its signature over everything
// before this hop.
type AnnouncementHop struct {
	Port      uint64
	Key       PublicKey
	Signature Signature
}

// hopMinLen is the smallest encoded hop: a 1-byte port, a key, a signature.
const hopMinLen = 1 + KeySize + SignatureSize

// TreeAnnouncement is a root's announcement as repeated by each node on the
// way down (docs/protocol.md §3.4, §4.2). Each hop's signature covers the root fields
// and all earlier hops, so a relay cannot alter anything upstream of itself.
type TreeAnnouncement struct {
	Root Root
	Hops []AnnouncementHop
}

// Type implements Message.
func (*TreeAnnouncement) Type() FrameType { return TypeTreeAnnouncement }

// appendBody encodes the root fields and the first n hops: the bytes hop n
// signs.
func (a *TreeAnnouncement) appendBody(dst []byte, n int) []byte {
	dst = append(dst, a.Root.Key[:]...)
	dst = AppendVarint(dst, a.Root.Seq)
	for _, h := range a.Hops[:n] {
		dst = AppendVarint(dst, h.Port)
		dst = append(dst, h.Key[:]...)
		dst = append(dst, h.Signature[:]...)
	}
	return dst
}

// Append implements Message.
func (a *TreeAnnouncement) Append(dst []byte) ([]byte, error) {
	start := len(dst)
	dst = appendHeader(dst, TypeTreeAnnouncement, 0)
	dst = append(dst, 0, 0)
	bodyStart := len(dst)
	dst = a.appendBody(dst, len(a.Hops))
	if n := len(dst) - bodyStart; n <= 0xffff {
		binary.BigEndian.PutUint16(dst[bodyStart-2:], uint16(n))
	}
	return finishFrame(dst, start)
}

func decodeTreeAnnouncement(body []byte) (*TreeAnnouncement, error) {
	n, rest, err := splitPayloadLen(body)
	if err != nil {
		return nil, err
	}
	if n != len(rest) {
		return nil, fmt.Errorf("payload length %d but %d bytes follow", n, len(rest))
	}
	a := &TreeAnnouncement{}
	if len(rest) < KeySize {
		return nil, fmt.Errorf("root key: %w", errShort)
	}
	a.Root.Key = PublicKey(rest[:KeySize])
	rest = rest[KeySize:]
	seq, used, err := ReadVarint(rest)
	if err != nil {
		return nil, fmt.Errorf("root sequence: %w", err)
	}
	a.Root.Seq = seq
	rest = rest[used:]
	if len(rest) > 0 {
		a.Hops = make([]AnnouncementHop, 0, len(rest)/hopMinLen)
	}
	for len(rest) > 0 {
		// The reference silently ignores a tail shorter than a hop; a stock
		// node never sends one, so here it is malformed.
		if len(rest) < hopMinLen {
			return nil, fmt.Errorf("hop %d: %d trailing bytes: %w", len(a.Hops), len(rest), errShort)
		}
		var h AnnouncementHop
		h.Port, used, err = ReadVarint(rest)
		if err != nil {
			return nil, fmt.Errorf("hop %d port: %w", len(a.Hops), err)
		}
		rest = rest[used:]
		if len(rest) < KeySize+SignatureSize {
			return nil, fmt.Errorf("hop %d: %w", len(a.Hops), errShort)
		}
		h.Key = PublicKey(rest[:KeySize])
		h.Signature = Signature(rest[KeySize : KeySize+SignatureSize])
		rest = rest[KeySize+SignatureSize:]
		a.Hops = append(a.Hops, h)
	}
	return a, nil
}

// ErrBadSignature means a signature did not verify with the key that claims
// to have made it.
var ErrBadSignature = errors.New("bad signature")

// VerifySignatures checks every hop's signature over the bytes before that
// hop. Decoding accepts only canonical encodings, so re-encoding reproduces
// exactly the bytes the sender signed.
func (a *TreeAnnouncement) VerifySignatures() error {
	body := a.appendBody(make([]byte, 0, KeySize+MaxVarintLen+len(a.Hops)*(MaxVarintLen+KeySize+SignatureSize)), len(a.Hops))
	off := KeySize + VarintLen(a.Root.Seq)
	for i, h := range a.Hops {
		hopStart := off
		off += VarintLen(h.Port) + KeySize + SignatureSize
		if !ed25519.Verify(h.Key.Ed25519(), body[:hopStart], h.Signature[:]) {
			return fmt.Errorf("hop %d (%s): %w", i, h.Key, ErrBadSignature)
		}
	}
	return nil
}

// Signed returns a copy of a with one more hop: this node, sending out of
// port, signing everything so far. This is the copy a node sends to the peer
// on that port; every peer needs its own because the port differs.
func (a *TreeAnnouncement) Signed(priv ed25519.PrivateKey, port uint64) *TreeAnnouncement {
	hops := make([]AnnouncementHop, len(a.Hops), len(a.Hops)+1)
	copy(hops, a.Hops)
	out := &TreeAnnouncement{Root: a.Root, Hops: hops}
	sig := ed25519.Sign(priv, a.appendBody(nil, len(a.Hops)))
	out.Hops = append(out.Hops, AnnouncementHop{Port: port, Key: PublicKeyOf(priv), Signature: Signature(sig)})
	return out
}

// Coordinates are the ports of all hops: the receiver's position in the tree
// when it takes the sender as its parent (docs/protocol.md §4.7).
func (a *TreeAnnouncement) Coordinates() Coordinates {
	c := make(Coordinates, len(a.Hops))
	for i, h := range a.Hops {
		c[i] = h.Port
	}
	return c
}

// SenderCoordinates are the coordinates of the node that sent this copy: all
// hops but its own last one.
func (a *TreeAnnouncement) SenderCoordinates() Coordinates {
	if len(a.Hops) == 0 {
		return Coordinates{}
	}
	return a.Coordinates()[:len(a.Hops)-1]
}

// HasKey reports whether k signed any hop: a loop if k is the receiver.
func (a *TreeAnnouncement) HasKey(k PublicKey) bool {
	for _, h := range a.Hops {
		if h.Key == k {
			return true
		}
	}
	return false
}
