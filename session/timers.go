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

// tickInput is what a tick decides from, read from one peer under its
// lock once its expired keypairs are gone.
type tickInput struct {
	handshaking     bool      // an initiation of ours is outstanding
	initSentAt      time.Time // when it was sent
	triesSince      time.Time // first attempt of the current series; zero if none
	usable          bool      // the current keypair may carry traffic
	queued          int       // packets waiting for a keypair
	lastHandshake   time.Time
	unansweredSince time.Time // first data sent since we last heard; zero if none
	keepaliveDue    time.Time // zero if none
	lastActive      time.Time // latest of created, sent, received, data, handshake
}

// handshakeStep is the handshake a tick starts, if any.
type handshakeStep uint8

const (
	stepNone       handshakeStep = iota
	stepRetry                    // a new initiation in the running series
	stepBegin                    // a series: a session we answered was never confirmed
	stepUnanswered               // a series: data sent, nothing heard for too long
)

// tickPlan is what a tick does to one peer, in this order.
type tickPlan struct {
	giveUp       bool // end the series, its queue is unreachable
	handshake    handshakeStep
	keepaliveDue bool // the keepalive timer has run out (and is cleared)
	keepalive    bool // … and the current keypair can send it
	forget       bool // idle: forget the peer
}

// decideTick is the tick's decision, with no locks, crypto or clock of
// its own.
func decideTick(cfg *Config, now time.Time, in tickInput) tickPlan {
	var pl tickPlan
	// Give up on a series that has run too long.
	if !in.triesSince.IsZero() && now.Sub(in.triesSince) >= cfg.HandshakeGiveUp {
		pl.giveUp = true
		in.handshaking, in.queued = false, 0
	}
	switch {
	case in.handshaking && now.Sub(in.initSentAt) >= cfg.RekeyTimeout:
		pl.handshake = stepRetry
	case !in.handshaking && !in.usable && in.queued > 0 && now.Sub(in.lastHandshake) >= cfg.RekeyTimeout:
		// We answered an initiation (or yielded) but the session was never
		// confirmed: try ourselves.
		pl.handshake = stepBegin
	case !in.handshaking && in.usable && !in.unansweredSince.IsZero() && now.Sub(in.unansweredSince) >= cfg.KeepaliveTimeout+cfg.RekeyTimeout:
		pl.handshake = stepUnanswered
	}
	if pl.handshake != stepNone {
		in.handshaking, in.lastActive = true, now
	}
	if !in.keepaliveDue.IsZero() && !now.Before(in.keepaliveDue) {
		pl.keepaliveDue = true
		if in.usable {
			pl.keepalive = true
			in.lastActive = now
		}
	}
	pl.forget = !in.handshaking && in.queued == 0 && now.Sub(in.lastActive) >= cfg.IdleTimeout
	return pl
}

// tickInputLocked reads what decideTick needs.
func (p *peer) tickInputLocked(now time.Time) tickInput {
	in := tickInput{
		handshaking:     p.hs != nil,
		triesSince:      p.triesSince,
		usable:          p.usableLocked(now) != nil,
		queued:          len(p.queue),
		lastHandshake:   p.lastHandshake,
		unansweredSince: p.unansweredSince,
		keepaliveDue:    p.keepaliveDue,
		lastActive:      p.created,
	}
	if p.hs != nil {
		in.initSentAt = p.hs.sentAt
	}
	for _, t := range []time.Time{p.lastSent, p.lastRecv, p.lastData, p.lastHandshake} {
		if t.After(in.lastActive) {
			in.lastActive = t
		}
	}
	return in
}

// tickLocked drops expired keypairs, then carries out decideTick's plan.
func (p *peer) tickLocked(now time.Time, a *actions) {
	m := p.m
	for _, kpp := range []**keypair{&p.prev, &p.cur, &p.next} {
		if kp := *kpp; kp != nil && now.Sub(kp.created) >= m.cfg.RejectAfterTime {
			m.dropIndex(kp.local)
			*kpp = nil
		}
	}
	pl := decideTick(&m.cfg, now, p.tickInputLocked(now))
	if pl.giveUp {
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
	switch pl.handshake {
	case stepRetry:
		p.sendInitiationLocked(now, a)
	case stepUnanswered:
		p.unansweredSince = time.Time{}
		p.beginHandshakeLocked(now, a)
	case stepBegin:
		p.beginHandshakeLocked(now, a)
	}
	if pl.keepaliveDue {
		if kp := p.usableLocked(now); pl.keepalive && kp != nil {
			a.out = append(a.out, outbound{kp: kp, counter: kp.counter.Add(1) - 1})
			p.noteSendLocked(now, false)
		}
		p.keepaliveDue = time.Time{}
	}
	// The plan counts a planned initiation as sent; one that could not
	// be built (no entropy) leaves the peer to be forgotten a tick later.
	if pl.forget {
		p.forgetLocked()
		m.st.inc(PeersExpired)
	}
}
