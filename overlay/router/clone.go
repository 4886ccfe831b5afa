package router

import (
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// KeyCloneConfirm is how long an announcement must keep showing a clone of
// our key before EventKeyClone reports it. It is not a protocol timer and
// changes nothing on the wire: it lets innocent copies of our own
// announcements die out first. After a restart our sequence starts again
// at 1 and links are renumbered, while copies signed by the previous run
// may still travel a loop until the bad news of §4.5 reaches them, which
// takes about ReparentWait per hop; a clone keeps announcing.
const KeyCloneConfirm = 30 * time.Second

// cloneWatch is what the Router knows about clone evidence on one port.
type cloneWatch struct {
	// since is when the port's stored announcement started to show
	// evidence; zero while it shows none.
	since time.Time
	// reported is set once EventKeyClone went out for this peering.
	reported bool
}

// cloneEvidence reports whether a, accepted from p, proves that another
// node signs with our private key. The innocent case is our own
// announcement coming back round a loop: its root is our key with a
// sequence we issued, or it carries our hop as we signed it, for the port
// of the peer that signs the next hop. Proof is a root sequence above any
// we issued, or our key on a hop whose next signer is not the peer we have
// on the port that hop names (or names a port we cannot have). A clone
// whose announcement is byte-identical to one of ours (same sequence, same
// port numbers and neighbours) cannot be told apart and is not reported.
func (r *Router) cloneEvidence(p *peerInfo, a *wire.TreeAnnouncement) bool {
	if p.key == r.key {
		// A link to our own key: overlay/peers refuses and reports it.
		return false
	}
	if a.Root.Key == r.key && a.Root.Seq > r.seq {
		return true
	}
	// The last hop is the peer's (checkAnnouncement), so a hop of ours is
	// never the last.
	for i, h := range a.Hops[:len(a.Hops)-1] {
		if h.Key != r.key {
			continue
		}
		if h.Port > uint64(MaxPort) {
			return true
		}
		q := r.peers[Port(h.Port)]
		return q != nil && q.key != a.Hops[i+1].Key
	}
	return false
}

// watchClone notes whether the announcement just accepted from p shows a
// clone of our key.
func (r *Router) watchClone(now time.Time, p *peerInfo, a *wire.TreeAnnouncement) {
	w := &r.clones[p.port]
	if !r.cloneEvidence(p, a) {
		w.since = time.Time{}
		return
	}
	if w.since.IsZero() {
		w.since = now
	}
}

// reportClones emits EventKeyClone, once per peering, for every port whose
// announcement has shown a clone for KeyCloneConfirm.
func (r *Router) reportClones(now time.Time) {
	for port := range r.clones {
		w := &r.clones[port]
		if w.reported || w.since.IsZero() || now.Sub(w.since) < KeyCloneConfirm {
			continue
		}
		w.reported = true
		p := r.peers[port]
		r.event(Event{Kind: EventKeyClone, Port: Port(port), Key: p.key, Root: p.ann.root})
	}
}
