package peers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"

	"github.com/pineconed/pineconed/internal/accept"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers/peeruri"
	"github.com/pineconed/pineconed/overlay/router"
)

// listener is one listening endpoint: a TCP accept loop, or an HTTP server
// upgrading WebSocket requests on the configured path.
type listener struct {
	uri  peeruri.URI
	ln   net.Listener
	http *http.Server // nil for tcp
}

func (l *listener) close() error {
	var err error
	if l.http != nil {
		// Close, not Shutdown: the upgraded connections are hijacked and
		// belong to their links, which the manager closes itself.
		err = l.http.Close()
	} else {
		err = l.ln.Close()
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close listener %s: %w", l.uri, err)
	}
	return nil
}

// ListenAddrs returns the listeners' bound addresses, in configuration
// order (useful with port 0).
func (m *Manager) ListenAddrs() []net.Addr {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]net.Addr, 0, len(m.listeners))
	for _, l := range m.listeners {
		out = append(out, l.ln.Addr())
	}
	return out
}

// AddListener starts accepting inbound peerings on a listener (a URI from
// peeruri.ParseListen) while the manager runs; SIGHUP reload calls it.
// A listener with the same canonical URI is ErrListenerExists.
func (m *Manager) AddListener(u peeruri.URI) error {
	if err := peeruri.CheckListen(u); err != nil {
		return fmt.Errorf("peers: listen %s: %w", u, err)
	}
	if err := m.listen(u); err != nil {
		return fmt.Errorf("peers: %w", err)
	}
	return nil
}

// RemoveListener stops accepting on the listener with uri's canonical form
// and closes its socket; ErrUnknownListener if there is none. Peerings it
// accepted earlier are not touched: they are running links of their own
// and stay up until they end by themselves. A WebSocket listener drops
// connections still in their HTTP upgrade.
func (m *Manager) RemoveListener(u peeruri.URI) error {
	key := u.String()
	m.mu.Lock()
	i := slices.IndexFunc(m.listeners, func(l *listener) bool { return l.uri.String() == key })
	if i < 0 {
		m.mu.Unlock()
		return fmt.Errorf("peers: %s: %w", key, ErrUnknownListener)
	}
	l := m.listeners[i]
	m.listeners = slices.Delete(m.listeners, i, i+1)
	m.mu.Unlock()
	err := l.close()
	m.log.Info("listener closed; peerings it accepted stay up", "uri", key, "addr", l.ln.Addr().String())
	return err
}

// ListenURIs returns the URIs of the running listeners, in the order they
// were opened.
func (m *Manager) ListenURIs() []peeruri.URI {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]peeruri.URI, 0, len(m.listeners))
	for _, l := range m.listeners {
		out = append(out, l.uri)
	}
	return out
}

// register adds a bound listener to the manager, unless the manager is
// closing or has a listener with the same URI; it then closes l. On
// success one m.wg slot is taken for l's serving goroutine.
func (m *Manager) register(l *listener) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	var err error
	switch {
	case m.closed:
		err = ErrClosed
	case slices.ContainsFunc(m.listeners, func(o *listener) bool { return o.uri.String() == l.uri.String() }):
		err = fmt.Errorf("%s: %w", l.uri, ErrListenerExists)
	}
	if err != nil {
		l.ln.Close()
		return err
	}
	m.listeners = append(m.listeners, l)
	m.wg.Add(1)
	return nil
}

func (m *Manager) listen(u peeruri.URI) error {
	if u.Scheme == peeruri.SchemeWSS && (m.cfg.TLS == nil || (len(m.cfg.TLS.Certificates) == 0 && m.cfg.TLS.GetCertificate == nil)) {
		return fmt.Errorf("listen %s: wss needs a TLS certificate", u)
	}
	// Accepted connections inherit the listening socket's options; Go
	// sets the keepalive on each accepted one.
	lc := net.ListenConfig{Control: link.ControlTCP(m.PeerTimeout()), KeepAliveConfig: link.TCPKeepAlive()}
	ln, err := lc.Listen(m.ctx, "tcp", u.Host)
	if err != nil {
		return fmt.Errorf("listen %s: %w", u, err)
	}
	l := &listener{uri: u, ln: ln}
	log := m.log.With("uri", u.String())
	if u.Scheme == peeruri.SchemeTCP {
		if err := m.register(l); err != nil {
			return err
		}
		go m.acceptLoop(l)
		log.Info("listening", "addr", ln.Addr().String())
		return nil
	}

	if u.Scheme == peeruri.SchemeWSS {
		tc := m.cfg.TLS.Clone()
		// WebSocket upgrades need HTTP/1.1.
		tc.NextProtos = []string{"http/1.1"}
		l.ln = tlsListener(ln, tc)
	}
	l.http = &http.Server{
		Handler: link.WebSocketHandler(u.Path, func(nc net.Conn, r *http.Request) {
			// http.Server does not wait for handlers of hijacked
			// connections, so the manager tracks them itself.
			if !m.track() {
				nc.Close()
				return
			}
			defer m.wg.Done()
			release, ok := m.hsSlots.TryAcquire()
			if !ok {
				m.refuse(nc)
				nc.Close()
				return
			}
			defer release()
			m.serveInbound(nc, u.Scheme, r.RemoteAddr, release)
		}),
		// A WebSocket reaches handle wrapped, without its TCP socket, so
		// the current peer timeout is set here, on the raw connection.
		ConnState: func(nc net.Conn, st http.ConnState) {
			if st == http.StateNew {
				m.applyPeerTimeout(nc, log)
			}
		},
		ReadHeaderTimeout: link.HandshakeTimeout,
		ErrorLog:          slog.NewLogLogger(m.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return m.ctx },
	}
	if err := m.register(l); err != nil {
		return err
	}
	go func() {
		defer m.wg.Done()
		if err := l.http.Serve(l.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("listener stopped", "err", err)
		}
	}()
	log.Info("listening", "addr", ln.Addr().String(), "path", u.Path)
	return nil
}

func (m *Manager) acceptLoop(l *listener) {
	defer m.wg.Done()
	accept.Serve(m.ctx, l.ln, accept.Config{
		Slots:  m.hsSlots,
		Spawn:  m.spawn,
		Refuse: m.refuse,
		Logger: m.log.With("uri", l.uri.String()),
		Serve: func(nc net.Conn, release func()) {
			m.serveInbound(nc, peeruri.SchemeTCP, nc.RemoteAddr().String(), release)
		},
	})
}

// refuse logs an inbound connection turned away because every handshake
// slot is taken.
func (m *Manager) refuse(nc net.Conn) {
	m.log.Warn("refusing inbound connection: too many handshakes in progress", "remote", nc.RemoteAddr().String(), "limit", m.hsSlots.Cap())
}

// serveInbound runs one accepted connection whose handshake slot release
// gives back, as soon as the handshake is over.
func (m *Manager) serveInbound(nc net.Conn, scheme, remote string, release func()) {
	info := overlay.PeerInfo{
		URI:       scheme + "://" + remote,
		Transport: scheme,
		Origin:    overlay.OriginListener,
		Inbound:   true,
		Type:      router.PeerRemote,
	}
	_, _ = m.handle(m.ctx, nc, info, [32]byte{}, release, nil)
}
