package datapath

import (
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/ratelimit"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/session"
)

// inboundLoop demultiplexes the payloads the overlay delivers to us.
func (p *Path) inboundLoop() {
	defer p.wg.Done()
	deliveries := p.cfg.Overlay.Deliveries()
	for {
		select {
		case <-p.stop:
			return
		case dl := <-deliveries:
			p.receive(dl)
		}
	}
}

// receive handles one delivered payload, on the inbound goroutine or, for
// the payloads an overlay hands over directly (directOverlay), on the
// goroutine of the link that read it.
func (p *Path) receive(dl overlay.Delivery) {
	if p.handleDelivery(time.Now(), dl) {
		return
	}
	// Every layer is done with the payload once it returns: the session
	// and the resolver copy what they keep (the Noise state copies the
	// ephemeral key), so handshake and lookup buffers go back to the pool
	// like transport ones.
	dl.Release()
}

// handleDelivery hands one delivered payload to its layer. It reports
// whether it took the payload's buffer (a transport message's IPv6 packet,
// decrypted in place, goes to the TUN writer in it); otherwise every layer
// is done with the payload when it returns and the caller releases it.
// Handshake messages are copied into the handshake queue, so that their
// Diffie-Hellman never holds up this goroutine and the transport messages
// behind them.
func (p *Path) handleDelivery(now time.Time, dl overlay.Delivery) bool {
	if !envelope.IsEnvelope(dl.Payload) {
		p.drops.inc(DropForeign)
		return false
	}
	t, err := envelope.ParseHeader(dl.Payload)
	if err != nil {
		p.drops.inc(DropBadEnvelope)
		p.log.Debug("bad payload", "peer", dl.Source, "err", err)
		return false
	}
	switch {
	case t == envelope.TypeLookupRequest || t == envelope.TypeLookupResponse:
		// Lookups are addressed to a key that need not exist; SNEK hands
		// them to its successor, which may be us. Requests cost us a
		// reply: they are rate limited by source key and overall.
		if t == envelope.TypeLookupRequest {
			if v := p.lookups.Allow(now, dl.Source); v != ratelimit.Allowed {
				p.drops.inc(DropLookupRateLimited)
				return false
			}
		}
		err = p.resolver.HandlePayload(now, dl.Source, dl.Payload)
	case dl.Destination != p.key:
		p.drops.inc(DropMisrouted)
		return false
	case session.IsHandshake(t):
		p.hsq.Offer(dl.Source, dl.Payload) // a full queue counts its drop
		return false
	case t == envelope.TypeTransport:
		var pkt []byte
		pkt, err = p.sessions.OpenTransport(now, dl.Source, dl.Payload)
		if pkt != nil {
			if p.writer == nil {
				p.drops.inc(DropNoTUN)
				return false
			}
			// The packet is written from the buffer the link read it
			// into: no copy between the socket and the TUN.
			p.writer.WriteBuffer(dl.Take(), pkt)
			return true
		}
	default:
		p.drops.inc(DropBadEnvelope)
		return false
	}
	if err != nil {
		p.log.Debug("payload refused", "peer", dl.Source, "type", t.String(), "err", err)
	}
	return false
}

// handshakeLoop does the session handshakes queued by handleDelivery.
func (p *Path) handshakeLoop() {
	defer p.wg.Done()
	p.hsq.Run(p.stop, time.Now, func(src wire.PublicKey, err error) {
		p.log.Debug("handshake refused", "peer", src, "err", err)
	})
}
