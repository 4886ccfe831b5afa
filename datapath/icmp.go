package datapath

import (
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/tun"
)

// onLookupFailed answers packets whose destination nobody owns.
func (p *Path) onLookupFailed(prefix addressing.KeyPrefix, packets [][]byte) {
	p.log.Debug("address lookup failed", "prefix", prefix, "packets", len(packets))
	p.unreachable(packets, tun.CodeAddressUnreachable)
}

// unreachable answers packets with ICMPv6 Destination Unreachable, code
// code.
func (p *Path) unreachable(packets [][]byte, code uint8) {
	if p.writer == nil {
		return
	}
	now := time.Now()
	for _, pkt := range packets {
		p.icmpError(now, pkt, func(dst []byte) ([]byte, error) {
			return tun.DestinationUnreachable(dst, p.addr, code, pkt)
		})
	}
}

// icmpError writes an ICMPv6 error built by build back into the TUN,
// within the rate limit. Packets that must not be answered (RFC 4443
// §2.4e) are skipped quietly.
func (p *Path) icmpError(now time.Time, offending []byte, build func([]byte) ([]byte, error)) {
	if p.writer == nil || tun.MayReplyWithError(offending) != nil {
		return
	}
	if !p.icmp.Allow(now) {
		return
	}
	msg, err := build(make([]byte, 0, tun.MinMTU))
	if err != nil {
		p.log.Debug("no ICMPv6 error sent", "err", err)
		return
	}
	p.writer.Write(msg)
}
