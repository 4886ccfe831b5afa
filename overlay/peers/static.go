package peers

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/pineconed/pineconed/internal/defaults"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Backoff governs how a static peer is re-dialled: the wait starts at Min
// and doubles after each failure up to Max, and goes back to Min after a
// peering that stayed up at least Stable. Each wait is drawn at random
// between half of the current step and the full step, so that nodes that
// lost a common peer at the same moment do not all come back at once.
type Backoff struct {
	Min, Max, Stable time.Duration
}

// Back-off defaults.
const (
	DefaultBackoffMin    = time.Second
	DefaultBackoffMax    = time.Minute
	DefaultBackoffStable = 30 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	defaults.IfNotPositive(&b.Min, DefaultBackoffMin)
	defaults.IfNotPositive(&b.Max, DefaultBackoffMax)
	b.Max = max(b.Max, b.Min)
	defaults.IfNotPositive(&b.Stable, DefaultBackoffStable)
	return b
}

// Retry is the back-off of one remote that is dialled again and again: a
// static peer, or a LAN neighbour found by discovery. It is not safe for
// concurrent use.
type Retry struct {
	b    Backoff
	step time.Duration
}

// NewRetry starts a back-off at b.Min (zero fields take the defaults).
func (b Backoff) NewRetry() *Retry {
	b = b.withDefaults()
	return &Retry{b: b, step: b.Min}
}

// Next is called when an attempt has ended, the peering (if any) having
// been up for uptime. It returns the wait before the next attempt, and
// whether the back-off started over because the peering was stable.
func (r *Retry) Next(uptime time.Duration) (wait time.Duration, reset bool) {
	if uptime >= r.b.Stable {
		r.step, reset = r.b.Min, true
	}
	wait = jitter(r.step)
	r.step = min(2*r.step, r.b.Max)
	return wait, reset
}

// jitter draws a wait in [step/2, step].
func jitter(step time.Duration) time.Duration {
	half := step / 2
	return half + rand.N(step-half+1)
}

// State is where a static peer is in its life.
type State string

// Static peer states.
const (
	StateConnecting State = "connecting" // dialling or handshaking
	StateConnected  State = "connected"  // attached to the node
	StateBackoff    State = "backoff"    // waiting before the next attempt
)

// StaticPeer is the status of one static peer, for the admin API.
type StaticPeer struct {
	// URI is the peer's URI as added (JSON: its canonical form).
	URI   peeruri.URI `json:"uri"`
	State State       `json:"state"`
	// Key and Port describe the peering while connected.
	Key  wire.PublicKey `json:"key,omitzero"`
	Port router.Port    `json:"port,omitzero"`
	// Since is when the current state began.
	Since time.Time `json:"since"`
	// NextAttempt is when the next dial is due, in the backoff state.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastError is why the last attempt failed or the last peering ended.
	LastError string `json:"last_error,omitempty"`
	// Failures counts attempts since the last peering that stayed up
	// long enough to reset the back-off.
	Failures int `json:"failures"`
}

type staticPeer struct {
	uri    peeruri.URI
	origin overlay.Origin // static, admin or card
	cancel context.CancelCauseFunc
	done   chan struct{}

	mu     sync.Mutex
	status StaticPeer
}

func (sp *staticPeer) set(f func(*StaticPeer)) {
	sp.mu.Lock()
	defer sp.mu.Unlock()
	f(&sp.status)
}

// Add starts dialling a static peer (a URI from peeruri.ParsePeer);
// origin says who asked for it (OriginStatic for a reloaded
// configuration, OriginAdmin, OriginCard) and is what its peerings carry.
// The admin API, peer cards and SIGHUP reload call it.
func (m *Manager) Add(u peeruri.URI, origin overlay.Origin) error {
	if !origin.Chosen() {
		return fmt.Errorf("peers: a static peer cannot have origin %s", origin)
	}
	if err := peeruri.CheckStatic(u); err != nil {
		return fmt.Errorf("peers: static peer %s: %w", u, err)
	}
	return m.addStatic(u, origin)
}

func (m *Manager) addStatic(u peeruri.URI, origin overlay.Origin) error {
	key := u.String()
	ctx, cancel := context.WithCancelCause(m.ctx)
	sp := &staticPeer{uri: u, origin: origin, cancel: cancel, done: make(chan struct{})}
	sp.status = StaticPeer{URI: u, State: StateConnecting, Since: time.Now()}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		cancel(ErrClosed)
		return ErrClosed
	}
	if _, ok := m.static[key]; ok {
		m.mu.Unlock()
		cancel(ErrExists)
		return fmt.Errorf("%s: %w", key, ErrExists)
	}
	m.static[key] = sp
	m.wg.Add(1)
	m.mu.Unlock()
	go m.runStatic(ctx, sp)
	return nil
}

// Remove stops dialling a static peer and ends its peering if it is up.
// It returns once the peer's dialer has stopped.
func (m *Manager) Remove(u peeruri.URI) error {
	key := u.String()
	m.mu.Lock()
	sp, ok := m.static[key]
	delete(m.static, key)
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("%s: %w", key, ErrUnknown)
	}
	sp.cancel(ErrRemoved)
	<-sp.done
	m.log.Info("static peer removed", "uri", key)
	return nil
}

// List returns the static peers' status, ordered by URI.
func (m *Manager) List() []StaticPeer {
	m.mu.Lock()
	sps := slices.Collect(maps.Values(m.static))
	m.mu.Unlock()
	out := make([]StaticPeer, 0, len(sps))
	for _, sp := range sps {
		sp.mu.Lock()
		out = append(out, sp.status)
		sp.mu.Unlock()
	}
	slices.SortFunc(out, func(a, b StaticPeer) int {
		switch {
		case a.URI.String() < b.URI.String():
			return -1
		case a.URI.String() > b.URI.String():
			return 1
		}
		return 0
	})
	return out
}

// runStatic dials one static peer for as long as it is configured.
func (m *Manager) runStatic(ctx context.Context, sp *staticPeer) {
	defer m.wg.Done()
	defer close(sp.done)
	uri := sp.uri.String()
	log := m.log.With("uri", uri)
	retry := m.cfg.Backoff.NewRetry()
	for {
		sp.set(func(s *StaticPeer) {
			s.State, s.Since, s.NextAttempt, s.Key, s.Port = StateConnecting, time.Now(), time.Time{}, wire.PublicKey{}, 0
		})
		uptime, err := m.dialAndRun(ctx, sp)
		if ctx.Err() != nil {
			return
		}
		delay, reset := retry.Next(uptime)
		if reset {
			sp.set(func(s *StaticPeer) { s.Failures = 0 })
		}
		next := time.Now().Add(delay)
		sp.set(func(s *StaticPeer) {
			s.State, s.Since, s.NextAttempt, s.Key, s.Port = StateBackoff, time.Now(), next, wire.PublicKey{}, 0
			s.LastError = err.Error()
			s.Failures++
		})
		log.Info("reconnecting", "delay", delay.Round(time.Millisecond), "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
	}
}

// dialAndRun makes one connection to a static peer and runs it until it
// ends; it returns how long the peering was up.
func (m *Manager) dialAndRun(ctx context.Context, sp *staticPeer) (time.Duration, error) {
	u := sp.uri
	dctx, cancel := context.WithTimeout(ctx, m.cfg.DialTimeout)
	var nc net.Conn
	var err error
	switch u.Scheme {
	case peeruri.SchemeTCP:
		d := net.Dialer{Control: link.ControlTCP(m.PeerTimeout()), KeepAliveConfig: link.TCPKeepAlive()}
		nc, err = d.DialContext(dctx, "tcp", u.Host)
	default:
		tc := m.cfg.TLS
		if tc != nil {
			tc = tc.Clone()
			tc.ServerName = u.Hostname()
		}
		nc, err = link.DialWebSocket(dctx, u.URL(), tc, m.PeerTimeout())
	}
	cancel()
	if err != nil {
		return 0, fmt.Errorf("dial: %w", err)
	}
	info := overlay.PeerInfo{
		URI:       u.String(),
		Transport: u.Scheme,
		Origin:    sp.origin,
		Type:      router.PeerRemote,
	}
	return m.handle(ctx, nc, info, u.Key, nil, func(c *link.Conn, port router.Port) {
		sp.set(func(s *StaticPeer) {
			s.State, s.Since, s.Key, s.Port = StateConnected, time.Now(), c.Remote(), port
		})
	})
}
