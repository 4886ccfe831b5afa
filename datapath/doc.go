// Package datapath is the packet path of a node: it carries IPv6 packets
// between the TUN device and the overlay, through the address resolver
// and the session layer, and owns the goroutines that do it. It is the
// counterpart of yggdrasil's ipv6rwc; package daemon only builds a Path,
// starts it and closes it.
//
// # One packet out
//
// The outbound goroutine (outboundLoop) reads batches from the TUN
// (tun.Reader with a Filter: IPv6 only, destination in fd00::/8 or
// fc00::/8, source our node address or our /64; everything else is
// dropped and counted by tun). A packet to our own node address or /64
// never enters the overlay, which would only bring it back: toSelf
// answers it with ICMPv6 Address Unreachable (DropToSelf). Every other
// packet's destination goes to lookup.Resolver.Resolve: a known key
// goes on at once, an unknown one waits in the resolver's bounded queue
// while it looks the address up, and comes back through onResolved (or,
// when nobody owns the address, onLookupFailed answers it with Address
// Unreachable). sendPacket hands the packet to session.Manager.SendFramed
// (a packet that waited for a lookup, which is a copy, to Send), which
// compares it with the MTU the remote announced in its handshake under the
// same lookup and lock it sends with; a larger one is answered with Packet
// Too Big (DropPacketTooBig).
//
// The session layer encrypts (handshaking first, with the packet queued)
// from the TUN reader's buffer, which leaves a byte in front of each packet
// for the inner type byte (tun.Reader.Framed), straight into a buffer from
// internal/bufpool, leaving room in front for the frame
// header, and calls Path.Send — the Path is its session.Transport — which
// hands it to overlay.Node.SendBuffer: the node writes the Traffic header
// in place and the link gives the buffer back to the pool once written,
// so a packet is copied only by encryption and the socket write.
// Handshake messages and the resolver's lookups take the same Send with no
// headroom. A handshake given up comes back through Transport.Unreachable
// as ICMPv6 Destination Unreachable (no route). ICMPv6 errors are
// rate-limited by a tun.RateLimiter and never answer an ICMPv6 error.
//
// # One packet in
//
// A link reads each frame into a pool buffer of its own and the overlay
// node hands the payload routed to us, still in that buffer, straight to
// the path on the link's goroutine (overlay.Node.HandleDeliveries; payloads
// the node delivers from elsewhere, and those of an overlay without it,
// come through Deliveries to the inbound goroutine, inboundLoop). Either
// way handleDelivery sorts each payload by its envelope header: payloads
// without our envelope marker (QUIC from stock applications, pineping) are
// counted and dropped; lookups go to the resolver whatever the frame's
// destination key (SNEK hands a lookup for a key that does not exist to
// its successor, which may be us), requests within a per-source and global
// rate limit; handshake messages for our key are copied into the bounded
// session.HandshakeQueue, whose own goroutine (handshakeLoop) does their
// Diffie-Hellman, so transport messages never wait behind them; transport
// messages for our key go to session.Manager.OpenTransport, which
// authenticates the sender, decrypts in place and checks that the inner
// packet's source belongs to it, and the packet goes to the tun.Writer in
// the buffer the link filled (WriteBuffer): one goroutine hand-off, and no
// copy between the socket's read buffer and the TUN for a large packet.
// Other payloads go back to the pool once handled. A completed handshake
// (Transport.Established) teaches the resolver the proven key.
//
// # Timers
//
// A timer goroutine (timerLoop) ticks the resolver every 250 ms and the
// sessions (and Config.Tick) every second, and retries pending lookups as
// soon as the overlay gains a route. Close stops every goroutine, closes
// the TUN and waits.
//
// # Counters
//
// The path's own drop reasons are the Drop enum and its name table; their
// labels ("daemon_to_self", …, "lookup_rate_limited") are those the
// dashboards know. EachDrop reports them with the handshake queue's and
// the ICMPv6 limiter's; the session layer's and the resolver's counters
// are in their own Stats.
package datapath
