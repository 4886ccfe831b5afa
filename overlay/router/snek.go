package router

import (
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// bootstrapSoon makes the next maintenance tick send a bootstrap (§5.1).
// Every reason for it is a change of our place in the tree or the snake,
// so it also starts the window of fast bootstraps.
func (r *Router) bootstrapSoon(now time.Time) {
	r.lastBootstrap = now.Add(-BootstrapInterval)
	r.lastChange = now
}

// bootstrapInterval is the time between two of our bootstraps at now:
// FastBootstrapInterval within the fast window after a change, else the
// reference's BootstrapInterval.
func (r *Router) bootstrapInterval(now time.Time) time.Duration {
	w := r.opts.FastBootstrapWindow
	if r.opts.ReferenceTimers || w < 0 || r.lastChange.IsZero() || now.Sub(r.lastChange) >= w {
		return BootstrapInterval
	}
	return FastBootstrapInterval
}

// signRoot builds the signed payload of a bootstrap or wakeup.
func (r *Router) signRoot(seq uint64, root wire.Root) wire.SignedRoot {
	if r.opts.InsecureSkipSignatures {
		return wire.SignedRoot{Seq: seq, Root: root}
	}
	return wire.NewSignedRoot(r.priv, seq, root)
}

// unixMilli is the sequence number of bootstraps and wakeups: the sender's
// clock in Unix milliseconds.
func unixMilli(now time.Time) uint64 {
	if ms := now.UnixMilli(); ms > 0 {
		return uint64(ms)
	}
	return 0
}

// sendBootstrap sends this node's bootstrap towards its own key (§5.1):
// the first node that knows no key between ours and its own keeps it, and
// every node on the way learns the route back to us.
func (r *Router) sendBootstrap(now time.Time) {
	r.lastBootstrap = now
	next, wm := r.bootstrapNextHop(now, r.key, wire.StartWatermark)
	if next == NoPort || next == LocalPort {
		r.stats.drop(DropNoRoute)
		return
	}
	sr := r.signRoot(unixMilli(now), r.currentRoot())
	r.send(next, &wire.Bootstrap{Originator: r.key, Watermark: wm, Payload: sr.Append(nil)})
}

// handleBootstrap is §5.4: every node on a bootstrap's path installs a
// route back to its originator and passes it on. Bad bootstraps only lose
// the frame, never the peer. The checks run cheapest first (parse, root,
// replay, then the signature); each failure drops the frame either way.
func (r *Router) handleBootstrap(now time.Time, p *peerInfo, f *wire.Bootstrap) {
	next, wm := r.bootstrapNextHop(now, f.Originator, f.Watermark)
	sr, err := wire.ParseSignedRoot(f.Payload)
	if err != nil {
		r.stats.drop(DropBadBootstrapPayload)
		return
	}
	root := r.currentRoot()
	if sr.Root != root {
		r.stats.drop(DropBootstrapWrongRoot)
		return
	}
	e := r.table[f.Originator]
	if e != nil && e.root == sr.Root && sr.Seq <= e.seq {
		r.stats.drop(DropBootstrapReplay)
		return
	}
	if !r.opts.InsecureSkipSignatures && !sr.Verify(f.Originator) {
		r.stats.drop(DropBadBootstrapSignature)
		return
	}
	// A refresh of a route we have, through the same port, changes only
	// its version, which snapshots read in place: no rebuild is needed.
	refresh := e != nil && e.source == p.port
	if e == nil {
		if len(r.table) >= r.opts.MaxSNEKEntries {
			r.expireRoutes(now)
		}
		if len(r.table) >= r.opts.MaxSNEKEntries {
			r.stats.drop(DropSNEKTableFull)
			return
		}
		e = &snekEntry{origin: f.Originator}
		r.table[f.Originator] = e
	}
	if !e.valid(now) || e.source != p.port || e.dest != next {
		// A route back to the originator that we did not have, or
		// that leads another way now.
		r.routesChanged = true
	}
	e.source, e.dest, e.lastSeen, e.root, e.seq = p.port, next, now, sr.Root, sr.Seq
	e.ver.Store(&routeVersion{seq: sr.Seq, expires: now.Add(SNEKExpiry)})
	if !refresh {
		r.tableDirty = true
	}
	r.updateDescending(now, e)
	if next == NoPort || next == LocalPort {
		// This node is the end of the bootstrap: the originator's
		// successor, as far as we know.
		return
	}
	if next == p.port {
		r.stats.drop(DropIngress)
		return
	}
	if wm.WorseThan(f.Watermark) {
		r.stats.drop(DropWatermark)
		return
	}
	f.Watermark = wm
	r.send(next, f)
}

// bootstrapNextHop is Snapshot().nextHopSNEK in bootstrap mode, without
// rebuilding the snapshot. Nearly every bootstrap changes the SNEK table,
// so the next one found the snapshot stale, and rebuilding it sorts the
// whole table: on a hub of a large overlay, with thousands of routes and
// hundreds of bootstraps a second, that sort was most of the routing
// simulator's time. The bootstrap search walks every route anyway, and its
// result does not depend on their order (origins are unique and only a
// strictly closer key is taken), so it walks them unsorted from a reused
// buffer; the snapshot is rebuilt when traffic next needs it.
func (r *Router) bootstrapNextHop(now time.Time, dest wire.PublicKey, w wire.Watermark) (Port, wire.Watermark) {
	if r.snap == nil || r.dirty || !r.tableDirty {
		return r.Snapshot().nextHopSNEK(now, dest, true, w)
	}
	s := *r.snap
	s.entries = r.bootstrapScratch[:0]
	for _, e := range r.table {
		s.entries = append(s.entries, snapEntry{origin: e.origin, source: e.source, ver: &e.ver})
	}
	r.bootstrapScratch = s.entries
	return s.nextHopSNEK(now, dest, true, w)
}

// expireRoutes removes the SNEK routes that have expired.
func (r *Router) expireRoutes(now time.Time) {
	for k, e := range r.table {
		if !e.valid(now) {
			delete(r.table, k)
			r.tableDirty = true
		}
	}
}

// updateDescending keeps the pointer to our nearest lower-keyed neighbour
// (§5.5). It is not used for forwarding; a change makes us bootstrap soon,
// so that a new neighbour below learns the route to us quickly.
func (r *Router) updateDescending(now time.Time, e *snekEntry) {
	if !e.origin.Less(r.key) {
		return
	}
	if r.hasDescending {
		cur := r.table[r.descending]
		if cur != nil && cur.valid(now) && cur.origin != e.origin && !wire.DHTOrdered(cur.origin, e.origin, r.key) {
			return
		}
	}
	if !r.hasDescending || r.descending != e.origin {
		r.hasDescending, r.descending = true, e.origin
		r.routesChanged = true
		r.bootstrapSoon(now)
	}
}
