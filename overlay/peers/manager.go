package peers

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/internal/accept"
	"github.com/pineconed/pineconed/internal/limits"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Switch is the node as the peers package sees it. Package overlay's Node
// implements it; tests use fakes.
type Switch interface {
	// Attach registers an authenticated peering and gives it the lowest
	// free port. It fails when no port is free or the node's own peer
	// limit is reached. It may queue the first frames on l before it
	// returns.
	Attach(info overlay.PeerInfo, l overlay.Link) (router.Port, error)
	// Receive takes one whole frame read from the peer on port; the frame
	// is only valid during the call. An error is a protocol violation: the
	// link closes with that reason.
	Receive(port router.Port, frame []byte) error
	// KeepaliveSent counts a Keepalive the link on port made and wrote
	// itself (see link.Receiver).
	KeepaliveSent(port router.Port, size int)
	// Detach says the peering on port has ended; it is called exactly
	// once for every successful Attach.
	Detach(port router.Port, reason error)
	// Peerings lists the attached peerings: the one registry of
	// peerings, which the manager reads for its policy (allowed_keys,
	// interfaces going down, LAN discovery's duplicates) instead of
	// keeping its own.
	Peerings() []overlay.Peering
}

// Defaults.
const (
	// DefaultMaxPeers is the peer limit when Config.MaxPeers is 0: the
	// config file's default (one constant, in internal/limits).
	DefaultMaxPeers = limits.DefaultMaxPeers
	// DefaultDialTimeout bounds a static peer's TCP connect or WebSocket
	// upgrade.
	DefaultDialTimeout = 10 * time.Second
	// DefaultMaxHandshakes caps inbound connections still in their
	// handshake, so a flood of idle connections costs at most this many
	// goroutines for at most link.HandshakeTimeout.
	DefaultMaxHandshakes = 64
)

// Errors that end or refuse a peering.
var (
	// ErrSelf: the remote presented our own key (we dialled ourselves).
	ErrSelf = errors.New("connection to ourselves")
	// ErrKeyMismatch: the remote's key is not the one pinned in its URI.
	ErrKeyMismatch = errors.New("remote key does not match the pinned key")
	// ErrNotAllowed: allowed_keys is set and the remote key is not in it.
	ErrNotAllowed = errors.New("remote key not in allowed_keys")
	// ErrTooManyPeers: max_peers peerings are up already.
	ErrTooManyPeers = errors.New("max_peers reached")
	// ErrClosed: the manager is shutting down.
	ErrClosed = errors.New("peer manager closed")
	// ErrRemoved: the static peer was removed at run time.
	ErrRemoved = errors.New("static peer removed")
	// ErrExists: Add was given a static peer that is already configured.
	ErrExists = errors.New("static peer already configured")
	// ErrUnknown: Remove was given a static peer that is not configured.
	ErrUnknown = errors.New("no such static peer")
	// ErrListenerExists: AddListener was given a listener that is running.
	ErrListenerExists = errors.New("listener already running")
	// ErrUnknownListener: RemoveListener was given a listener that is not
	// running.
	ErrUnknownListener = errors.New("no such listener")
)

// Config configures a Manager.
type Config struct {
	// PrivateKey is the node's identity, used in every handshake.
	PrivateKey ed25519.PrivateKey
	// Listen are the listeners (tcp://[::]:65432, ws://[::]:65433/path,
	// wss://…), parsed with peeruri.ParseListen.
	Listen []peeruri.URI
	// Static are the peers to dial and keep re-dialling, parsed with
	// peeruri.ParsePeer.
	Static []peeruri.URI
	// AllowedKeys, when not empty, is the only set of remote keys accepted
	// on peerings we did not configure: inbound ones and LAN discovery.
	// Static peers are ours by configuration and are not filtered.
	AllowedKeys []wire.PublicKey
	// MaxPeers caps peerings of every kind, 1..253; 0 means
	// DefaultMaxPeers. The manager is the one place it is enforced: every
	// peering, whatever its origin, passes through Handle.
	MaxPeers int
	// TLS holds the certificate for wss:// listeners and the roots for
	// dialling wss:// peers (nil: system roots, and no wss listener).
	TLS *tls.Config
	// Link configures every link; its Logger defaults to Logger.
	Link link.Config
	// Backoff governs static peer reconnects; zero fields take defaults.
	Backoff Backoff
	// DialTimeout bounds each static dial; 0 means DefaultDialTimeout.
	DialTimeout time.Duration
	// MaxHandshakes caps inbound handshakes in progress; 0 means
	// DefaultMaxHandshakes.
	MaxHandshakes int
	// PeerTimeout is every TCP peering's TCP_USER_TIMEOUT (see
	// link.ControlTCP); 0 means limits.DefaultPeerTimeout. SetPeerTimeout
	// changes it for peerings made afterwards.
	PeerTimeout time.Duration
	// Logger receives the manager's messages; nil means slog.Default().
	Logger *slog.Logger
}

// Manager owns the listeners and the static peers, and admits every
// peering (handshake, key checks, max_peers) before it is attached to the
// Switch, whose port table is the registry of running peerings. All
// methods are safe for concurrent use.
type Manager struct {
	cfg     Config
	sw      Switch
	self    wire.PublicKey
	log     *slog.Logger
	hsSlots *accept.Slots // inbound handshakes, shared by every listener

	ctx    context.Context // cancelled by Close, with ErrClosed as its cause
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup // every goroutine the manager starts

	mu       sync.Mutex
	closed   bool
	allowed  map[wire.PublicKey]bool // empty: every key
	maxPeers int
	// peerTimeout is the TCP_USER_TIMEOUT of new peerings, in
	// nanoseconds; read by dialers, listeners and handle without mu.
	peerTimeout atomic.Int64
	reserved    int // peerings between the max_peers check and Attach
	// live counts the peerings this manager attached and that have not
	// ended: what max_peers bounds.
	live int
	// reported: when an event (kind|host|origin|iface) was last logged at its
	// full level; see shouldReport.
	reported  map[string]time.Time
	static    map[string]*staticPeer // by canonical URI
	listeners []*listener
}

// New checks the configuration, starts the listeners and the static peers'
// dialers, and returns the running manager. Any bad URI or a listener that
// cannot start is an error, and nothing is left running.
func New(cfg Config, sw Switch) (*Manager, error) {
	if len(cfg.PrivateKey) != ed25519.PrivateKeySize {
		return nil, errors.New("peers: no private key")
	}
	if cfg.MaxPeers == 0 {
		cfg.MaxPeers = DefaultMaxPeers
	}
	if cfg.MaxPeers < 1 || cfg.MaxPeers > int(router.MaxPort) {
		return nil, fmt.Errorf("peers: max_peers %d outside 1..%d", cfg.MaxPeers, router.MaxPort)
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.MaxHandshakes <= 0 {
		cfg.MaxHandshakes = DefaultMaxHandshakes
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Link.Logger == nil {
		cfg.Link.Logger = cfg.Logger
	}
	cfg.Backoff = cfg.Backoff.withDefaults()

	for _, u := range cfg.Listen {
		if err := peeruri.CheckListen(u); err != nil {
			return nil, fmt.Errorf("peers: listen %s: %w", u, err)
		}
	}
	for _, u := range cfg.Static {
		if err := peeruri.CheckStatic(u); err != nil {
			return nil, fmt.Errorf("peers: static peer %s: %w", u, err)
		}
	}

	m := &Manager{
		cfg:      cfg,
		sw:       sw,
		self:     wire.PublicKeyOf(cfg.PrivateKey),
		log:      cfg.Logger,
		allowed:  map[wire.PublicKey]bool{},
		maxPeers: cfg.MaxPeers,
		hsSlots:  accept.NewSlots(cfg.MaxHandshakes),
		reported: map[string]time.Time{},
		static:   map[string]*staticPeer{},
	}
	for _, k := range cfg.AllowedKeys {
		m.allowed[k] = true
	}
	if err := m.SetPeerTimeout(cfg.PeerTimeout); err != nil {
		return nil, err
	}
	m.ctx, m.cancel = context.WithCancelCause(context.Background())
	m.watchInterfaces()

	for _, u := range cfg.Listen {
		if err := m.listen(u); err != nil {
			m.Close()
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	for _, u := range cfg.Static {
		if err := m.addStatic(u, overlay.OriginStatic); err != nil && !errors.Is(err, ErrExists) {
			m.Close()
			return nil, fmt.Errorf("peers: %w", err)
		}
	}
	return m, nil
}

// owner counts the manager's goroutines (m.wg) and refuses new ones once
// it is closing.
func (m *Manager) owner() accept.Owner {
	return accept.Owner{Mu: &m.mu, Closed: &m.closed, WG: &m.wg}
}

// track registers one more goroutine with the manager, unless it is
// closing; the caller must call m.wg.Done when it returns true.
func (m *Manager) track() bool { return m.owner().Track() }

// spawn runs f on a goroutine the manager waits for, unless it is closing.
func (m *Manager) spawn(f func()) bool { return m.owner().Spawn(f) }

// Close stops the listeners and the static dialers, ends every peering
// (each is detached from the node) and waits until all of the manager's
// goroutines have returned.
func (m *Manager) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	lns := m.listeners
	m.mu.Unlock()

	// Cancelling m.ctx ends every peering: handle closes its link with
	// ErrClosed and waits for it.
	m.cancel(ErrClosed)
	var errs []error
	for _, l := range lns {
		if err := l.close(); err != nil {
			errs = append(errs, err)
		}
	}
	m.wg.Wait()
	return errors.Join(errs...)
}

// Handle runs one connection as a peering, whoever made it: handshake,
// the self, pin, allowed_keys and max_peers checks, Attach, and then the
// link until it ends or ctx is cancelled. It returns why the peering ended
// (or was refused); nc is closed by then. info describes the peering; its
// Key is filled in from the handshake. A non-zero pin must match the
// remote key. LAN discovery calls this for the connections it makes.
func (m *Manager) Handle(ctx context.Context, nc net.Conn, info overlay.PeerInfo, pin wire.PublicKey) error {
	_, err := m.handle(ctx, nc, info, pin, nil, nil)
	return err
}

// HandleAccepted is Handle for an inbound connection taken from a
// listener with a handshake slot (internal/accept): handshook runs as soon
// as the handshake has ended, either way, to give that slot back, so the
// slot bounds handshakes in progress and not peerings. LAN discovery calls
// it for the connections to its listener.
func (m *Manager) HandleAccepted(ctx context.Context, nc net.Conn, info overlay.PeerInfo, handshook func()) error {
	_, err := m.handle(ctx, nc, info, wire.PublicKey{}, handshook, nil)
	return err
}

// handle is Handle with two hooks: handshook runs once the handshake is
// over (either way) and up runs once the peering is attached. It returns
// how long the peering was up.
func (m *Manager) handle(ctx context.Context, nc net.Conn, info overlay.PeerInfo, pin wire.PublicKey,
	handshook func(), up func(*link.Conn, router.Port)) (time.Duration, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stop := context.AfterFunc(m.ctx, func() { cancel(context.Cause(m.ctx)) })
	defer stop()

	log := m.log.With("uri", info.URI, "origin", info.Origin)
	if info.Interface != "" {
		log = log.With("iface", info.Interface)
	}
	key, err := link.Handshake(ctx, nc, m.cfg.PrivateKey)
	if handshook != nil {
		handshook()
	}
	if err != nil {
		nc.Close()
		if cause := context.Cause(ctx); cause != nil {
			return 0, fmt.Errorf("%s: handshake: %w", info.URI, cause)
		}
		log.Debug("handshake failed", "remote", nc.RemoteAddr().String(), "err", err)
		return 0, fmt.Errorf("%s: %w", info.URI, err)
	}
	info.Key = key
	log = log.With("peer", key.String())
	m.applyPeerTimeout(nc, log)
	if err := m.check(info, pin); err != nil {
		nc.Close()
		switch {
		case errors.Is(err, ErrKeyMismatch):
			log.Warn("refusing peer: key mismatch", "want", pin, "reason", err)
		case errors.Is(err, ErrSelf):
			// Either a loop back to ourselves or, worse, another node
			// running with a copy of our key file: both need an operator.
			// An ERROR once per remote host and zone, DEBUG after that, so
			// a retry loop does not bury it.
			lvl := slog.LevelDebug
			if m.shouldReport("self", nc.RemoteAddr(), info, 0) {
				lvl = slog.LevelError
			}
			log.Log(ctx, lvl, "refusing peer: it presents our own public key: a peer URI or listener points back at this node, or another node runs with a copy of our key file",
				"remote", nc.RemoteAddr().String(), "reason", err)
		default:
			// Why, at INFO once a minute per remote host: enough for the
			// operator of either side to see it, not a line per retry.
			lvl := slog.LevelDebug
			if m.shouldReport("refuse", nc.RemoteAddr(), info, refuseReportEvery) {
				lvl = slog.LevelInfo
			}
			log.Log(ctx, lvl, "refusing peer", "remote", nc.RemoteAddr().String(), "reason", err)
		}
		return 0, fmt.Errorf("%s: peer %s: %w", info.URI, key, err)
	}
	info.Ifindex = interfaceOf(nc.RemoteAddr())
	c := link.New(nc, key, m.cfg.Link)
	port, err := m.sw.Attach(info, c)
	if err != nil {
		m.mu.Lock()
		m.reserved--
		m.mu.Unlock()
		c.Close(err)
		log.Warn("node refused peering", "reason", err)
		return 0, fmt.Errorf("%s: peer %s: attach: %w", info.URI, key, err)
	}
	m.mu.Lock()
	m.reserved--
	closed := m.closed
	// allowed_keys again, now that the peering is in the node's registry:
	// a reload that tightened the list between check and Attach swept the
	// registry before this peering was in it. Either this sees the new
	// list, or the reload's sweep (after its update under m.mu) sees the
	// peering.
	allowed := m.allowedLocked(info)
	if !closed {
		m.live++
	}
	m.mu.Unlock()
	// Our outbound links note their first frame on its way to the node,
	// which "peer connected" below waits for.
	var recv link.Receiver = m.sw
	var first *firstFrameWatch
	if !info.Inbound {
		first = newFirstFrameWatch(m.sw)
		recv = first
	}
	c.Start(port, recv)
	switch {
	case closed:
		c.Close(ErrClosed)
	case !allowed:
		log.Info("closing peering no longer in allowed_keys", "peer", key, "port", uint8(port))
		c.Close(ErrNotAllowed)
	}
	start := time.Now()
	// The one line per peering event that the daemon logs at info level
	// (overlay.Node logs its port bookkeeping at debug): both lines carry
	// port, peer, uri, transport, origin and inbound (and iface for LAN
	// discovery's).
	if up != nil {
		up(c, port)
	}
	log = log.With("port", uint8(port), "transport", info.Transport, "inbound", info.Inbound)
	// A remote that refuses us (its allowed_keys, its max_peers) completes
	// the handshake and then closes at once, without a frame. So on our
	// outbound links "peer connected" waits for the first frame, and a link
	// that ends before one is logged as the refusal it is.
	refused := first != nil && !first.wait(ctx, c, firstFrameWait)
	if refused {
		log.Info("peer closed the link before sending anything; it probably refuses us (its allowed_keys or max_peers)", "remote", nc.RemoteAddr().String())
	} else {
		log.Info("peer connected", "remote", nc.RemoteAddr().String())
	}

	select {
	case <-c.Done():
	case <-ctx.Done():
		c.Close(context.Cause(ctx))
		<-c.Done()
	}
	if !closed {
		m.mu.Lock()
		m.live--
		m.mu.Unlock()
	}
	uptime := time.Since(start)
	reason := c.Reason()
	if refused {
		log.Debug("peer disconnected", "reason", reason, "duration", uptime.Round(time.Millisecond))
		return uptime, fmt.Errorf("%s: peer %s: closed right after the handshake (refused by the remote?): %w", info.URI, key, reason)
	}
	log.Info("peer disconnected", "reason", reason, "duration", uptime.Round(time.Millisecond))
	return uptime, fmt.Errorf("%s: peer %s: %w", info.URI, key, reason)
}

// firstFrameWait bounds how long an outbound link waits for its first frame
// before "peer connected" is logged anyway: a stock router sends its tree
// announcement at once, but a quiet remote is not a refusal.
const firstFrameWait = 2 * time.Second

// firstFrameWatch passes a link's reports on to the node and closes got
// at the first frame the link reads: the event an outbound link's "peer
// connected" waits for. The node counts the frames themselves.
type firstFrameWatch struct {
	link.Receiver
	once sync.Once
	got  chan struct{}
}

func newFirstFrameWatch(r link.Receiver) *firstFrameWatch {
	return &firstFrameWatch{Receiver: r, got: make(chan struct{})}
}

// Receive notes the first frame, then hands every frame to the node.
func (w *firstFrameWatch) Receive(port router.Port, frame []byte) error {
	w.once.Do(func() { close(w.got) })
	return w.Receiver.Receive(port, frame)
}

// wait waits until the link c reports to w has received a frame (true),
// or ended without one (false), or wait has passed or ctx (the peering's:
// its static peer removed, the manager closing) is done (true: not a
// refusal, and the caller closes the link at once).
func (w *firstFrameWatch) wait(ctx context.Context, c *link.Conn, wait time.Duration) bool {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case <-w.got:
		return true
	case <-ctx.Done():
		return true
	case <-c.Done():
		// The reader's last Receive happens before Done, and select
		// picks at random among ready cases: look at got again.
		select {
		case <-w.got:
			return true
		default:
			return false
		}
	case <-deadline.C:
		return true
	}
}

// maxReports bounds the (kind, remote) pairs remembered by shouldReport;
// when full, entries older than refuseReportEvery are forgotten, and if
// none is, the event is reported (many distinct remotes are worth seeing).
const maxReports = 1024

// refuseReportEvery is how often a refusal of one remote host is logged at
// INFO.
const refuseReportEvery = time.Minute

// shouldReport reports whether an event of kind for the host of addr, on
// a peering of info's origin and interface, is to be logged at its full
// level: the first time, and then again once every has passed (never again
// when every is 0).
func (m *Manager) shouldReport(kind string, addr net.Addr, info overlay.PeerInfo, every time.Duration) bool {
	host := addr.String()
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	id := kind + "|" + host + "|" + info.Origin.String() + "|" + info.Interface
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if last, ok := m.reported[id]; ok && (every == 0 || now.Sub(last) < every) {
		return false
	}
	if len(m.reported) >= maxReports {
		for k, t := range m.reported {
			if !strings.HasPrefix(k, "self|") && now.Sub(t) >= refuseReportEvery {
				delete(m.reported, k)
			}
		}
	}
	if len(m.reported) < maxReports {
		m.reported[id] = now
	}
	return true
}

// check applies the refusals that need the remote key and, when it passes,
// reserves a place under max_peers (released by handle).
func (m *Manager) check(info overlay.PeerInfo, pin wire.PublicKey) error {
	switch {
	case info.Key == m.self:
		return ErrSelf
	case !pin.IsZero() && info.Key != pin:
		return ErrKeyMismatch
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.allowedLocked(info) {
		return ErrNotAllowed
	}
	if m.closed {
		return ErrClosed
	}
	if m.live+m.reserved >= m.maxPeers {
		return fmt.Errorf("%w (%d)", ErrTooManyPeers, m.maxPeers)
	}
	m.reserved++
	return nil
}

// allowedLocked applies allowed_keys to a peering; m.mu is held. Static
// peers are chosen by configuration and always allowed.
func (m *Manager) allowedLocked(info overlay.PeerInfo) bool {
	return len(m.allowed) == 0 || info.Origin.Chosen() || m.allowed[info.Key]
}

// SetMaxPeers changes max_peers at run time (configuration reload).
// Peerings above a lowered bound stay up; new ones wait for room.
func (m *Manager) SetMaxPeers(n int) error {
	if n < 1 || n > int(router.MaxPort) {
		return fmt.Errorf("peers: max_peers %d outside 1..%d", n, router.MaxPort)
	}
	m.mu.Lock()
	m.maxPeers = n
	m.mu.Unlock()
	return nil
}

// SetPeerTimeout changes the TCP_USER_TIMEOUT of peerings made from now on
// (configuration reload); 0 means limits.DefaultPeerTimeout. Running
// peerings keep the value they started with: changing it under a link
// would make its failover time depend on when the reload happened.
func (m *Manager) SetPeerTimeout(d time.Duration) error {
	if d == 0 {
		d = limits.DefaultPeerTimeout
	}
	if d < limits.MinPeerTimeout || d > limits.MaxPeerTimeout {
		return fmt.Errorf("peers: peer timeout %v outside %v..%v", d, limits.MinPeerTimeout, limits.MaxPeerTimeout)
	}
	m.peerTimeout.Store(int64(d))
	return nil
}

// PeerTimeout is the TCP_USER_TIMEOUT new peerings get. LAN discovery
// dials with it.
func (m *Manager) PeerTimeout() time.Duration { return time.Duration(m.peerTimeout.Load()) }

// applyPeerTimeout sets the current peer timeout on a TCP peering once its
// handshake is done. Dialled sockets got it at connect time and accepted
// ones inherited their listener's, which may predate a reload; setting it
// here gives every new peering the value configured when it came up.
func (m *Manager) applyPeerTimeout(nc net.Conn, log *slog.Logger) {
	tc, ok := nc.(*net.TCPConn)
	if !ok {
		return
	}
	rc, err := tc.SyscallConn()
	if err == nil {
		err = link.ControlTCP(m.PeerTimeout())("tcp", "", rc)
	}
	if err != nil {
		log.Debug("cannot set the peer timeout", "err", err)
	}
}

// SetAllowedKeys replaces allowed_keys at run time (configuration reload);
// an empty list allows every key. Running peerings that the new list does
// not allow are closed with ErrNotAllowed: tightening the list is meant to
// keep those keys out.
func (m *Manager) SetAllowedKeys(keys []wire.PublicKey) {
	allowed := make(map[wire.PublicKey]bool, len(keys))
	for _, k := range keys {
		allowed[k] = true
	}
	m.mu.Lock()
	m.allowed = allowed
	m.mu.Unlock()
	for _, p := range m.sw.Peerings() {
		m.mu.Lock()
		ok := m.allowedLocked(p.Info)
		m.mu.Unlock()
		if !ok {
			m.log.Info("closing peering no longer in allowed_keys", "peer", p.Info.Key, "port", uint8(p.Port), "uri", p.Info.URI)
			p.Link.Close(ErrNotAllowed)
		}
	}
}

// Connected reports whether a LAN discovery peering with key is up on the
// interface iface. LAN discovery uses it to avoid dialling a peer it
// already has there.
func (m *Manager) Connected(key wire.PublicKey, iface string) bool {
	for _, p := range m.sw.Peerings() {
		if p.Info.Key == key && p.Info.Origin == overlay.OriginLAN && p.Info.Interface == iface {
			return true
		}
	}
	return false
}
