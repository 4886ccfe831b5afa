package datapath

import (
	"sync/atomic"

	"github.com/pineconed/pineconed/internal/enum"
)

// Drop names one of the packet path's own drop reasons; the layers it
// drives (tun, session, the resolver, the overlay) count theirs.
type Drop uint8

// The packet path's drop reasons.
const (
	DropForeign           Drop = iota // payload without our envelope marker (QUIC, pineping)
	DropBadEnvelope                   // marker but bad version or type
	DropMisrouted                     // session message for a key that is not ours
	DropNoTUN                         // decrypted packet on a relay-only node
	DropOverlayTooLarge               // overlay refused a payload larger than a frame
	DropPacketTooBig                  // packet larger than the remote's MTU (answered with Packet Too Big)
	DropToSelf                        // packet from the TUN to our own address or /64 (answered with Address Unreachable)
	DropLookupRateLimited             // lookup request over the per-source or global rate

	// NumDrops is the number of drop reasons.
	NumDrops
)

// dropNames are the drop reasons' labels under pineconed_drops_total, as
// the dashboards and alerts know them (the "daemon_" prefix is where they
// were counted before this package existed; the lookup limit is named
// with the lookups).
var dropNames = [NumDrops]string{
	DropForeign:           "daemon_foreign_payload",
	DropBadEnvelope:       "daemon_bad_envelope",
	DropMisrouted:         "daemon_misrouted",
	DropNoTUN:             "daemon_no_tun",
	DropOverlayTooLarge:   "daemon_overlay_too_large",
	DropPacketTooBig:      "daemon_packet_too_big",
	DropToSelf:            "daemon_to_self",
	DropLookupRateLimited: "lookup_rate_limited",
}

// String is the drop reason's metric label.
func (d Drop) String() string {
	return enum.Name(dropNames[:], d, "datapath_drop")
}

// counters are the path's live drop counters.
type counters [NumDrops]atomic.Uint64

func (c *counters) inc(d Drop) { c[d].Add(1) }

// Dropped is the count of one drop reason since New.
func (p *Path) Dropped(d Drop) uint64 { return p.drops[d].Load() }

// EachDrop calls add with every drop reason the path itself counts, by
// metric label, zeros too: its own, the handshake queue's
// ("session_handshake_queue_full") and the ICMPv6 errors not sent for the
// rate limit ("daemon_icmp_rate_limited"). The session layer's and the
// resolver's own counters are in their Stats.
func (p *Path) EachDrop(add func(reason string, n uint64)) {
	for d := range NumDrops {
		add(d.String(), p.drops[d].Load())
	}
	add("session_handshake_queue_full", p.hsq.Drops())
	add("daemon_icmp_rate_limited", p.icmp.Suppressed())
}
