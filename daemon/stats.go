package daemon

import (
	"context"
	"time"

	"github.com/pineconed/pineconed/addressing/lookup"
	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/tun"
)

// Stats gathers the node-wide counters of every layer into one snapshot
// for getStats and the metrics. Each source keeps totals since start-up
// (not sums over live peers or sessions), so the counters never go back.
//
// Drop reasons: the overlay's frame drops keep their own names
// ("no_route", "watermark", "link_queue_full", …); the other layers' are
// prefixed with the layer: "tun_…" (tun.Reason names), "session_…",
// "lookup_…" and "daemon_…" (see dropCounters).
func (d *Daemon) Stats(ctx context.Context) (admin.Stats, error) {
	ns := d.node.Stats()
	ss := d.sessions.Stats()
	rs := d.resolver.Stats()
	st := admin.Stats{
		PeersByTransport: map[string]uint64{},
		Frames:           map[string]admin.FrameCounters{},
		Drops:            map[string]uint64{},
		TreeRootChanges:  ns.RootChanges,
		TreeDepth:        uint64(ns.Depth),
		IsRoot:           ns.IsRoot,
		SnakeEntries:     uint64(ns.SNEKEntries),
		SessionsByState:  map[string]uint64{},
		Handshakes: map[string]uint64{
			"ok":          ss.HandshakesCompleted,
			"timeout":     ss.HandshakesFailed,
			"bad_message": ss.BadHandshake,
			"rejected":    ss.WrongStatic + ss.ReplayedInits,
		},
		Lookups: rs.ByClass(lookup.Result),
	}
	for _, p := range d.node.Peers() {
		st.PeersByTransport[transport(p.Info)]++
	}
	st.StaticPeers = map[string]uint64{admin.StaticStateConnected: 0, admin.StaticStateDialling: 0, admin.StaticStateWaiting: 0}
	for _, sp := range d.peers.List() {
		st.StaticPeers[staticState(sp.State)]++
	}
	for name, c := range ns.FramesIn {
		fc := st.Frames[name]
		fc.FramesIn, fc.BytesIn = c.Frames, c.Bytes
		st.Frames[name] = fc
	}
	for name, c := range ns.FramesOut {
		fc := st.Frames[name]
		fc.FramesOut, fc.BytesOut = c.Frames, c.Bytes
		st.Frames[name] = fc
	}
	// Every known reason and every transport appears, zeros too: a series
	// that exists from the start is what lets `pineconed_peers == 0` or an
	// increase() on a drop reason fire.
	add := func(reason string, n uint64) { st.Drops[reason] += n }
	for _, t := range []string{admin.TransportTCP, admin.TransportWS, admin.TransportWSS, admin.TransportMulticast} {
		if _, ok := st.PeersByTransport[t]; !ok {
			st.PeersByTransport[t] = 0
		}
	}
	for reason, n := range ns.Drops {
		add(reason, n)
	}
	for _, s := range d.sessions.Sessions(time.Now()) {
		st.SessionsByState[sessionState(s.State)]++
	}
	add("session_queue_full", ss.DropQueueFull)
	add("session_too_many_peers", ss.DropTooManyPeer)
	add("session_too_big", ss.DropTooBig)
	add("session_bad_key", ss.DropBadKey)
	add("session_unreachable", ss.DropUnreachable)
	add("session_unknown_index", ss.UnknownIndex)
	add("session_decrypt_failed", ss.DecryptFailures)
	add("session_replay", ss.Replays)
	add("session_too_old", ss.TooOld)
	add("session_expired", ss.Expired)
	add("session_malformed", ss.Malformed)
	add("session_bad_inner", ss.BadInner)
	add("session_bad_source", ss.BadSource)
	add("session_initiation_rate_limited", ss.InitiationsLimited)
	add("session_need_cookie", ss.NeedCookie)
	add("session_cookie_reply_rate_limited", ss.CookieRepliesLimited)
	add("session_bad_cookie", ss.BadCookie)
	add("session_handshake_queue_full", d.hsq.Drops())
	add("lookup_rate_limited", d.drops.lookupLimit.Load())
	for reason, n := range rs.ByClass(lookup.Drop) {
		add("lookup_"+reason, n)
	}
	add("daemon_foreign_payload", d.drops.foreign.Load())
	add("daemon_bad_envelope", d.drops.badEnvelope.Load())
	add("daemon_misrouted", d.drops.misrouted.Load())
	add("daemon_no_tun", d.drops.noTUN.Load())
	add("daemon_overlay_too_large", d.drops.tooLarge.Load())
	add("daemon_packet_too_big", d.drops.tooBig.Load())
	add("daemon_to_self", d.drops.toSelf.Load())
	add("daemon_icmp_rate_limited", d.icmp.Suppressed())
	for _, reason := range tun.ReasonNames() {
		add("tun_"+reason, 0)
	}
	if d.dev != nil {
		ts := d.dev.Stats()
		for reason, n := range ts.Drops {
			add("tun_"+reason, n)
		}
		st.Tun = admin.TunCounters{
			PacketsRead:    ts.ReadPackets,
			PacketsWritten: ts.WrittenPackets,
			BytesRead:      ts.ReadBytes,
			BytesWritten:   ts.WrittenBytes,
		}
	}
	return st, nil
}
