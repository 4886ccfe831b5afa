package daemon

import (
	"errors"
	"net/netip"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/ratelimit"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/session"
	"github.com/pineconed/pineconed/tun"
)

// overlaySend is the send function of the resolver and the session layer.
// The overlay is best effort and reports only payloads too large for one
// frame, which happens when the real coordinates are longer than
// CoordAllowance.
func (d *Daemon) overlaySend(dst wire.PublicKey, payload []byte) {
	if err := d.node.SendTo(dst, payload); err != nil {
		if errors.Is(err, overlay.ErrTooLarge) {
			d.drops.tooLarge.Add(1)
		}
		d.log.Debug("overlay send failed", "peer", dst.String(), "err", err)
	}
}

// overlaySendBuffer is the session layer's send function for transport
// messages: the message at buf[off:] is framed in place (see
// internal/bufpool), and the overlay owns buf.
func (d *Daemon) overlaySendBuffer(dst wire.PublicKey, buf []byte, off int) {
	if err := d.node.SendBuffer(dst, buf, off); err != nil {
		if errors.Is(err, overlay.ErrTooLarge) {
			d.drops.tooLarge.Add(1)
		}
		d.log.Debug("overlay send failed", "peer", dst.String(), "err", err)
	}
}

// outboundLoop reads packets from the TUN until the device closes.
func (d *Daemon) outboundLoop() {
	defer d.wg.Done()
	r := d.dev.NewReader(tun.Filter{
		Destinations: tun.OverlayPrefixes,
		// Our node address and our /64: a packet from anywhere else would
		// be refused by the far side's source check anyway.
		Sources: []netip.Prefix{netip.PrefixFrom(d.addr, 128), d.subnet},
	})
	err := r.Run(func(pkts [][]byte, hdrs []tun.Header) {
		now := time.Now()
		for i, pkt := range pkts {
			if addressing.Belongs(hdrs[i].Dst, d.key) {
				d.toSelf(now, pkt)
				continue
			}
			key, ok := d.resolver.Resolve(now, hdrs[i].Dst, pkt)
			if ok {
				d.sendPacket(now, key, pkt)
			}
		}
	})
	if err != nil && !d.stopped() {
		d.log.Error("TUN reader stopped", "err", err)
	}
}

// toSelf answers a packet from the TUN addressed to our own node address
// or /64. The overlay would only carry it back to us, so it never enters
// it. Our node address is local to the kernel and never reaches the TUN
// while it is assigned; an address in our /64 reaches it when no more
// specific route takes it (the /64 is not assigned to a LAN here), and no
// host has it: Address Unreachable, as a router says for a neighbour that
// does not answer. Writing it back into the TUN instead would make the
// kernel route it straight back to us.
func (d *Daemon) toSelf(now time.Time, pkt []byte) {
	d.drops.toSelf.Add(1)
	d.icmpError(now, pkt, func(dst []byte) ([]byte, error) {
		return tun.DestinationUnreachable(dst, d.addr, tun.CodeAddressUnreachable, pkt)
	})
}

// sendPacket hands one IPv6 packet for key to the session layer, or answers
// it with Packet Too Big when the remote announced a smaller MTU.
func (d *Daemon) sendPacket(now time.Time, key wire.PublicKey, pkt []byte) {
	if mtu, ok := d.sessions.PeerMTU(key); ok && mtu >= tun.MinMTU && len(pkt) > mtu {
		d.drops.tooBig.Add(1)
		d.icmpError(now, pkt, func(dst []byte) ([]byte, error) {
			return tun.PacketTooBig(dst, d.addr, mtu, pkt)
		})
		return
	}
	d.sessions.Send(now, key, pkt)
}

// onResolved sends the packets that waited for a lookup.
func (d *Daemon) onResolved(key wire.PublicKey, packets [][]byte) {
	now := time.Now()
	for _, p := range packets {
		d.sendPacket(now, key, p)
	}
}

// onLookupFailed answers packets whose destination nobody owns.
func (d *Daemon) onLookupFailed(prefix addressing.KeyPrefix, packets [][]byte) {
	d.log.Debug("address lookup failed", "prefix", prefix.String(), "packets", len(packets))
	d.unreachable(packets, tun.CodeAddressUnreachable)
}

// onHandshakeFailed answers packets queued behind a handshake that was
// given up.
func (d *Daemon) onHandshakeFailed(dst wire.PublicKey, packets [][]byte) {
	d.log.Info("session handshake given up", "peer", dst.String(), "packets", len(packets))
	d.resolver.Forget(dst)
	d.unreachable(packets, tun.CodeNoRoute)
}

func (d *Daemon) unreachable(packets [][]byte, code uint8) {
	if d.writer == nil {
		return
	}
	now := time.Now()
	for _, p := range packets {
		d.icmpError(now, p, func(dst []byte) ([]byte, error) {
			return tun.DestinationUnreachable(dst, d.addr, code, p)
		})
	}
}

// icmpError writes an ICMPv6 error built by build back into the TUN,
// within the rate limit. Packets that must not be answered (RFC 4443
// §2.4e) are skipped quietly.
func (d *Daemon) icmpError(now time.Time, offending []byte, build func([]byte) ([]byte, error)) {
	if d.writer == nil || tun.MayReplyWithError(offending) != nil {
		return
	}
	if !d.icmp.Allow(now) {
		return
	}
	msg, err := build(make([]byte, 0, tun.MinMTU))
	if err != nil {
		d.log.Debug("no ICMPv6 error sent", "err", err)
		return
	}
	d.writer.Write(msg)
}

// lookupResult is how a lookup for one prefix ended.
type lookupResult struct {
	ok      bool
	latency time.Duration
}

// onLookupDone feeds the latency histogram and hands the outcome to the
// admin lookups waiting for that prefix.
func (d *Daemon) onLookupDone(prefix addressing.KeyPrefix, latency time.Duration, ok bool) {
	result := "found"
	if ok {
		d.log.Debug("address lookup found", "prefix", prefix.String(), "after", latency)
	} else {
		result = "timeout"
		d.log.Debug("address lookup gave up", "prefix", prefix.String(), "after", latency)
	}
	if d.metrics != nil {
		d.metrics.ObserveLookup(result, latency)
	}
	d.lookupMu.Lock()
	waiters := d.lookupWaiters[prefix]
	delete(d.lookupWaiters, prefix)
	d.lookupMu.Unlock()
	for _, w := range waiters {
		w <- lookupResult{ok: ok, latency: latency} // buffered, one send each
	}
}

// awaitLookup registers for the outcome of the next lookup of prefix to
// end. The returned function unregisters; call it when no longer waiting.
func (d *Daemon) awaitLookup(prefix addressing.KeyPrefix) (<-chan lookupResult, func()) {
	ch := make(chan lookupResult, 1)
	d.lookupMu.Lock()
	d.lookupWaiters[prefix] = append(d.lookupWaiters[prefix], ch)
	d.lookupMu.Unlock()
	return ch, func() {
		d.lookupMu.Lock()
		defer d.lookupMu.Unlock()
		ws := d.lookupWaiters[prefix]
		for i, w := range ws {
			if w == ch {
				ws = append(ws[:i], ws[i+1:]...)
				break
			}
		}
		if len(ws) == 0 {
			delete(d.lookupWaiters, prefix)
		} else {
			d.lookupWaiters[prefix] = ws
		}
	}
}

// onEstablished teaches the resolver a key the handshake proved.
func (d *Daemon) onEstablished(remote wire.PublicKey, initiator bool, latency time.Duration) {
	d.log.Debug("session established", "peer", remote.String(), "initiator", initiator, "latency", latency)
	d.resolver.Learn(time.Now(), remote)
}

// deliver writes a decrypted packet, whose source the session layer has
// checked, to the TUN.
func (d *Daemon) deliver(src wire.PublicKey, pkt []byte) {
	if d.writer == nil {
		d.drops.noTUN.Add(1)
		return
	}
	d.writer.Write(pkt)
}

// inboundLoop demultiplexes the payloads the overlay delivers to us.
func (d *Daemon) inboundLoop() {
	defer d.wg.Done()
	deliveries := d.node.Deliveries()
	for {
		select {
		case <-d.stop:
			return
		case dl := <-deliveries:
			d.handleDelivery(time.Now(), dl)
			// Every layer is done with the payload once it returns:
			// the session and the resolver copy what they keep (the
			// Noise state copies the ephemeral key), so handshake and
			// lookup buffers go back to the pool like transport ones.
			dl.Release()
		}
	}
}

// handleDelivery hands one delivered payload to its layer, which is done
// with it when this returns. Transport messages are decrypted, checked and
// copied to the TUN writer before HandlePayload returns; handshake
// messages are copied into the handshake queue, so that their
// Diffie-Hellman never holds up this goroutine and the transport messages
// behind them.
func (d *Daemon) handleDelivery(now time.Time, dl overlay.Delivery) {
	if !envelope.IsEnvelope(dl.Payload) {
		d.drops.foreign.Add(1)
		return
	}
	t, err := envelope.ParseHeader(dl.Payload)
	if err != nil {
		d.drops.badEnvelope.Add(1)
		d.log.Debug("bad payload", "peer", dl.Source.String(), "err", err)
		return
	}
	switch {
	case t == envelope.TypeLookupRequest || t == envelope.TypeLookupResponse:
		// Lookups are addressed to a key that need not exist; SNEK hands
		// them to its successor, which may be us. Requests cost us a
		// reply: they are rate limited by source key and overall.
		if t == envelope.TypeLookupRequest {
			if v := d.lookups.Allow(now, dl.Source); v != ratelimit.Allowed {
				d.drops.lookupLimit.Add(1)
				return
			}
		}
		err = d.resolver.HandlePayload(now, dl.Source, dl.Payload)
	case dl.Destination != d.key:
		d.drops.misrouted.Add(1)
		return
	case session.IsHandshake(t):
		d.hsq.Offer(dl.Source, dl.Payload) // a full queue counts its drop
		return
	case t == envelope.TypeTransport:
		err = d.sessions.HandlePayload(now, dl.Source, dl.Payload)
	default:
		d.drops.badEnvelope.Add(1)
		return
	}
	if err != nil {
		d.log.Debug("payload refused", "peer", dl.Source.String(), "type", t.String(), "err", err)
	}
}

// handshakeLoop does the session handshakes queued by handleDelivery.
func (d *Daemon) handshakeLoop() {
	defer d.wg.Done()
	d.hsq.Run(d.stop, time.Now, func(src wire.PublicKey, err error) {
		d.log.Debug("handshake refused", "peer", src.String(), "err", err)
	})
}

// timerLoop drives the resolver's retries and the session timers, and
// retries pending lookups as soon as the overlay gains a route.
func (d *Daemon) timerLoop() {
	defer d.wg.Done()
	t := time.NewTicker(resolverTick)
	defer t.Stop()
	var lastSession time.Time
	for {
		select {
		case <-d.stop:
			return
		case <-d.node.RoutesChanged():
			if sent, owed := d.resolver.RoutesChanged(time.Now()); sent+owed > 0 {
				d.log.Debug("routes changed: pending lookups retried", "sent", sent, "owed", owed)
			}
		case now := <-t.C:
			d.resolver.Tick(now)
			if now.Sub(lastSession) >= sessionTick-resolverTick/2 {
				d.sessions.Tick(now)
				d.expireCards(now)
				lastSession = now
			}
		}
	}
}
