// Package tun is the daemon's side of the TUN device: it creates and
// configures the interface, moves packets between it and the daemon in
// batches, and builds the ICMPv6 errors the daemon answers with.
//
// # Place in the data path
//
// Outbound: the kernel routes fd00::/8 (node addresses) and fc00::/8 (node
// subnets) into the TUN. A Reader reads a batch, its Filter classifies each
// packet (IPv6, well formed, destination in the overlay, optionally source is
// ours) and counts the rest as drops by reason; the daemon resolves each
// destination address to a key (package addressing/lookup), the session layer
// encrypts for that key and the overlay carries it. When the destination
// cannot be reached the daemon builds a Destination Unreachable (or, for a
// packet larger than the far side takes, a Packet Too Big) with this package,
// rate-limited by a RateLimiter, and writes it back.
//
// Inbound: overlay → session decrypts and checks that the inner source
// address belongs to the sender's key → Writer.Write queues a copy → the
// Writer's goroutine writes whatever has queued up in one Write call → TUN.
//
// # Offloads
//
// golang.zx2c4.com/wireguard/tun opens the TUN with IFF_VNET_HDR and turns on
// TSO/checksum offload (and USO where the kernel has it). Then:
//   - one read may return a TCP or UDP super-packet of up to 64 KiB, which
//     the library splits into MTU-sized packets, one per buffer; the Reader
//     passes BatchSize (128) buffers so a whole super-packet fits;
//   - a write of many packets is GRO-merged: consecutive segments of one flow
//     are appended to the first one, in place, which needs a buffer with room
//     for 64 KiB and headroom in front of each packet for the virtio-net
//     header. The Writer owns such buffers and copies queued packets into
//     them (a large packet once, when queued; a small one into a small
//     buffer, then into a batch buffer at flush); callers never deal with
//     offsets.
//
// Without offloads BatchSize is 1 and everything still works, a packet per
// system call.
//
// # Addresses and routes
//
// The node address is assigned as a /8 (fdXX:…/8) without duplicate address
// detection and without a kernel prefix route; Open adds the routes itself
// (fd00::/8 and fc00::/8 by default). Our own /64 lies inside fc00::/8; it is
// not put on the TUN. A daemon serving a LAN from it adds the /64 route
// towards the LAN itself, and longest-prefix match prefers it.
package tun
