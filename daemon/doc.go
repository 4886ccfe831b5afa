// Package daemon is pineconed itself as a library: it wires the overlay
// node, the peerings, the address resolver, the sessions, the TUN device,
// the admin socket and the metrics together, so that cmd/pineconed stays a
// thin layer of flags, configuration and exit codes and tests can start a
// daemon in-process.
//
// # Data path
//
// Outbound, one goroutine reads batches from the TUN (tun.Reader with a
// Filter: IPv6 only, destination in fd00::/8 or fc00::/8, source our node
// address or our /64; everything else is dropped and counted by tun).
// A packet to our own node address or /64 never enters the overlay (it
// would come straight back): it is answered with ICMPv6 Address
// Unreachable and counted as "daemon_to_self". Every other packet's
// destination is resolved (lookup.Resolver.Resolve); a
// known key goes straight to the session layer, an unknown one waits in
// the resolver's bounded queue and comes back through its Resolved
// callback. Before encryption the packet is compared with the MTU the
// remote announced in its handshake and answered with ICMPv6 Packet Too Big
// when larger. session.Manager encrypts (handshaking first) into a buffer
// from internal/bufpool, leaving room in front for the frame header, and
// hands it to overlay.Node.SendBuffer, which writes the Traffic header in
// place; the link gives the buffer back to the pool once written, so a
// packet is copied only by encryption and the socket write. Lookups that fail and handshakes that
// are given up come back as ICMPv6 Destination Unreachable (address
// unreachable, resp. no route), rate-limited by a tun.RateLimiter.
//
// Inbound, one goroutine reads overlay.Node.Deliveries: payloads without
// our envelope marker (QUIC from stock applications, pineping) are counted
// and dropped; lookups go to the resolver (whatever the frame's
// destination key, since SNEK hands a lookup to the successor of a key that
// does not exist); handshake and transport messages for our key go to the
// session layer, which authenticates the sender, checks that the inner
// packet's source belongs to it and calls deliver, which queues it on the
// tun.Writer. The delivered payload is in a bufpool buffer, given back
// once a transport message has been handled. A completed handshake teaches the resolver the proven key.
// A timer goroutine ticks the resolver every 250 ms and the sessions every
// second. Every goroutine is stopped and waited for by Close.
//
// # MTU
//
// With [tun] mtu = 0 the TUN gets DefaultMTU: the largest IPv6 packet that
// fits one Pinecone Traffic frame (65 535 bytes) after the frame header,
// payload length, both keys, the SNEK watermark (key and a 10-byte varint),
// CoordAllowance (64) bytes of coordinates on each side — all of that is
// overlay.MaxPayload(CoordAllowance) — and the session overhead (6-byte
// envelope header, 4-byte index, 8-byte counter, inner type byte, 16-byte
// tag). That is 65 535 − 250 − 35 = 65 250. A configured MTU may go up to
// MaxMTU, 65 378 (empty coordinates); the config package refuses more when
// it loads the file. Both numbers come from internal/mtu, the one place
// the arithmetic lives.
//
// # Admin API and metrics
//
// getSelf, getTree, getSnake and getPeers come from the overlay node's
// live views (getPeers adds each link's drop counters from overlay/peers;
// peerings whose zone is an interface are reported with transport
// "multicast"). getSessions maps the session layer's states "handshake"
// and "waiting" to "handshaking"; last_rekey_seconds is the time since the
// current keypair was made (the first handshake counts). lookup answers
// from the resolver cache or starts a lookup over the overlay and waits
// for its outcome: LookupDone names the prefix whose lookup ended, so an
// address nobody owns fails with "no node owns …" the moment the resolver
// gives up (about 11 s; the admin server allows lookups 15 s). ping sends
// session echo requests, each with a fresh 64-bit id (random start, then
// counting up) and matched to its reply by id and sender key, so a late
// reply is never counted for a later probe. addPeer and removePeer go to overlay/peers.
//
// getTree's ancestors are the signers of our parent's announcement, and
// its children the peers whose announced coordinates are ours plus the
// port they have here. The status page on the metrics listener serves the
// same backend's answers (admin.Read) and a throughput history that a
// goroutine of the daemon samples from it every 2 s.
//
// getStats and the Prometheus collector read the same snapshot (Stats).
// Every counter in it is a node-wide total kept by its package since
// start-up, never a sum over live peers or sessions. Handshakes: "ok"
// (keypairs made), "timeout" (given up), "bad_message" (Noise refused),
// "rejected" (wrong static key or replayed initiation). Lookups: "found",
// "timeout", "cached" (cache hits). Drops keep the overlay's reasons as
// they are ("no_route", "watermark", "link_queue_full", …) and prefix the
// other layers': "tun_…" (tun.Reason names), "session_…", "lookup_…" and
// "daemon_…" (foreign_payload, bad_envelope, misrouted, no_tun,
// overlay_too_large, packet_too_big, to_self, icmp_rate_limited). The lookup latency
// histogram is fed from the resolver's LookupDone callback.
//
// # Reload
//
// Reload (SIGHUP) sends RELOADING=1, reads the file again and, if it does
// not load, logs why and keeps everything as it was. Otherwise it applies
// config.Diff: static peers added and removed, listeners closed and
// opened (closing one stops it accepting; the peerings it accepted stay
// up, and so do sessions, which belong to keys, not links), log_level
// through the slog.LevelVar, allowed_keys (the peer manager closes inbound
// and discovered peerings no longer allowed) and max_peers in the peer
// manager and the node, and multicast discovery restarted when any of its
// options changed. Keys that need a restart (private_key_file, log_format,
// [tun], [peers.tls], [admin], [metrics]) are logged as such and keep their
// running values. READY=1 follows either way.
package daemon
