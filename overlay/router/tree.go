package router

import (
	"crypto/ed25519"
	"fmt"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// parentInfo is the parent peering, or nil when this node is root.
func (r *Router) parentInfo() *peerInfo {
	if r.parent == NoPort {
		return nil
	}
	return r.peers[r.parent]
}

// rootAnnouncement is the announcement this node repeats (§4.1): the
// parent's, or its own with no hops when it is root.
func (r *Router) rootAnnouncement() *wire.TreeAnnouncement {
	if p := r.parentInfo(); p != nil && p.ann != nil {
		return p.ann.ann
	}
	return &wire.TreeAnnouncement{Root: wire.Root{Key: r.key, Seq: r.seq}}
}

// currentRoot is the root of the tree this node is in.
func (r *Router) currentRoot() wire.Root {
	if p := r.parentInfo(); p != nil && p.ann != nil {
		return p.ann.root
	}
	return wire.Root{Key: r.key, Seq: r.seq}
}

// coords are this node's coordinates (§4.7): the ports of every hop of the
// parent's announcement; the root's are empty. The slice is shared.
func (r *Router) coords() wire.Coordinates {
	if p := r.parentInfo(); p != nil && p.ann != nil {
		return p.ann.full
	}
	return wire.Coordinates{}
}

// announcementBody is what a new hop signs: the announcement's encoding
// without the frame header and the payload length (§4.2).
func announcementBody(a *wire.TreeAnnouncement) ([]byte, error) {
	b, err := a.Append(nil)
	if err != nil {
		return nil, err
	}
	return b[wire.HeaderSize+2:], nil
}

// signAnnouncement signs a for repeating. The signature does not cover the
// port the copy goes out of, so one signature serves every peer; the copies
// are byte-identical to signing each separately (ed25519 is deterministic).
func (r *Router) signAnnouncement(a *wire.TreeAnnouncement) wire.Signature {
	if r.opts.InsecureSkipSignatures {
		return wire.Signature{}
	}
	body, err := announcementBody(a)
	if err != nil {
		// Too long to repeat at all; sendAnnouncement will fail to encode
		// it and count the drop.
		return wire.Signature{}
	}
	return wire.Signature(ed25519.Sign(r.priv, body))
}

// sendAnnouncement queues a copy of a with our hop for port appended.
func (r *Router) sendAnnouncement(a *wire.TreeAnnouncement, sig wire.Signature, port Port) {
	hops := make([]wire.AnnouncementHop, len(a.Hops), len(a.Hops)+1)
	copy(hops, a.Hops)
	hops = append(hops, wire.AnnouncementHop{Port: uint64(port), Key: r.key, Signature: sig})
	o := r.annOut[port]
	if o == nil {
		o = &annOutState{}
		r.annOut[port] = o
	}
	o.note(r.clock, a.Root)
	r.send(port, &wire.TreeAnnouncement{Root: a.Root, Hops: hops})
}

// annOutState is what we announced on one port, to tell the peer's answer
// to it from news (isEcho).
type annOutState struct {
	// sent counts our announcements on the port since the peering came
	// up; root is the last one's root, sentAt when it went.
	sent   int
	root   wire.Root
	sentAt time.Time
	// weakerAt is when we last sent, on this port, an announcement with a
	// root key weaker than root's that was not the first of the peering;
	// zero if none or unknown.
	weakerAt time.Time
}

// note records an announcement for root sent at now.
func (o *annOutState) note(now time.Time, root wire.Root) {
	switch c := root.Key.Compare(o.root.Key); {
	case o.sent == 0:
	case c > 0 && o.sent >= 2:
		o.weakerAt = o.sentAt
	case c < 0:
		// What we sent before may be stronger than this: unknown.
		o.weakerAt = time.Time{}
	}
	o.sent++
	o.root, o.sentAt = root, now
}

// isEcho reports whether an identical repeat of root from our parent on
// port is its answer to an announcement of ours that crossed its own.
// A peer answers every announcement with a weaker root key than its own
// with its own (§4.5, "p follows a weaker root"), except the first on a
// peering, which it takes as first contact. At a cold start we announce
// ever stronger roots to every peer as we learn them, so the peer we
// then choose as parent answers the weaker ones still in flight with an
// identical copy of what we now follow. The reference takes that copy as
// bad news from the parent: it becomes root and waits ReparentWait, and
// its root announcement is bad news for its whole subtree in turn. In the
// routing simulator nearly every node of fc00 waited so within the first
// 50 ms (376 identical repeats, 216 weaker roots in the cascade), and the
// tree formed only after three such rounds. An answer comes within a
// round trip; a repeat with no weaker announcement of ours in the
// ReparentWait before it is still bad news.
func (r *Router) isEcho(now time.Time, port Port, root wire.Root) bool {
	o := r.annOut[port]
	return !r.opts.ReferenceTimers && o != nil && o.root.Key == root.Key && !o.weakerAt.IsZero() && now.Sub(o.weakerAt) < ReparentWait
}

// sendAnnouncementToAll re-signs the current root announcement for every
// peer, the parent included: that copy is how the parent learns our
// coordinates (§4.3).
func (r *Router) sendAnnouncementToAll() {
	a := r.rootAnnouncement()
	sig := r.signAnnouncement(a)
	for port := Port(1); port <= MaxPort; port++ {
		if r.peers[port] != nil {
			r.sendAnnouncement(a, sig, port)
		}
	}
}

// checkAnnouncement applies the checks of §4.4; a failure is a protocol
// error. The cheap structural checks run before the signatures: the peer is
// dropped either way, only the reason reported can differ from the
// reference when an announcement is wrong in several ways at once.
func (r *Router) checkAnnouncement(p *peerInfo, a *wire.TreeAnnouncement) *ProtocolError {
	fail := func(reason DisconnectReason, format string, args ...any) *ProtocolError {
		return &ProtocolError{Port: p.port, Reason: reason, Err: fmt.Errorf("tree announcement: "+format, args...)}
	}
	if len(a.Hops) == 0 {
		return fail(DisconnectNoHops, "no hops")
	}
	if a.Hops[0].Key != a.Root.Key {
		return fail(DisconnectRootHop, "first hop signed by %s, root is %s", a.Hops[0].Key, a.Root.Key)
	}
	for i, h := range a.Hops {
		if h.Port == 0 {
			return fail(DisconnectPortZero, "hop %d has port 0", i)
		}
	}
	if last := a.Hops[len(a.Hops)-1].Key; last != p.key {
		return fail(DisconnectWrongSender, "last hop signed by %s, peer is %s", last, p.key)
	}
	if k, dup := duplicateKey(a.Hops); dup {
		return fail(DisconnectDuplicateKey, "%s signs twice", k)
	}
	if p.ann != nil && p.ann.root.Key == a.Root.Key && a.Root.Seq < p.ann.root.Seq {
		return fail(DisconnectOldSequence, "root sequence %d after %d", a.Root.Seq, p.ann.root.Seq)
	}
	if !r.opts.InsecureSkipSignatures {
		if err := verifyHops(a, r.verifiedHops(a)); err != nil {
			return fail(DisconnectBadSignature, "%w", err)
		}
	}
	return nil
}

func duplicateKey(hops []wire.AnnouncementHop) (wire.PublicKey, bool) {
	if len(hops) <= 16 {
		for i := range hops {
			for j := i + 1; j < len(hops); j++ {
				if hops[i].Key == hops[j].Key {
					return hops[i].Key, true
				}
			}
		}
		return wire.PublicKey{}, false
	}
	seen := make(map[wire.PublicKey]struct{}, len(hops))
	for _, h := range hops {
		if _, ok := seen[h.Key]; ok {
			return h.Key, true
		}
		seen[h.Key] = struct{}{}
	}
	return wire.PublicKey{}, false
}

// verifiedHops returns how many leading hops of a are already known to
// verify because a stored (so verified) announcement has the same root and
// the same bytes before that hop's signature and the same key and signature
// for it. A hop's signature covers only what precedes it, so the result of
// checking it again would be the same. Typically only the last one or two
// hops of an announcement need an ed25519 verification.
func (r *Router) verifiedHops(a *wire.TreeAnnouncement) int {
	best := 0
	for _, q := range r.peers {
		if q == nil || q.ann == nil || q.ann.root != a.Root {
			continue
		}
		b := q.ann.ann.Hops
		n := 0
		for n < len(a.Hops) && n < len(b) {
			x, y := &a.Hops[n], &b[n]
			if x.Key != y.Key || x.Signature != y.Signature {
				break
			}
			n++
			if x.Port != y.Port {
				// The next hop signs this port: its bytes differ.
				break
			}
		}
		best = max(best, n)
	}
	return best
}

// verifyHops checks the signatures of hops from..end over the bytes of the
// announcement before each of them (§4.2).
func verifyHops(a *wire.TreeAnnouncement, from int) error {
	if from >= len(a.Hops) {
		return nil
	}
	body, err := announcementBody(a)
	if err != nil {
		return err
	}
	off := wire.KeySize + wire.VarintLen(a.Root.Seq)
	for i, h := range a.Hops {
		start := off
		off += wire.VarintLen(h.Port) + wire.KeySize + wire.SignatureSize
		if i < from {
			continue
		}
		if !ed25519.Verify(h.Key.Ed25519(), body[:start], h.Signature[:]) {
			return fmt.Errorf("hop %d (%s): %w", i, h.Key, wire.ErrBadSignature)
		}
	}
	return nil
}

// handleAnnouncement runs §4.4 and §4.5 for an announcement from p.
func (r *Router) handleAnnouncement(now time.Time, p *peerInfo, a *wire.TreeAnnouncement) {
	if perr := r.checkAnnouncement(p, a); perr != nil {
		r.disconnect(now, perr)
		return
	}
	first := p.ann == nil
	// The wakeup on first contact is skipped if another peering to the
	// same key has already announced: that key has had one.
	wakeup := first && !r.opts.DisableWakeups && !r.keyAnnounced(p.key)
	last := r.currentRoot()
	r.receiveOrder++
	np := &peerInfo{port: p.port, key: p.key, typ: p.typ, ann: newAnnInfo(a, now, r.receiveOrder)}
	r.peers[p.port] = np
	r.dirty = true
	r.watchClone(now, np, a)
	if first {
		r.event(Event{Kind: EventPeerAnnounced, Port: p.port, Key: p.key, Root: a.Root})
		r.routesChanged = true
	}
	if !r.waiting {
		moved := !first && !sameHops(p.ann.ann, a)
		r.decide(now, np, last, first, moved)
	}
	if wakeup {
		r.originateWakeup(now, []Port{p.port})
	}
}

// sameHops reports whether two announcements carry the same path: the same
// hops by port and key.
func sameHops(a, b *wire.TreeAnnouncement) bool {
	if len(a.Hops) != len(b.Hops) {
		return false
	}
	for i := range a.Hops {
		if a.Hops[i].Port != b.Hops[i].Port || a.Hops[i].Key != b.Hops[i].Key {
			return false
		}
	}
	return true
}

// keyAnnounced reports whether any peering with key has an announcement.
func (r *Router) keyAnnounced(key wire.PublicKey) bool {
	for _, q := range r.peers {
		if q != nil && q.key == key && q.ann != nil {
			return true
		}
	}
	return false
}

// decide is the decision table of §4.5, run after p's new announcement has
// been stored; last is our root from before, moved that p's path to the
// root differs from its previous announcement's.
func (r *Router) decide(now time.Time, p *peerInfo, last wire.Root, first, moved bool) {
	a := p.ann
	delta := a.root.Key.Compare(last.Key)
	loop := a.hasKey(r.key)
	if p.port == r.parent {
		switch {
		case !r.opts.ReferenceTimers && !loop && delta == 0 && a.root.Seq == last.Seq && moved:
			// The parent re-signed the same root update with a new path:
			// it moved in the tree (the reference's own reading of this
			// case). The reference takes it as bad news, becomes root and
			// waits ReparentWait; its root announcement is bad news for
			// its whole subtree in turn, so every parent change flaps the
			// subtree below for a second or more. The new path is loop-free
			// (it does not hold our key) and as fresh as the parent's
			// choice, so we follow the parent at once and pass the update
			// on. An identical copy is still bad news unless it answers an
			// announcement of ours that crossed the parent's (isEcho).
			r.dirty = true
			r.sendAnnouncementToAll()
		case !loop && delta == 0 && a.root.Seq == last.Seq && r.isEcho(now, p.port, a.root):
			// The parent's answer to an announcement of ours that crossed
			// its own (isEcho): nothing has changed.
		case loop && r.reselectAfterLoop(now):
		case loop, delta < 0, delta == 0 && a.root.Seq == last.Seq:
			// Bad news from the parent: our path to the root is broken or
			// the parent only re-signed an old update.
			r.waitReparent(now)
		case delta > 0, a.root.Seq > last.Seq:
			r.sendAnnouncementToAll()
		}
		return
	}
	switch {
	case loop:
		// p is our child or below it: nothing to learn.
	case delta > 0:
		r.parent = p.port
		r.dirty = true
		r.sendAnnouncementToAll()
	case delta < 0:
		// p follows a weaker root; tell it about ours, unless it just
		// connected and already got ours from PeerUp.
		if !first {
			a := r.rootAnnouncement()
			r.sendAnnouncement(a, r.signAnnouncement(a), p.port)
		}
	default:
		if r.selectParent(now) {
			r.bootstrapSoon(now)
		}
	}
}

// reselectAfterLoop is what the tuned Router does when the parent's
// announcement comes back through us: if another peer offers the same
// root, loop-free and no older, it takes that peer at once instead of
// becoming root for ReparentWait (the reference), and reports true.
func (r *Router) reselectAfterLoop(now time.Time) bool {
	if r.opts.ReferenceTimers {
		return false
	}
	root := r.currentRoot()
	for _, q := range r.peers {
		if q == nil || q.ann == nil || q.port == r.parent || q.ann.root.Key != root.Key || q.ann.root.Seq < root.Seq ||
			q.ann.hasKey(r.key) || now.Sub(q.ann.received) >= AnnouncementTimeout {
			continue
		}
		if r.selectParent(now) {
			r.bootstrapSoon(now)
		}
		return true
	}
	return false
}

// becomeRoot makes this node the root of its own tree with a new sequence
// and tells every peer.
func (r *Router) becomeRoot(now time.Time) {
	r.parent = NoPort
	r.seq++
	r.lastRootAnn = now
	r.dirty = true
	r.sendAnnouncementToAll()
}

// waitReparent becomes root and holds off all tree decisions for
// ReparentWait, so that the bad news spreads before anyone re-attaches.
func (r *Router) waitReparent(now time.Time) {
	r.becomeRoot(now)
	r.waiting = true
	r.waitUntil = now.Add(ReparentWait)
}

// selectParent is parent selection (§4.6). It reports whether a new parent
// was chosen (the caller schedules a bootstrap).
func (r *Router) selectParent(now time.Time) bool {
	best := r.currentRoot()
	if r.key.Compare(best.Key) > 0 {
		best = wire.Root{Key: r.key}
	}
	var bestPeer *peerInfo
	var bestOrder uint64
	for _, q := range r.peers {
		if q == nil || q.ann == nil {
			continue
		}
		a := q.ann
		if now.Sub(a.received) >= AnnouncementTimeout || a.hasKey(r.key) {
			continue
		}
		take := false
		switch c := a.root.Key.Compare(best.Key); {
		case c > 0:
			take = true
		case c < 0:
		case a.root.Seq > best.Seq:
			take = true
		case a.root.Seq < best.Seq:
		case bestPeer == nil || a.order < bestOrder:
			// Equal roots: the copy that arrived first came the fastest
			// way from the root.
			take = true
		}
		if take {
			best, bestPeer, bestOrder = a.root, q, a.order
		}
	}
	switch {
	case bestPeer == nil:
		if r.parent != NoPort {
			r.becomeRoot(now)
		}
		return false
	case bestPeer.port != r.parent:
		r.parent = bestPeer.port
		r.dirty = true
		r.sendAnnouncementToAll()
		return true
	}
	return false
}
