package session

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/flynn/noise"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/overlay/wire"
)

// The Noise IK handshake: initiation, response, simultaneous initiation
// and the rotation to a new keypair.

var (
	cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
	prologue    = []byte("pineconed session v1")
)

// timestamp returns a value above every earlier one, based on now.
func (m *Manager) timestamp(now time.Time) uint64 {
	m.tsMu.Lock()
	defer m.tsMu.Unlock()
	ts := uint64(now.UnixNano())
	if ts <= m.lastTS {
		ts = m.lastTS + 1
	}
	m.lastTS = ts
	return ts
}

// HandlePayload processes a handshake or transport message that arrived
// from the overlay with frame source key src. It may decrypt in place, so
// payload must not be used afterwards. Errors are also counted in Stats;
// the caller only needs them for debug logging.
func (m *Manager) HandlePayload(now time.Time, src wire.PublicKey, payload []byte) error {
	t, err := envelope.ParseHeader(payload)
	if err != nil {
		m.st.inc(Malformed)
		return err
	}
	switch t {
	case envelope.TypeHandshakeInit:
		return m.handleInit(now, src, payload, false)
	case envelope.TypeHandshakeInitCookie:
		return m.handleInit(now, src, payload, true)
	case envelope.TypeCookieReply:
		return m.handleCookieReply(now, src, payload)
	case envelope.TypeHandshakeResponse:
		return m.handleResponse(now, src, payload)
	case envelope.TypeTransport:
		pkt, err := m.OpenTransport(now, src, payload)
		if pkt != nil {
			m.tr.Deliver(src, pkt)
		}
		return err
	}
	m.st.inc(Malformed)
	return fmt.Errorf("session: %w: %s", envelope.ErrWrongType, t)
}

// initVerdict is what an authenticated initiation does to its peer.
type initVerdict uint8

const (
	initAnswer   initVerdict = iota // answer it
	initYield                       // drop our own outstanding initiation and answer it
	initIgnore                      // keep ours: the peer will answer it
	initReplayed                    // its timestamp is not newer than the last: drop it
)

// decideInit is the pure part of handling an initiation from src with
// timestamp ts, when the last one accepted from src had lastTS and
// outstanding says whether we are initiating to src ourselves: replays
// are refused, and on a simultaneous initiation the lower key yields.
func decideInit(self, src wire.PublicKey, ts, lastTS uint64, outstanding bool) initVerdict {
	switch {
	case ts <= lastTS:
		return initReplayed
	case !outstanding:
		return initAnswer
	case self.Less(src):
		return initYield
	default:
		return initIgnore
	}
}

// handleInit authenticates an initiation (readInit) and answers it as
// decideInit says.
func (m *Manager) handleInit(now time.Time, src wire.PublicKey, payload []byte, withMAC bool) error {
	msg, hs, plain, err := m.readInit(now, src, payload, withMAC)
	if err != nil {
		return err
	}
	mtu := int(binary.BigEndian.Uint16(plain))
	ts := binary.BigEndian.Uint64(plain[2:])

	p, err := m.peerFor(now, src, true)
	if err != nil {
		m.st.inc(DropTooManyPeer)
		return fmt.Errorf("initiation from %s: %w", src, err)
	}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		m.st.inc(DropTooManyPeer)
		return fmt.Errorf("initiation from %s: peer state expired concurrently", src)
	}
	switch decideInit(m.self, src, ts, p.lastInitTS, p.hs != nil) {
	case initReplayed:
		p.mu.Unlock()
		m.st.inc(ReplayedInits)
		return fmt.Errorf("initiation from %s: replayed (timestamp not newer)", src)
	case initIgnore:
		p.mu.Unlock()
		m.st.inc(CollisionsIgnored)
		return nil
	case initYield:
		m.dropIndex(p.hs.index)
		p.hs = nil
		m.st.inc(CollisionsYielded)
	}
	p.lastInitTS = ts
	p.peerMTU = mtu
	resp, err := p.respondLocked(now, hs, msg.Sender)
	p.mu.Unlock()
	if err != nil {
		return fmt.Errorf("response to %s: %w", src, err)
	}
	m.st.inc(ResponsesSent)
	m.tr.Send(src, resp, 0)
	return nil
}

// readInit parses an initiation from src, passes it through the load
// defence before anything that costs, and reads its Noise message, which
// must carry the static key of src. It returns the message, the Noise
// state to answer with and the decrypted payload; each refusal is counted.
func (m *Manager) readInit(now time.Time, src wire.PublicKey, payload []byte, withMAC bool) (envelope.HandshakeInit, *noise.HandshakeState, []byte, error) {
	var msg envelope.HandshakeInit
	var covered, mac []byte
	var err error
	if withMAC {
		msg, covered, mac, err = envelope.ParseHandshakeInitCookie(payload)
	} else {
		msg, err = envelope.ParseHandshakeInit(payload)
	}
	if err != nil {
		m.st.inc(Malformed)
		return msg, nil, nil, fmt.Errorf("initiation from %s: %w", src, err)
	}
	if src == m.self {
		m.st.inc(DropBadKey)
		return msg, nil, nil, fmt.Errorf("initiation from our own key")
	}
	// Before anything that costs: even the key conversion below is a
	// field inversion.
	if err := m.admitInitiation(now, src, msg, withMAC, covered, mac); err != nil {
		return msg, nil, nil, err
	}
	xsrc, err := PublicToX25519(src)
	if err != nil {
		m.st.inc(DropBadKey)
		return msg, nil, nil, fmt.Errorf("initiation from %s: %w", src, err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeIK,
		Prologue:      prologue,
		StaticKeypair: m.static,
	})
	if err != nil {
		return msg, nil, nil, err
	}
	plain, _, _, err := hs.ReadMessage(nil, msg.Noise)
	if err != nil || len(plain) != envelope.InitPayloadSize {
		m.st.inc(BadHandshake)
		return msg, nil, nil, fmt.Errorf("initiation from %s: noise: %v", src, err)
	}
	if !bytes.Equal(hs.PeerStatic(), xsrc[:]) {
		m.st.inc(WrongStatic)
		return msg, nil, nil, fmt.Errorf("initiation from %s: static key belongs to another identity", src)
	}
	return msg, hs, plain, nil
}

// respondLocked writes our response on hs to the initiation whose sender
// index is sender, and keeps the keypair it makes as next: it becomes
// current when the initiator first sends on it.
func (p *peer) respondLocked(now time.Time, hs *noise.HandshakeState, sender uint32) ([]byte, error) {
	m := p.m
	var rp [envelope.ResponsePayloadSize]byte
	binary.BigEndian.PutUint16(rp[:], uint16(m.cfg.MTU))
	out, cs1, cs2, err := hs.WriteMessage(nil, rp[:])
	if err != nil || cs1 == nil || cs2 == nil {
		m.st.inc(BadHandshake)
		return nil, fmt.Errorf("noise: %v", err)
	}
	kp := newKeypair(p, sender, cs2.UnsafeKey(), cs1.UnsafeKey(), now, false)
	m.mu.Lock()
	if p.next != nil {
		delete(m.index, p.next.local)
	}
	kp.local = m.newIndexLocked(indexEntry{p: p, kp: kp})
	m.mu.Unlock()
	p.next = kp
	p.lastHandshake = now
	return envelope.HandshakeResponse{Sender: kp.local, Receiver: sender, Noise: out}.Append(nil)
}

// initiationFor returns, locked, the peer src whose outstanding
// initiation has our index receiver: what a response or a cookie reply
// answers. Anything else is counted as an unknown index.
func (m *Manager) initiationFor(src wire.PublicKey, receiver uint32) (*peer, error) {
	m.mu.RLock()
	e, ok := m.index[receiver]
	m.mu.RUnlock()
	if !ok || e.kp != nil || e.p.key != src {
		m.st.inc(UnknownIndex)
		return nil, fmt.Errorf("unknown index %d", receiver)
	}
	p := e.p
	p.mu.Lock()
	if p.dead || p.hs == nil || p.hs.index != receiver {
		p.mu.Unlock()
		m.st.inc(UnknownIndex)
		return nil, fmt.Errorf("stale index %d", receiver)
	}
	return p, nil
}

func (m *Manager) handleResponse(now time.Time, src wire.PublicKey, payload []byte) error {
	msg, err := envelope.ParseHandshakeResponse(payload)
	if err != nil {
		m.st.inc(Malformed)
		return fmt.Errorf("response from %s: %w", src, err)
	}
	p, err := m.initiationFor(src, msg.Receiver)
	if err != nil {
		return fmt.Errorf("response from %s: %w", src, err)
	}
	plain, cs1, cs2, err := p.hs.state.ReadMessage(nil, msg.Noise)
	if err != nil || cs1 == nil || len(plain) != envelope.ResponsePayloadSize {
		// A failed read leaves the Noise state unusable; rebuild it so the
		// genuine response can still complete this handshake.
		if rerr := p.hs.rebuild(m, p); rerr != nil {
			m.dropIndex(p.hs.index)
			p.hs = nil
		}
		p.mu.Unlock()
		m.st.inc(BadHandshake)
		return fmt.Errorf("response from %s: noise: %v", src, err)
	}
	a := actions{dst: src}
	kp := newKeypair(p, msg.Sender, cs1.UnsafeKey(), cs2.UnsafeKey(), now, true)
	kp.local = p.hs.index
	m.mu.Lock()
	m.index[kp.local] = indexEntry{p: p, kp: kp}
	if p.next != nil {
		delete(m.index, p.next.local)
		p.next = nil
	}
	m.mu.Unlock()
	p.peerMTU = int(binary.BigEndian.Uint16(plain))
	a.latency = now.Sub(p.triesSince)
	p.hs = nil
	p.rotateLocked(now, kp, &a)
	a.initiator = true
	if len(a.out) == 0 {
		// Confirm the keypair to the responder, which will not send on it
		// before hearing from us.
		a.out = append(a.out, outbound{kp: kp, counter: kp.counter.Add(1) - 1})
		p.noteSendLocked(now, false)
	}
	p.mu.Unlock()
	m.run(&a)
	return nil
}

// initiation is our outstanding handshake initiation.
type initiation struct {
	index   uint32
	state   *noise.HandshakeState
	seed    [32]byte // ephemeral private key, to rebuild state
	payload [envelope.InitPayloadSize]byte
	sentAt  time.Time
	// msg is the Noise message sent; its ephemeral binds cookie replies.
	msg []byte
	// cookieResent is set once the initiation was repeated with the mac
	// of a cookie reply: one repeat per initiation, whatever the replies.
	cookieResent bool
}

func (in *initiation) build(m *Manager, p *peer) ([]byte, error) {
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Random:        bytes.NewReader(in.seed[:]),
		Pattern:       noise.HandshakeIK,
		Initiator:     true,
		Prologue:      prologue,
		StaticKeypair: m.static,
		PeerStatic:    p.xpub[:],
	})
	if err != nil {
		return nil, err
	}
	msg, _, _, err := hs.WriteMessage(nil, in.payload[:])
	if err != nil {
		return nil, err
	}
	in.state = hs
	return msg, nil
}

// rebuild replays our initiation deterministically from its ephemeral seed.
func (in *initiation) rebuild(m *Manager, p *peer) error {
	_, err := in.build(m, p)
	return err
}

// beginHandshakeLocked starts a handshake series unless one is running.
func (p *peer) beginHandshakeLocked(now time.Time, a *actions) {
	if p.hs != nil {
		return
	}
	if p.triesSince.IsZero() {
		p.triesSince = now
	}
	p.m.st.inc(HandshakesInitiated)
	p.sendInitiationLocked(now, a)
}

// sendInitiationLocked builds a fresh initiation (new ephemeral, index and
// timestamp) and schedules it.
func (p *peer) sendInitiationLocked(now time.Time, a *actions) {
	m := p.m
	in := &initiation{sentAt: now}
	if _, err := io.ReadFull(m.cfg.Rand, in.seed[:]); err != nil {
		return // retried on the next Tick
	}
	binary.BigEndian.PutUint16(in.payload[:], uint16(m.cfg.MTU))
	binary.BigEndian.PutUint64(in.payload[2:], m.timestamp(now))
	msg, err := in.build(m, p)
	if err != nil {
		return
	}
	in.msg = msg
	m.mu.Lock()
	if p.hs != nil {
		delete(m.index, p.hs.index)
	}
	in.index = m.newIndexLocked(indexEntry{p: p})
	m.mu.Unlock()
	p.hs = in
	p.lastHandshake = now
	payload, err := p.initiationPayloadLocked(now)
	if err != nil {
		return
	}
	m.st.inc(InitiationsSent)
	a.raw = append(a.raw, payload)
}

// rotateLocked makes kp current, keeps the old current for decryption, and
// flushes the queue on kp.
func (p *peer) rotateLocked(now time.Time, kp *keypair, a *actions) {
	m := p.m
	if p.prev != nil {
		m.dropIndex(p.prev.local)
	}
	p.prev, p.cur = p.cur, kp
	p.settleLocked()
	p.lastRekey = now
	p.triesSince = time.Time{}
	m.st.inc(HandshakesCompleted)
	a.established = true
	for _, inner := range p.queue {
		a.out = append(a.out, outbound{kp: kp, counter: kp.counter.Add(1) - 1, inner: inner})
	}
	if len(p.queue) > 0 {
		p.noteSendLocked(now, true)
	}
	p.queue = nil
}
