package router

import (
	"slices"
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
	known := e != nil && e.valid(now)
	// A route back to the originator that we did not have, or that leads
	// another way now.
	changed := !known || e.source != p.port || e.dest != next
	// Snapshots share the entries and read their source unlocked, so it
	// is set only in a new entry, never written again: a route that comes
	// another way now is a new entry.
	if e == nil {
		if len(r.table) >= r.opts.MaxSNEKEntries {
			r.expireRoutes(now)
		}
		if len(r.table) >= r.opts.MaxSNEKEntries {
			r.stats.drop(DropSNEKTableFull)
			return
		}
		e = &snekEntry{origin: f.Originator, source: p.port}
		r.addRoute(e)
	} else if e.source != p.port {
		e = r.replaceRoute(e, p.port)
	}
	r.routesChanged = r.routesChanged || changed
	e.dest, e.lastSeen, e.root, e.seq = next, now, sr.Root, sr.Seq
	e.ver.Store(&routeVersion{seq: sr.Seq, expires: now.Add(SNEKExpiry)})
	if !refresh {
		r.tableDirty = true
	}
	r.updateDescending(now, e)
	if r.handoffAge() > 0 {
		r.hold(e, f, next, wm)
		if !known {
			r.handOff(now, e)
		}
	}
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

// heldBootstrap is a copy of the bootstrap that last set a route: its
// payload, the watermark it arrived with and the key it went on towards
// (ours if it ended here). Every bootstrap that sets the route replaces
// it, so it is always the one of the route's sequence and lastSeen.
type heldBootstrap struct {
	payload []byte
	in      wire.Watermark
	heading wire.PublicKey
}

// handoffAge is how young a relayed bootstrap must be for handOff to pass
// it on again; 0 when handoffs are off.
func (r *Router) handoffAge() time.Duration {
	if r.opts.ReferenceTimers || r.opts.BootstrapHandoffAge < 0 {
		return 0
	}
	return r.opts.BootstrapHandoffAge
}

// handoffAgeOf is how young the held bootstrap h must be for handOff to
// pass it on: handoffAge, or TerminalHandoffAge if h ended here.
func (r *Router) handoffAgeOf(h *heldBootstrap) time.Duration {
	age := r.handoffAge()
	if age > 0 && h.heading == r.key && r.opts.TerminalHandoffAge > 0 {
		return r.opts.TerminalHandoffAge
	}
	return age
}

// hold keeps a copy of the bootstrap f that just set e and went on to next
// towards wm's key, reusing the buffer of the previous one.
func (r *Router) hold(e *snekEntry, f *wire.Bootstrap, next Port, wm wire.Watermark) {
	h := e.held
	if h == nil {
		h = &heldBootstrap{}
		e.held = h
	}
	h.payload = append(h.payload[:0], f.Payload...)
	h.in, h.heading = f.Watermark, wm.Key
	if next == NoPort || next == LocalPort {
		h.heading = r.key
	}
}

// handOff runs when a route to a key o that we did not know is installed.
// The route just below o in key order, d, may have sent d's bootstrap on
// (or ended it here) towards a key above o: had o been known a moment
// earlier, that bootstrap would have gone to o, one step nearer d's
// successor. Instead of leaving that step to d's next bootstrap, one
// round later, we pass the same signed frame on towards o now. This is
// what makes the snake settle within a round instead of one link of each
// chain per round (docs/simulation/README.md).
//
// Only a bootstrap younger than handoffAge is passed on. Every route a
// bootstrap lays expires SNEKExpiry after it passed, so the branch a late
// handoff lays outlives the path it hangs from by the handoff's delay; if
// d's later bootstraps take another way, first packets that follow the
// branch in that gap are lost. Without the bound the routing simulator
// lost 55–204 of 120 000 first packets in the minute after convergence on
// fc00 (seeds 1–3, 10 s fast window); with 300 ms 0–3 (7 s window), as
// without handoffs; with 400 ms and the 6 s window 0, 1 and 18; with 100 ms
// the handoffs no longer sped convergence up.
//
// A bootstrap that ended here may be older, up to TerminalHandoffAge: its
// path ends at this node, so the originator's next bootstrap comes this
// way again and goes on along the branch we lay, keeping it alive. That
// closes the chains that otherwise settle one link per 5 s round once the
// fast windows are over, as after a hub's loss.
func (r *Router) handOff(now time.Time, o *snekEntry) {
	i, _ := slices.BinarySearchFunc(r.routes, o.origin, compareOrigin)
	if i == 0 {
		return
	}
	d := r.routes[i-1]
	h := d.held
	if h == nil || now.Sub(d.lastSeen) >= r.handoffAgeOf(h) || !wire.DHTOrdered(d.origin, o.origin, h.heading) {
		return
	}
	// The §5.4 checks of a relayed bootstrap, on d's frame as it arrived.
	next, wm := r.bootstrapNextHop(now, d.origin, h.in)
	if next == NoPort || next == LocalPort || next == d.source || wm.WorseThan(h.in) {
		return
	}
	h.heading = wm.Key
	if d.dest != next {
		d.dest = next
		r.routesChanged = true
	}
	r.send(next, &wire.Bootstrap{Originator: d.origin, Watermark: wm, Payload: h.payload})
}

// bootstrapNextHop is the §5.3 search in bootstrap mode
// (Snapshot.nextHopSNEK with bootstrap set), on the snapshot's peer index
// and the sorted routes, without rebuilding the snapshot for route
// changes: nearly every bootstrap changes the SNEK table, and on a hub of
// a large overlay, with thousands of routes and hundreds of bootstraps a
// second, rebuilding or walking the whole table for each one was most of
// the routing simulator's time. TestBootstrapSearchMatchesSnapshot checks
// it against the literal search.
func (r *Router) bootstrapNextHop(now time.Time, dest wire.PublicKey, w wire.Watermark) (Port, wire.Watermark) {
	s := r.snap
	if s == nil || r.dirty {
		s = r.Snapshot()
	}
	return s.nextHopBootstrap(now, dest, w, r.routes)
}

// addRoute puts a new route, for an originator the table does not have,
// in the table and in routes.
func (r *Router) addRoute(e *snekEntry) {
	r.table[e.origin] = e
	i, _ := slices.BinarySearchFunc(r.routes, e.origin, compareOrigin)
	r.routes = slices.Insert(r.routes, i, e)
}

// replaceRoute puts a new entry for e's originator, through source, in
// e's place in the table and routes, and returns it; the caller sets the
// rest.
func (r *Router) replaceRoute(e *snekEntry, source Port) *snekEntry {
	c := &snekEntry{origin: e.origin, source: source}
	r.table[e.origin] = c
	i, _ := slices.BinarySearchFunc(r.routes, e.origin, compareOrigin)
	r.routes[i] = c
	return c
}

// deleteRoutes removes the routes for which gone reports true.
func (r *Router) deleteRoutes(gone func(*snekEntry) bool) {
	r.routes = slices.DeleteFunc(r.routes, func(e *snekEntry) bool {
		if gone(e) {
			delete(r.table, e.origin)
			r.tableDirty = true
			return true
		}
		return false
	})
}

func compareOrigin(e *snekEntry, k wire.PublicKey) int { return e.origin.Compare(k) }

// expireRoutes removes the SNEK routes that have expired.
func (r *Router) expireRoutes(now time.Time) {
	r.deleteRoutes(func(e *snekEntry) bool { return !e.valid(now) })
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
