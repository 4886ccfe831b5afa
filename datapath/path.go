package datapath

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/addressing/lookup"
	"github.com/pineconed/pineconed/internal/ratelimit"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/session"
	"github.com/pineconed/pineconed/tun"
)

// Tick intervals of the timer goroutine (see the addressing and session
// packages for what they drive).
const (
	resolverTick = 250 * time.Millisecond
	sessionTick  = time.Second
)

// handshakeQueue bounds the handshake messages waiting for the handshake
// goroutine (session.HandshakeQueue): about 180 bytes each.
const handshakeQueue = 256

// Limits on the address lookups we answer. A lookup costs no crypto, only
// a reply, but a flood of them would still take the inbound goroutine and
// the overlay's queues from traffic. An honest resolver asks a few times
// per unknown destination (its retries included), far below these.
var lookupLimits = ratelimit.Config{PerKey: 20, PerKeyBurst: 40, Global: 1000, GlobalBurst: 200, MaxKeys: 4096}

// ICMPv6 error rate limit towards local senders (RFC 4443 §2.4f).
const (
	icmpPerSecond = 100
	icmpBurst     = 20
)

// Overlay is what the packet path needs of the overlay node
// (*overlay.Node implements it).
type Overlay interface {
	// SendBuffer sends the payload at buf[off:] to dst and owns buf; off
	// 0 is a plain payload with no room for the frame header.
	SendBuffer(dst wire.PublicKey, buf []byte, off int) error
	// Deliveries is the queue of payloads routed to this node.
	Deliveries() <-chan overlay.Delivery
	// RoutesChanged signals that the node gained a route.
	RoutesChanged() <-chan struct{}
}

// directOverlay is an Overlay that can hand the payloads its links bring
// straight to the path on the links' goroutines (overlay.Node does): the
// path then decrypts a packet where the link read it and queues it for
// the TUN with one goroutine hand-off, where the Deliveries queue costs
// two and a copy.
type directOverlay interface {
	HandleDeliveries(func(overlay.Delivery))
}

// Config configures a Path.
type Config struct {
	// Private is the node's identity.
	Private ed25519.PrivateKey
	// MTU is the TUN MTU, announced to peers in handshakes.
	MTU int
	// Overlay carries the payloads.
	Overlay Overlay
	// Device is the TUN; nil for a relay-only node. The Path reads and
	// writes it from Start on and closes it in Close.
	Device *tun.Device
	// Resolver tunes the address resolver; zero values take its defaults.
	Resolver lookup.Config
	// Logger receives the data path's debug lines. Nil means slog.Default().
	Logger *slog.Logger

	// EchoReply receives the answers to Sessions().SendEcho (the admin
	// API's ping). Optional.
	EchoReply func(src wire.PublicKey, id uint64, data []byte)
	// LookupDone is told how each address lookup ended (the admin API's
	// lookup waits on it, the metrics take its latency). Optional.
	LookupDone func(prefix addressing.KeyPrefix, latency time.Duration, ok bool)
	// Tick runs on the timer goroutine with the session tick, about once
	// a second (the daemon expires peer cards from it). Optional.
	Tick func(now time.Time)
}

// Path is the packet path of one node: TUN ⇄ resolver ⇄ session ⇄
// overlay. It owns its goroutines (Start, Close) and the resolver and
// session manager it drives.
type Path struct {
	cfg    Config
	log    *slog.Logger
	key    wire.PublicKey
	addr   netip.Addr
	subnet netip.Prefix

	resolver *lookup.Resolver
	sessions *session.Manager
	hsq      *session.HandshakeQueue
	lookups  *ratelimit.Limiter[wire.PublicKey]
	writer   *tun.Writer // nil for a relay-only node
	icmp     *tun.RateLimiter

	drops counters

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New builds the packet path; Start runs it.
func New(cfg Config) (*Path, error) {
	if cfg.Overlay == nil {
		return nil, errors.New("datapath: no overlay")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Path{
		cfg:     cfg,
		log:     cfg.Logger,
		key:     wire.PublicKeyOf(cfg.Private),
		lookups: ratelimit.New[wire.PublicKey](lookupLimits),
		icmp:    tun.NewRateLimiter(icmpPerSecond, icmpBurst),
		stop:    make(chan struct{}),
	}
	p.addr = addressing.NodeAddr(p.key)
	p.subnet = addressing.Subnet(p.key)
	p.resolver = lookup.New(p.key, cfg.Resolver, func(dst wire.PublicKey, payload []byte) {
		p.Send(dst, payload, 0)
	}, lookup.Callbacks{
		Resolved:    p.onResolved,
		Unreachable: p.onLookupFailed,
		LookupDone:  p.onLookupDone,
	})
	var err error
	p.sessions, err = session.NewManager(cfg.Private, session.Config{MTU: cfg.MTU}, p)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	p.hsq = p.sessions.NewHandshakeQueue(handshakeQueue)
	if cfg.Device != nil {
		p.writer = cfg.Device.NewWriter(tun.WriterConfig{})
	}
	return p, nil
}

// Start runs the path's goroutines: inbound, handshakes, timers and, with
// a TUN, outbound. Close stops them.
func (p *Path) Start() {
	if o, ok := p.cfg.Overlay.(directOverlay); ok {
		o.HandleDeliveries(p.receive)
	}
	p.wg.Add(3)
	go p.inboundLoop()
	go p.handshakeLoop()
	go p.timerLoop()
	if p.cfg.Device != nil {
		p.wg.Add(1)
		go p.outboundLoop()
	}
}

// Close stops the goroutines, closes the TUN (which ends its reader and
// writer) and forgets the session keys. It is safe to call more than once,
// and without Start.
func (p *Path) Close() {
	p.closeOnce.Do(func() {
		if o, ok := p.cfg.Overlay.(directOverlay); ok {
			o.HandleDeliveries(nil)
		}
		close(p.stop)
		if p.cfg.Device != nil {
			if err := p.cfg.Device.Close(); err != nil {
				p.log.Warn("closing TUN", "err", err)
			}
		}
		p.wg.Wait()
		p.sessions.Close()
	})
}

// Sessions is the session layer the path drives (admin: getSessions, ping).
func (p *Path) Sessions() *session.Manager { return p.sessions }

// Resolver is the address resolver the path drives (admin: lookup).
func (p *Path) Resolver() *lookup.Resolver { return p.resolver }

// stopped reports whether Close has begun.
func (p *Path) stopped() bool {
	select {
	case <-p.stop:
		return true
	default:
		return false
	}
}
