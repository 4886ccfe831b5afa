package peercard

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Version is the card format this package writes and the only one it reads.
const Version = 1

// Limits of the fields, so that a card stays a few lines long and a decoder
// never allocates more than MaxBinarySize bytes for one.
const (
	MaxNameLength = 64  // bytes of UTF-8
	MaxURIs       = 8   // URIs on one card
	MaxURILength  = 255 // bytes of one URI
	// MaxBinarySize is the largest card in its binary form.
	MaxBinarySize = fixedSize + MaxNameLength + MaxURIs*(1+MaxURILength)
)

// Field sizes of the binary form (see docs/peer-cards.md).
const (
	keySize       = ed25519.PublicKeySize // 32
	signatureSize = ed25519.SignatureSize // 64
	// version, key, created, expires, name length, URI count, signature.
	fixedSize = 1 + keySize + 8 + 8 + 1 + 1 + signatureSize
)

// signingContext precedes the card bytes in the signed message, so that a
// card signature can never be mistaken for any other ed25519 signature the
// node makes (Pinecone frames, session handshakes).
const signingContext = "pineconed peer card\x00"

// Reasons a card is refused. Every error from Parse, Unmarshal and Verify
// wraps exactly one of them, with the detail (which line, which field).
var (
	// ErrChecksum: a line's check symbol or the card's CRC does not match:
	// the text was mistyped or altered.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrSignature: the signature does not verify with the card's key.
	ErrSignature = errors.New("bad signature")
	// ErrExpired: the card's expiry time has passed.
	ErrExpired = errors.New("card expired")
	// ErrVersion: the card is of a version this package does not know.
	ErrVersion = errors.New("unknown card version")
	// ErrTruncated: the card ends before its last field or its end line.
	ErrTruncated = errors.New("card truncated")
	// ErrMalformed: anything else that is not a well-formed card.
	ErrMalformed = errors.New("not a well-formed card")
)

// Card is the content of a peer card.
type Card struct {
	// Key is the node's ed25519 public key; its URIs are pinned to it.
	Key [keySize]byte
	// Name is an optional human name ("" for none): valid UTF-8 without
	// control characters, at most MaxNameLength bytes.
	Name string
	// URIs are the endpoints to dial, 1..MaxURIs of them, each 1..
	// MaxURILength bytes of printable ASCII without spaces or '?' (the pin
	// is the card's key, not part of the URI). This package does not parse
	// them further: the daemon does, with its own peer URI syntax.
	URIs []string
	// Created and Expires are whole seconds since the Unix epoch (UTC);
	// Expires is after Created.
	Created, Expires time.Time
	// Signature is the ed25519 signature over signingContext followed by
	// the binary card up to the signature.
	Signature [signatureSize]byte
}

// Sign fills in c's key and signature from priv and returns the signed card.
// Created and Expires are truncated to whole seconds.
func Sign(c Card, priv ed25519.PrivateKey) (Card, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return Card{}, fmt.Errorf("peer card: private key of %d bytes, want %d", len(priv), ed25519.PrivateKeySize)
	}
	copy(c.Key[:], priv.Public().(ed25519.PublicKey))
	c.Created = time.Unix(c.Created.Unix(), 0).UTC()
	c.Expires = time.Unix(c.Expires.Unix(), 0).UTC()
	c.URIs = append([]string(nil), c.URIs...)
	body, err := c.appendBody(nil)
	if err != nil {
		return Card{}, err
	}
	copy(c.Signature[:], ed25519.Sign(priv, signedMessage(body)))
	return c, nil
}

func signedMessage(body []byte) []byte {
	return append([]byte(signingContext), body...)
}

// check validates the fields that have rules of their own.
func (c *Card) check() error {
	if len(c.Name) > MaxNameLength {
		return fmt.Errorf("%w: name is %d bytes, at most %d", ErrMalformed, len(c.Name), MaxNameLength)
	}
	if !utf8.ValidString(c.Name) {
		return fmt.Errorf("%w: name is not UTF-8", ErrMalformed)
	}
	if strings.IndexFunc(c.Name, unicode.IsControl) >= 0 {
		return fmt.Errorf("%w: name contains control characters", ErrMalformed)
	}
	if len(c.URIs) == 0 || len(c.URIs) > MaxURIs {
		return fmt.Errorf("%w: %d URIs, want 1..%d", ErrMalformed, len(c.URIs), MaxURIs)
	}
	for i, u := range c.URIs {
		if len(u) == 0 || len(u) > MaxURILength {
			return fmt.Errorf("%w: URI %d is %d bytes, want 1..%d", ErrMalformed, i+1, len(u), MaxURILength)
		}
		for _, b := range []byte(u) {
			if b <= ' ' || b >= 0x7f || b == '?' {
				return fmt.Errorf("%w: URI %d %q: only printable ASCII without spaces or '?'", ErrMalformed, i+1, u)
			}
		}
	}
	if c.Created.Unix() < 0 {
		return fmt.Errorf("%w: created before 1970", ErrMalformed)
	}
	if !c.Expires.After(c.Created) {
		return fmt.Errorf("%w: expires %s is not after created %s", ErrMalformed,
			c.Expires.UTC().Format(time.RFC3339), c.Created.UTC().Format(time.RFC3339))
	}
	return nil
}

// appendBody appends the binary card without its signature.
func (c *Card) appendBody(b []byte) ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	b = append(b, Version)
	b = append(b, c.Key[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.Created.Unix()))
	b = binary.BigEndian.AppendUint64(b, uint64(c.Expires.Unix()))
	b = append(b, byte(len(c.Name)))
	b = append(b, c.Name...)
	b = append(b, byte(len(c.URIs)))
	for _, u := range c.URIs {
		b = append(b, byte(len(u)))
		b = append(b, u...)
	}
	return b, nil
}

// Marshal returns the binary form of a signed card.
func (c Card) Marshal() ([]byte, error) {
	b, err := c.appendBody(make([]byte, 0, fixedSize+len(c.Name)+len(c.URIs)*(1+MaxURILength)))
	if err != nil {
		return nil, err
	}
	return append(b, c.Signature[:]...), nil
}

// reader consumes the binary form, reporting a short read as ErrTruncated.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = fmt.Errorf("%w: it ends inside the %s", ErrTruncated, what)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8(what string) int {
	if b := r.take(1, what); b != nil {
		return int(b[0])
	}
	return 0
}

func (r *reader) time(what string) (time.Time, error) {
	b := r.take(8, what)
	if b == nil {
		return time.Time{}, r.err
	}
	s := binary.BigEndian.Uint64(b)
	if s > 1<<62 {
		return time.Time{}, fmt.Errorf("%w: %s time %d is out of range", ErrMalformed, what, s)
	}
	return time.Unix(int64(s), 0).UTC(), nil
}

// Unmarshal parses the binary form of a card. It checks the structure and
// the field rules but not the signature (see Card.VerifySignature).
func Unmarshal(b []byte) (Card, error) {
	var c Card
	r := &reader{b: b}
	if v := r.u8("version"); r.err == nil && v != Version {
		return Card{}, fmt.Errorf("%w %d (this pineconed reads version %d)", ErrVersion, v, Version)
	}
	copy(c.Key[:], r.take(keySize, "public key"))
	var err error
	if c.Created, err = r.time("created"); err != nil {
		return Card{}, err
	}
	if c.Expires, err = r.time("expiry"); err != nil {
		return Card{}, err
	}
	n := r.u8("name length")
	if n > MaxNameLength {
		return Card{}, fmt.Errorf("%w: name length %d, at most %d", ErrMalformed, n, MaxNameLength)
	}
	c.Name = string(r.take(n, "name"))
	count := r.u8("URI count")
	for i := range count {
		l := r.u8(fmt.Sprintf("length of URI %d", i+1))
		c.URIs = append(c.URIs, string(r.take(l, fmt.Sprintf("URI %d", i+1))))
	}
	copy(c.Signature[:], r.take(signatureSize, "signature"))
	if r.err != nil {
		return Card{}, r.err
	}
	if len(r.b) > 0 {
		return Card{}, fmt.Errorf("%w: %d bytes after the signature", ErrMalformed, len(r.b))
	}
	if err := c.check(); err != nil {
		return Card{}, err
	}
	return c, nil
}

// VerifySignature checks the card's signature against its own key.
func (c Card) VerifySignature() error {
	body, err := c.appendBody(nil)
	if err != nil {
		return err
	}
	if !ed25519.Verify(ed25519.PublicKey(c.Key[:]), signedMessage(body), c.Signature[:]) {
		return fmt.Errorf("%w: the card is not signed by the key it carries", ErrSignature)
	}
	return nil
}

// Verify is what an importer calls: it parses a card's text, checks its
// checksums, structure and signature, and that it has not expired at now.
// It is a pure function of its arguments.
func Verify(text []byte, now time.Time) (Card, error) {
	c, err := Parse(text)
	if err != nil {
		return Card{}, err
	}
	if err := c.VerifySignature(); err != nil {
		return Card{}, err
	}
	if !now.Before(c.Expires) {
		return Card{}, fmt.Errorf("%w at %s", ErrExpired, c.Expires.Format(time.RFC3339))
	}
	return c, nil
}
