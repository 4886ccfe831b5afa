package router

import (
	"fmt"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// originateWakeup sends our own wakeup broadcast (§7) to ports: every peer
// on the 60 s timer, or one peer after its first announcement.
func (r *Router) originateWakeup(now time.Time, ports []Port) {
	if len(ports) == 0 {
		return
	}
	sr := r.signRoot(unixMilli(now), r.currentRoot())
	r.sendMany(ports, &wire.WakeupBroadcast{HopLimit: wire.WakeupHopLimit, Source: r.key, Payload: sr.Append(nil)})
}

// scheduleWakeup sets when our next periodic wakeup flood is due, after
// one at now (first: after the start). See DefaultWakeupRefresh for why
// the tuned period is long and jittered.
func (r *Router) scheduleWakeup(now time.Time, first bool) {
	mean := r.opts.WakeupRefresh
	switch {
	case r.opts.ReferenceTimers:
		r.nextWakeup = now.Add(WakeupInterval)
	case mean < 0:
		r.nextWakeup = time.Time{}
	case first:
		r.nextWakeup = now.Add(time.Duration(r.rng.Int64N(int64(mean))))
	default:
		r.nextWakeup = now.Add(mean/2 + time.Duration(r.rng.Int64N(int64(mean))))
	}
}

// handleWakeup is the receipt of a wakeup broadcast (§7). Unlike a
// bootstrap, a payload that does not parse or verify drops the peer.
func (r *Router) handleWakeup(now time.Time, p *peerInfo, f *wire.WakeupBroadcast) {
	sr, err := wire.ParseSignedRoot(f.Payload)
	if err != nil {
		r.disconnect(now, &ProtocolError{Port: p.port, Reason: DisconnectBadWakeupPayload, Err: fmt.Errorf("wakeup broadcast: %w", err)})
		return
	}
	if !r.opts.InsecureSkipSignatures && !r.verifyWakeup(now, f.Source, sr) {
		r.disconnect(now, &ProtocolError{Port: p.port, Reason: DisconnectBadWakeupSignature,
			Err: fmt.Errorf("wakeup broadcast from %s: %w", f.Source, wire.ErrBadSignature)})
		return
	}
	if sr.Root.Key != r.currentRoot().Key {
		r.stats.drop(DropWakeupWrongRoot)
		return
	}
	if s, ok := r.seen[f.Source]; ok {
		if now.Sub(s.at) < WakeupRepeatGuard || sr.Seq <= s.payload.Seq {
			r.stats.drop(DropWakeupDuplicate)
			return
		}
	} else if len(r.seen) >= r.opts.MaxWakeupSeen {
		evictOldest(r.seen)
		r.stats.drop(DropWakeupSeenFull)
	}
	r.seen[f.Source] = seenWakeup{payload: sr, at: now}
	r.noteSeen(now)
	r.event(Event{Kind: EventWakeupReceived, Port: p.port, Key: f.Source, Root: sr.Root})
	if f.HopLimit <= 1 {
		return
	}
	f.HopLimit--
	r.sendMany(r.floodTargets(p.port, f.HopLimit >= 4), f)
}

// verifyWakeup checks a wakeup signature, or finds that these exact bytes
// from this originator verified before: the result would be the same, and
// the copies of one flood are the common case.
func (r *Router) verifyWakeup(now time.Time, source wire.PublicKey, sr wire.SignedRoot) bool {
	if v, ok := r.verified[source]; ok && v.payload == sr {
		return true
	}
	if !sr.Verify(source) {
		return false
	}
	if _, ok := r.verified[source]; !ok && len(r.verified) >= r.opts.MaxWakeupSeen {
		evictOldest(r.verified)
	}
	r.verified[source] = seenWakeup{payload: sr, at: now}
	r.noteSeen(now)
	return true
}

// evictOldest removes the record accepted longest ago, making room for a
// new originator in a full set: the oldest is the one closest to expiring
// anyway, and every originator gets its turn. It walks the whole set, which
// only happens while the set is full, i.e. when more originators flood
// within WakeupSeenExpiry than the bound.
func evictOldest(m map[wire.PublicKey]seenWakeup) {
	var oldest wire.PublicKey
	var at time.Time
	found := false
	for k, s := range m {
		if !found || s.at.Before(at) || s.at.Equal(at) && k.Less(oldest) {
			oldest, at, found = k, s.at, true
		}
	}
	if found {
		delete(m, oldest)
	}
}

// floodTargets chooses where a wakeup goes on (§7): near its origin a
// classic flood to every peer but the sender, further out a tree flood to
// the parent and children only (peers at tree distance 1). Either way each
// peer key gets one copy, over its best link. The sender's port is left out
// in both modes: it has the broadcast and would drop it as a duplicate.
func (r *Router) floodTargets(from Port, classic bool) []Port {
	var chosen []*peerInfo
	coords := r.coords()
	for _, q := range r.peers {
		if q == nil || q.port == from {
			continue
		}
		if !classic && (q.ann == nil || q.ann.coords.DistanceTo(coords) != 1) {
			continue
		}
		dup := false
		for i, c := range chosen {
			if c.key == q.key {
				dup = true
				if floodPreferred(q, c) {
					chosen[i] = q
				}
				break
			}
		}
		if !dup {
			chosen = append(chosen, q)
		}
	}
	ports := make([]Port, len(chosen))
	for i, c := range chosen {
		ports[i] = c.port
	}
	return ports
}

// floodPreferred orders two links to one key: the better link type, then
// the earlier announcement; a link without an announcement comes last.
func floodPreferred(q, than *peerInfo) bool {
	if q.typ != than.typ {
		return q.typ < than.typ
	}
	switch {
	case than.ann == nil:
		return q.ann != nil
	case q.ann == nil:
		return false
	}
	return q.ann.order < than.ann.order
}
