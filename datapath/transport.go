package datapath

import (
	"errors"
	"time"

	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/tun"
)

// The Path is the session layer's session.Transport: what the session
// manager sends goes to the overlay from here, and what it decrypts or
// gives up on comes back here.

// Send hands a payload to the overlay: the one send function of the
// resolver (off 0) and of the session layer (handshakes with off 0,
// transport messages in a pool buffer with off bytes of headroom). With
// off 0 there is no room for the frame header and the node builds the
// frame in a buffer of its own, so one call serves both.
// The overlay is best effort and reports only payloads too large for one
// frame, which happens when the real coordinates are longer than
// CoordAllowance.
func (p *Path) Send(dst wire.PublicKey, buf []byte, off int) {
	if err := p.cfg.Overlay.SendBuffer(dst, buf, off); err != nil {
		if errors.Is(err, overlay.ErrTooLarge) {
			p.drops.inc(DropOverlayTooLarge)
		}
		p.log.Debug("overlay send failed", "peer", dst, "err", err)
	}
}

// Deliver writes a decrypted packet, whose source the session layer has
// checked, to the TUN.
func (p *Path) Deliver(src wire.PublicKey, pkt []byte) {
	if p.writer == nil {
		p.drops.inc(DropNoTUN)
		return
	}
	p.writer.Write(pkt)
}

// EchoReply hands an echo reply to Config.EchoReply.
func (p *Path) EchoReply(src wire.PublicKey, id uint64, data []byte) {
	if p.cfg.EchoReply != nil {
		p.cfg.EchoReply(src, id, data)
	}
}

// Established teaches the resolver a key the handshake proved.
func (p *Path) Established(remote wire.PublicKey, initiator bool, latency time.Duration) {
	p.log.Debug("session established", "peer", remote, "initiator", initiator, "latency", latency)
	p.resolver.Learn(time.Now(), remote)
}

// Unreachable answers packets queued behind a handshake that was given
// up, and makes the resolver ask again for the key next time.
func (p *Path) Unreachable(dst wire.PublicKey, packets [][]byte) {
	p.log.Info("session handshake given up", "peer", dst, "packets", len(packets))
	p.resolver.Forget(dst)
	p.unreachable(packets, tun.CodeNoRoute)
}
