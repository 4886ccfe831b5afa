// Package multicast finds peers on the local network the way stock Pinecone
// nodes do (docs/protocol.md §9.3), so a pineconed node and a stock node on the
// same LAN peer with each other with no configuration.
//
// Every 2 s, and once at start, each usable interface gets a 34-byte beacon
// (our key and the port of a TCP listener) sent to ff02::114 and, when the
// interface has a usable IPv4 address, to 224.0.0.114, UDP port 60606. A
// valid beacon from another key that we are not already peered with on that
// interface leads to a TCP dial to the beacon's source address and the
// advertised port; connections to our listener are accepted by the same
// accept loop as the peer manager's listeners (internal/accept), whose
// handshake slots bound handshakes in progress, not LAN peerings. Either
// way the connection goes to the peer manager's Handle or HandleAccepted
// (see overlay/peers), which runs the handshake and attaches the peering to the
// node with origin LAN, the interface name and router.PeerMulticast as its
// type. Discovery therefore sits beside overlay/peers at the start of the
// data path: it only finds connections, it never carries frames.
//
// Differences from the reference, none visible on the wire: a short or
// garbage datagram is ignored and never pauses discovery on its interface;
// our UDP sockets use SO_REUSEPORT so several daemons and stock nodes share
// port 60606 on one host; and of two pineconed nodes that hear each other,
// the one with the lower key dials at once while the other waits a few
// beacon intervals (DialGrace) before dialling itself, which avoids the
// reference's pair of duplicate links without depending on the other side
// behaving the same way (a stock node always dials).
package multicast

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/internal/enum"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/pineconed/pineconed/internal/accept"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Protocol constants (docs/protocol.md §9.3).
const (
	// UDPPort is where beacons are sent and received.
	UDPPort = 60606
	// DefaultBeaconInterval is how often each interface gets a beacon.
	DefaultBeaconInterval = 2 * time.Second
	// DefaultRescanInterval is how often the interface list is re-read.
	DefaultRescanInterval = 10 * time.Second
	// DefaultDialTimeout bounds the TCP connect to a discovered peer.
	DefaultDialTimeout = 5 * time.Second
	// TCPKeepAlive is the TCP keepalive period on discovered peerings, as
	// in the reference.
	TCPKeepAlive = 3 * time.Second
	// graceBeacons is how many beacon intervals the node with the higher
	// key waits for the other to dial before it dials itself.
	graceBeacons = 3
	// maxInboundHandshakes caps connections to our listener that are still
	// in their handshake.
	maxInboundHandshakes = 32
)

// The multicast groups beacons go to.
var (
	GroupV6 = netip.MustParseAddr("ff02::114")
	GroupV4 = netip.MustParseAddr("224.0.0.114")
)

// Peerer is the peer manager as discovery uses it; *peers.Manager
// implements it.
type Peerer interface {
	// Handle runs a connection as a peering until it ends; pin, if not
	// zero, is the key the remote must present.
	Handle(ctx context.Context, nc net.Conn, info overlay.PeerInfo, pin wire.PublicKey) error
	// HandleAccepted is Handle for a connection to our listener: it
	// calls handshook once the handshake is over, which gives the
	// connection's handshake slot back while the peering runs on.
	HandleAccepted(ctx context.Context, nc net.Conn, info overlay.PeerInfo, handshook func()) error
	// Connected reports whether a LAN discovery peering with key is up on
	// the interface iface.
	Connected(key wire.PublicKey, iface string) bool
	// PeerTimeout is the TCP_USER_TIMEOUT new peerings get (see
	// link.ControlTCP).
	PeerTimeout() time.Duration
}

// Config configures discovery.
type Config struct {
	// Key is our public key: it goes in our beacons, and beacons with it
	// are our own.
	Key wire.PublicKey
	// Interfaces are matched against interface names; an interface is used
	// when one matches (config.MulticastConfig.InterfacePatterns anchors
	// them). Empty means every interface. Loopback and point-to-point
	// interfaces, and interfaces that are down or not multicast-capable,
	// are never used.
	Interfaces []*regexp.Regexp
	// Exclude names interfaces never used, such as our own TUN.
	Exclude []string
	// ListenPort is the TCP port we listen on and advertise; 0 picks one.
	ListenPort int
	// BeaconInterval, RescanInterval and DialTimeout default to the
	// Default* constants when zero; DialGrace defaults to three beacon
	// intervals.
	BeaconInterval time.Duration
	RescanInterval time.Duration
	DialTimeout    time.Duration
	DialGrace      time.Duration
	// Logger receives discovery's messages; nil means slog.Default().
	Logger *slog.Logger
}

// Stats counts what discovery has done.
type Stats struct {
	BeaconsSent     uint64 `json:"beacons_sent"`
	BeaconsReceived uint64 `json:"beacons_received"`
	// Ignored counts received beacons not acted on, by reason, every
	// reason present (zeros too): "malformed", "own", "connected",
	// "interface", "source", "waiting", "backoff", "unknown".
	Ignored map[string]uint64 `json:"ignored"`
	Dials   uint64            `json:"dials"`
	// DialFailures counts dials that did not connect.
	DialFailures uint64 `json:"dial_failures"`
	// Interfaces are the interfaces in use.
	Interfaces []string `json:"interfaces"`
}

// ignoreReason is why a received beacon was not acted on. The enum indexes
// the counters and ignoreNames gives each its Stats.Ignored key, so a
// reason cannot be counted without a name, and an unknown one is counted
// as "unknown" rather than panicking.
type ignoreReason uint8

const (
	ignoreNone      ignoreReason = iota // acted on: not a reason, never counted
	ignoreMalformed                     // not exactly a valid 34-byte beacon
	ignoreOwn                           // our own key
	ignoreConnected                     // already peered, or dialling, on that interface
	ignoreInterface                     // arrived on an interface we do not use
	ignoreSource                        // unusable source address
	ignoreWaiting                       // the lower key should dial; grace not over
	ignoreBackoff                       // the last attempts failed; next one not due yet
	ignoreUnknown                       // a value outside the table (a bug), counted apart
	numIgnoreReasons
)

// ignoreNames are the Stats.Ignored keys, by reason.
var ignoreNames = [numIgnoreReasons]string{
	ignoreNone:      "none",
	ignoreMalformed: "malformed",
	ignoreOwn:       "own",
	ignoreConnected: "connected",
	ignoreInterface: "interface",
	ignoreSource:    "source",
	ignoreWaiting:   "waiting",
	ignoreBackoff:   "backoff",
	ignoreUnknown:   "unknown",
}

func (r ignoreReason) String() string {
	return enum.NameOr(ignoreNames[:], r, ignoreNames[ignoreUnknown])
}

// iface is an interface in use and the groups joined on it.
type iface struct {
	ifi     net.Interface
	ll      netip.Addr // link-local IPv6 address, or invalid
	v4      netip.Addr // usable IPv4 address, or invalid
	joined6 bool
	joined4 bool
}

// sighting is when we first and last heard a key in a zone, and the
// back-off of dialling it: a neighbour that refuses us (at max_peers, or
// by allowed_keys) is re-dialled the way static peers are, not at every
// beacon.
type sighting struct {
	first, last time.Time
	retry       *peers.Retry
	nextDial    time.Time
}

// Discovery is running LAN discovery. Close stops it.
type Discovery struct {
	cfg   Config
	peers Peerer
	log   *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	ln    net.Listener
	port  uint16
	p6    *ipv6.PacketConn // nil when IPv6 is unavailable
	p4    *ipv4.PacketConn // nil when IPv4 is unavailable
	slots *accept.Slots    // connections to ln in their handshake

	// dial connects to a discovered peer; tests replace it.
	dial func(ctx context.Context, local, remote netip.AddrPort, zone string) (net.Conn, error)
	// now is the clock; tests replace it.
	now func() time.Time

	mu      sync.Mutex
	closed  bool
	ifaces  map[string]*iface // by name
	pending map[string]bool   // key|zone being dialled or run by us
	seen    map[string]sighting

	sent, received, dials, dialFailures atomic.Uint64
	ignored                             [numIgnoreReasons]atomic.Uint64
}

// newDiscovery sets a Discovery up without opening sockets.
func newDiscovery(cfg Config, p Peerer) *Discovery {
	if cfg.BeaconInterval <= 0 {
		cfg.BeaconInterval = DefaultBeaconInterval
	}
	if cfg.RescanInterval <= 0 {
		cfg.RescanInterval = DefaultRescanInterval
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.DialGrace <= 0 {
		cfg.DialGrace = graceBeacons * cfg.BeaconInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	d := &Discovery{
		cfg:     cfg,
		peers:   p,
		log:     cfg.Logger.With("component", "multicast"),
		slots:   accept.NewSlots(maxInboundHandshakes),
		now:     time.Now,
		ifaces:  map[string]*iface{},
		pending: map[string]bool{},
		seen:    map[string]sighting{},
	}
	d.dial = d.dialTCP
	d.ctx, d.cancel = context.WithCancel(context.Background())
	return d
}

// New starts discovery: the TCP listener, the UDP sockets on port 60606,
// an interface scan and the first beacons. It fails only when neither an
// IPv6 nor an IPv4 socket can be opened, or the listener cannot.
func New(cfg Config, p Peerer) (*Discovery, error) {
	if cfg.ListenPort < 0 || cfg.ListenPort > 65535 {
		return nil, fmt.Errorf("multicast: listen port %d out of range", cfg.ListenPort)
	}
	d := newDiscovery(cfg, p)
	// Accepted connections inherit TCP_USER_TIMEOUT from the listener.
	lc := net.ListenConfig{Control: link.ControlTCP(p.PeerTimeout())}
	// ":port" is [::]:port, dual-stack, where the host has IPv6, and
	// 0.0.0.0:port where it does not.
	ln, err := lc.Listen(d.ctx, "tcp", fmt.Sprintf(":%d", cfg.ListenPort))
	if err != nil {
		return nil, fmt.Errorf("multicast: listen on TCP port %d: %w", cfg.ListenPort, err)
	}
	d.ln = ln
	d.port = uint16(ln.Addr().(*net.TCPAddr).Port)

	reuse := net.ListenConfig{Control: reusePort}
	var errs []error
	if pc, err := reuse.ListenPacket(d.ctx, "udp6", fmt.Sprintf("[::]:%d", UDPPort)); err != nil {
		errs = append(errs, fmt.Errorf("IPv6: %w", err))
	} else {
		d.p6 = ipv6.NewPacketConn(pc)
		if err := d.p6.SetControlMessage(ipv6.FlagInterface, true); err != nil {
			errs = append(errs, fmt.Errorf("IPv6 control messages: %w", err))
			pc.Close()
			d.p6 = nil
		} else {
			// Loopback on: other daemons on this host hear us; our own
			// beacons come back and are ignored by key.
			_ = d.p6.SetMulticastLoopback(true)
			_ = d.p6.SetMulticastHopLimit(1)
		}
	}
	if pc, err := reuse.ListenPacket(d.ctx, "udp4", fmt.Sprintf("0.0.0.0:%d", UDPPort)); err != nil {
		errs = append(errs, fmt.Errorf("IPv4: %w", err))
	} else {
		d.p4 = ipv4.NewPacketConn(pc)
		if err := d.p4.SetControlMessage(ipv4.FlagInterface, true); err != nil {
			errs = append(errs, fmt.Errorf("IPv4 control messages: %w", err))
			pc.Close()
			d.p4 = nil
		} else {
			_ = d.p4.SetMulticastLoopback(true)
			_ = d.p4.SetMulticastTTL(1)
		}
	}
	if d.p6 == nil && d.p4 == nil {
		ln.Close()
		return nil, fmt.Errorf("multicast: no UDP socket on port %d: %w", UDPPort, errors.Join(errs...))
	}
	for _, err := range errs {
		d.log.Warn("multicast discovery runs on one address family only", "err", err)
	}

	d.wg.Add(2)
	go d.acceptLoop()
	go d.timerLoop()
	if d.p6 != nil {
		d.wg.Add(1)
		go d.readLoop(d.read6)
	}
	if d.p4 != nil {
		d.wg.Add(1)
		go d.readLoop(d.read4)
	}
	d.log.Info("multicast discovery started", "port", d.port)
	return d, nil
}

// Port is the TCP port advertised in our beacons.
func (d *Discovery) Port() int { return int(d.port) }

// Close stops discovery and every peering it made, and waits for all its
// goroutines.
func (d *Discovery) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()
	d.cancel()
	var errs []error
	if d.ln != nil {
		if err := d.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if d.p6 != nil {
		if err := d.p6.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	if d.p4 != nil {
		if err := d.p4.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	d.wg.Wait()
	if len(errs) > 0 {
		return fmt.Errorf("multicast: close: %w", errors.Join(errs...))
	}
	return nil
}

// Stats returns a snapshot of the counters.
func (d *Discovery) Stats() Stats {
	s := Stats{
		BeaconsSent:     d.sent.Load(),
		BeaconsReceived: d.received.Load(),
		Ignored:         map[string]uint64{},
		Dials:           d.dials.Load(),
		DialFailures:    d.dialFailures.Load(),
	}
	for r := ignoreNone + 1; r < numIgnoreReasons; r++ {
		s.Ignored[r.String()] = d.ignored[r].Load()
	}
	d.mu.Lock()
	for name := range d.ifaces {
		s.Interfaces = append(s.Interfaces, name)
	}
	d.mu.Unlock()
	slices.Sort(s.Interfaces)
	return s
}

// ignore counts a beacon not acted on.
func (d *Discovery) ignore(reason ignoreReason) {
	if reason == ignoreNone || reason >= numIgnoreReasons {
		reason = ignoreUnknown
	}
	d.ignored[reason].Add(1)
}

// spawn runs f on a goroutine the Discovery owns, unless it is closing.
func (d *Discovery) spawn(f func()) bool {
	return accept.Owner{Mu: &d.mu, Closed: &d.closed, WG: &d.wg}.Spawn(f)
}

// timerLoop rescans interfaces and sends beacons.
func (d *Discovery) timerLoop() {
	defer d.wg.Done()
	d.rescan()
	d.beacon()
	beacon := time.NewTicker(d.cfg.BeaconInterval)
	defer beacon.Stop()
	rescan := time.NewTicker(d.cfg.RescanInterval)
	defer rescan.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-rescan.C:
			d.rescan()
		case <-beacon.C:
			d.beacon()
		}
	}
}

// usable reports whether an interface may carry discovery.
func (d *Discovery) usable(ifi net.Interface) bool {
	const need = net.FlagUp | net.FlagMulticast
	if ifi.Flags&need != need || ifi.Flags&(net.FlagLoopback|net.FlagPointToPoint) != 0 {
		return false
	}
	if slices.Contains(d.cfg.Exclude, ifi.Name) {
		return false
	}
	if len(d.cfg.Interfaces) == 0 {
		return true
	}
	for _, re := range d.cfg.Interfaces {
		if re.MatchString(ifi.Name) {
			return true
		}
	}
	return false
}

// addresses finds an interface's link-local IPv6 address and a usable IPv4
// address (global unicast, RFC 1918 included, 169.254/16 not).
func addresses(ifi net.Interface) (ll, v4 netip.Addr) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		ip, ok := netip.AddrFromSlice(ipn.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		switch {
		case ip.Is6() && ip.IsLinkLocalUnicast() && !ll.IsValid():
			ll = ip
		case ip.Is4() && ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast() && !v4.IsValid():
			v4 = ip
		}
	}
	return
}

// rescan brings the set of interfaces in use and their group memberships
// up to date.
func (d *Discovery) rescan() {
	list, err := net.Interfaces()
	if err != nil {
		d.log.Warn("cannot list interfaces", "err", err)
		return
	}
	found := map[string]*iface{}
	for _, ifi := range list {
		if !d.usable(ifi) {
			continue
		}
		ll, v4 := addresses(ifi)
		found[ifi.Name] = &iface{ifi: ifi, ll: ll, v4: v4}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	for name, old := range d.ifaces {
		if nw, ok := found[name]; ok && nw.ifi.Index == old.ifi.Index {
			continue
		}
		d.leave(old)
		delete(d.ifaces, name)
		d.log.Info("interface no longer used for discovery", "iface", name)
	}
	for name, nw := range found {
		cur, ok := d.ifaces[name]
		if !ok {
			cur = &iface{ifi: nw.ifi}
			d.ifaces[name] = cur
			d.log.Info("interface used for discovery", "iface", name)
		}
		cur.ifi, cur.ll, cur.v4 = nw.ifi, nw.ll, nw.v4
		if d.p6 != nil && cur.ll.IsValid() && !cur.joined6 {
			if err := d.p6.JoinGroup(&cur.ifi, &net.UDPAddr{IP: GroupV6.AsSlice()}); err != nil {
				d.log.Warn("cannot join IPv6 group", "iface", name, "err", err)
			} else {
				cur.joined6 = true
			}
		}
		if d.p4 != nil && cur.v4.IsValid() && !cur.joined4 {
			if err := d.p4.JoinGroup(&cur.ifi, &net.UDPAddr{IP: GroupV4.AsSlice()}); err != nil {
				d.log.Warn("cannot join IPv4 group", "iface", name, "err", err)
			} else {
				cur.joined4 = true
			}
		} else if cur.joined4 && !cur.v4.IsValid() {
			_ = d.p4.LeaveGroup(&cur.ifi, &net.UDPAddr{IP: GroupV4.AsSlice()})
			cur.joined4 = false
		}
	}
	// Forget sightings of keys that have gone quiet.
	for k, s := range d.seen {
		if d.now().Sub(s.last) > 3*d.cfg.RescanInterval {
			delete(d.seen, k)
		}
	}
}

// leave drops an interface's memberships; the interface may be gone
// already, in which case the kernel has dropped them itself.
func (d *Discovery) leave(i *iface) {
	if i.joined6 {
		_ = d.p6.LeaveGroup(&i.ifi, &net.UDPAddr{IP: GroupV6.AsSlice()})
	}
	if i.joined4 {
		_ = d.p4.LeaveGroup(&i.ifi, &net.UDPAddr{IP: GroupV4.AsSlice()})
	}
}

// beacon sends one beacon on every interface in use.
func (d *Discovery) beacon() {
	b := wire.AppendBeacon(nil, d.cfg.Key, d.port)
	d.mu.Lock()
	targets := make([]iface, 0, len(d.ifaces))
	for _, i := range d.ifaces {
		targets = append(targets, *i)
	}
	d.mu.Unlock()
	for _, i := range targets {
		if i.joined6 {
			dst := &net.UDPAddr{IP: GroupV6.AsSlice(), Port: UDPPort, Zone: i.ifi.Name}
			if _, err := d.p6.WriteTo(b, &ipv6.ControlMessage{IfIndex: i.ifi.Index}, dst); err != nil {
				d.log.Debug("beacon not sent", "iface", i.ifi.Name, "err", err)
			} else {
				d.sent.Add(1)
			}
		}
		if i.joined4 {
			dst := &net.UDPAddr{IP: GroupV4.AsSlice(), Port: UDPPort}
			if _, err := d.p4.WriteTo(b, &ipv4.ControlMessage{IfIndex: i.ifi.Index}, dst); err != nil {
				d.log.Debug("beacon not sent", "iface", i.ifi.Name, "err", err)
			} else {
				d.sent.Add(1)
			}
		}
	}
}

// readLoop hands every datagram read to handleBeacon until the socket is
// closed. read is one read from the IPv6 or the IPv4 socket: the two
// packages' ReadFrom differ only in their control message type, which read
// reduces to the arrival interface's index (0 when the kernel gave none).
func (d *Discovery) readLoop(read func(buf []byte) (n, ifIndex int, src net.Addr, err error)) {
	defer d.wg.Done()
	buf := make([]byte, 2048)
	for {
		n, idx, src, err := read(buf)
		if err != nil {
			if d.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			d.log.Debug("beacon read failed", "err", err)
			continue
		}
		d.received.Add(1)
		d.handleBeacon(idx, addrPortOf(src), buf[:n])
	}
}

// read6 is one read for readLoop from the IPv6 socket.
func (d *Discovery) read6(buf []byte) (int, int, net.Addr, error) {
	n, cm, src, err := d.p6.ReadFrom(buf)
	if cm == nil {
		return n, 0, src, err
	}
	return n, cm.IfIndex, src, err
}

// read4 is one read for readLoop from the IPv4 socket.
func (d *Discovery) read4(buf []byte) (int, int, net.Addr, error) {
	n, cm, src, err := d.p4.ReadFrom(buf)
	if cm == nil {
		return n, 0, src, err
	}
	return n, cm.IfIndex, src, err
}

func addrPortOf(a net.Addr) netip.AddrPort {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.AddrPort()
	}
	return netip.AddrPort{}
}

// checkBeacon is the part of a beacon's fate that needs no state: it
// parses data, from src, and says whether it is worth looking further
// (ignoreNone), giving the sender's key, TCP port and address.
func checkBeacon(self wire.PublicKey, src netip.AddrPort, data []byte) (key wire.PublicKey, port uint16, ip netip.Addr, why ignoreReason) {
	key, port, err := wire.ParseBeacon(data)
	if err != nil {
		return key, 0, ip, ignoreMalformed
	}
	if key == self {
		return key, 0, ip, ignoreOwn
	}
	ip = src.Addr().Unmap()
	if !ip.IsValid() || ip.IsUnspecified() || ip.IsMulticast() || ip.IsLoopback() {
		return key, 0, ip, ignoreSource
	}
	return key, port, ip, ignoreNone
}

// dialDecision is what decideDial knows of one sender on one interface.
type dialDecision struct {
	self, key wire.PublicKey
	// seen is the sender's sighting on the interface; known is false for
	// its first beacon there.
	seen  sighting
	known bool
	// busy: we are dialling or running a peering with it there already,
	// or discovery is closing.
	busy  bool
	now   time.Time
	grace time.Duration
}

// decideDial is the stateful part of a beacon's fate as a pure function:
// the sighting to store and whether to dial (ignoreNone) or why not. The
// lower key dials; the higher one waits for grace before dialling itself,
// in case the other side cannot. A sender in back-off is not dialled
// before its next attempt is due.
func decideDial(in dialDecision) (sighting, ignoreReason) {
	s := in.seen
	if !in.known {
		s.first = in.now
	}
	s.last = in.now
	switch {
	case in.busy:
		return s, ignoreConnected
	case in.now.Before(s.nextDial):
		return s, ignoreBackoff
	case !in.self.Less(in.key) && in.now.Sub(s.first) < in.grace:
		return s, ignoreWaiting
	}
	return s, ignoreNone
}

// handleBeacon acts on one datagram that arrived on the interface with
// index ifIndex from src: checkBeacon and decideDial decide, and a dial
// they allow runs on its own goroutine.
func (d *Discovery) handleBeacon(ifIndex int, src netip.AddrPort, data []byte) {
	key, port, ip, why := checkBeacon(d.cfg.Key, src, data)
	if why != ignoreNone {
		d.ignore(why)
		return
	}
	d.mu.Lock()
	in := d.interfaceByIndex(ifIndex)
	if in == nil {
		d.mu.Unlock()
		d.ignore(ignoreInterface)
		return
	}
	zone := in.ifi.Name
	id := key.String() + "|" + zone
	prev, known := d.seen[id]
	s, why := decideDial(dialDecision{self: d.cfg.Key, key: key, seen: prev, known: known,
		busy: d.pending[id] || d.closed, now: d.now(), grace: d.cfg.DialGrace})
	d.seen[id] = s
	if why != ignoreNone {
		d.mu.Unlock()
		d.ignore(why)
		return
	}
	d.pending[id] = true
	remote, local := dialAddrs(in, ip, port)
	d.mu.Unlock()

	if d.peers.Connected(key, zone) {
		d.unpend(id)
		d.ignore(ignoreConnected)
		return
	}
	if !d.spawn(func() { d.dialDiscovered(id, key, zone, local, remote) }) {
		d.unpend(id)
	}
}

// interfaceByIndex returns the interface in use with index idx, or nil;
// d.mu is held.
func (d *Discovery) interfaceByIndex(idx int) *iface {
	for _, i := range d.ifaces {
		if i.ifi.Index == idx {
			return i
		}
	}
	return nil
}

// dialAddrs are the addresses to dial a sender at ip:port heard on in
// from: our own address on in of the sender's family (unset when in has
// none), and link-local addresses scoped to in.
func dialAddrs(in *iface, ip netip.Addr, port uint16) (remote, local netip.AddrPort) {
	zone := in.ifi.Name
	own := in.ll
	if ip.Is4() {
		own = in.v4
	}
	if ip.Is6() && ip.IsLinkLocalUnicast() {
		ip = ip.WithZone(zone)
	}
	if own.IsValid() {
		if own.Is6() {
			own = own.WithZone(zone)
		}
		local = netip.AddrPortFrom(own, 0)
	}
	return netip.AddrPortFrom(ip, port), local
}

// unpend forgets that we dial or run a peering with id.
func (d *Discovery) unpend(id string) {
	d.mu.Lock()
	delete(d.pending, id)
	d.mu.Unlock()
}

// dialDiscovered dials a discovered sender and runs the peering until it
// ends, then sets when it may be dialled again.
func (d *Discovery) dialDiscovered(id string, key wire.PublicKey, zone string, local, remote netip.AddrPort) {
	defer d.unpend(id)
	d.dials.Add(1)
	ctx, cancel := context.WithTimeout(d.ctx, d.cfg.DialTimeout)
	nc, err := d.dial(ctx, local, remote, zone)
	cancel()
	if err != nil {
		d.dialFailures.Add(1)
		d.backOff(id, 0)
		d.log.Debug("cannot dial discovered peer", "peer", key, "remote", remote.String(), "iface", zone, "err", err)
		return
	}
	info := overlay.PeerInfo{
		URI:       "tcp://" + remote.String(),
		Transport: "tcp",
		Origin:    overlay.OriginLAN,
		Interface: zone,
		Type:      router.PeerMulticast,
	}
	started := d.now()
	err = d.peers.Handle(d.ctx, nc, info, key)
	wait := d.backOff(id, d.now().Sub(started))
	d.log.Debug("discovered peering ended", "peer", key, "iface", zone, "reason", err, "next_dial_in", wait.Round(time.Millisecond))
}

// backOff records that an attempt to dial id ended after the peering was up
// for uptime (0 when the dial failed) and sets when the next may start;
// it returns the wait. A sighting pruned meanwhile starts afresh.
func (d *Discovery) backOff(id string, uptime time.Duration) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	s, ok := d.seen[id]
	if !ok {
		return 0
	}
	if s.retry == nil {
		s.retry = peers.Backoff{}.NewRetry()
	}
	wait, _ := s.retry.Next(uptime)
	s.nextDial = d.now().Add(wait)
	d.seen[id] = s
	return wait
}

// dialTCP connects to a discovered peer from our address on its interface,
// with the reference's TCP options.
func (d *Discovery) dialTCP(ctx context.Context, local, remote netip.AddrPort, _ string) (net.Conn, error) {
	dl := net.Dialer{
		KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: TCPKeepAlive, Interval: TCPKeepAlive, Count: 3},
		Control:         link.ControlTCP(d.peers.PeerTimeout()),
	}
	if local.IsValid() {
		dl.LocalAddr = net.TCPAddrFromAddrPort(local)
	}
	nc, err := dl.DialContext(ctx, "tcp", remote.String())
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	return nc, nil
}

func (d *Discovery) acceptLoop() {
	defer d.wg.Done()
	accept.Serve(d.ctx, d.ln, accept.Config{
		Slots: d.slots,
		Spawn: d.spawn,
		Refuse: func(nc net.Conn) {
			d.log.Warn("refusing inbound connection: too many handshakes in progress", "remote", nc.RemoteAddr().String(), "limit", d.slots.Cap())
		},
		Logger: d.log,
		Serve:  d.serveInbound,
	})
}

// serveInbound runs a connection to our discovery listener, if it came in
// over an interface discovery uses. release gives its handshake slot back
// once the handshake is over.
func (d *Discovery) serveInbound(nc net.Conn, release func()) {
	zone := d.arrivalInterface(nc)
	if zone == "" {
		d.log.Debug("refusing connection from outside the discovery interfaces", "remote", nc.RemoteAddr().String())
		nc.Close()
		return
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: TCPKeepAlive, Interval: TCPKeepAlive, Count: 3})
	}
	info := overlay.PeerInfo{
		URI:       "tcp://" + nc.RemoteAddr().String(),
		Transport: "tcp",
		Origin:    overlay.OriginLAN,
		Interface: zone,
		Inbound:   true,
		Type:      router.PeerMulticast,
	}
	err := d.peers.HandleAccepted(d.ctx, nc, info, release)
	d.log.Debug("discovered peering ended", "remote", info.URI, "iface", zone, "reason", err)
}

// arrivalInterface names the interface in use that a connection came in
// on: from the remote's zone for link-local IPv6, else by our local
// address. "" means none.
func (d *Discovery) arrivalInterface(nc net.Conn) string {
	ra, _ := nc.RemoteAddr().(*net.TCPAddr)
	la, _ := nc.LocalAddr().(*net.TCPAddr)
	d.mu.Lock()
	defer d.mu.Unlock()
	if ra != nil && ra.Zone != "" {
		if _, ok := d.ifaces[ra.Zone]; ok {
			return ra.Zone
		}
		return ""
	}
	if la == nil {
		return ""
	}
	lip := la.AddrPort().Addr().Unmap()
	for name, i := range d.ifaces {
		if i.v4 == lip || i.ll == lip.WithZone("") {
			return name
		}
	}
	return ""
}
