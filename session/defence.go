package session

import (
	"crypto/cipher"
	"crypto/subtle"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/ratelimit"
	"github.com/pineconed/pineconed/overlay/wire"
	"golang.org/x/crypto/blake2s"
	"golang.org/x/crypto/chacha20poly1305"
)

// The load defence (WireGuard's, keyed by overlay identity instead of IP
// address):
//
//   - Every initiation that would cost Diffie-Hellman first passes a rate
//     limit per source key and one for all sources (Config.InitiationRate,
//     PerSourceInitiations; internal/ratelimit).
//   - When less than half of the global budget is left the Manager is
//     "under load", and stays so until UnderLoadFor has passed without
//     that happening again (WireGuard keeps its load state for a second
//     too): without this a sustained flood would take every token as soon
//     as the bucket refilled past half. Under load an initiation is
//     processed only if it is a
//     HandshakeInitCookie whose mac was made with the cookie for its
//     claimed source key. Any other initiation gets a CookieReply (itself
//     rate limited) and costs nothing more. The overlay delivers the reply
//     to the claimed key, so only a node that can receive there learns the
//     cookie: initiations from random forged keys stop costing DH, and the
//     lower half of the budget is left to sources that proved themselves.
//   - The cookie is a MAC of the source key under a secret replaced every
//     CookieLifetime (the previous one is still accepted). The reply
//     carries it sealed with XChaCha20-Poly1305 under a key derived from
//     the responder's public key, bound to the initiation by its Noise
//     ephemeral as associated data, so a node that did not see the
//     initiation cannot plant a cookie.
//   - Peers created by an initiation stay "half-open" until the initiator
//     confirms the keypair with its first transport message. At most
//     Config.MaxHalfOpen of them exist; beyond that, and whenever the peer
//     table is full, the oldest half-open peer is evicted. Peers with a
//     confirmed session, or to which we send, are never evicted to make
//     room, so a flood of forged keys cannot push established sessions out.

// CookieLifetime is how long a cookie secret is used, and how long an
// initiator keeps using a cookie it was given.
const CookieLifetime = 2 * time.Minute

// UnderLoadFor is how long the Manager keeps demanding cookies after the
// global initiation budget was last below half.
const UnderLoadFor = time.Second

// underLoad reports whether initiations need a valid cookie mac now.
func (m *Manager) underLoad(now time.Time) bool {
	if m.initLimit.Loaded(now) {
		m.loadedAt.Store(now.UnixNano())
		return true
	}
	last := m.loadedAt.Load()
	return last != 0 && now.Sub(time.Unix(0, last)) < UnderLoadFor
}

// cookieSecrets makes and checks cookies for initiation sources.
type cookieSecrets struct {
	mu        sync.Mutex
	cur, prev [32]byte
	since     time.Time
	hasPrev   bool
	rand      io.Reader
}

// rotateLocked replaces the secret when it has lived CookieLifetime.
func (c *cookieSecrets) rotateLocked(now time.Time) error {
	if !c.since.IsZero() && now.Sub(c.since) < CookieLifetime {
		return nil
	}
	next := c.cur
	if _, err := io.ReadFull(c.rand, c.cur[:]); err != nil {
		return fmt.Errorf("cookie secret: %w", err)
	}
	c.hasPrev = !c.since.IsZero()
	c.prev = next
	c.since = now
	return nil
}

func cookieWith(secret *[32]byte, src wire.PublicKey) [envelope.CookieSize]byte {
	h, _ := blake2s.New128(secret[:]) // only fails on a key over 32 bytes
	h.Write(src[:])
	var c [envelope.CookieSize]byte
	h.Sum(c[:0])
	return c
}

// macWith is the mac of a HandshakeInitCookie: a keyed BLAKE2s-128 of the
// bytes before it, with the cookie as the key.
func macWith(cookie [envelope.CookieSize]byte, msg []byte) [envelope.CookieSize]byte {
	h, _ := blake2s.New128(cookie[:])
	h.Write(msg)
	var m [envelope.CookieSize]byte
	h.Sum(m[:0])
	return m
}

// cookie returns the current cookie for src.
func (c *cookieSecrets) cookie(now time.Time, src wire.PublicKey) ([envelope.CookieSize]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.rotateLocked(now); err != nil {
		return [envelope.CookieSize]byte{}, err
	}
	return cookieWith(&c.cur, src), nil
}

// valid reports whether mac over covered was made with src's cookie under
// the current or the previous secret.
func (c *cookieSecrets) valid(now time.Time, src wire.PublicKey, covered, mac []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rotateLocked(now) != nil {
		return false
	}
	want := macWith(cookieWith(&c.cur, src), covered)
	if subtle.ConstantTimeCompare(want[:], mac) == 1 {
		return true
	}
	if !c.hasPrev {
		return false
	}
	want = macWith(cookieWith(&c.prev, src), covered)
	return subtle.ConstantTimeCompare(want[:], mac) == 1
}

// cookieAEAD is the cipher that seals cookie replies from the node with
// key responder.
func cookieAEAD(responder wire.PublicKey) cipher.AEAD {
	k := blake2s.Sum256(append([]byte("pineconed cookie v1"), responder[:]...))
	a, _ := chacha20poly1305.NewX(k[:]) // only fails on a wrong key length
	return a
}

// ephemeralOf is the Noise ephemeral public key at the start of an
// initiation's Noise message: the cookie reply's associated data.
func ephemeralOf(noiseMsg []byte) []byte { return noiseMsg[:32] }

// sendCookieReply answers an initiation we will not process with the
// cookie for src, within the reply rate limit.
func (m *Manager) sendCookieReply(now time.Time, src wire.PublicKey, in envelope.HandshakeInit) error {
	if !m.cookieReplies.AllowN(now, 1) {
		m.st.inc(CookieRepliesLimited)
		return fmt.Errorf("initiation from %s: under load, cookie reply rate limited", src)
	}
	cookie, err := m.cookies.cookie(now, src)
	if err != nil {
		return err
	}
	r := envelope.CookieReply{Receiver: in.Sender}
	if _, err := io.ReadFull(m.cfg.Rand, r.Nonce[:]); err != nil {
		return fmt.Errorf("cookie reply nonce: %w", err)
	}
	r.Sealed = m.ownCookieAEAD.Seal(nil, r.Nonce[:], cookie[:], ephemeralOf(in.Noise))
	b, err := r.Append(nil)
	if err != nil {
		return err
	}
	m.st.inc(CookieRepliesSent)
	m.tr.Send(src, b, 0)
	return nil
}

// handleCookieReply takes the cookie a responder under load sent for our
// outstanding initiation, and repeats that initiation once with the mac.
func (m *Manager) handleCookieReply(now time.Time, src wire.PublicKey, payload []byte) error {
	r, err := envelope.ParseCookieReply(payload)
	if err != nil {
		m.st.inc(Malformed)
		return fmt.Errorf("cookie reply from %s: %w", src, err)
	}
	p, err := m.initiationFor(src, r.Receiver)
	if err != nil {
		return fmt.Errorf("cookie reply from %s: %w", src, err)
	}
	cookie, err := cookieAEAD(src).Open(nil, r.Nonce[:], r.Sealed, ephemeralOf(p.hs.msg))
	if err != nil {
		p.mu.Unlock()
		m.st.inc(BadCookie)
		return fmt.Errorf("cookie reply from %s: %w", src, err)
	}
	copy(p.cookie[:], cookie)
	p.cookieAt = now
	m.st.inc(CookiesReceived)
	var resend []byte
	if !p.hs.cookieResent {
		p.hs.cookieResent = true
		resend, err = p.initiationPayloadLocked(now)
	}
	p.mu.Unlock()
	if err != nil {
		return err
	}
	if resend != nil {
		m.st.inc(InitiationsSent)
		m.tr.Send(src, resend, 0)
	}
	return nil
}

// initiationPayloadLocked encodes our outstanding initiation, with the mac
// of the cookie the peer gave us while that cookie is fresh.
func (p *peer) initiationPayloadLocked(now time.Time) ([]byte, error) {
	in := envelope.HandshakeInit{Sender: p.hs.index, Noise: p.hs.msg}
	if p.cookieAt.IsZero() || now.Sub(p.cookieAt) >= CookieLifetime {
		return in.Append(nil)
	}
	return in.AppendWithMAC(nil, func(msg []byte) [envelope.CookieSize]byte { return macWith(p.cookie, msg) })
}

// admitInitiation decides, before any Diffie-Hellman, whether an
// initiation from src is processed. withMAC, covered and mac describe a
// HandshakeInitCookie.
func (m *Manager) admitInitiation(now time.Time, src wire.PublicKey, in envelope.HandshakeInit, withMAC bool, covered, mac []byte) error {
	if m.underLoad(now) {
		if !withMAC || !m.cookies.valid(now, src, covered, mac) {
			m.st.inc(NeedCookie)
			if err := m.sendCookieReply(now, src, in); err != nil {
				return err
			}
			return fmt.Errorf("initiation from %s: under load, answered with a cookie", src)
		}
	}
	if v := m.initLimit.Allow(now, src); v != ratelimit.Allowed {
		m.st.inc(InitiationsLimited)
		return fmt.Errorf("initiation from %s: rate limited (%s)", src, v)
	}
	return nil
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
