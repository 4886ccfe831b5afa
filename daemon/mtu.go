package daemon

import (
	"fmt"

	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/session"
)

// CoordAllowance is the number of bytes we reserve for each of the two
// coordinate lists a Traffic frame may carry (source and destination) when
// working out the default MTU. A coordinate is a varint port number, at most
// 2 bytes for the 253 usable ports, so 64 bytes covers a tree 32 hops deep
// even with only high port numbers, and 64 hops with low ones; real Pinecone
// trees are a handful of hops deep. A frame whose coordinates are longer
// still travels if its packet is smaller than the MTU by the difference;
// larger ones are refused by the overlay and counted as "overlay_too_large".
const CoordAllowance = 64

// SessionOverhead is what the session layer adds around an IPv6 packet in a
// Traffic payload: the envelope's transport header (marker, version, type,
// receiver index, counter), the inner type byte and the AEAD tag.
const SessionOverhead = envelope.TransportHeaderSize + 1 + envelope.TagSize

// DefaultMTU is the TUN MTU used when the configuration leaves it at 0: the
// largest IPv6 packet that still fits one Traffic frame after the frame
// header, both keys, the SNEK watermark, CoordAllowance bytes of coordinates
// on each side and SessionOverhead. It is never below the IPv6 minimum of
// 1280 and never above what the session layer accepts.
func DefaultMTU() int {
	mtu := overlay.MaxPayload(CoordAllowance) - SessionOverhead
	mtu = min(mtu, session.MaxPacket, config.MaxMTU)
	return max(mtu, config.MinMTU)
}

// effectiveMTU is the MTU the TUN gets for a configured value.
func effectiveMTU(configured int) int {
	if configured == 0 {
		return DefaultMTU()
	}
	return configured
}

// MaxMTU is the largest TUN MTU whose packets fit one Traffic frame at all:
// with empty coordinates on both sides (a node talking to the root) and
// SessionOverhead. config.MaxMTU is the frame size itself, which leaves no
// room for the framing, so the daemon checks this tighter bound.
func MaxMTU() int {
	return min(overlay.MaxPayload(0)-SessionOverhead, session.MaxPacket)
}

// CheckConfig checks what the config package cannot know: that a
// configured MTU fits one overlay frame. file names the configuration in
// the error, as config errors do.
func CheckConfig(file string, cfg config.Config) error {
	if cfg.TUN.MTU > MaxMTU() {
		return config.Errors{&config.Error{File: file, Key: "tun.mtu",
			Msg: fmt.Sprintf("%d does not fit one overlay frame with its framing and encryption; at most %d (0 picks %d)",
				cfg.TUN.MTU, MaxMTU(), DefaultMTU())}}
	}
	return nil
}
