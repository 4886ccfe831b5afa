// Package accept is the one accept loop behind every listening socket of
// the daemon: the peering listeners (overlay/peers), LAN discovery's
// listener (overlay/multicast) and the admin socket (admin).
//
// It sits in front of the data path: a connection it accepts becomes a
// peering (handshake, then a link) or an admin session. What every
// listener needs is the same and easy to get subtly wrong: keep accepting
// after a transient error such as EMFILE without spinning, bound the
// connections that are still being admitted with a slot each (refusing,
// not queueing, the ones beyond), give the slot back as soon as admission
// is over rather than when the connection ends, and run each connection on
// a goroutine its owner waits for.
package accept

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"time"
)

// RetryDelay is how long Serve waits after a failed Accept (typically
// EMFILE: out of file descriptors) before it tries again.
const RetryDelay = 100 * time.Millisecond

// Slots bounds the connections in admission: for a peering listener, the
// ones still in their handshake; for the admin socket, the open ones.
// Several listeners may share one Slots.
type Slots struct{ ch chan struct{} }

// NewSlots makes n slots (at least one).
func NewSlots(n int) *Slots { return &Slots{ch: make(chan struct{}, max(n, 1))} }

// TryAcquire takes a free slot without waiting. release gives it back; it
// may be called any number of times, only the first counts.
func (s *Slots) TryAcquire() (release func(), ok bool) {
	select {
	case s.ch <- struct{}{}:
	default:
		return nil, false
	}
	var once sync.Once
	return func() { once.Do(func() { <-s.ch }) }, true
}

// Cap is the number of slots.
func (s *Slots) Cap() int { return cap(s.ch) }

// InUse is the number of slots taken right now.
func (s *Slots) InUse() int { return len(s.ch) }

// Config is what Serve needs from the listener's owner.
type Config struct {
	// Slots bounds connections in admission. It is not used when Admit
	// is set.
	Slots *Slots
	// Admit, when set, decides instead of Slots whether a new connection
	// is served: an owner with its own admission policy (the admin socket
	// makes room by closing its longest-idle connection) takes or makes a
	// place for nc and returns ok, or returns false to refuse it. release
	// gives the place back; Serve calls it once the connection's Serve
	// returns (or at once if it never runs), and it must be safe to call
	// more than once.
	Admit func(nc net.Conn) (release func(), ok bool)
	// Spawn runs f on a goroutine the owner waits for before it is
	// closed, or returns false without running it when the owner is
	// closing.
	Spawn func(f func()) bool
	// Serve runs one accepted connection, which it owns. release gives
	// the connection's slot back: Serve calls it once admission is over
	// (a peering after its handshake); Serve's return releases it anyway.
	Serve func(nc net.Conn, release func())
	// Refuse, when set, is told about a connection refused because every
	// slot is taken (or Admit said no), before Serve closes it: it logs
	// and may write a short reply.
	Refuse func(nc net.Conn)
	// Logger receives accept failures; nil means slog.Default().
	Logger *slog.Logger
}

// Serve accepts connections on ln until ln is closed or ctx is done, and
// hands each to cfg.Serve on a goroutine from cfg.Spawn while a slot is
// free. It returns when it stops accepting; connections already handed
// on are their owners' to end. It does not close ln.
func Serve(ctx context.Context, ln net.Listener, cfg Config) {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	for {
		nc, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors and the like: wait a little
			// rather than spin, and keep listening.
			log.Warn("accept failed", "addr", ln.Addr().String(), "err", err)
			select {
			case <-time.After(RetryDelay):
			case <-ctx.Done():
				return
			}
			continue
		}
		admit := cfg.Slots.TryAcquire
		if cfg.Admit != nil {
			admit = func() (func(), bool) { return cfg.Admit(nc) }
		}
		release, ok := admit()
		if !ok {
			if cfg.Refuse != nil {
				cfg.Refuse(nc)
			}
			nc.Close()
			continue
		}
		if !cfg.Spawn(func() {
			defer release()
			cfg.Serve(nc, release)
		}) {
			release()
			nc.Close()
			return
		}
	}
}
