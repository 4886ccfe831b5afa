package wire

import (
	"encoding/binary"
	"fmt"
)

// Watermark is SNEK's loop guard (docs/protocol.md §6.3): the key and bootstrap
// sequence of the route a frame last followed. Along a SNEK path the key may
// only stay the same or fall.
type Watermark struct {
	Key PublicKey
	Seq uint64
}

// StartWatermark is the watermark every frame starts with: the worst one.
var StartWatermark = Watermark{Key: FullMask}

// WorseThan reports whether w is worse than o: a higher key, or the same key
// from an older bootstrap. A sequence of 0 (a route learnt from the tree,
// not from a bootstrap) never counts as worse.
func (w Watermark) WorseThan(o Watermark) bool {
	switch w.Key.Compare(o.Key) {
	case 1:
		return true
	case 0:
		return w.Seq != 0 && w.Seq < o.Seq
	}
	return false
}

func appendWatermark(dst []byte, w Watermark) []byte {
	dst = append(dst, w.Key[:]...)
	return AppendVarint(dst, w.Seq)
}

func readWatermark(b []byte) (Watermark, int, error) {
	var w Watermark
	if len(b) < KeySize {
		return w, 0, fmt.Errorf("watermark key: %w", errShort)
	}
	w.Key = PublicKey(b[:KeySize])
	seq, used, err := ReadVarint(b[KeySize:])
	if err != nil {
		return w, 0, fmt.Errorf("watermark sequence: %w", err)
	}
	w.Seq = seq
	return w, KeySize + used, nil
}

// Bootstrap is a SNEK bootstrap (docs/protocol.md §3.5): a node routing a signed
// note towards its own key, so that every node on the way learns a route back
// to it. Payload is kept raw: it is forwarded unchanged, and a payload that
// fails to parse or verify only drops this frame, never the peer, so the
// router parses it with ParseSignedRoot itself.
type Bootstrap struct {
	// Originator is the frame's destination key, which is the key of the
	// node that sent it.
	Originator PublicKey
	Watermark  Watermark
	Payload    []byte
}

// Type implements Message.
func (*Bootstrap) Type() FrameType { return TypeBootstrap }

// Append implements Message.
func (f *Bootstrap) Append(dst []byte) ([]byte, error) {
	if len(f.Payload) > 0xffff {
		return dst, fmt.Errorf("bootstrap payload of %d bytes is too long", len(f.Payload))
	}
	start := len(dst)
	dst = appendHeader(dst, TypeBootstrap, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Payload)))
	dst = append(dst, f.Originator[:]...)
	dst = appendWatermark(dst, f.Watermark)
	dst = append(dst, f.Payload...)
	return finishFrame(dst, start)
}

// BootstrapOriginator reads the originator of an encoded Bootstrap frame
// without decoding the rest, for counting bootstraps by their originator
// where a whole decode per frame would cost more than the count (the
// routing simulator). ok is false if frame is not a Bootstrap long enough
// to hold one.
func BootstrapOriginator(frame []byte) (key PublicKey, ok bool) {
	h, err := ParseHeader(frame)
	if err != nil || h.Type != TypeBootstrap {
		return key, false
	}
	_, rest, err := splitPayloadLen(frame[HeaderSize:])
	if err != nil || len(rest) < KeySize {
		return key, false
	}
	return PublicKey(rest[:KeySize]), true
}

func decodeBootstrap(body []byte) (*Bootstrap, error) {
	n, rest, err := splitPayloadLen(body)
	if err != nil {
		return nil, err
	}
	f := &Bootstrap{}
	if len(rest) < KeySize {
		return nil, fmt.Errorf("destination key: %w", errShort)
	}
	f.Originator = PublicKey(rest[:KeySize])
	rest = rest[KeySize:]
	var used int
	if f.Watermark, used, err = readWatermark(rest); err != nil {
		return nil, err
	}
	rest = rest[used:]
	if len(rest) != n {
		return nil, fmt.Errorf("payload length %d but %d bytes follow", n, len(rest))
	}
	f.Payload = rest
	return f, nil
}

// Traffic carries application data between two keys (docs/protocol.md §3.6). With
// destination coordinates it is routed on the tree; without them by SNEK,
// and only then is the watermark on the wire.
type Traffic struct {
	HopLimit          uint8
	DestinationCoords Coordinates
	SourceCoords      Coordinates
	Destination       PublicKey
	Source            PublicKey
	Watermark         Watermark
	Payload           []byte
}

// Type implements Message.
func (*Traffic) Type() FrameType { return TypeTraffic }

// routedBySNEK reports whether the frame carries no destination coordinates.
func (f *Traffic) routedBySNEK() bool { return len(f.DestinationCoords) == 0 }

// Overhead is the number of bytes a Traffic frame adds around its payload.
func (f *Traffic) Overhead() int {
	n := HeaderSize + payloadLenSize + f.DestinationCoords.EncodedLen() + f.SourceCoords.EncodedLen() + 2*KeySize
	if f.routedBySNEK() {
		n += KeySize + VarintLen(f.Watermark.Seq)
	}
	return n
}

// MaxTrafficPayload is the largest payload of a Traffic frame whose two
// coordinate lists need at most coordBytes bytes each, with room for the
// SNEK watermark at its longest (a frame routed by the tree needs less).
func MaxTrafficPayload(coordBytes int) int {
	f := Traffic{Watermark: Watermark{Seq: ^uint64(0)}}
	return MaxFrameSize - f.Overhead() - 2*coordBytes
}

// Append implements Message. It fails rather than emit a frame over 65 535
// bytes.
func (f *Traffic) Append(dst []byte) ([]byte, error) {
	dst, err := f.AppendHeader(dst)
	if err != nil {
		return dst, err
	}
	return append(dst, f.Payload...), nil
}

// AppendHeader appends the frame without its payload: everything Append
// writes before f.Payload, with the lengths of the whole frame. Followed by
// the len(f.Payload) payload bytes it is the frame Append builds, so a
// payload that already sits just behind dst's room needs no copy. It fails
// rather than describe a frame over 65 535 bytes, leaving dst as it was.
func (f *Traffic) AppendHeader(dst []byte) ([]byte, error) {
	if len(f.Payload) > MaxFrameSize {
		return dst, fmt.Errorf("traffic payload of %d bytes is too long", len(f.Payload))
	}
	start := len(dst)
	dst = appendHeader(dst, TypeTraffic, f.HopLimit)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Payload)))
	var err error
	if dst, err = AppendCoordinates(dst, f.DestinationCoords); err != nil {
		return dst[:start], err
	}
	if dst, err = AppendCoordinates(dst, f.SourceCoords); err != nil {
		return dst[:start], err
	}
	dst = append(dst, f.Destination[:]...)
	dst = append(dst, f.Source[:]...)
	if f.routedBySNEK() {
		dst = appendWatermark(dst, f.Watermark)
	}
	n := len(dst) - start + len(f.Payload)
	if n > MaxFrameSize {
		return dst[:start], fmt.Errorf("frame of %d bytes exceeds the %d-byte maximum", n, MaxFrameSize)
	}
	binary.BigEndian.PutUint16(dst[start+8:], uint16(n))
	return dst, nil
}

func decodeTraffic(hopLimit uint8, body []byte) (*Traffic, error) {
	n, rest, err := splitPayloadLen(body)
	if err != nil {
		return nil, err
	}
	f := &Traffic{HopLimit: hopLimit}
	var used int
	if f.DestinationCoords, used, err = ReadCoordinates(rest); err != nil {
		return nil, fmt.Errorf("destination %w", err)
	}
	rest = rest[used:]
	if f.SourceCoords, used, err = ReadCoordinates(rest); err != nil {
		return nil, fmt.Errorf("source %w", err)
	}
	rest = rest[used:]
	if len(rest) < 2*KeySize {
		return nil, fmt.Errorf("keys: %w", errShort)
	}
	f.Destination = PublicKey(rest[:KeySize])
	f.Source = PublicKey(rest[KeySize : 2*KeySize])
	rest = rest[2*KeySize:]
	if f.routedBySNEK() {
		if f.Watermark, used, err = readWatermark(rest); err != nil {
			return nil, err
		}
		rest = rest[used:]
	} else {
		// Tree-routed frames carry no watermark; the receiver treats it as
		// the start value (docs/protocol.md §3.6).
		f.Watermark = StartWatermark
	}
	if len(rest) != n {
		return nil, fmt.Errorf("payload length %d but %d bytes follow", n, len(rest))
	}
	f.Payload = rest
	return f, nil
}

// WakeupBroadcast announces a node to others within a few hops (docs/protocol.md
// §3.7, §7). Unlike a bootstrap, a payload that fails to parse or verify is a
// protocol error that drops the peer.
type WakeupBroadcast struct {
	HopLimit uint8
	Source   PublicKey
	Payload  []byte
}

// Type implements Message.
func (*WakeupBroadcast) Type() FrameType { return TypeWakeupBroadcast }

// Append implements Message.
func (f *WakeupBroadcast) Append(dst []byte) ([]byte, error) {
	if len(f.Payload) > 0xffff {
		return dst, fmt.Errorf("wakeup payload of %d bytes is too long", len(f.Payload))
	}
	start := len(dst)
	dst = appendHeader(dst, TypeWakeupBroadcast, f.HopLimit)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(f.Payload)))
	dst = append(dst, f.Source[:]...)
	dst = append(dst, f.Payload...)
	return finishFrame(dst, start)
}

func decodeWakeup(hopLimit uint8, body []byte) (*WakeupBroadcast, error) {
	n, rest, err := splitPayloadLen(body)
	if err != nil {
		return nil, err
	}
	if len(rest) < KeySize {
		return nil, fmt.Errorf("source key: %w", errShort)
	}
	f := &WakeupBroadcast{HopLimit: hopLimit, Source: PublicKey(rest[:KeySize])}
	rest = rest[KeySize:]
	if len(rest) != n {
		return nil, fmt.Errorf("payload length %d but %d bytes follow", n, len(rest))
	}
	f.Payload = rest
	return f, nil
}
