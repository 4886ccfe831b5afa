package tun

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// MaxMTU is the largest MTU Open accepts: the largest non-jumbo IPv6 packet.
// The daemon should stay below what one overlay frame can carry once session
// overhead is added (pineconeip uses 65000).
const MaxMTU = 65535

// DefaultName is the interface name used when Config.Name is empty.
const DefaultName = "pinecone0"

// DefaultMTU is the MTU used when Config.MTU is zero. With offloads on, TCP
// hands us 64 KiB super-packets whatever the MTU, so the MTU mostly sets the
// size of the packets the overlay carries.
const DefaultMTU = MinMTU

// in6AddrGenModeNone is IN6_ADDR_GEN_MODE_NONE from linux/if_link.h.
const in6AddrGenModeNone = 1

// Config says how to open and configure the device.
type Config struct {
	// Name of the interface; DefaultName if empty. "pinecone%d" lets the
	// kernel pick a free number.
	Name string
	// MTU of the interface; DefaultMTU if zero, refused below MinMTU.
	MTU int
	// Addresses to assign, e.g. our node address as fdXX:…/8. They are added
	// with IFA_F_NODAD (usable at once, no duplicate detection: nobody else
	// is on this link) and IFA_F_NOPREFIXROUTE (routes come from Routes
	// only, so there is exactly one route per prefix).
	Addresses []netip.Prefix
	// Routes sent into the TUN; OverlayPrefixes (fd00::/8 and fc00::/8) if
	// nil, none if empty but non-nil. Our own /64 lies inside fc00::/8, so
	// with the defaults traffic to it goes into the TUN as well; a daemon
	// that serves a LAN from its /64 adds the more specific /64 route
	// towards that LAN itself, and longest-prefix match takes it.
	Routes []netip.Prefix
	// NetNSPath, if not empty, is a network namespace (e.g.
	// /run/netns/NAME) to create the device in. The calling goroutine is
	// moved there only for the duration of Open.
	NetNSPath string
}

// Device is an open, configured TUN interface.
type Device struct {
	dev    wgtun.Device
	nl     *netlink.Handle
	name   string
	index  int
	mtu    int
	c      counters
	events sync.WaitGroup

	// The netlink watch on our interface: gone is closed when the kernel
	// reports the interface deleted from outside (`ip link del`); stopWatch
	// ends the watch; ns is the namespace the interface lives in, so the
	// watch can resubscribe from any thread.
	ns        netns.NsHandle
	gone      chan struct{}
	stopWatch chan struct{}
	log       *slog.Logger

	mu      sync.Mutex
	writers []*Writer
	closed  bool
}

// Open creates the TUN (with virtio-net-header offloads when the kernel has
// them), assigns the addresses, adds the routes and brings the link up. On
// any error nothing is left behind.
func Open(cfg Config) (*Device, error) {
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MTU < MinMTU || cfg.MTU > MaxMTU {
		return nil, fmt.Errorf("tun %s: MTU %d outside [%d, %d]: IPv6 needs at least %d", cfg.Name, cfg.MTU, MinMTU, MaxMTU, MinMTU)
	}
	if cfg.Routes == nil {
		cfg.Routes = OverlayPrefixes
	}
	for _, p := range cfg.Addresses {
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
			return nil, fmt.Errorf("tun %s: address %v is not an IPv6 prefix", cfg.Name, p)
		}
	}
	for _, p := range cfg.Routes {
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
			return nil, fmt.Errorf("tun %s: route %v is not an IPv6 prefix", cfg.Name, p)
		}
	}
	if cfg.NetNSPath == "" {
		return open(cfg)
	}
	return openInNetNS(cfg)
}

// openInNetNS runs open with the calling OS thread moved into the namespace.
// Every socket open makes (the TUN's netlink listener, our netlink handle) is
// bound to the namespace it was created in, so the device keeps working from
// any thread afterwards.
func openInNetNS(cfg Config) (*Device, error) {
	target, err := netns.GetFromPath(cfg.NetNSPath)
	if err != nil {
		return nil, fmt.Errorf("tun %s: netns %s: %w", cfg.Name, cfg.NetNSPath, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("tun %s: current netns: %w", cfg.Name, err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("tun %s: enter netns %s: %w", cfg.Name, cfg.NetNSPath, err)
	}
	d, openErr := open(cfg)
	if err := netns.Set(orig); err != nil {
		// The thread is stuck in the wrong namespace: keep it locked so
		// the runtime throws it away when this goroutine ends.
		if d != nil {
			d.Close()
		}
		return nil, fmt.Errorf("tun %s: leave netns %s: %w", cfg.Name, cfg.NetNSPath, err)
	}
	runtime.UnlockOSThread()
	return d, openErr
}

func open(cfg Config) (_ *Device, err error) {
	// TUNSETIFF attaches to an existing TUN of that name instead of
	// failing, and Close would then delete an interface someone else made
	// (a persistent TUN, another program's device). Refuse instead.
	if !strings.Contains(cfg.Name, "%") {
		if l, lerr := netlink.LinkByName(cfg.Name); lerr == nil {
			return nil, fmt.Errorf("tun %s: an interface of that name already exists (type %s, index %d); it is not ours to take over: delete it or set another [tun] name",
				cfg.Name, l.Type(), l.Attrs().Index)
		}
	}
	dev, err := wgtun.CreateTUN(cfg.Name, cfg.MTU)
	if err != nil {
		return nil, fmt.Errorf("tun %s: create: %w", cfg.Name, err)
	}
	d := &Device{dev: dev, mtu: cfg.MTU, ns: -1, gone: make(chan struct{}), stopWatch: make(chan struct{}), log: slog.Default()}
	// Drain the device's event channel: its status goroutines block on a
	// full channel, and a blocked one would hang Close. The loop ends when
	// Close closes the channel.
	d.events.Add(1)
	go func() {
		defer d.events.Done()
		for range dev.Events() {
		}
	}()
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.name, err = dev.Name(); err != nil {
		return nil, fmt.Errorf("tun %s: name: %w", cfg.Name, err)
	}
	if d.nl, err = netlink.NewHandle(unix.NETLINK_ROUTE); err != nil {
		return nil, fmt.Errorf("tun %s: netlink: %w", d.name, err)
	}
	link, err := d.nl.LinkByName(d.name)
	if err != nil {
		return nil, fmt.Errorf("tun %s: find link: %w", d.name, err)
	}
	d.index = link.Attrs().Index
	if d.ns, err = netns.Get(); err != nil {
		return nil, fmt.Errorf("tun %s: current netns: %w", d.name, err)
	}
	if err := d.startWatch(); err != nil {
		return nil, err
	}
	// No link-local address: nothing on a TUN needs one, and without it the
	// kernel sends no router or multicast listener traffic into the TUN.
	// Kernels without the knob are fine too, so a failure is only logged.
	if err := d.nl.LinkSetIP6AddrGenMode(link, in6AddrGenModeNone); err != nil {
		slog.Debug("tun: cannot disable link-local address", "iface", d.name, "err", err)
	}
	if err := d.nl.LinkSetUp(link); err != nil {
		return nil, fmt.Errorf("tun %s: link up: %w", d.name, err)
	}
	for _, p := range cfg.Addresses {
		a := &netlink.Addr{
			IPNet: prefixToIPNet(p),
			Flags: unix.IFA_F_NODAD | unix.IFA_F_NOPREFIXROUTE,
		}
		if err := d.nl.AddrReplace(link, a); err != nil {
			return nil, fmt.Errorf("tun %s: add address %s: %w", d.name, p, err)
		}
	}
	for _, p := range cfg.Routes {
		if err := d.addRoute(p.Masked()); err != nil {
			return nil, err
		}
	}
	for _, p := range cfg.Addresses {
		if err := d.waitLocal(p.Addr()); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// Gone is closed when the interface was deleted from outside the daemon
// (`ip link del`), after which the device carries nothing: its addresses
// and routes went with it. It is not closed by Close.
func (d *Device) Gone() <-chan struct{} { return d.gone }

// watchRetry is how long the watch waits before subscribing again after
// its netlink socket failed (say, ENOBUFS after a burst of link events).
const watchRetry = time.Second

// startWatch subscribes to link events in the device's namespace and
// starts the goroutine that closes gone when our interface is deleted. The
// first subscription's error is Open's; later ones are retried.
func (d *Device) startWatch() error {
	ch, err := d.subscribe()
	if err != nil {
		return fmt.Errorf("tun %s: watching the interface: %w", d.name, err)
	}
	d.events.Add(1)
	go func() {
		defer d.events.Done()
		for {
			if d.watch(ch) {
				return
			}
			// The subscription failed: an event may have been lost, so
			// look at the interface itself before subscribing again.
			if _, err := d.nl.LinkByIndex(d.index); err != nil {
				var notFound netlink.LinkNotFoundError
				if errors.As(err, &notFound) {
					d.mu.Lock()
					if !d.closed {
						close(d.gone)
					}
					d.mu.Unlock()
					return
				}
			}
			for ch = nil; ch == nil; {
				select {
				case <-d.stopWatch:
					return
				case <-time.After(watchRetry):
				}
				if ch, err = d.subscribe(); err != nil {
					d.log.Warn("tun: cannot watch the interface", "iface", d.name, "err", err)
					ch = nil
				}
			}
		}
	}()
	return nil
}

// subscribe opens a netlink link-event subscription in the device's
// namespace; it ends (its channel closes) when stopWatch is closed or the
// socket fails.
func (d *Device) subscribe() (chan netlink.LinkUpdate, error) {
	ch := make(chan netlink.LinkUpdate, 16)
	err := netlink.LinkSubscribeWithOptions(ch, d.stopWatch, netlink.LinkSubscribeOptions{
		Namespace: &d.ns,
		ErrorCallback: func(err error) {
			d.log.Debug("tun: link watch", "iface", d.name, "err", err)
		},
	})
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// watch reads link events until ch closes. It reports true when the watch
// is over: the interface was deleted (gone is closed) or Close stopped it.
func (d *Device) watch(ch chan netlink.LinkUpdate) bool {
	deleted := false
	for u := range ch {
		if !deleted && u.Header.Type == unix.RTM_DELLINK && int(u.Index) == d.index {
			deleted = true
			// Close deletes the interface too; only a deletion from
			// outside is news.
			d.mu.Lock()
			closing := d.closed
			d.mu.Unlock()
			if !closing {
				close(d.gone)
			}
		}
		// Keep draining after that until the subscription ends, so that
		// its goroutine is never left blocked on a full channel.
	}
	select {
	case <-d.stopWatch:
		return true
	default:
		return deleted
	}
}

// addRoute adds a route for p into the TUN. It never replaces a route
// another interface holds for the same prefix in the main table: that route
// belongs to someone else (a second pineconed, a VPN, an administrator),
// and replacing it would take their traffic and then delete the route when
// our interface goes away. The error names the interface holding it.
func (d *Device) addRoute(p netip.Prefix) error {
	dst := prefixToIPNet(p)
	existing, err := d.nl.RouteListFiltered(unix.AF_INET6,
		&netlink.Route{Dst: dst, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("tun %s: route %s: listing existing routes: %w", d.name, p, err)
	}
	for _, r := range existing {
		if r.LinkIndex == d.index {
			continue
		}
		return fmt.Errorf("tun %s: route %s is already held by %s; not replacing it (stop whatever owns it, or give this daemon another network namespace)",
			d.name, p, d.describeRoute(r))
	}
	r := &netlink.Route{LinkIndex: d.index, Dst: dst, Table: unix.RT_TABLE_MAIN}
	if err := d.nl.RouteAdd(r); err != nil {
		return fmt.Errorf("tun %s: route %s: %w", d.name, p, err)
	}
	return nil
}

// describeRoute names what a route points at, for an error message.
func (d *Device) describeRoute(r netlink.Route) string {
	if r.Type != unix.RTN_UNICAST {
		return fmt.Sprintf("a route of type %d (unreachable, blackhole, …)", r.Type)
	}
	if l, err := d.nl.LinkByIndex(r.LinkIndex); err == nil {
		return fmt.Sprintf("interface %s", l.Attrs().Name)
	}
	return fmt.Sprintf("interface index %d", r.LinkIndex)
}

// addrReadyTimeout bounds how long Open waits for the kernel to make an
// address local.
const addrReadyTimeout = 3 * time.Second

// waitLocal waits until the kernel delivers packets for a locally. Even with
// IFA_F_NODAD the local route is installed from a work queue a moment after
// the address is added; a packet arriving in that window (say, the reply to
// the first packet a program sends) would be treated as one to forward and
// dropped.
func (d *Device) waitLocal(a netip.Addr) error {
	ip := net.IP(a.AsSlice())
	deadline := time.Now().Add(addrReadyTimeout)
	for {
		rs, err := d.nl.RouteGet(ip)
		if err == nil && len(rs) > 0 && rs[0].Type == unix.RTN_LOCAL {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("tun %s: address %s not local after %v (last error: %v)", d.name, a, addrReadyTimeout, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr().As16()
	return &net.IPNet{IP: net.IP(a[:]), Mask: net.CIDRMask(p.Bits(), 128)}
}

// Name is the interface name.
func (d *Device) Name() string { return d.name }

// Index is the interface index (in the device's namespace).
func (d *Device) Index() int { return d.index }

// MTU is the interface's MTU as the kernel has it now (an administrator may
// have changed it), or the configured one if it cannot be read.
func (d *Device) MTU() int {
	if d.nl != nil {
		if l, err := d.nl.LinkByIndex(d.index); err == nil {
			return l.Attrs().MTU
		}
	}
	return d.mtu
}

// BatchSize is how many packets one read or write may carry: 128 when
// virtio-net-header offloads are on, 1 when the kernel lacks them.
func (d *Device) BatchSize() int { return d.dev.BatchSize() }

// Offloads reports whether the kernel accepted virtio-net-header offloads
// (TSO/GSO on read, GRO on write).
func (d *Device) Offloads() bool { return d.dev.BatchSize() > 1 }

// NewReader returns a Reader that passes on the packets f accepts. Use one
// Reader per device. Its buffers fit the MTU given to Open.
func (d *Device) NewReader(f Filter) *Reader {
	return newReader(d.dev, &d.c, d.mtu, f)
}

// NewWriter starts a Writer. Close stops it; Device.Close closes it too.
func (d *Device) NewWriter(cfg WriterConfig) *Writer {
	w := newWriter(d.dev, &d.c, cfg)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		w.Close()
	} else {
		d.writers = append(d.writers, w)
	}
	return w
}

// Stats returns a snapshot of the counters of the device and its readers and
// writers.
func (d *Device) Stats() Stats { return d.c.snapshot() }

// Close stops the writers, closes the TUN (which removes the interface, its
// addresses and routes) and waits for the device's goroutines. Readers see
// os.ErrClosed.
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	ws := d.writers
	d.writers = nil
	d.mu.Unlock()
	for _, w := range ws {
		w.Close()
	}
	err := d.dev.Close()
	if d.stopWatch != nil {
		close(d.stopWatch)
	}
	d.events.Wait()
	if d.ns >= 0 {
		d.ns.Close()
	}
	if d.nl != nil {
		// A non-persistent TUN disappears with its last file descriptor.
		// Should a leaked descriptor keep it alive, delete it outright.
		if l, lerr := d.nl.LinkByIndex(d.index); lerr == nil && l.Attrs().Name == d.name {
			if derr := d.nl.LinkDel(l); derr != nil {
				err = errors.Join(err, fmt.Errorf("tun %s: delete link: %w", d.name, derr))
			}
		}
		d.nl.Close()
	}
	if err != nil {
		return fmt.Errorf("tun %s: close: %w", d.name, err)
	}
	return nil
}
