package daemon

import (
	"context"
	"time"

	"github.com/pineconed/pineconed/addressing/lookup"
	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/session"
	"github.com/pineconed/pineconed/tun"
)

// Stats gathers the node-wide counters of every layer into one snapshot
// for getStats and the metrics. Each source keeps totals since start-up
// (not sums over live peers or sessions), so the counters never go back.
//
// Drop reasons: the overlay's frame drops keep their own names
// ("no_route", "watermark", "link_queue_full", …); the other layers' are
// prefixed with the layer: "tun_…" (tun.Reason names), "session_…",
// "lookup_…" and "daemon_…" (datapath.Drop; the names stay those of
// before the packet path had its own package).
func (d *Daemon) Stats(ctx context.Context) (admin.Stats, error) {
	ns := d.node.Stats()
	st := admin.Stats{
		PeersByTransport: map[string]uint64{},
		Frames:           map[string]admin.FrameCounters{},
		Drops:            map[string]uint64{},
		TreeRootChanges:  ns.RootChanges,
		TreeDepth:        uint64(ns.Depth),
		IsRoot:           ns.IsRoot,
		SnakeEntries:     uint64(ns.SNEKEntries),
		SessionsByState:  map[string]uint64{},
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
	d.dataPathStats(&st, add)
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

// dataPathStats adds the packet path's layers to st: sessions by state,
// handshake outcomes and drops from the session counters' name table, the
// path's own drops, and the resolver's lookups and drops.
func (d *Daemon) dataPathStats(st *admin.Stats, add func(reason string, n uint64)) {
	ss := d.path.Sessions().Stats()
	rs := d.path.Resolver().Stats()
	st.Handshakes = map[string]uint64{}
	st.Lookups = rs.ByClass(lookup.Result)
	for _, s := range d.path.Sessions().Sessions(time.Now()) {
		st.SessionsByState[sessionState(s.State)]++
	}
	for c := range session.NumCounters {
		if r := c.DropReason(); r != "" {
			add("session_"+r, ss.Counts[c])
		}
		if o := c.HandshakeOutcome(); o != "" {
			st.Handshakes[o] += ss.Counts[c]
		}
	}
	d.path.EachDrop(add)
	for reason, n := range rs.ByClass(lookup.Drop) {
		add("lookup_"+reason, n)
	}
}
