package session

import (
	"time"

	"github.com/pineconed/pineconed/envelope"
)

// The timers: retries, rekeys, keepalives, give-up and idle expiry.

// Tick drives retries, rekeys, keepalives and expiry. Call it about once a
// second (more often only sharpens the timers).
func (m *Manager) Tick(now time.Time) {
	m.mu.RLock()
	peers := make([]*peer, 0, len(m.peers))
	for _, p := range m.peers {
		peers = append(peers, p)
	}
	m.mu.RUnlock()
	for _, p := range peers {
		a := actions{dst: p.key}
		p.mu.Lock()
		if !p.dead {
			p.tickLocked(now, &a)
		}
		p.mu.Unlock()
		m.run(&a)
	}
}

func (p *peer) usableLocked(now time.Time) *keypair {
	kp := p.cur
	if kp == nil || now.Sub(kp.created) >= p.m.cfg.RejectAfterTime || kp.counter.Load() >= p.m.cfg.RejectAfterMessages {
		return nil
	}
	return kp
}

func (p *peer) needRekeyLocked(now time.Time, kp *keypair, counter uint64) bool {
	cfg := &p.m.cfg
	if counter >= cfg.RekeyAfterMessages {
		return true
	}
	age := now.Sub(kp.created)
	if kp.initiator {
		return age >= cfg.RekeyAfterTime
	}
	return age >= cfg.RekeyAfterTime+cfg.RekeyTimeout
}

func (p *peer) tickLocked(now time.Time, a *actions) {
	m := p.m
	cfg := &m.cfg
	for _, kpp := range []**keypair{&p.prev, &p.cur, &p.next} {
		if kp := *kpp; kp != nil && now.Sub(kp.created) >= cfg.RejectAfterTime {
			m.dropIndex(kp.local)
			*kpp = nil
		}
	}
	usable := p.usableLocked(now) != nil

	// Give up on a series that has run too long.
	if !p.triesSince.IsZero() && now.Sub(p.triesSince) >= cfg.HandshakeGiveUp {
		if p.hs != nil {
			m.dropIndex(p.hs.index)
			p.hs = nil
		}
		p.triesSince = time.Time{}
		m.st.inc(HandshakesFailed)
		for _, inner := range p.queue {
			m.st.inc(DropUnreachable)
			if inner[0] == envelope.InnerIPv6 {
				a.unreachable = append(a.unreachable, inner[1:])
			}
		}
		p.queue = nil
	}

	switch {
	case p.hs != nil && now.Sub(p.hs.sentAt) >= cfg.RekeyTimeout:
		p.sendInitiationLocked(now, a)
	case p.hs == nil && !usable && len(p.queue) > 0 && now.Sub(p.lastHandshake) >= cfg.RekeyTimeout:
		// We answered an initiation (or yielded) but the session was never
		// confirmed: try ourselves.
		p.beginHandshakeLocked(now, a)
	case p.hs == nil && usable && !p.unansweredSince.IsZero() && now.Sub(p.unansweredSince) >= cfg.KeepaliveTimeout+cfg.RekeyTimeout:
		p.unansweredSince = time.Time{}
		p.beginHandshakeLocked(now, a)
	}

	if !p.keepaliveDue.IsZero() && !now.Before(p.keepaliveDue) {
		if kp := p.usableLocked(now); kp != nil {
			a.out = append(a.out, outbound{kp: kp, counter: kp.counter.Add(1) - 1})
			p.noteSendLocked(now, false)
		}
		p.keepaliveDue = time.Time{}
	}

	last := p.created
	for _, t := range []time.Time{p.lastSent, p.lastRecv, p.lastData, p.lastHandshake} {
		if t.After(last) {
			last = t
		}
	}
	if p.hs == nil && len(p.queue) == 0 && now.Sub(last) >= cfg.IdleTimeout {
		p.forgetLocked()
		m.st.inc(PeersExpired)
	}
}
