// Package daemon is pineconed itself as a library: it wires the overlay
// node, the peerings, the packet path (package datapath: resolver,
// sessions, TUN), the admin socket and the metrics together, reloads the
// configuration and runs the lifecycle, so that cmd/pineconed stays a
// thin layer of flags, configuration and exit codes and tests can start a
// daemon in-process.
//
// # Data path
//
// The packet path (TUN ⇄ resolver ⇄ sessions ⇄ overlay, its goroutines,
// the ICMPv6 errors it answers with, its drop counters) is package
// datapath, whose doc traces one packet each way. The daemon builds the
// overlay node, opens the TUN and hands both to a datapath.Path, starts it
// after the peerings and closes it (which closes the TUN) before the node.
// It hooks the path's echo replies to ping, its lookup outcomes to the
// lookup command and the latency histogram, and its session tick to the
// expiry of peer cards.
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
// getStats and the Prometheus collector read the same snapshot (Stats),
// built from each layer's counters and name tables (session.Counter with
// its DropReason and HandshakeOutcome, datapath.EachDrop, tun.Reason, the
// overlay's drop names). Every counter in it is a node-wide total kept by its package since
// start-up, never a sum over live peers or sessions. Handshakes: "ok"
// (keypairs made), "timeout" (given up), "bad_message" (Noise refused),
// "rejected" (wrong static key or replayed initiation). Lookups: "found",
// "timeout", "cached" (cache hits). Drops keep the overlay's reasons as
// they are ("no_route", "watermark", "link_queue_full", …) and prefix the
// other layers': "tun_…" (tun.Reason names), "session_…", "lookup_…" and
// "daemon_…" (foreign_payload, bad_envelope, misrouted, no_tun,
// overlay_too_large, packet_too_big, to_self, icmp_rate_limited: counted
// by datapath, named as before it had its own package). The lookup
// latency histogram is fed from datapath.Config.LookupDone.
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
