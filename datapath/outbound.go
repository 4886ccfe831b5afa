package datapath

import (
	"net/netip"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/tun"
)

// outboundLoop reads packets from the TUN until the device closes.
func (p *Path) outboundLoop() {
	defer p.wg.Done()
	r := p.cfg.Device.NewReader(tun.Filter{
		Destinations: tun.OverlayPrefixes,
		// Our node address and our /64: a packet from anywhere else would
		// be refused by the far side's source check anyway.
		Sources: []netip.Prefix{netip.PrefixFrom(p.addr, 128), p.subnet},
	})
	err := r.Run(func(pkts [][]byte, hdrs []tun.Header) {
		now := time.Now()
		for i, pkt := range pkts {
			if addressing.Belongs(hdrs[i].Dst, p.key) {
				p.toSelf(now, pkt)
				continue
			}
			key, ok := p.resolver.Resolve(now, hdrs[i].Dst, pkt)
			if ok {
				p.sendPacket(now, key, pkt, r.Framed(i))
			}
		}
	})
	if err != nil && !p.stopped() {
		p.log.Error("TUN reader stopped", "err", err)
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
func (p *Path) toSelf(now time.Time, pkt []byte) {
	p.drops.inc(DropToSelf)
	p.icmpError(now, pkt, func(dst []byte) ([]byte, error) {
		return tun.DestinationUnreachable(dst, p.addr, tun.CodeAddressUnreachable, pkt)
	})
}

// sendPacket hands one IPv6 packet for key to the session layer, and
// answers it with Packet Too Big when the session layer says the remote
// announced a smaller MTU. framed, when not nil, is pkt with a free byte
// in front (tun.Reader.Framed), which spares the session layer a copy.
func (p *Path) sendPacket(now time.Time, key wire.PublicKey, pkt, framed []byte) {
	var mtu int
	if framed != nil {
		mtu = p.sessions.SendFramed(now, key, framed)
	} else {
		mtu = p.sessions.Send(now, key, pkt)
	}
	if mtu > 0 {
		p.drops.inc(DropPacketTooBig)
		p.icmpError(now, pkt, func(dst []byte) ([]byte, error) {
			return tun.PacketTooBig(dst, p.addr, mtu, pkt)
		})
	}
}

// onResolved sends the packets that waited for a lookup.
func (p *Path) onResolved(key wire.PublicKey, packets [][]byte) {
	now := time.Now()
	for _, pkt := range packets {
		p.sendPacket(now, key, pkt, nil)
	}
}
