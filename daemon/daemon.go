package daemon

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/addressing/lookup"
	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/admin/metrics"
	"github.com/pineconed/pineconed/admin/statuspage"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/datapath"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/wire"
	"github.com/pineconed/pineconed/tun"
)

// Options configure a Daemon.
type Options struct {
	// Config is the configuration to start with.
	Config config.Config
	// ConfigPath is the file Reload reads; "" means Reload has no file and
	// changes nothing. Once running, a missing file is a reload error even
	// for the optional default path.
	ConfigPath string
	// Logger receives everything the daemon logs. Nil means slog.Default().
	Logger *slog.Logger
	// Level is the level variable behind Logger's handler; Reload sets it
	// when log_level changes. Nil means log_level changes need a restart.
	Level *slog.LevelVar
	// Version is reported by getSelf and pineconed_build_info.
	Version string
	// Notify sends a state to the service manager (sd_notify). Nil means
	// SdNotify, which does nothing when NOTIFY_SOCKET is unset.
	Notify func(state string)
	// TUNNetNS, when not empty, creates the TUN in that network namespace
	// (a path such as /run/netns/NAME); tests use it.
	TUNNetNS string

	// resolver tunes the address resolver; tests shorten its retries.
	resolver lookup.Config
}

// Daemon is a running pineconed: overlay node, peerings, resolver,
// sessions, TUN, admin socket and metrics, wired together.
type Daemon struct {
	opts   Options
	log    *slog.Logger
	notify func(string)

	priv    ed25519.PrivateKey
	keyLock *config.KeyLock // held until shutdown: one daemon per key
	key     wire.PublicKey
	addr    netip.Addr
	subnet  netip.Prefix
	mtu     int
	started time.Time

	node     *overlay.Node
	path     *datapath.Path // TUN ⇄ resolver ⇄ sessions ⇄ overlay
	peers    *peers.Manager
	dev      *tun.Device // nil for a relay-only node; the path closes it
	adminSrv *admin.Server
	metrics  *metrics.Metrics
	metSrv   *metrics.Server
	history  *statuspage.History // traffic rates for the status page; nil without metrics
	mc       *multicastRunner
	cards    *cardStore

	// Admin lookups waiting for the resolver, by prefix; onLookupDone
	// hands each the outcome of the lookup for its prefix.
	lookupMu      sync.Mutex
	lookupWaiters map[addressing.KeyPrefix][]chan lookupResult

	// Ping probes waiting for their echo reply, by echo id.
	pingMu   sync.Mutex
	pings    map[uint64]pingWaiter
	pingNext atomic.Uint64

	// reloadMu serialises Reload and guards cfg.
	reloadMu sync.Mutex
	cfg      config.Config

	// fatal carries the first fault the daemon cannot run on (the TUN
	// deleted from outside); Run ends with it.
	fatal chan error

	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// New starts a daemon: it checks what the configuration decides (see
// preflight; those errors are config.Errors), loads or creates the private
// key and locks it, opens the TUN,
// starts the node, the peerings, multicast discovery, the admin socket and
// the metrics endpoint, and returns once all of them are up (the moment to
// send READY=1, which Run does). On error nothing is left running.
func New(opts Options) (_ *Daemon, err error) {
	cfg := opts.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	notify := opts.Notify
	if notify == nil {
		notify = SdNotify(log)
	}
	d := &Daemon{
		opts:          opts,
		log:           log,
		notify:        notify,
		cfg:           cfg,
		mtu:           effectiveMTU(cfg.TUN.MTU),
		started:       time.Now(),
		lookupWaiters: map[addressing.KeyPrefix][]chan lookupResult{},
		pings:         map[uint64]pingWaiter{},
		stop:          make(chan struct{}),
		fatal:         make(chan error, 1),
	}
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, fmt.Errorf("echo id seed: %w", err)
	}
	d.pingNext.Store(binary.BigEndian.Uint64(seed[:]))
	defer func() {
		if err != nil {
			d.shutdown()
		}
	}()

	tlsConf, err := preflight(cfg, opts.ConfigPath)
	if err != nil {
		return nil, err
	}
	if err := d.loadIdentity(cfg); err != nil {
		return nil, err
	}
	if err := d.startDataPath(cfg); err != nil {
		return nil, err
	}
	if err := d.startPeerings(cfg, tlsConf); err != nil {
		return nil, err
	}
	if err := d.startServices(cfg); err != nil {
		return nil, err
	}
	return d, nil
}

// loadIdentity loads or creates the private key and locks it: one daemon
// per key.
func (d *Daemon) loadIdentity(cfg config.Config) error {
	var err error
	d.priv, _, err = config.LoadOrCreateKey(cfg.PrivateKeyFile, d.log)
	if err != nil {
		return fmt.Errorf("private key %s: %w", cfg.PrivateKeyFile, err)
	}
	if d.keyLock, err = config.LockKey(cfg.PrivateKeyFile); err != nil {
		return err
	}
	d.key = wire.PublicKeyOf(d.priv)
	d.addr = addressing.NodeAddr(d.key)
	d.subnet = addressing.Subnet(d.key)
	d.log.Info("identity", "key", d.key, "addr", d.addr.String(), "subnet", d.subnet.String())
	return nil
}

// startDataPath makes the overlay node, opens the TUN (unless relay-only)
// and builds the packet path between them; startServices starts it.
func (d *Daemon) startDataPath(cfg config.Config) error {
	var err error
	d.node = overlay.New(d.priv, overlay.Config{Logger: d.log.With("component", "overlay")})
	if cfg.TUN.Enable {
		d.dev, err = tun.Open(tun.Config{
			Name:      cfg.TUN.Name,
			MTU:       d.mtu,
			Addresses: []netip.Prefix{addressing.NodeAddrPrefix(d.key)},
			NetNSPath: d.opts.TUNNetNS,
		})
		if err != nil {
			return fmt.Errorf("open TUN (set [tun] enable = false for a relay-only node without CAP_NET_ADMIN): %w", err)
		}
		d.log.Info("TUN up", "iface", d.dev.Name(), "mtu", d.mtu, "addr", addressing.NodeAddrPrefix(d.key).String(),
			"offloads", d.dev.Offloads())
	} else {
		d.log.Info("TUN disabled: relay-only node")
	}
	d.path, err = datapath.New(datapath.Config{
		Private:    d.priv,
		MTU:        d.mtu,
		Overlay:    d.node,
		Device:     d.dev,
		Resolver:   d.opts.resolver,
		Logger:     d.log,
		EchoReply:  d.onEchoReply,
		LookupDone: d.onLookupDone,
		Tick:       d.expireCards,
	})
	if err != nil {
		return err
	}
	return nil
}

// startPeerings starts the peer manager (listeners, static peers), the
// peer cards and LAN discovery.
func (d *Daemon) startPeerings(cfg config.Config, tlsConf *tls.Config) error {
	var err error
	pc := d.peersConfig(cfg)
	pc.TLS = tlsConf
	d.peers, err = peers.New(pc, d.node)
	if err != nil {
		return err
	}
	d.cards = newCardStore(cfg.PrivateKeyFile)
	if err := d.loadCards(); err != nil {
		return err
	}
	d.scanCardDirs(cfg.Peers.CardDirs)
	if cfg.Multicast.Enable {
		if d.mc, err = startMulticast(d, cfg.Multicast); err != nil {
			return err
		}
	}
	return nil
}

// startServices starts the metrics endpoint and status page, the packet
// path's goroutines and the daemon's own, and the admin socket last, so
// that nobody talks to a half-started daemon.
func (d *Daemon) startServices(cfg config.Config) error {
	var err error
	d.metrics = metrics.New(d.opts.Version, d.Stats)
	if cfg.Metrics.Listen != "" {
		d.metSrv = metrics.NewServer(cfg.Metrics.Listen, d.metrics, d.log.With("component", "metrics"))
		d.history = statuspage.NewHistory(backend{d}, 0, 0)
		d.metSrv.Page = statuspage.Handler(backend{d}, d.history)
		if err := d.metSrv.Start(); err != nil {
			d.metSrv = nil
			return fmt.Errorf("metrics on %s: %w", cfg.Metrics.Listen, err)
		}
	}

	d.path.Start()
	if d.history != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.history.Run(d.stop)
		}()
	}
	if d.dev != nil {
		d.wg.Add(1)
		go d.watchTUN()
	}

	if cfg.Admin.Socket != "" {
		d.adminSrv, err = admin.Listen(admin.ServerConfig{
			Path:    cfg.Admin.Socket,
			Group:   cfg.Admin.Group,
			Backend: backend{d},
			Logger:  d.log.With("component", "admin"),
		})
		if err != nil {
			return fmt.Errorf("admin socket %s: %w", cfg.Admin.Socket, err)
		}
		d.log.Info("admin socket listening", "socket", cfg.Admin.Socket)
	}
	return nil
}

// PublicKey is the node's key.
func (d *Daemon) PublicKey() wire.PublicKey { return d.key }

// Address is the node's overlay address.
func (d *Daemon) Address() netip.Addr { return d.addr }

// MTU is the TUN MTU the daemon runs with (and announces in handshakes).
func (d *Daemon) MTU() int { return d.mtu }

// AdminPath is the admin socket path, "" when there is none.
func (d *Daemon) AdminPath() string {
	if d.adminSrv == nil {
		return ""
	}
	return d.adminSrv.Path()
}

// MetricsAddr is the address the metrics endpoint listens on, "" when off.
func (d *Daemon) MetricsAddr() string {
	if d.metSrv == nil {
		return ""
	}
	return d.metSrv.Addr()
}

// ListenAddrs are the bound addresses of the peering listeners.
func (d *Daemon) ListenAddrs() []string {
	var out []string
	for _, a := range d.peers.ListenAddrs() {
		out = append(out, a.String())
	}
	return out
}

// Close shuts the daemon down: admin socket and metrics first (so nobody
// sees a half-stopped node), then discovery and peerings, the TUN, the
// node and the daemon's goroutines. It is safe to call more than once.
func (d *Daemon) Close() error {
	d.shutdown()
	return nil
}

func (d *Daemon) shutdown() {
	d.closeOnce.Do(func() {
		if d.adminSrv != nil {
			if err := d.adminSrv.Close(); err != nil {
				d.log.Warn("closing admin socket", "err", err)
			}
		}
		if d.metSrv != nil {
			if err := d.metSrv.Close(); err != nil {
				d.log.Warn("closing metrics server", "err", err)
			}
		}
		d.reloadMu.Lock()
		mc := d.mc
		d.mc = nil
		d.reloadMu.Unlock()
		if mc != nil {
			mc.close()
		}
		if d.peers != nil {
			if err := d.peers.Close(); err != nil {
				d.log.Warn("closing peerings", "err", err)
			}
		}
		close(d.stop)
		switch {
		case d.path != nil:
			// Stops the packet path's goroutines; closing the TUN ends
			// its reader and writer.
			d.path.Close()
		case d.dev != nil:
			if err := d.dev.Close(); err != nil {
				d.log.Warn("closing TUN", "err", err)
			}
		}
		d.wg.Wait()
		if d.node != nil {
			d.node.Close()
		}
		d.keyLock.Release()
	})
}

// Run sends READY=1, then serves until ctx ends and shuts down with
// STOPPING=1. Reload requests come in on reload. It returns nil after a
// requested shutdown, or the fault that made the daemon stop on its own
// (its TUN deleted from outside), after shutting down just the same.
func (d *Daemon) Run(ctx context.Context, reload <-chan struct{}) error {
	d.notify("READY=1")
	d.log.Info("pineconed ready", "version", d.opts.Version, "key", d.key, "addr", d.addr.String())
	for {
		select {
		case <-ctx.Done():
			d.notify("STOPPING=1")
			d.log.Info("shutting down")
			d.Close()
			d.log.Info("stopped")
			return nil
		case err := <-d.fatal:
			d.notify("STOPPING=1")
			d.log.Error("shutting down on a fault; the service manager should restart us", "err", err)
			d.Close()
			d.log.Info("stopped")
			return err
		case <-reload:
			d.Reload()
		}
	}
}

// watchTUN reports the TUN's deletion from outside as fatal. Recreating
// the interface would need its addresses, routes and the reader and
// writer rebuilt under traffic; exiting non-zero lets the service manager
// restart the whole daemon cleanly, which it does within seconds.
func (d *Daemon) watchTUN() {
	defer d.wg.Done()
	select {
	case <-d.stop:
	case <-d.dev.Gone():
		err := fmt.Errorf("TUN %s was deleted from outside the daemon (ip link del?); its addresses and routes are gone", d.dev.Name())
		d.log.Error("TUN interface deleted", "name", d.dev.Name())
		select {
		case d.fatal <- err:
		default:
		}
	}
}

// LoadConfig reads the configuration the way the daemon does: path is
// parsed strictly; when optional is true a missing file means Default().
func LoadConfig(path string, optional bool) (config.Config, error) {
	if path == "" {
		return config.Default(), nil
	}
	cfg, err := config.Load(path)
	if err != nil && optional && errors.Is(err, fs.ErrNotExist) {
		return config.Default(), nil
	}
	return cfg, err
}

// Reload reads the configuration file again and applies what can change
// while running; see config.Changes. A file that does not load, or is
// missing (even the optional default file), is logged and the running
// configuration stays. It returns that error, if any.
func (d *Daemon) Reload() error {
	d.notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", monotonicUsec()))
	defer d.notify("READY=1")
	if d.opts.ConfigPath == "" {
		d.log.Info("reload: no configuration file to read; nothing changes")
		return nil
	}
	// A missing file means built-in defaults only at start-up. At a
	// reload it is far more likely deleted or moved by mistake, and
	// reverting a running node to the defaults (no peers, no listeners)
	// would cut it off.
	if _, err := os.Stat(d.opts.ConfigPath); errors.Is(err, fs.ErrNotExist) {
		d.log.Error("reload: configuration file is missing; keeping the running configuration", "file", d.opts.ConfigPath)
		return fmt.Errorf("reload: %s: %w", d.opts.ConfigPath, err)
	}
	cfg, err := LoadConfig(d.opts.ConfigPath, false)
	if err != nil {
		d.log.Error("reload failed; keeping the running configuration", "file", d.opts.ConfigPath, "err", err)
		return err
	}

	d.apply(cfg)
	// The card directories are read again even when the file did not
	// change: their contents may have.
	d.scanCardDirs(cfg.Peers.CardDirs)
	return nil
}

// apply makes the live changes between the running configuration and cfg.
func (d *Daemon) apply(cfg config.Config) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	old := d.cfg
	ch := config.Diff(old, cfg)
	if ch.Empty() {
		d.log.Info("reload: configuration unchanged")
		return
	}
	live := cfg
	// Keys that need a restart keep their running values, so that the next
	// Diff still reports them.
	live.PrivateKeyFile, live.LogFormat = old.PrivateKeyFile, old.LogFormat
	live.TUN, live.Admin, live.Metrics, live.Peers.TLS = old.TUN, old.Admin, old.Metrics, old.Peers.TLS

	if ch.Changed("log_level") {
		if d.opts.Level != nil {
			d.opts.Level.Set(cfg.LogLevel)
		} else {
			live.LogLevel = old.LogLevel
		}
	}
	for _, u := range ch.StaticRemoved {
		if err := d.peers.Remove(u); err != nil && !errors.Is(err, peers.ErrUnknown) {
			d.log.Warn("reload: removing static peer", "uri", u, "err", err)
		}
	}
	for _, u := range ch.StaticAdded {
		if err := d.peers.Add(u, overlay.OriginStatic); err != nil && !errors.Is(err, peers.ErrExists) {
			d.log.Error("reload: static peer not added", "uri", u, "err", err)
			live.Peers.Static = slices.DeleteFunc(slices.Clone(live.Peers.Static), func(x config.PeerURI) bool { return x.String() == u.String() })
		}
	}
	d.applyPeerPolicy(old, &live, ch)
	if ch.Changed("multicast") {
		if d.mc != nil {
			d.mc.close()
			d.mc = nil
		}
		if cfg.Multicast.Enable {
			mc, err := startMulticast(d, cfg.Multicast)
			if err != nil {
				d.log.Error("reload: multicast discovery did not restart", "err", err)
				live.Multicast.Enable = false
			} else {
				d.mc = mc
			}
		}
	}
	d.cfg = live
	// What was applied, not what the file asked for: a listener that did
	// not open or a peer that was not added is left out of live (and was
	// logged as an error), and restart-only keys keep their old values.
	if applied := config.Diff(old, live); applied.Empty() {
		d.log.Info("reload: no change could be applied live")
	} else {
		d.log.Info("configuration reloaded", "changes", applied)
	}
	if ch.NeedsRestart() {
		d.log.Warn("some changes take effect only after a restart", "keys", ch.Restart)
	}
}

// peersConfig builds the peers package's configuration.
func (d *Daemon) peersConfig(cfg config.Config) peers.Config {
	pc := peers.Config{
		PrivateKey:  d.priv,
		AllowedKeys: slices.Clone(cfg.Peers.AllowedKeys),
		MaxPeers:    cfg.Peers.MaxPeers,
		PeerTimeout: cfg.Peers.PeerTimeout,
		Listen:      slices.Clone(cfg.Peers.Listen),
		Static:      slices.Clone(cfg.Peers.Static),
		Logger:      d.log.With("component", "peers"),
	}
	return pc
}
