// Package envelope frames pineconed's own messages inside Pinecone Traffic
// payloads.
//
// Stock Pinecone applications send QUIC (and the reference simulator sends
// "pineping"/"pinepong" text) in Traffic payloads addressed to the very same
// keys we use, so every pineconed payload starts with a marker that none of
// those can produce:
//
//	offset size  field
//	0      1     0x00            QUIC v1 sets the fixed bit 0x40 in every
//	                             packet's first byte (RFC 9000 §17), and
//	                             "pineping" starts with 'p' (0x70)
//	1      3     "PCD"           magic (0x50 0x43 0x44)
//	4      1     version         currently 1; anything else is rejected
//	5      1     message type    see Type
//	6      ...   body            layout fixed by the type, parsed strictly
//
// Bodies (all integers big-endian):
//
//	LookupRequest       kind(1) nonce(8) prefix(15 if kind=node, 7 if kind=subnet)
//	LookupResponse      kind(1) nonce(8) key(32)
//	HandshakeInit       sender index(4) noise(106)
//	HandshakeResponse   sender index(4) receiver index(4) noise(50)
//	Transport           receiver index(4) counter(8) ciphertext(>=16)
//	CookieReply         receiver index(4) nonce(24) sealed cookie(16+16)
//	HandshakeInitCookie sender index(4) noise(106) mac(16)
//
// CookieReply and HandshakeInitCookie are the load defence (package
// session): a responder under load answers an initiation with a cookie
// instead of doing Diffie-Hellman, and the initiator repeats it as a
// HandshakeInitCookie whose mac proves it can receive at its claimed key.
// They were added to version 1 without changing any earlier layout: a node
// that predates them drops them as unknown types, and its initiations are
// still answered whenever the responder is not under load, so the version
// stays 1. A change to an existing layout would need version 2.
//
// The Noise lengths follow from Noise IK with X25519 and a 16-byte AEAD tag:
// the initiation is e(32) + encrypted s(32+16) + an encrypted 10-byte payload
// (our TUN MTU u16 and a u64 strictly increasing timestamp), the response is
// e(32) + an encrypted 2-byte payload (the responder's TUN MTU).
//
// A Transport message's ciphertext decrypts to an inner message whose first
// byte is an inner type (InnerIPv6, InnerEchoRequest, InnerEchoReply). An
// empty plaintext is a keepalive. Echo bodies are id(8) followed by opaque
// data that the reply copies back.
//
// Anything that does not match exactly — wrong marker, unknown version or
// type, wrong length for the type, unknown lookup kind — is an error; callers
// count it and drop the payload.
package envelope

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Version is the only envelope version this code speaks.
const Version = 1

// HeaderSize is the length of the marker, version and type.
const HeaderSize = 6

// marker is the first four bytes of every pineconed payload.
var marker = [4]byte{0x00, 'P', 'C', 'D'}

// Type is a message type, the sixth byte of a payload.
type Type uint8

// Message types.
const (
	TypeLookupRequest       Type = 1
	TypeLookupResponse      Type = 2
	TypeHandshakeInit       Type = 3
	TypeHandshakeResponse   Type = 4
	TypeTransport           Type = 5
	TypeCookieReply         Type = 6
	TypeHandshakeInitCookie Type = 7
)

func (t Type) String() string {
	switch t {
	case TypeLookupRequest:
		return "lookup_request"
	case TypeLookupResponse:
		return "lookup_response"
	case TypeHandshakeInit:
		return "handshake_init"
	case TypeHandshakeResponse:
		return "handshake_response"
	case TypeTransport:
		return "transport"
	case TypeCookieReply:
		return "cookie_reply"
	case TypeHandshakeInitCookie:
		return "handshake_init_cookie"
	}
	return fmt.Sprintf("type_%d", uint8(t))
}

// LookupKind says which address family a lookup is for: it is the kind
// of the address whose owner the lookup asks about, so the prefix length
// a request carries is its PrefixLen (0 for an unknown kind), and its
// value is the kind byte on the wire (addressing fixes KindNode at 1 and
// KindSubnet at 2 for this reason).
type LookupKind = addressing.Kind

// Lookup kinds, named as a lookup's body speaks of them.
const (
	// LookupNode asks for the key whose first 15 bytes are the prefix: the
	// owner of a node address.
	LookupNode = addressing.KindNode
	// LookupSubnet asks for the key whose first 7 bytes are the prefix: the
	// owner of a /64 subnet.
	LookupSubnet = addressing.KindSubnet
)

// Sizes of the fixed-length parts.
const (
	// NoiseInitSize is the Noise IK first message with a 10-byte payload.
	NoiseInitSize = 32 + 32 + 16 + InitPayloadSize + 16
	// NoiseResponseSize is the Noise IK second message with a 2-byte payload.
	NoiseResponseSize = 32 + ResponsePayloadSize + 16
	// InitPayloadSize is the plaintext payload inside the initiation: MTU
	// (u16) and timestamp (u64).
	InitPayloadSize = 2 + 8
	// ResponsePayloadSize is the plaintext payload inside the response: MTU.
	ResponsePayloadSize = 2
	// TagSize is the AEAD tag length of transport messages.
	TagSize = 16
	// TransportHeaderSize is everything in a transport message before the
	// ciphertext; it is the AEAD's associated data.
	TransportHeaderSize = HeaderSize + 4 + 8

	// CookieSize is the length of a cookie and of the mac made with it.
	CookieSize = 16
	// CookieNonceSize is the XChaCha20-Poly1305 nonce of a cookie reply.
	CookieNonceSize = 24
	// SealedCookieSize is an encrypted cookie with its tag.
	SealedCookieSize = CookieSize + TagSize
	// HandshakeInitCookieSize is the whole HandshakeInitCookie payload;
	// its last CookieSize bytes are the mac over everything before them.
	HandshakeInitCookieSize = handshakeInitSz + CookieSize

	lookupRequestMin = HeaderSize + 1 + 8
	lookupResponseSz = HeaderSize + 1 + 8 + wire.KeySize
	handshakeInitSz  = HeaderSize + 4 + NoiseInitSize
	handshakeRespSz  = HeaderSize + 4 + 4 + NoiseResponseSize
	cookieReplySz    = HeaderSize + 4 + CookieNonceSize + SealedCookieSize
)

// Errors returned by the parsers; wrap-compatible with errors.Is.
var (
	ErrNotEnvelope = errors.New("envelope: not a pineconed payload")
	ErrVersion     = errors.New("envelope: unsupported version")
	ErrType        = errors.New("envelope: unknown message type")
	ErrLength      = errors.New("envelope: wrong length for message type")
	ErrKind        = errors.New("envelope: unknown lookup kind")
	ErrWrongType   = errors.New("envelope: unexpected message type")
)

// IsEnvelope reports whether b starts with the pineconed marker. It is the
// cheap test for telling our payloads from QUIC or pineping ones; it says
// nothing about whether the rest is valid.
func IsEnvelope(b []byte) bool {
	return len(b) >= len(marker) && b[0] == marker[0] && b[1] == marker[1] && b[2] == marker[2] && b[3] == marker[3]
}

// ParseHeader checks the marker, version and type and returns the type. It
// does not check the body; the per-type parsers do.
func ParseHeader(b []byte) (Type, error) {
	if !IsEnvelope(b) || len(b) < HeaderSize {
		return 0, ErrNotEnvelope
	}
	if b[4] != Version {
		return 0, fmt.Errorf("%w %d", ErrVersion, b[4])
	}
	t := Type(b[5])
	switch t {
	case TypeLookupRequest, TypeLookupResponse, TypeHandshakeInit, TypeHandshakeResponse, TypeTransport,
		TypeCookieReply, TypeHandshakeInitCookie:
		return t, nil
	}
	return 0, fmt.Errorf("%w %d", ErrType, b[5])
}

// AppendHeader appends the marker, version and t to dst.
func AppendHeader(dst []byte, t Type) []byte {
	return append(dst, marker[0], marker[1], marker[2], marker[3], Version, byte(t))
}

func expect(b []byte, t Type) error {
	got, err := ParseHeader(b)
	if err != nil {
		return err
	}
	if got != t {
		return fmt.Errorf("%w: got %s, want %s", ErrWrongType, got, t)
	}
	return nil
}

// LookupRequest asks the owner of a key prefix for its full key. The nonce
// is echoed in the response so that answers can be matched to requests and
// cannot be injected blindly.
type LookupRequest struct {
	Kind   LookupKind
	Nonce  uint64
	Prefix []byte // exactly Kind.PrefixLen() bytes
}

// Append encodes r after dst. It returns an error if Prefix does not have
// the length the kind requires.
func (r LookupRequest) Append(dst []byte) ([]byte, error) {
	n := r.Kind.PrefixLen()
	if n == 0 {
		return dst, ErrKind
	}
	if len(r.Prefix) != n {
		return dst, fmt.Errorf("%w: %s prefix of %d bytes", ErrLength, r.Kind, len(r.Prefix))
	}
	dst = AppendHeader(dst, TypeLookupRequest)
	dst = append(dst, byte(r.Kind))
	dst = binary.BigEndian.AppendUint64(dst, r.Nonce)
	return append(dst, r.Prefix...), nil
}

// ParseLookupRequest decodes a whole payload. Prefix aliases b.
func ParseLookupRequest(b []byte) (LookupRequest, error) {
	var r LookupRequest
	if err := expect(b, TypeLookupRequest); err != nil {
		return r, err
	}
	if len(b) < lookupRequestMin {
		return r, ErrLength
	}
	r.Kind = LookupKind(b[HeaderSize])
	n := r.Kind.PrefixLen()
	if n == 0 {
		return LookupRequest{}, fmt.Errorf("%w %d", ErrKind, b[HeaderSize])
	}
	if len(b) != lookupRequestMin+n {
		return LookupRequest{}, ErrLength
	}
	r.Nonce = binary.BigEndian.Uint64(b[HeaderSize+1:])
	r.Prefix = b[lookupRequestMin:]
	return r, nil
}

// LookupResponse carries the responder's full key for a request's nonce.
type LookupResponse struct {
	Kind  LookupKind
	Nonce uint64
	Key   wire.PublicKey
}

// Append encodes r after dst.
func (r LookupResponse) Append(dst []byte) ([]byte, error) {
	if r.Kind.PrefixLen() == 0 {
		return dst, ErrKind
	}
	dst = AppendHeader(dst, TypeLookupResponse)
	dst = append(dst, byte(r.Kind))
	dst = binary.BigEndian.AppendUint64(dst, r.Nonce)
	return append(dst, r.Key[:]...), nil
}

// ParseLookupResponse decodes a whole payload.
func ParseLookupResponse(b []byte) (LookupResponse, error) {
	var r LookupResponse
	if err := expect(b, TypeLookupResponse); err != nil {
		return r, err
	}
	if len(b) != lookupResponseSz {
		return r, ErrLength
	}
	r.Kind = LookupKind(b[HeaderSize])
	if r.Kind.PrefixLen() == 0 {
		return LookupResponse{}, fmt.Errorf("%w %d", ErrKind, b[HeaderSize])
	}
	r.Nonce = binary.BigEndian.Uint64(b[HeaderSize+1:])
	copy(r.Key[:], b[HeaderSize+9:])
	return r, nil
}

// HandshakeInit is the first Noise IK message with the initiator's session
// index.
type HandshakeInit struct {
	Sender uint32
	Noise  []byte // exactly NoiseInitSize bytes
}

// Append encodes m after dst.
func (m HandshakeInit) Append(dst []byte) ([]byte, error) {
	if len(m.Noise) != NoiseInitSize {
		return dst, ErrLength
	}
	dst = AppendHeader(dst, TypeHandshakeInit)
	dst = binary.BigEndian.AppendUint32(dst, m.Sender)
	return append(dst, m.Noise...), nil
}

// ParseHandshakeInit decodes a whole payload. Noise aliases b.
func ParseHandshakeInit(b []byte) (HandshakeInit, error) {
	var m HandshakeInit
	if err := expect(b, TypeHandshakeInit); err != nil {
		return m, err
	}
	if len(b) != handshakeInitSz {
		return m, ErrLength
	}
	m.Sender = binary.BigEndian.Uint32(b[HeaderSize:])
	m.Noise = b[HeaderSize+4:]
	return m, nil
}

// AppendWithMAC encodes m as a HandshakeInitCookie after dst, with the mac
// that mac computes over the encoding so far.
func (m HandshakeInit) AppendWithMAC(dst []byte, mac func(msg []byte) [CookieSize]byte) ([]byte, error) {
	if len(m.Noise) != NoiseInitSize {
		return dst, ErrLength
	}
	start := len(dst)
	dst = AppendHeader(dst, TypeHandshakeInitCookie)
	dst = binary.BigEndian.AppendUint32(dst, m.Sender)
	dst = append(dst, m.Noise...)
	sum := mac(dst[start:])
	return append(dst, sum[:]...), nil
}

// ParseHandshakeInitCookie decodes a whole HandshakeInitCookie payload:
// the initiation, and the mac with the bytes it covers (both alias b).
func ParseHandshakeInitCookie(b []byte) (m HandshakeInit, covered, mac []byte, err error) {
	if err := expect(b, TypeHandshakeInitCookie); err != nil {
		return m, nil, nil, err
	}
	if len(b) != HandshakeInitCookieSize {
		return m, nil, nil, ErrLength
	}
	m.Sender = binary.BigEndian.Uint32(b[HeaderSize:])
	m.Noise = b[HeaderSize+4 : handshakeInitSz]
	return m, b[:handshakeInitSz], b[handshakeInitSz:], nil
}

// CookieReply answers an initiation that a responder under load did not
// process: it carries, encrypted, the cookie the initiator must mac its
// next initiation with. Receiver is the initiation's sender index.
type CookieReply struct {
	Receiver uint32
	Nonce    [CookieNonceSize]byte
	Sealed   []byte // exactly SealedCookieSize bytes
}

// Append encodes r after dst.
func (r CookieReply) Append(dst []byte) ([]byte, error) {
	if len(r.Sealed) != SealedCookieSize {
		return dst, ErrLength
	}
	dst = AppendHeader(dst, TypeCookieReply)
	dst = binary.BigEndian.AppendUint32(dst, r.Receiver)
	dst = append(dst, r.Nonce[:]...)
	return append(dst, r.Sealed...), nil
}

// ParseCookieReply decodes a whole payload. Sealed aliases b.
func ParseCookieReply(b []byte) (CookieReply, error) {
	var r CookieReply
	if err := expect(b, TypeCookieReply); err != nil {
		return r, err
	}
	if len(b) != cookieReplySz {
		return r, ErrLength
	}
	r.Receiver = binary.BigEndian.Uint32(b[HeaderSize:])
	copy(r.Nonce[:], b[HeaderSize+4:])
	r.Sealed = b[HeaderSize+4+CookieNonceSize:]
	return r, nil
}

// HandshakeResponse is the second Noise IK message, naming both indices.
type HandshakeResponse struct {
	Sender   uint32
	Receiver uint32
	Noise    []byte // exactly NoiseResponseSize bytes
}

// Append encodes m after dst.
func (m HandshakeResponse) Append(dst []byte) ([]byte, error) {
	if len(m.Noise) != NoiseResponseSize {
		return dst, ErrLength
	}
	dst = AppendHeader(dst, TypeHandshakeResponse)
	dst = binary.BigEndian.AppendUint32(dst, m.Sender)
	dst = binary.BigEndian.AppendUint32(dst, m.Receiver)
	return append(dst, m.Noise...), nil
}

// ParseHandshakeResponse decodes a whole payload. Noise aliases b.
func ParseHandshakeResponse(b []byte) (HandshakeResponse, error) {
	var m HandshakeResponse
	if err := expect(b, TypeHandshakeResponse); err != nil {
		return m, err
	}
	if len(b) != handshakeRespSz {
		return m, ErrLength
	}
	m.Sender = binary.BigEndian.Uint32(b[HeaderSize:])
	m.Receiver = binary.BigEndian.Uint32(b[HeaderSize+4:])
	m.Noise = b[HeaderSize+8:]
	return m, nil
}

// Transport is an encrypted data message. The first TransportHeaderSize
// bytes of the encoded payload are the AEAD associated data.
type Transport struct {
	Receiver   uint32
	Counter    uint64
	Ciphertext []byte // at least TagSize bytes
}

// AppendTransportHeader appends a transport header (the associated data);
// the caller seals the ciphertext after it.
func AppendTransportHeader(dst []byte, receiver uint32, counter uint64) []byte {
	dst = AppendHeader(dst, TypeTransport)
	dst = binary.BigEndian.AppendUint32(dst, receiver)
	return binary.BigEndian.AppendUint64(dst, counter)
}

// ParseTransport decodes a whole payload. Ciphertext aliases b, and
// b[:TransportHeaderSize] is the associated data.
func ParseTransport(b []byte) (Transport, error) {
	var m Transport
	if err := expect(b, TypeTransport); err != nil {
		return m, err
	}
	if len(b) < TransportHeaderSize+TagSize {
		return m, ErrLength
	}
	m.Receiver = binary.BigEndian.Uint32(b[HeaderSize:])
	m.Counter = binary.BigEndian.Uint64(b[HeaderSize+4:])
	m.Ciphertext = b[TransportHeaderSize:]
	return m, nil
}

// Inner message types: the first plaintext byte of a transport message.
const (
	InnerIPv6        byte = 1
	InnerEchoRequest byte = 2
	InnerEchoReply   byte = 3
)

// EchoIDSize is the length of the identifier at the start of an echo body.
const EchoIDSize = 8

// Inner is a decrypted transport plaintext.
type Inner struct {
	Keepalive bool   // empty plaintext
	Type      byte   // InnerIPv6, InnerEchoRequest or InnerEchoReply
	EchoID    uint64 // echo messages only
	Data      []byte // the IPv6 packet, or the echo data; aliases the input
}

// ErrInner reports an inner message that is not understood.
var ErrInner = errors.New("envelope: bad inner message")

// ParseInner decodes a decrypted plaintext strictly.
func ParseInner(p []byte) (Inner, error) {
	if len(p) == 0 {
		return Inner{Keepalive: true}, nil
	}
	in := Inner{Type: p[0]}
	switch p[0] {
	case InnerIPv6:
		in.Data = p[1:]
		if len(in.Data) == 0 {
			return Inner{}, fmt.Errorf("%w: empty IPv6 packet", ErrInner)
		}
	case InnerEchoRequest, InnerEchoReply:
		if len(p) < 1+EchoIDSize {
			return Inner{}, fmt.Errorf("%w: short echo", ErrInner)
		}
		in.EchoID = binary.BigEndian.Uint64(p[1:])
		in.Data = p[1+EchoIDSize:]
	default:
		return Inner{}, fmt.Errorf("%w: type %d", ErrInner, p[0])
	}
	return in, nil
}

// Parse decodes any payload into one of LookupRequest, LookupResponse,
// HandshakeInit (for both initiation types), HandshakeResponse, Transport
// or CookieReply (as values). It is a
// convenience for dispatch and fuzzing; the per-type parsers are what the
// data path uses.
func Parse(b []byte) (Type, any, error) {
	t, err := ParseHeader(b)
	if err != nil {
		return 0, nil, err
	}
	var m any
	switch t {
	case TypeLookupRequest:
		m, err = ParseLookupRequest(b)
	case TypeLookupResponse:
		m, err = ParseLookupResponse(b)
	case TypeHandshakeInit:
		m, err = ParseHandshakeInit(b)
	case TypeHandshakeResponse:
		m, err = ParseHandshakeResponse(b)
	case TypeTransport:
		m, err = ParseTransport(b)
	case TypeCookieReply:
		m, err = ParseCookieReply(b)
	case TypeHandshakeInitCookie:
		m, _, _, err = ParseHandshakeInitCookie(b)
	}
	if err != nil {
		return 0, nil, err
	}
	return t, m, nil
}
