// Package session encrypts traffic end to end between node keys.
//
// # Handshake
//
// Sessions use Noise IK (Noise_IK_25519_ChaChaPoly_BLAKE2s, prologue
// "pineconed session v1") with static X25519 keys derived from the nodes'
// ed25519 identities (PrivateToX25519, PublicToX25519). The initiator knows
// the responder's ed25519 key from the resolver, hence its static key. The
// responder learns the initiator's static key from the first message and
// drops the handshake unless it equals the conversion of the overlay frame's
// source key: a session is therefore bound to the overlay identity it claims.
//
// The initiation carries the initiator's TUN MTU and a timestamp that must
// increase from one initiation to the next (a replayed initiation is
// dropped); the response carries the responder's TUN MTU. Each side sees the
// other's MTU as Info.PeerMTU, so the daemon can answer oversized packets
// with ICMPv6 Packet Too Big.
//
// # Floods
//
// Initiations pass per-source and global rate limits before any
// Diffie-Hellman, a responder under load demands a cookie (CookieReply,
// HandshakeInitCookie), and peers that only sent an initiation are the
// first evicted from a full table (defence.go). The daemon gives
// handshake messages their own bounded queue and goroutine
// (HandshakeQueue), so transport messages never wait behind them.
//
// # Transport
//
// After the handshake both sides take the two Noise cipher keys and use
// ChaCha20-Poly1305 directly with an explicit 64-bit counter in every
// message (the overlay may reorder or lose packets, which Noise's implicit
// nonce cannot handle). The receiver index in each message finds the key;
// the counter goes through a sliding replay window of WindowSize counters.
// The envelope header, index and counter are the associated data.
//
// # Keys over time (WireGuard's rules, shortened)
//
//   - A keypair is replaced after RekeyAfterTime (by the side that initiated
//     it; the responder waits RekeyTimeout longer so that both do not start
//     at once) or after RekeyAfterMessages sent (by either side). Until then,
//     and until the new keypair is confirmed, traffic keeps flowing on the
//     old one, and the previous keypair is kept for decryption, so a rekey
//     never interrupts traffic.
//   - The responder uses a new keypair for sending only once the initiator
//     has sent something on it; the initiator sends a keepalive straight
//     after the handshake when it has nothing queued.
//   - A keypair older than RejectAfterTime is never used.
//   - Handshakes are retried every RekeyTimeout and given up after
//     HandshakeGiveUp; the queued packets then go to Transport.Unreachable.
//   - A side that received data but sent nothing for KeepaliveTimeout sends
//     an empty keepalive; a side that sent data and heard nothing for
//     KeepaliveTimeout+RekeyTimeout starts a new handshake (the peer may
//     have restarted and lost its keys).
//   - A peer with no traffic for IdleTimeout is forgotten.
//
// # Simultaneous initiation
//
// If an initiation arrives from a peer to which we have our own initiation
// outstanding, the side with the lower key (wire.PublicKey.Less) yields: it
// abandons its own initiation and answers the peer's. The side with the
// higher key ignores the peer's initiation, because the peer will answer
// its own. Either way exactly one handshake completes and no packets are
// lost: the yielding side keeps its queue and flushes it when the peer's
// first transport message confirms the session.
//
// # Inner messages
//
// Decrypted plaintexts start with an inner type byte (see package
// envelope): an IPv6 packet, or an echo request or reply used by
// "pineconectl ping". IPv6 packets are delivered only if their source
// address belongs to the sender's key (addressing.CheckSource).
package session

import (
	"bytes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/ratelimit"
	"github.com/pineconed/pineconed/overlay/wire"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/time/rate"
)

// Transport is the one interface a Manager talks to: it sends through it
// and reports to it what the layers above need to know. The packet-path
// package (datapath) implements it over the overlay and the TUN. Its
// methods are called without Manager locks held, from whichever goroutine
// called into the Manager, and must not block on the network.
type Transport interface {
	// Send hands the message at buf[off:] to the overlay for dst; best
	// effort. When off > 0, buf is from internal/bufpool and the off bytes
	// in front of the message are free for the overlay's frame header
	// (overlay.Node.SendBuffer); handshake messages come with off 0 in a
	// plain slice. The callee owns buf.
	Send(dst wire.PublicKey, buf []byte, off int)
	// Deliver receives a decrypted IPv6 packet from src whose source
	// address has been checked. packet aliases the buffer given to
	// HandlePayload and is valid only during the call.
	Deliver(src wire.PublicKey, packet []byte)
	// EchoReply receives the answer to SendEcho. data is valid only during
	// the call.
	EchoReply(src wire.PublicKey, id uint64, data []byte)
	// Established is called when a keypair with remote becomes current;
	// latency is the time since the handshake began (zero for the
	// responder). The resolver should learn remote from it.
	Established(remote wire.PublicKey, initiator bool, latency time.Duration)
	// Unreachable receives the IPv6 packets queued for a peer whose
	// handshake was given up. The callee owns them.
	Unreachable(dst wire.PublicKey, packets [][]byte)
}

// MaxPlaintext is the largest inner message (type byte included) whose
// transport message fits a Traffic frame's 16-bit payload length.
const MaxPlaintext = 65535 - envelope.TransportHeaderSize - envelope.TagSize

// MaxPacket is the largest IPv6 packet Send accepts.
const MaxPacket = MaxPlaintext - 1

// Config tunes a Manager. Zero durations and counts take the defaults shown.
type Config struct {
	// MTU is our TUN MTU, announced to peers in handshakes. Default 1280.
	MTU int
	// RekeyAfterTime: default 120 s.
	RekeyAfterTime time.Duration
	// RejectAfterTime: a keypair is unusable after this. Default 180 s.
	RejectAfterTime time.Duration
	// RekeyAfterMessages: default 2^60.
	RekeyAfterMessages uint64
	// RejectAfterMessages: default 2^64 - 2^13 - 1 (WireGuard's).
	RejectAfterMessages uint64
	// RekeyTimeout is the handshake retry interval. Default 5 s.
	RekeyTimeout time.Duration
	// HandshakeGiveUp: default 90 s.
	HandshakeGiveUp time.Duration
	// KeepaliveTimeout: default 10 s.
	KeepaliveTimeout time.Duration
	// IdleTimeout: a peer silent for this long is forgotten. Default 180 s.
	IdleTimeout time.Duration
	// MaxQueue bounds packets waiting for a handshake per peer. Default 64.
	MaxQueue int
	// MaxPeers bounds the number of peers with state. Default 4096.
	MaxPeers int
	// MaxHalfOpen bounds the peers created by an initiation whose keypair
	// the initiator has not yet confirmed; the oldest is evicted beyond
	// it (see the load defence in defence.go). Default MaxPeers/4.
	MaxHalfOpen int
	// InitiationRate and InitiationBurst bound the initiations from all
	// sources that get Diffie-Hellman, per second and at once; below half
	// the burst the Manager asks for cookies. Default 200/s, 50: a
	// response costs four X25519 operations, so this caps handshakes at a
	// few per cent of a core, while 4 096 peers rekeying every
	// RekeyAfterTime need about 35/s.
	InitiationRate  float64
	InitiationBurst int
	// PerSourceRate and PerSourceBurst bound them per source key.
	// Default 5/s, 10 (an honest node retries every RekeyTimeout).
	PerSourceRate  float64
	PerSourceBurst int
	// Rand is the entropy for ephemeral keys. Default crypto/rand.
	Rand io.Reader
}

func (c Config) withDefaults() Config {
	d := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	if c.MTU <= 0 {
		c.MTU = 1280
	}
	if c.MTU > 65535 {
		c.MTU = 65535
	}
	d(&c.RekeyAfterTime, 120*time.Second)
	d(&c.RejectAfterTime, 180*time.Second)
	d(&c.RekeyTimeout, 5*time.Second)
	d(&c.HandshakeGiveUp, 90*time.Second)
	d(&c.KeepaliveTimeout, 10*time.Second)
	d(&c.IdleTimeout, 180*time.Second)
	if c.RekeyAfterMessages == 0 {
		c.RekeyAfterMessages = 1 << 60
	}
	if c.RejectAfterMessages == 0 {
		c.RejectAfterMessages = ^uint64(0) - (1 << 13)
	}
	if c.MaxQueue <= 0 {
		c.MaxQueue = 64
	}
	if c.MaxPeers <= 0 {
		c.MaxPeers = 4096
	}
	if c.MaxHalfOpen <= 0 || c.MaxHalfOpen > c.MaxPeers {
		c.MaxHalfOpen = max(1, c.MaxPeers/4)
	}
	if c.InitiationRate <= 0 {
		c.InitiationRate = 200
	}
	if c.InitiationBurst <= 0 {
		c.InitiationBurst = 50
	}
	if c.PerSourceRate <= 0 {
		c.PerSourceRate = 5
	}
	if c.PerSourceBurst <= 0 {
		c.PerSourceBurst = 10
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return c
}

var (
	cipherSuite = noise.NewCipherSuite(noise.DH25519, noise.CipherChaChaPoly, noise.HashBLAKE2s)
	prologue    = []byte("pineconed session v1")
)

// Manager holds the sessions of one node. All methods are safe for
// concurrent use; callbacks run without Manager locks held.
type Manager struct {
	cfg    Config
	self   wire.PublicKey
	static noise.DHKey
	tr     Transport

	mu    sync.RWMutex // guards peers and index; taken after peer.mu, never before
	peers map[wire.PublicKey]*peer
	index map[uint32]indexEntry

	tsMu   sync.Mutex
	lastTS uint64

	// The load defence (defence.go).
	initLimit     *ratelimit.Limiter[wire.PublicKey]
	cookies       cookieSecrets
	cookieReplies *rate.Limiter
	ownCookieAEAD cipher.AEAD
	loadedAt      atomic.Int64 // Unix ns when the budget was last below half; 0 never
	// halfOpen counts the peers with peer.halfOpen set; evictMu guards
	// openOrder, the half-open peers oldest first (entries that stopped
	// being half-open are skipped when met).
	halfOpen  atomic.Int64
	evictMu   sync.Mutex
	openOrder []*peer

	st counters
}

// indexEntry is what a local index names: a keypair, or (kp == nil) our
// outstanding initiation to p.
type indexEntry struct {
	p  *peer
	kp *keypair
}

// NewManager returns a Manager for the identity priv.
func NewManager(priv ed25519.PrivateKey, cfg Config, tr Transport) (*Manager, error) {
	if tr == nil {
		return nil, errors.New("session: no transport")
	}
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("session: bad ed25519 private key")
	}
	xpriv := PrivateToX25519(priv)
	xpub, err := x25519Public(xpriv)
	if err != nil {
		return nil, fmt.Errorf("session: deriving X25519 key: %w", err)
	}
	cfg = cfg.withDefaults()
	self := wire.PublicKeyOf(priv)
	return &Manager{
		cfg:    cfg,
		self:   self,
		static: noise.DHKey{Private: xpriv[:], Public: xpub[:]},
		tr:     tr,
		peers:  make(map[wire.PublicKey]*peer),
		index:  make(map[uint32]indexEntry),
		initLimit: ratelimit.New[wire.PublicKey](ratelimit.Config{
			PerKey: cfg.PerSourceRate, PerKeyBurst: cfg.PerSourceBurst,
			Global: cfg.InitiationRate, GlobalBurst: cfg.InitiationBurst,
			// Entries live until their bucket refills (2 s by default),
			// so at the global rate a few thousand suffice; the table
			// must not be what refuses honest sources.
			MaxKeys: max(4096, cfg.MaxPeers),
		}),
		cookies: cookieSecrets{rand: cfg.Rand},
		// A cookie reply costs a seal and a send: allow twice the
		// initiation budget, so that replies do not become the flood.
		cookieReplies: rate.NewLimiter(rate.Limit(2*cfg.InitiationRate), 2*cfg.InitiationBurst),
		ownCookieAEAD: cookieAEAD(self),
	}, nil
}

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

// peerFor returns the state for key, creating it if allowed. halfOpen
// marks a peer created by an inbound initiation (see defence.go); when
// there is no room, the oldest half-open peer is evicted for the new one.
func (m *Manager) peerFor(now time.Time, key wire.PublicKey, halfOpen bool) (*peer, error) {
	m.mu.RLock()
	p := m.peers[key]
	m.mu.RUnlock()
	if p != nil {
		return p, nil
	}
	if key == m.self {
		return nil, ErrBadKey
	}
	xpub, err := PublicToX25519(key)
	if err != nil {
		return nil, err
	}
	for evicted := false; ; evicted = true {
		m.mu.Lock()
		if p := m.peers[key]; p != nil {
			m.mu.Unlock()
			return p, nil
		}
		full := len(m.peers) >= m.cfg.MaxPeers ||
			(halfOpen && m.halfOpen.Load() >= int64(m.cfg.MaxHalfOpen))
		if !full {
			p = &peer{m: m, key: key, xpub: xpub, created: now}
			m.peers[key] = p
			if halfOpen {
				p.halfOpen.Store(true)
				m.halfOpen.Add(1)
				m.noteHalfOpen(p)
			}
			m.mu.Unlock()
			return p, nil
		}
		m.mu.Unlock()
		if evicted || !m.evictHalfOpen() {
			return nil, errTooManyPeers
		}
	}
}

// noteHalfOpen appends p to the eviction order, first dropping the
// entries of peers that are no longer half-open once they outnumber the
// live ones, so the order stays within about twice MaxHalfOpen.
func (m *Manager) noteHalfOpen(p *peer) {
	m.evictMu.Lock()
	defer m.evictMu.Unlock()
	if len(m.openOrder) >= 2*m.cfg.MaxHalfOpen {
		live := m.openOrder[:0]
		for _, q := range m.openOrder {
			if q.halfOpen.Load() {
				live = append(live, q)
			}
		}
		clear(m.openOrder[len(live):])
		m.openOrder = live
	}
	m.openOrder = append(m.openOrder, p)
}

// evictHalfOpen forgets the oldest half-open peer; false if there is none.
func (m *Manager) evictHalfOpen() bool {
	for {
		m.evictMu.Lock()
		var v *peer
		for len(m.openOrder) > 0 && v == nil {
			if c := m.openOrder[0]; c.halfOpen.Load() {
				v = c
			}
			m.openOrder[0] = nil
			m.openOrder = m.openOrder[1:]
		}
		m.evictMu.Unlock()
		if v == nil {
			return false
		}
		v.mu.Lock()
		if v.dead || !v.halfOpen.Load() {
			v.mu.Unlock()
			continue
		}
		v.forgetLocked()
		v.mu.Unlock()
		m.st.inc(PeersEvicted)
		return true
	}
}

var errTooManyPeers = errors.New("session: too many peers")

// newIndexLocked allocates an unused non-zero local index. Caller holds m.mu.
func (m *Manager) newIndexLocked(e indexEntry) uint32 {
	for {
		i := mrand.Uint32()
		if _, used := m.index[i]; i != 0 && !used {
			m.index[i] = e
			return i
		}
	}
}

func (m *Manager) dropIndex(i uint32) {
	if i == 0 {
		return
	}
	m.mu.Lock()
	delete(m.index, i)
	m.mu.Unlock()
}

// Send encrypts an IPv6 packet for dst, starting (and queueing behind) a
// handshake if there is no usable session. It never blocks on the network.
func (m *Manager) Send(now time.Time, dst wire.PublicKey, packet []byte) {
	if len(packet) > MaxPacket {
		m.st.inc(DropTooBig)
		return
	}
	m.sendInner(now, dst, envelope.InnerIPv6, packet, nil)
}

// SendEcho sends an echo request carrying id and data to dst; the reply
// arrives through Transport.EchoReply with the same id.
func (m *Manager) SendEcho(now time.Time, dst wire.PublicKey, id uint64, data []byte) {
	if len(data) > MaxPlaintext-1-envelope.EchoIDSize {
		m.st.inc(DropTooBig)
		return
	}
	m.sendInner(now, dst, envelope.InnerEchoRequest, binary.BigEndian.AppendUint64(nil, id), data)
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
			m.sendTransport(a.dst, o.kp, o.counter, 0, nil, nil)
			m.st.inc(KeepalivesSent)
		} else {
			m.sendTransport(a.dst, o.kp, o.counter, o.inner[0], o.inner[1:], nil)
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

func (m *Manager) sendInner(now time.Time, dst wire.PublicKey, typ byte, head, body []byte) {
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
			return
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
		return
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
		return
	}
	p.noteSendLocked(now, true)
	if p.hs == nil && p.needRekeyLocked(now, kp, counter) {
		p.beginHandshakeLocked(now, &a)
	}
	p.mu.Unlock()

	m.sendTransport(dst, kp, counter, typ, head, body)
	if typ == envelope.InnerIPv6 {
		m.st.inc(PacketsOut)
	}
	m.run(&a)
}

// sendTransport seals one transport message into a pool buffer, leaving
// the room in front for the overlay's frame header, and sends it.
func (m *Manager) sendTransport(dst wire.PublicKey, kp *keypair, counter uint64, typ byte, head, body []byte) {
	buf := bufpool.Get()
	off := bufpool.Headroom(buf)
	n := len(kp.seal(buf[off:off], counter, typ, head, body))
	m.tr.Send(dst, buf[:off+n], off)
	m.st.add(BytesOut, uint64(n))
	kp.peer.bytesOut.Add(uint64(n))
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
		return m.handleTransport(now, src, payload)
	}
	m.st.inc(Malformed)
	return fmt.Errorf("session: %w: %s", envelope.ErrWrongType, t)
}

func (m *Manager) handleInit(now time.Time, src wire.PublicKey, payload []byte, withMAC bool) error {
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
		return fmt.Errorf("initiation from %s: %w", src, err)
	}
	if src == m.self {
		m.st.inc(DropBadKey)
		return fmt.Errorf("initiation from our own key")
	}
	// Before anything that costs: even the key conversion below is a
	// field inversion.
	if err := m.admitInitiation(now, src, msg, withMAC, covered, mac); err != nil {
		return err
	}
	xsrc, err := PublicToX25519(src)
	if err != nil {
		m.st.inc(DropBadKey)
		return fmt.Errorf("initiation from %s: %w", src, err)
	}
	hs, err := noise.NewHandshakeState(noise.Config{
		CipherSuite:   cipherSuite,
		Pattern:       noise.HandshakeIK,
		Prologue:      prologue,
		StaticKeypair: m.static,
	})
	if err != nil {
		return err
	}
	plain, _, _, err := hs.ReadMessage(nil, msg.Noise)
	if err != nil || len(plain) != envelope.InitPayloadSize {
		m.st.inc(BadHandshake)
		return fmt.Errorf("initiation from %s: noise: %v", src, err)
	}
	if !bytes.Equal(hs.PeerStatic(), xsrc[:]) {
		m.st.inc(WrongStatic)
		return fmt.Errorf("initiation from %s: static key belongs to another identity", src)
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
	if ts <= p.lastInitTS {
		p.mu.Unlock()
		m.st.inc(ReplayedInits)
		return fmt.Errorf("initiation from %s: replayed (timestamp not newer)", src)
	}
	if p.hs != nil {
		if m.self.Less(src) {
			// Lower key yields: forget our initiation, answer theirs.
			m.dropIndex(p.hs.index)
			p.hs = nil
			m.st.inc(CollisionsYielded)
		} else {
			p.mu.Unlock()
			m.st.inc(CollisionsIgnored)
			return nil
		}
	}
	p.lastInitTS = ts
	p.peerMTU = mtu
	var rp [envelope.ResponsePayloadSize]byte
	binary.BigEndian.PutUint16(rp[:], uint16(m.cfg.MTU))
	out, cs1, cs2, err := hs.WriteMessage(nil, rp[:])
	if err != nil || cs1 == nil || cs2 == nil {
		p.mu.Unlock()
		m.st.inc(BadHandshake)
		return fmt.Errorf("response to %s: noise: %v", src, err)
	}
	kp := newKeypair(p, msg.Sender, cs2.UnsafeKey(), cs1.UnsafeKey(), now, false)
	m.mu.Lock()
	if p.next != nil {
		delete(m.index, p.next.local)
	}
	kp.local = m.newIndexLocked(indexEntry{p: p, kp: kp})
	m.mu.Unlock()
	p.next = kp
	p.lastHandshake = now
	resp, err := envelope.HandshakeResponse{Sender: kp.local, Receiver: msg.Sender, Noise: out}.Append(nil)
	p.mu.Unlock()
	if err != nil {
		return err
	}
	m.st.inc(ResponsesSent)
	m.tr.Send(src, resp, 0)
	return nil
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

func (m *Manager) handleTransport(now time.Time, src wire.PublicKey, payload []byte) error {
	msg, err := envelope.ParseTransport(payload)
	if err != nil {
		m.st.inc(Malformed)
		return fmt.Errorf("transport from %s: %w", src, err)
	}
	m.mu.RLock()
	e, ok := m.index[msg.Receiver]
	m.mu.RUnlock()
	if !ok || e.kp == nil || e.p.key != src {
		m.st.inc(UnknownIndex)
		return fmt.Errorf("transport from %s: unknown index %d", src, msg.Receiver)
	}
	kp := e.kp
	if now.Sub(kp.created) >= m.cfg.RejectAfterTime || msg.Counter >= m.cfg.RejectAfterMessages {
		m.st.inc(Expired)
		return fmt.Errorf("transport from %s: keypair expired", src)
	}
	plain, err := kp.open(msg.Counter, msg.Ciphertext, payload[:envelope.TransportHeaderSize])
	if err != nil {
		m.st.inc(DecryptFailures)
		return fmt.Errorf("transport from %s: %w", src, err)
	}
	kp.rmu.Lock()
	res := kp.replay.accept(msg.Counter)
	kp.rmu.Unlock()
	switch res {
	case replayDuplicate:
		m.st.inc(Replays)
		return fmt.Errorf("transport from %s: replayed counter %d", src, msg.Counter)
	case replayTooOld:
		m.st.inc(TooOld)
		return fmt.Errorf("transport from %s: counter %d behind the window", src, msg.Counter)
	}
	m.st.add(BytesIn, uint64(len(payload)))
	p := e.p
	p.bytesIn.Add(uint64(len(payload)))

	a := actions{dst: src}
	p.mu.Lock()
	if p.dead {
		p.mu.Unlock()
		return nil
	}
	if kp == p.next {
		p.next = nil
		p.rotateLocked(now, kp, &a)
	}
	p.lastRecv = now
	p.unansweredSince = time.Time{}
	if len(plain) > 0 {
		p.lastData = now
		if p.keepaliveDue.IsZero() {
			p.keepaliveDue = now.Add(m.cfg.KeepaliveTimeout)
		}
	}
	if p.hs == nil && kp == p.cur && kp.initiator && now.Sub(kp.created) >= m.cfg.RekeyAfterTime {
		// Traffic only flows towards us, so our sends will not trigger the
		// rekey that is our job as this keypair's initiator.
		p.beginHandshakeLocked(now, &a)
	}
	p.mu.Unlock()
	m.run(&a)

	if len(plain) == 0 {
		return nil
	}
	in, err := envelope.ParseInner(plain)
	if err != nil {
		m.st.inc(BadInner)
		return fmt.Errorf("transport from %s: %w", src, err)
	}
	switch in.Type {
	case envelope.InnerIPv6:
		if err := addressing.CheckSource(in.Data, src); err != nil {
			m.st.inc(BadSource)
			return fmt.Errorf("transport from %s: %w", src, err)
		}
		m.st.inc(PacketsIn)
		m.tr.Deliver(src, in.Data)
	case envelope.InnerEchoRequest:
		m.st.inc(EchoRequestsIn)
		m.sendInner(now, src, envelope.InnerEchoReply, binary.BigEndian.AppendUint64(nil, in.EchoID), in.Data)
	case envelope.InnerEchoReply:
		m.st.inc(EchoRepliesIn)
		m.tr.EchoReply(src, in.EchoID, in.Data)
	}
	return nil
}

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

// Close forgets all state. The Manager runs no goroutines, so there is
// nothing to stop; Close exists so that keys do not outlive their use.
func (m *Manager) Close() {
	m.mu.Lock()
	peers := m.peers
	m.peers = make(map[wire.PublicKey]*peer)
	m.index = make(map[uint32]indexEntry)
	m.mu.Unlock()
	m.evictMu.Lock()
	m.openOrder = nil
	m.evictMu.Unlock()
	m.halfOpen.Store(0)
	for _, p := range peers {
		p.halfOpen.Store(false)
		p.mu.Lock()
		p.dead = true
		p.cur, p.prev, p.next, p.hs, p.queue = nil, nil, nil, nil, nil
		p.mu.Unlock()
	}
}

// Info describes one peer's session for the admin API.
type Info struct {
	Remote      wire.PublicKey
	State       string // "established", "handshake" or "waiting" (answered an initiation, not yet confirmed)
	Initiator   bool   // whether we initiated the current keypair
	Age         time.Duration
	KeypairAge  time.Duration // age of the current keypair
	LastRekey   time.Time
	LastReceive time.Time
	BytesIn     uint64
	BytesOut    uint64
	PeerMTU     int // 0 until a handshake told us
	Queued      int
}

// Sessions lists every peer with state.
func (m *Manager) Sessions(now time.Time) []Info {
	m.mu.RLock()
	peers := make([]*peer, 0, len(m.peers))
	for _, p := range m.peers {
		peers = append(peers, p)
	}
	m.mu.RUnlock()
	out := make([]Info, 0, len(peers))
	for _, p := range peers {
		p.mu.Lock()
		if p.dead {
			p.mu.Unlock()
			continue
		}
		in := Info{
			Remote:      p.key,
			Age:         now.Sub(p.created),
			LastRekey:   p.lastRekey,
			LastReceive: p.lastRecv,
			BytesIn:     p.bytesIn.Load(),
			BytesOut:    p.bytesOut.Load(),
			PeerMTU:     p.peerMTU,
			Queued:      len(p.queue),
		}
		switch kp := p.usableLocked(now); {
		case kp != nil:
			in.State = "established"
			in.Initiator = kp.initiator
			in.KeypairAge = now.Sub(kp.created)
		case p.hs != nil:
			in.State = "handshake"
		default:
			in.State = "waiting"
		}
		p.mu.Unlock()
		out = append(out, in)
	}
	return out
}

// PeerMTU returns the TUN MTU that dst announced in its last handshake.
func (m *Manager) PeerMTU(dst wire.PublicKey) (int, bool) {
	m.mu.RLock()
	p := m.peers[dst]
	m.mu.RUnlock()
	if p == nil {
		return 0, false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.peerMTU, p.peerMTU > 0
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

func nonceFor(counter uint64) [chacha20poly1305.NonceSize]byte {
	var n [chacha20poly1305.NonceSize]byte
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
	return kp.send.Seal(buf[:hdr], nonce[:], buf[hdr:], buf[:hdr])
}

// open decrypts ct in place.
func (kp *keypair) open(counter uint64, ct, ad []byte) ([]byte, error) {
	nonce := nonceFor(counter)
	return kp.recv.Open(ct[:0], nonce[:], ct, ad)
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

// peer is the state kept per remote key. Fields after mu are guarded by it.
type peer struct {
	m    *Manager
	key  wire.PublicKey
	xpub [32]byte

	bytesIn, bytesOut atomic.Uint64
	// halfOpen: created by an initiation and not yet confirmed, so
	// evictable (defence.go). Set under m.mu at creation, cleared under
	// mu; an atomic so that the eviction order can be compacted without
	// taking every peer's lock.
	halfOpen atomic.Bool

	mu              sync.Mutex
	dead            bool
	created         time.Time
	hs              *initiation
	triesSince      time.Time // first attempt of the current series to get a usable keypair
	lastHandshake   time.Time // last initiation sent or answered
	cur, prev, next *keypair
	queue           [][]byte
	peerMTU         int
	lastInitTS      uint64
	lastSent        time.Time
	lastRecv        time.Time
	lastData        time.Time
	lastRekey       time.Time
	keepaliveDue    time.Time
	unansweredSince time.Time
	// cookie is the last cookie the peer sent us as a responder under
	// load, received at cookieAt.
	cookie   [envelope.CookieSize]byte
	cookieAt time.Time
}

// settleLocked ends the peer's half-open state: it keeps its place.
func (p *peer) settleLocked() {
	if p.halfOpen.CompareAndSwap(true, false) {
		p.m.halfOpen.Add(-1)
	}
}

// forgetLocked removes the peer from the Manager: it is dead, its indices
// name nothing, and a new peer may take its key.
func (p *peer) forgetLocked() {
	m := p.m
	p.settleLocked()
	p.dead = true
	m.mu.Lock()
	for _, kp := range []*keypair{p.prev, p.cur, p.next} {
		if kp != nil {
			delete(m.index, kp.local)
		}
	}
	if p.hs != nil {
		delete(m.index, p.hs.index)
	}
	if m.peers[p.key] == p {
		delete(m.peers, p.key)
	}
	m.mu.Unlock()
	p.prev, p.cur, p.next, p.hs, p.queue = nil, nil, nil, nil, nil
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
