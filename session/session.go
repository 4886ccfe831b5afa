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
// other's MTU as Info.PeerMTU, so the packet path (datapath) can answer
// oversized packets with ICMPv6 Packet Too Big.
//
// # Floods
//
// Initiations pass per-source and global rate limits before any
// Diffie-Hellman, a responder under load demands a cookie (CookieReply,
// HandshakeInitCookie), and peers that only sent an initiation are the
// first evicted from a full table (defence.go). The packet path gives
// handshake messages their own bounded queue and goroutine
// (HandshakeQueue), so transport messages never wait behind them.
//
// # The node side
//
// A Manager talks to the rest of the node through one interface,
// Transport (config.go): it sends handshake and transport messages through
// it, and hands it the packets it decrypts, echo replies, established
// sessions and the packets of given-up handshakes. Package datapath
// implements it.
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
	"crypto/cipher"
	"crypto/ed25519"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flynn/noise"
	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/ratelimit"
	"github.com/pineconed/pineconed/overlay/wire"
	"golang.org/x/time/rate"
)

// Manager holds the sessions of one node. All methods are safe for
// concurrent use; Transport methods run without Manager locks held.
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
