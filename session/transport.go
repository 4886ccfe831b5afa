package session

import (
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/overlay/wire"
	"golang.org/x/crypto/chacha20poly1305"
)

// Transport messages: sealing and sending, opening and the replay
// window, the inner messages, and the actions a locked section decides.

// minPeerMTU is the smallest MTU a peer may announce and have Send hold
// packets to: the IPv6 minimum link MTU (RFC 8200 §5). A smaller one is
// not believed.
const minPeerMTU = 1280

// Send encrypts an IPv6 packet for dst, starting (and queueing behind) a
// handshake if there is no usable session. It never blocks on the network.
// A packet larger than the MTU dst announced in its handshake is not sent:
// Send returns that MTU (else 0), for the caller to answer with Packet Too
// Big. The check takes the same lookup and lock as the send, so a packet
// costs one of each.
func (m *Manager) Send(now time.Time, dst wire.PublicKey, packet []byte) (peerMTU int) {
	if len(packet) > MaxPacket {
		m.st.inc(DropTooBig)
		return 0
	}
	return m.sendInner(now, dst, envelope.InnerIPv6, packet, nil, nil)
}

// SendFramed is Send for a packet with one byte of room in front of it:
// framed[1:] is the IPv6 packet and framed[0] is free (SendFramed writes
// the inner type byte there), so that the packet is sealed from where it
// lies, straight into the message, instead of being copied next to that
// byte first. The TUN reader leaves that byte (tun.Reader.Framed).
func (m *Manager) SendFramed(now time.Time, dst wire.PublicKey, framed []byte) (peerMTU int) {
	if len(framed) < 1 || len(framed)-1 > MaxPacket {
		m.st.inc(DropTooBig)
		return 0
	}
	return m.sendInner(now, dst, envelope.InnerIPv6, framed[1:], nil, framed)
}

// SendEcho sends an echo request carrying id and data to dst; the reply
// arrives through Transport.EchoReply with the same id.
func (m *Manager) SendEcho(now time.Time, dst wire.PublicKey, id uint64, data []byte) {
	if len(data) > MaxPlaintext-1-envelope.EchoIDSize {
		m.st.inc(DropTooBig)
		return
	}
	m.sendInner(now, dst, envelope.InnerEchoRequest, binary.BigEndian.AppendUint64(nil, id), data, nil)
}

// outbound is one message to seal and send once locks are released.
type outbound struct {
	kp      *keypair
	counter uint64
	inner   []byte // type byte first; nil for a keepalive
}

// actions collects what a locked section decided to do.
type actions struct {
	dst         wire.PublicKey
	raw         [][]byte // ready payloads (handshake messages)
	out         []outbound
	unreachable [][]byte
	established bool
	initiator   bool
	latency     time.Duration
}

func (m *Manager) run(a *actions) {
	for _, r := range a.raw {
		m.tr.Send(a.dst, r, 0)
	}
	for _, o := range a.out {
		if o.inner == nil {
			m.sendTransport(a.dst, o.kp, o.counter, 0, nil, nil, nil)
			m.st.inc(KeepalivesSent)
		} else {
			// The queued copy has its type byte in front: framed.
			m.sendTransport(a.dst, o.kp, o.counter, o.inner[0], o.inner[1:], nil, o.inner)
			if o.inner[0] == envelope.InnerIPv6 {
				m.st.inc(PacketsOut)
			}
		}
	}
	if len(a.unreachable) > 0 {
		m.tr.Unreachable(a.dst, a.unreachable)
	}
	if a.established {
		m.tr.Established(a.dst, a.initiator, a.latency)
	}
}

// sendInner sends one inner message to dst: typ, head and body. framed,
// when not nil, is head with a free byte in front of it (SendFramed). An
// IPv6 packet (head) larger than the MTU dst announced is not sent, and
// that MTU is returned.
func (m *Manager) sendInner(now time.Time, dst wire.PublicKey, typ byte, head, body, framed []byte) (peerMTU int) {
	var p *peer
	var err error
	for range 3 {
		p, err = m.peerFor(now, dst, false)
		if err != nil {
			if errors.Is(err, errTooManyPeers) {
				m.st.inc(DropTooManyPeer)
			} else {
				m.st.inc(DropBadKey)
			}
			return 0
		}
		p.mu.Lock()
		if !p.dead {
			break
		}
		p.mu.Unlock()
		p = nil
	}
	if p == nil {
		// Lost the race against idle expiry three times in a row; the
		// packet is dropped rather than spinning.
		m.st.inc(DropTooManyPeer)
		return 0
	}
	if typ == envelope.InnerIPv6 && p.peerMTU >= minPeerMTU && len(head) > p.peerMTU {
		mtu := p.peerMTU
		p.mu.Unlock()
		return mtu
	}
	a := actions{dst: dst}
	// We have something to say to this peer: it is ours, not a stranger's
	// half-open handshake.
	p.settleLocked()
	kp := p.usableLocked(now)
	var counter uint64
	if kp != nil {
		counter = kp.counter.Add(1) - 1
		if counter >= m.cfg.RejectAfterMessages {
			kp = nil
		}
	}
	if kp == nil {
		inner := make([]byte, 0, 1+len(head)+len(body))
		inner = append(append(append(inner, typ), head...), body...)
		p.enqueueLocked(inner)
		if p.triesSince.IsZero() {
			p.triesSince = now
		}
		// Not while a session we just answered awaits confirmation: our
		// own initiation would only compete with it. Tick takes over if
		// the confirmation does not come.
		if p.hs == nil && (p.next == nil || now.Sub(p.lastHandshake) >= m.cfg.RekeyTimeout) {
			p.beginHandshakeLocked(now, &a)
		}
		p.mu.Unlock()
		m.run(&a)
		return 0
	}
	p.noteSendLocked(now, true)
	if p.hs == nil && p.needRekeyLocked(now, kp, counter) {
		p.beginHandshakeLocked(now, &a)
	}
	p.mu.Unlock()

	m.sendTransport(dst, kp, counter, typ, head, body, framed)
	if typ == envelope.InnerIPv6 {
		m.st.inc(PacketsOut)
	}
	m.run(&a)
	return 0
}

// sendTransport seals one transport message into a pool buffer, leaving
// the room in front for the overlay's frame header, and sends it. framed,
// when not nil, is the inner message with a free byte in front for typ
// (head must be framed[1:] and body empty), sealed from where it lies.
func (m *Manager) sendTransport(dst wire.PublicKey, kp *keypair, counter uint64, typ byte, head, body, framed []byte) {
	buf := bufpool.Get()
	off := bufpool.Headroom(buf)
	var n int
	if framed != nil {
		n = len(kp.sealFramed(buf[off:off], counter, typ, framed))
	} else {
		n = len(kp.seal(buf[off:off], counter, typ, head, body))
	}
	m.tr.Send(dst, buf[:off+n], off)
	m.st.add(BytesOut, uint64(n))
	kp.peer.bytesOut.Add(uint64(n))
}

// OpenTransport authenticates a transport message from src, lets it move
// the peer's timers and keypairs, and handles its inner message as
// HandlePayload does, except that an IPv6 packet is returned instead of
// passed to Transport.Deliver: the packet path then hands the buffer it
// lies in on as it is. The packet aliases payload (decrypted in place) and
// its source address has been checked; it is nil for a keepalive, an echo
// or a refused message (err says why; refusals are counted in Stats).
func (m *Manager) OpenTransport(now time.Time, src wire.PublicKey, payload []byte) ([]byte, error) {
	kp, plain, err := m.decryptTransport(now, src, payload)
	if err != nil {
		return nil, fmt.Errorf("transport from %s: %w", src, err)
	}
	m.st.add(BytesIn, uint64(len(payload)))
	p := kp.peer
	p.bytesIn.Add(uint64(len(payload)))

	a := actions{dst: src}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return nil, nil
	}
	p.receivedLocked(now, kp, len(plain) > 0, &a)
	p.mu.Unlock()
	m.run(&a)

	if len(plain) == 0 {
		return nil, nil
	}
	pkt, err := m.handleInner(now, src, plain)
	if err != nil {
		return nil, fmt.Errorf("transport from %s: %w", src, err)
	}
	return pkt, nil
}

// decryptTransport finds the keypair a transport message from src names,
// decrypts the message in place and passes its counter through the replay
// window; each refusal is counted here.
func (m *Manager) decryptTransport(now time.Time, src wire.PublicKey, payload []byte) (*keypair, []byte, error) {
	msg, err := envelope.ParseTransport(payload)
	if err != nil {
		m.st.inc(Malformed)
		return nil, nil, err
	}
	m.mu.RLock()
	e, ok := m.index[msg.Receiver]
	m.mu.RUnlock()
	if !ok || e.kp == nil || e.p.key != src {
		m.st.inc(UnknownIndex)
		return nil, nil, fmt.Errorf("unknown index %d", msg.Receiver)
	}
	kp := e.kp
	if now.Sub(kp.created) >= m.cfg.RejectAfterTime || msg.Counter >= m.cfg.RejectAfterMessages {
		m.st.inc(Expired)
		return nil, nil, errors.New("keypair expired")
	}
	plain, err := kp.open(msg.Counter, msg.Ciphertext, payload[:envelope.TransportHeaderSize])
	if err != nil {
		m.st.inc(DecryptFailures)
		return nil, nil, err
	}
	kp.rmu.Lock()
	res := kp.replay.accept(msg.Counter)
	kp.rmu.Unlock()
	switch res {
	case replayDuplicate:
		m.st.inc(Replays)
		return nil, nil, fmt.Errorf("replayed counter %d", msg.Counter)
	case replayTooOld:
		m.st.inc(TooOld)
		return nil, nil, fmt.Errorf("counter %d behind the window", msg.Counter)
	}
	return kp, plain, nil
}

// receivedLocked is what an authenticated message on kp does to the peer:
// it confirms a keypair we answered, resets the timers that wait for the
// peer, arms the keepalive when it carried data, and starts the rekey that
// is ours when traffic only flows towards us.
func (p *peer) receivedLocked(now time.Time, kp *keypair, data bool, a *actions) {
	cfg := &p.m.cfg
	if kp == p.next {
		p.next = nil
		p.rotateLocked(now, kp, a)
	}
	p.lastRecv = now
	p.unansweredSince = time.Time{}
	if data {
		p.lastData = now
		if p.keepaliveDue.IsZero() {
			p.keepaliveDue = now.Add(cfg.KeepaliveTimeout)
		}
	}
	if p.hs == nil && kp == p.cur && kp.initiator && now.Sub(kp.created) >= cfg.RekeyAfterTime {
		// Our sends will not trigger the rekey that is our job as this
		// keypair's initiator.
		p.beginHandshakeLocked(now, a)
	}
}

// handleInner handles a decrypted inner message from src: an IPv6 packet
// whose source belongs to src is returned, an echo request answered, an
// echo reply handed to Transport.EchoReply.
func (m *Manager) handleInner(now time.Time, src wire.PublicKey, plain []byte) ([]byte, error) {
	in, err := envelope.ParseInner(plain)
	if err != nil {
		m.st.inc(BadInner)
		return nil, err
	}
	switch in.Type {
	case envelope.InnerIPv6:
		if err := addressing.CheckSource(in.Data, src); err != nil {
			m.st.inc(BadSource)
			return nil, err
		}
		m.st.inc(PacketsIn)
		return in.Data, nil
	case envelope.InnerEchoRequest:
		m.st.inc(EchoRequestsIn)
		m.sendInner(now, src, envelope.InnerEchoReply, binary.BigEndian.AppendUint64(nil, in.EchoID), in.Data, nil)
	case envelope.InnerEchoReply:
		m.st.inc(EchoRepliesIn)
		m.tr.EchoReply(src, in.EchoID, in.Data)
	}
	return nil, nil
}

// keypair is one direction pair of transport keys.
type keypair struct {
	peer          *peer
	local, remote uint32
	send, recv    cipher.AEAD
	counter       atomic.Uint64 // next counter to send
	created       time.Time
	initiator     bool

	rmu    sync.Mutex
	replay replayWindow
}

func newKeypair(p *peer, remote uint32, sendKey, recvKey [32]byte, now time.Time, initiator bool) *keypair {
	// chacha20poly1305.New only fails on a wrong key length.
	s, _ := chacha20poly1305.New(sendKey[:])
	r, _ := chacha20poly1305.New(recvKey[:])
	return &keypair{peer: p, remote: remote, send: s, recv: r, created: now, initiator: initiator}
}

// nonces recycles the nonce buffers of seal and open: a nonce handed to
// the cipher.AEAD interface escapes to the heap, so one built on the stack
// would cost an allocation per message.
var nonces = sync.Pool{New: func() any { return new([chacha20poly1305.NonceSize]byte) }}

// nonceFor returns a pooled nonce for counter; give it back to nonces.
func nonceFor(counter uint64) *[chacha20poly1305.NonceSize]byte {
	n := nonces.Get().(*[chacha20poly1305.NonceSize]byte)
	clear(n[:4])
	binary.LittleEndian.PutUint64(n[4:], counter)
	return n
}

// seal builds a transport message in the free capacity of dst (from
// dst[len(dst):] on) and returns it: the inner type byte (unless typ is 0,
// a keepalive), head and body, encrypted in place. With dst nil it
// allocates exactly what the message needs; with room for the whole
// message it does not allocate.
func (kp *keypair) seal(dst []byte, counter uint64, typ byte, head, body []byte) []byte {
	n := 0
	if typ != 0 {
		n = 1 + len(head) + len(body)
	}
	hdr := envelope.TransportHeaderSize
	if dst == nil {
		dst = make([]byte, 0, hdr+n+envelope.TagSize)
	}
	buf := envelope.AppendTransportHeader(dst[len(dst):], kp.remote, counter)
	if typ != 0 {
		buf = append(append(append(buf, typ), head...), body...)
	}
	nonce := nonceFor(counter)
	msg := kp.send.Seal(buf[:hdr], nonce[:], buf[hdr:], buf[:hdr])
	nonces.Put(nonce)
	return msg
}

// sealFramed is seal for an inner message that has a free byte in front:
// framed[0] becomes typ and framed is encrypted from where it lies into
// dst's free capacity, which must hold the whole message and must not
// overlap framed.
func (kp *keypair) sealFramed(dst []byte, counter uint64, typ byte, framed []byte) []byte {
	framed[0] = typ
	hdr := envelope.AppendTransportHeader(dst[len(dst):], kp.remote, counter)
	nonce := nonceFor(counter)
	msg := kp.send.Seal(hdr, nonce[:], framed, hdr)
	nonces.Put(nonce)
	return msg
}

// open decrypts ct in place.
func (kp *keypair) open(counter uint64, ct, ad []byte) ([]byte, error) {
	nonce := nonceFor(counter)
	plain, err := kp.recv.Open(ct[:0], nonce[:], ct, ad)
	nonces.Put(nonce)
	return plain, err
}

func (p *peer) enqueueLocked(inner []byte) {
	if len(p.queue) >= p.m.cfg.MaxQueue {
		p.m.st.inc(DropQueueFull)
		return
	}
	p.queue = append(p.queue, inner)
}

func (p *peer) noteSendLocked(now time.Time, data bool) {
	p.lastSent = now
	p.keepaliveDue = time.Time{}
	if data {
		p.lastData = now
		if p.unansweredSince.IsZero() {
			p.unansweredSince = now
		}
	}
}
