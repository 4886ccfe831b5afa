package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame header layout (docs/protocol.md §3.1).
const (
	// HeaderSize is the fixed header every frame starts with.
	HeaderSize = 10
	// MaxFrameSize is the largest frame the 16-bit length field can describe.
	MaxFrameSize = 0xffff
	// payloadLenSize is the u16be payload length that types 1–4 carry after
	// the header.
	payloadLenSize = 2
	// MaxHopLimit is the hop limit a Traffic frame starts with.
	MaxHopLimit = 10
	// WakeupHopLimit is the hop limit a WakeupBroadcast starts with (the
	// "network horizon").
	WakeupHopLimit = 5
)

// Magic is the 4 bytes every frame starts with.
var Magic = [4]byte{'p', 'i', 'n', 'e'}

// FrameType is byte 5 of the header.
type FrameType uint8

// The frame types of the current protocol (docs/protocol.md §3.2).
const (
	TypeKeepalive        FrameType = 0
	TypeTreeAnnouncement FrameType = 1
	TypeBootstrap        FrameType = 2
	TypeTraffic          FrameType = 3
	TypeWakeupBroadcast  FrameType = 4
)

func (t FrameType) String() string {
	switch t {
	case TypeKeepalive:
		return "keepalive"
	case TypeTreeAnnouncement:
		return "tree_announcement"
	case TypeBootstrap:
		return "bootstrap"
	case TypeTraffic:
		return "traffic"
	case TypeWakeupBroadcast:
		return "wakeup_broadcast"
	}
	return fmt.Sprintf("unknown_%d", uint8(t))
}

// IsProtocol reports whether frames of this type go on a link's protocol
// queue, which is always drained before traffic.
func (t FrameType) IsProtocol() bool { return t != TypeTraffic }

var errShort = errors.New("too short")

// ErrBadMagic means a frame did not start with "pine": the stream is not
// Pinecone, or it lost its framing.
var ErrBadMagic = errors.New("missing magic bytes")

// Header is the fixed 10-byte frame header.
type Header struct {
	Type     FrameType
	HopLimit uint8
	// Length is the total size of the frame, header included.
	Length int
}

// ParseHeader checks the 10 header bytes a link reader has just read and
// returns how long the whole frame is. It refuses the declared lengths that
// crash stock nodes (below 10, or a type 1–4 frame too short to hold its
// payload length field, docs/protocol.md §3.8), so a reader never waits for or
// slices a frame that cannot be valid.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("header: %w", errShort)
	}
	if [4]byte(b[:4]) != Magic {
		return Header{}, ErrBadMagic
	}
	h := Header{
		Type:     FrameType(b[5]),
		HopLimit: b[7],
		Length:   int(binary.BigEndian.Uint16(b[8:10])),
	}
	if h.Length < HeaderSize {
		return h, fmt.Errorf("header: declared length %d is below the header size", h.Length)
	}
	if h.Type >= TypeTreeAnnouncement && h.Type <= TypeWakeupBroadcast && h.Length < HeaderSize+payloadLenSize {
		return h, fmt.Errorf("header: %s frame of %d bytes has no payload length", h.Type, h.Length)
	}
	return h, nil
}

// appendHeader writes a header with a placeholder length; finishFrame fills
// it in once the body is known.
func appendHeader(dst []byte, t FrameType, hopLimit uint8) []byte {
	return append(dst, Magic[0], Magic[1], Magic[2], Magic[3], 0, byte(t), 0, hopLimit, 0, 0)
}

// finishFrame sets the total length of the frame that starts at dst[start:],
// refusing frames the 16-bit length cannot describe: the reference would
// truncate the length and desynchronise the stream.
func finishFrame(dst []byte, start int) ([]byte, error) {
	n := len(dst) - start
	if n > MaxFrameSize {
		return dst[:start], fmt.Errorf("frame of %d bytes exceeds the %d-byte maximum", n, MaxFrameSize)
	}
	binary.BigEndian.PutUint16(dst[start+8:], uint16(n))
	return dst, nil
}

// Message is one decoded frame. The concrete types are *Keepalive,
// *TreeAnnouncement, *Bootstrap, *Traffic, *WakeupBroadcast and *Unknown.
type Message interface {
	// Type is the frame type the message travels as.
	Type() FrameType
	// Append encodes the whole frame, header included, onto dst.
	Append(dst []byte) ([]byte, error)
}

// Decode parses one whole frame: exactly the bytes its header declares.
// Unknown frame types decode to *Unknown so that the caller can drop them and
// keep the peering, as stock nodes do.
func Decode(b []byte) (Message, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if h.Length != len(b) {
		return nil, fmt.Errorf("%s frame: header says %d bytes, got %d", h.Type, h.Length, len(b))
	}
	var m Message
	switch h.Type {
	case TypeKeepalive:
		if len(b) != HeaderSize {
			return nil, fmt.Errorf("keepalive frame of %d bytes: trailing data", len(b))
		}
		return &Keepalive{}, nil
	case TypeTreeAnnouncement:
		m, err = decodeTreeAnnouncement(b[HeaderSize:])
	case TypeBootstrap:
		m, err = decodeBootstrap(b[HeaderSize:])
	case TypeTraffic:
		m, err = decodeTraffic(h.HopLimit, b[HeaderSize:])
	case TypeWakeupBroadcast:
		m, err = decodeWakeup(h.HopLimit, b[HeaderSize:])
	default:
		return &Unknown{FrameType: h.Type}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%s frame: %w", h.Type, err)
	}
	return m, nil
}

// splitPayloadLen reads the u16be payload length that types 1–4 carry after
// the header and returns it with the rest of the body.
func splitPayloadLen(body []byte) (int, []byte, error) {
	if len(body) < payloadLenSize {
		return 0, nil, fmt.Errorf("payload length: %w", errShort)
	}
	return int(binary.BigEndian.Uint16(body)), body[payloadLenSize:], nil
}

// Keepalive is the header-only frame a link sends after 3 s of silence.
type Keepalive struct{}

// Type implements Message.
func (*Keepalive) Type() FrameType { return TypeKeepalive }

// Append implements Message.
func (*Keepalive) Append(dst []byte) ([]byte, error) {
	start := len(dst)
	return finishFrame(appendHeader(dst, TypeKeepalive, 0), start)
}

// Unknown is a frame of a type this version does not know. Its body is not
// kept: it is only ever dropped.
type Unknown struct {
	FrameType FrameType
}

// Type implements Message.
func (u *Unknown) Type() FrameType { return u.FrameType }

// Append implements Message; unknown frames are never sent.
func (u *Unknown) Append(dst []byte) ([]byte, error) {
	return dst, fmt.Errorf("cannot encode a frame of unknown type %d", u.FrameType)
}

// CountedTypes is how many frame types statistics keep apart: the five
// known types, and one slot that every unknown type shares.
const CountedTypes = int(TypeWakeupBroadcast) + 2

// CountSlot is t's slot in a per-type counter array of CountedTypes.
func CountSlot(t FrameType) int {
	if int(t) < CountedTypes-1 {
		return int(t)
	}
	return CountedTypes - 1
}

// SlotName is the stable name of counter slot i, a metric label and admin
// key: the type's String, or "unknown" for the shared slot.
func SlotName(i int) string {
	if i < CountedTypes-1 {
		return FrameType(i).String()
	}
	return "unknown"
}
