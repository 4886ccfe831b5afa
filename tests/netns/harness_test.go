package netns

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/admin"
	"github.com/pineconed/pineconed/config"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Ports every node listens on for peerings when a topology needs it.
const (
	tcpPort = 65432
	wsPort  = 65433
	wssPort = 65434
	wsPath  = "/pinecone"
	// metricsListen is each daemon's metrics endpoint, inside its own
	// namespace (so the same port everywhere is fine).
	metricsListen = "[::1]:9977"
	// tunName is each daemon's TUN device, inside its own namespace.
	tunName = "pcd0"
)

// Bounds on waits. Generous: these machines are shared and slow at times.
const (
	startTimeout   = 20 * time.Second // daemon up and answering on its socket
	stopTimeout    = 10 * time.Second // SIGTERM to exit
	peerTimeout    = 30 * time.Second // peerings made
	reachTimeout   = 45 * time.Second // first ping over the overlay
	commandTimeout = 60 * time.Second // any one command run in a namespace
)

// seq numbers namespaces and links within this run.
var seq atomic.Int64

// Net is one test's network: namespaces, the veths between them and a
// daemon per namespace. Everything is torn down by t.Cleanup.
type Net struct {
	t     *testing.T
	id    int64
	nodes []*Node
	links []*Link
}

// newNet starts an empty network for t.
func newNet(t *testing.T) *Net {
	t.Helper()
	needNetns(t)
	return &Net{t: t, id: seq.Add(1)}
}

// Node is one namespace and the pineconed running in it.
type Node struct {
	t    *testing.T
	net  *Net
	Name string // short test name: a, b, c
	NS   string // namespace name, unique per run
	Dir  string // configuration, key, socket, logs

	ConfigPath, KeyPath, Socket, LogPath string

	// Configuration written by Start. Listen and Static take URIs.
	Listen, Static  []string
	Multicast       bool
	MulticastIfaces []string
	NoTUN           bool // relay-only: [tun] enable = false
	MTU             int  // [tun] mtu; 0 = automatic
	// [peers.tls] files, set by Peer for wss.
	TLSCert, TLSKey, TLSCA string
	LogLevel               string

	// Key and Addr are the node's identity: set when the key is generated
	// by the test (the default), or from getSelf after the first start
	// when the daemon generated it (GenerateKey false).
	Key  wire.PublicKey
	Addr netip.Addr

	mu      sync.Mutex
	proc    *exec.Cmd
	done    chan struct{}
	waitErr error
	starts  int
}

// Link is a veth pair between two namespaces with a ULA /64 of its own.
type Link struct {
	N            int64
	A, B         *Node
	IfA, IfB     string     // interface names in A's and B's namespace
	AddrA, AddrB netip.Addr // fd00:0:0:N::1 and ::2; invalid when link-local only
}

// Node makes a namespace with lo up and a fresh identity. With
// daemonKey the daemon creates the key itself on first start.
func (n *Net) Node(name string, daemonKey ...bool) *Node {
	t := n.t
	t.Helper()
	nd := &Node{t: t, net: n, Name: name, LogLevel: "debug"}
	nd.NS = fmt.Sprintf("pcd-%s-%d-%s", runTag, seq.Add(1), name)
	dir, err := os.MkdirTemp("", "pcd-"+name+"-")
	if err != nil {
		t.Fatal(err)
	}
	nd.Dir = dir
	nd.ConfigPath = filepath.Join(dir, "pineconed.toml")
	nd.KeyPath = filepath.Join(dir, "private.key")
	nd.Socket = filepath.Join(dir, "admin.sock")
	nd.LogPath = filepath.Join(dir, "pineconed.log")
	if len(daemonKey) == 0 || !daemonKey[0] {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(nd.KeyPath, config.EncodeKey(priv), 0o600); err != nil {
			t.Fatal(err)
		}
		nd.Key = wire.PublicKeyOf(priv)
		nd.Addr = addressing.NodeAddr(nd.Key)
	}

	mustRun(t, "ip", "netns", "add", nd.NS)
	// Registered first, so it runs last: after the daemon and every
	// helper process in the namespace have been stopped.
	t.Cleanup(func() {
		nd.killLeftovers()
		if out, err := exec.Command("ip", "netns", "del", nd.NS).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", nd.NS, err, out)
		}
		if t.Failed() {
			t.Logf("node %s files kept in %s", name, dir)
		} else {
			os.RemoveAll(dir)
		}
	})
	t.Cleanup(func() {
		if t.Failed() {
			nd.dumpLog()
		}
	})
	// No DAD: addresses are usable at once, and link-local ones too.
	// Keep addresses on a veth taken down, so that bringing it up again
	// restores the link as it was.
	nd.MustIP("link", "set", "lo", "up")
	for _, k := range []string{"all", "default"} {
		nd.MustRun("sysctl", "-qw", "net.ipv6.conf."+k+".accept_dad=0", "net.ipv6.conf."+k+".keep_addr_on_down=1")
	}
	n.nodes = append(n.nodes, nd)
	return nd
}

// killLeftovers kills whatever still runs in the node's namespace once the
// daemon and the helpers the test started are gone: only children of
// those can be left (an sshd session whose client vanished with the
// overlay), and a namespace is only freed when its last process exits.
func (nd *Node) killLeftovers() {
	out, err := exec.Command("ip", "netns", "pids", nd.NS).Output()
	if err != nil {
		return
	}
	var pids []int
	for _, f := range strings.Fields(string(out)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			continue
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		nd.t.Logf("node %s: killing leftover process %d (%s) in %s", nd.Name, pid, strings.TrimSpace(string(comm)), nd.NS)
		_ = syscall.Kill(pid, syscall.SIGKILL)
		pids = append(pids, pid)
	}
	for _, pid := range pids {
		for i := 0; i < 100; i++ {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// Connect joins a and b with a veth pair. With ula, each end gets an
// address in fd00:0:0:N::/64; otherwise only link-local ones.
func (n *Net) Connect(a, b *Node, ula bool) *Link {
	t := n.t
	t.Helper()
	l := &Link{N: seq.Add(1), A: a, B: b}
	// Created directly in the two namespaces, so the names never exist
	// in the root namespace; still unique per run and at most 15 bytes.
	l.IfA = fmt.Sprintf("v%s%da", runTag, l.N)
	l.IfB = fmt.Sprintf("v%s%db", runTag, l.N)
	if len(l.IfA) > 15 {
		t.Fatalf("interface name %q too long", l.IfA)
	}
	mustRun(t, "ip", "link", "add", l.IfA, "netns", a.NS, "type", "veth", "peer", "name", l.IfB, "netns", b.NS)
	if ula {
		l.AddrA = netip.MustParseAddr(fmt.Sprintf("fd00:0:0:%x::1", l.N))
		l.AddrB = netip.MustParseAddr(fmt.Sprintf("fd00:0:0:%x::2", l.N))
		a.MustIP("addr", "add", l.AddrA.String()+"/64", "dev", l.IfA, "nodad")
		b.MustIP("addr", "add", l.AddrB.String()+"/64", "dev", l.IfB, "nodad")
	}
	a.MustIP("link", "set", l.IfA, "up")
	b.MustIP("link", "set", l.IfB, "up")
	n.links = append(n.links, l)
	return l
}

// Peer makes from dial to over link l with a static peer URI of scheme
// "tcp" or "ws", and to listen for it.
func (n *Net) Peer(from, to *Node, l *Link, scheme string) {
	n.t.Helper()
	var remote netip.Addr
	switch {
	case l.A == to:
		remote = l.AddrA
	case l.B == to:
		remote = l.AddrB
	default:
		n.t.Fatalf("link %d does not reach %s", l.N, to.Name)
	}
	to.listenOn(scheme)
	if scheme == "wss" {
		// to serves a certificate for its link addresses; from trusts it.
		if to.TLSCert == "" {
			n.makeCert(to)
		}
		n.trust(from, to)
	}
	from.Static = append(from.Static, uri(scheme, remote))
}

// uri is the peering URI for scheme at addr.
func uri(scheme string, addr netip.Addr) string {
	switch scheme {
	case "tcp":
		return "tcp://" + netip.AddrPortFrom(addr, tcpPort).String()
	case "ws":
		return "ws://" + netip.AddrPortFrom(addr, wsPort).String() + wsPath
	case "wss":
		return "wss://" + netip.AddrPortFrom(addr, wssPort).String() + wsPath
	}
	panic("unknown scheme " + scheme)
}

func (nd *Node) listenOn(scheme string) {
	l := uri(scheme, netip.IPv6Unspecified())
	for _, have := range nd.Listen {
		if have == l {
			return
		}
	}
	nd.Listen = append(nd.Listen, l)
}

// Line builds n nodes named a, b, c… in a line, each dialling the next
// over scheme, and starts them all.
func (n *Net) Line(count int, scheme string) ([]*Node, []*Link) {
	n.t.Helper()
	nodes := make([]*Node, count)
	for i := range nodes {
		nodes[i] = n.Node(string(rune('a' + i)))
	}
	return nodes, n.Chain(scheme, nodes...)
}

// Chain connects nodes in a line over ULA links, each dialling the next
// over scheme, starts every node not started yet and waits until each
// neighbour has peered: Line for nodes a test has configured first.
func (n *Net) Chain(scheme string, nodes ...*Node) []*Link {
	n.t.Helper()
	var links []*Link
	for i := 1; i < len(nodes); i++ {
		l := n.Connect(nodes[i-1], nodes[i], true)
		n.Peer(nodes[i-1], nodes[i], l, scheme)
		links = append(links, l)
	}
	n.StartAll()
	for i := 0; i+1 < len(nodes); i++ {
		nodes[i].WaitPeer(nodes[i+1])
	}
	return links
}

// StartAll starts every node not started yet.
func (n *Net) StartAll() {
	n.t.Helper()
	for _, nd := range n.nodes {
		if nd.starts == 0 {
			nd.Start()
		}
	}
}

// configText is the node's configuration file.
func (nd *Node) configText() string {
	var b strings.Builder
	q := strconv.Quote
	list := func(xs []string) string {
		qs := make([]string, len(xs))
		for i, x := range xs {
			qs[i] = q(x)
		}
		return "[" + strings.Join(qs, ", ") + "]"
	}
	fmt.Fprintf(&b, "# written by tests/netns for node %s\n", nd.Name)
	fmt.Fprintf(&b, "private_key_file = %s\nlog_level = %s\n", q(nd.KeyPath), q(nd.LogLevel))
	fmt.Fprintf(&b, "\n[tun]\nenable = %t\nname = %s\nmtu = %d\n", !nd.NoTUN, q(tunName), nd.MTU)
	fmt.Fprintf(&b, "\n[peers]\nlisten = %s\nstatic = %s\n", list(nd.Listen), list(nd.Static))
	fmt.Fprintf(&b, "\n[peers.tls]\ncert_file = %s\nkey_file = %s\nca_file = %s\n", q(nd.TLSCert), q(nd.TLSKey), q(nd.TLSCA))
	ifaces := nd.MulticastIfaces
	if len(ifaces) == 0 {
		ifaces = []string{".*"}
	}
	fmt.Fprintf(&b, "\n[multicast]\nenable = %t\ninterfaces = %s\n", nd.Multicast, list(ifaces))
	fmt.Fprintf(&b, "\n[admin]\nsocket = %s\n", q(nd.Socket))
	fmt.Fprintf(&b, "\n[metrics]\nlisten = %s\n", q(metricsListen))
	return b.String()
}

// Start writes the configuration, starts the daemon in the namespace and
// waits until its admin socket answers.
func (nd *Node) Start() {
	t := nd.t
	t.Helper()
	nd.mu.Lock()
	if nd.proc != nil {
		nd.mu.Unlock()
		t.Fatalf("node %s: already running", nd.Name)
	}
	nd.mu.Unlock()
	if err := os.WriteFile(nd.ConfigPath, []byte(nd.configText()), 0o644); err != nil {
		t.Fatal(err)
	}
	logf, err := os.OpenFile(nd.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	nd.starts++
	fmt.Fprintf(logf, "=== tests/netns: start %d of node %s in %s at %s\n", nd.starts, nd.Name, nd.NS, time.Now().Format(time.RFC3339Nano))
	// ip netns exec execs the command itself, so the PID is the daemon's.
	cmd := exec.Command("ip", "netns", "exec", nd.NS, pineconedBin, "-config", nd.ConfigPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		t.Fatalf("node %s: starting pineconed: %v", nd.Name, err)
	}
	done := make(chan struct{})
	nd.mu.Lock()
	nd.proc, nd.done, nd.waitErr = cmd, done, nil
	nd.mu.Unlock()
	go func() {
		err := cmd.Wait()
		logf.Close()
		nd.mu.Lock()
		nd.waitErr = err
		nd.mu.Unlock()
		close(done)
	}()
	if nd.starts == 1 {
		t.Cleanup(nd.cleanupStop)
	}

	// Up when getSelf answers.
	var self admin.Self
	testhelp.WaitEvery(t, fmt.Sprintf("node %s: admin socket %s to answer", nd.Name, nd.Socket), startTimeout, 50*time.Millisecond,
		func() bool {
			select {
			case <-done:
				t.Fatalf("node %s: pineconed exited during start-up: %v\n%s", nd.Name, nd.exitErr(), nd.logTail(60))
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			self, err = nd.selfCtx(ctx)
			cancel()
			return err == nil
		},
		func() string { return fmt.Sprintf("%v\n%s", err, nd.logTail(60)) })
	if nd.Key.IsZero() {
		k, err := admin.ParseKey(self.PublicKey)
		if err != nil {
			t.Fatalf("node %s: getSelf public_key %q: %v", nd.Name, self.PublicKey, err)
		}
		nd.Key = wire.PublicKey(k)
		nd.Addr = addressing.NodeAddr(nd.Key)
	}
	if self.PublicKey != nd.Key.String() {
		t.Fatalf("node %s: getSelf public_key %s, want %s (the key in %s)", nd.Name, self.PublicKey, nd.Key, nd.KeyPath)
	}
	if self.Address != nd.Addr.String() {
		t.Fatalf("node %s: getSelf address %s, want %s", nd.Name, self.Address, nd.Addr)
	}
	t.Logf("node %s: pineconed pid %d in %s, key %s…, address %s", nd.Name, cmd.Process.Pid, nd.NS, self.PublicKey[:16], self.Address)
}

// Reload rewrites the configuration file from the node's fields and sends
// SIGHUP.
func (nd *Node) Reload() {
	nd.t.Helper()
	nd.ReloadWith(nd.configText())
}

// ReloadWith writes text as the configuration file and sends SIGHUP.
func (nd *Node) ReloadWith(text string) {
	nd.t.Helper()
	if err := os.WriteFile(nd.ConfigPath, []byte(text), 0o644); err != nil {
		nd.t.Fatal(err)
	}
	nd.mu.Lock()
	cmd := nd.proc
	nd.mu.Unlock()
	if cmd == nil || !nd.Running() {
		nd.t.Fatalf("node %s: reload: daemon not running", nd.Name)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		nd.t.Fatalf("node %s: SIGHUP: %v", nd.Name, err)
	}
}

func (nd *Node) exitErr() error {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	return nd.waitErr
}

// Running reports whether the daemon process is alive.
func (nd *Node) Running() bool {
	nd.mu.Lock()
	done := nd.done
	nd.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// PID is the daemon's process id, 0 when it is not running.
func (nd *Node) PID() int {
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.proc == nil {
		return 0
	}
	return nd.proc.Process.Pid
}

// Stop sends sig to the daemon and waits for it to exit (SIGKILL after
// stopTimeout). It returns the wait error and how long the exit took.
func (nd *Node) Stop(sig syscall.Signal) (time.Duration, error) {
	nd.mu.Lock()
	cmd, done := nd.proc, nd.done
	nd.mu.Unlock()
	if cmd == nil {
		return 0, nil
	}
	start := time.Now()
	_ = cmd.Process.Signal(sig)
	var err error
	select {
	case <-done:
		err = nd.exitErr()
	case <-time.After(stopTimeout):
		_ = cmd.Process.Kill()
		select {
		case <-done:
		case <-time.After(stopTimeout):
			nd.t.Errorf("node %s: pid %d still running %s after SIGKILL", nd.Name, cmd.Process.Pid, stopTimeout)
		}
		err = fmt.Errorf("did not exit within %s of %v; killed", stopTimeout, sig)
	}
	nd.mu.Lock()
	nd.proc, nd.done = nil, nil
	nd.mu.Unlock()
	return time.Since(start), err
}

// cleanupStop stops the daemon at the end of the test. A daemon that does
// not exit cleanly on SIGTERM fails the test: systemd stops it that way.
func (nd *Node) cleanupStop() {
	if !nd.Running() {
		if nd.PID() != 0 {
			nd.t.Errorf("node %s: pineconed died during the test: %v", nd.Name, nd.exitErr())
		}
		nd.Stop(syscall.SIGKILL)
		return
	}
	took, err := nd.Stop(syscall.SIGTERM)
	if err != nil {
		nd.t.Errorf("node %s: pineconed on SIGTERM: %v (after %s)", nd.Name, err, took.Round(time.Millisecond))
	}
}

// logTail is the last n lines of the daemon's log.
func (nd *Node) logTail(n int) string {
	data, err := os.ReadFile(nd.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("… %d lines before", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return "--- " + nd.Name + " log ---\n" + strings.Join(lines, "\n")
}

func (nd *Node) dumpLog() {
	nd.t.Logf("node %s (%s):\n%s", nd.Name, nd.NS, nd.logTail(300))
}

// Client dials the node's admin socket.
func (nd *Node) Client() (*admin.Client, error) {
	return admin.Dial(nd.Socket)
}

func (nd *Node) selfCtx(ctx context.Context) (admin.Self, error) {
	c, err := admin.DialContext(ctx, nd.Socket)
	if err != nil {
		return admin.Self{}, err
	}
	defer c.Close()
	return c.Self(ctx)
}

// adminCall runs fn against a fresh connection to the node's socket.
func adminCall[T any](nd *Node, fn func(context.Context, *admin.Client) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := admin.DialContext(ctx, nd.Socket)
	if err != nil {
		var zero T
		return zero, err
	}
	defer c.Close()
	return fn(ctx, c)
}

// Self is getSelf, failing the test on error.
func (nd *Node) Self() admin.Self {
	nd.t.Helper()
	s, err := adminCall(nd, func(ctx context.Context, c *admin.Client) (admin.Self, error) { return c.Self(ctx) })
	if err != nil {
		nd.t.Fatalf("node %s: getSelf: %v", nd.Name, err)
	}
	return s
}

// Peers is getPeers, failing the test on error.
func (nd *Node) Peers() []admin.Peer {
	nd.t.Helper()
	p, err := adminCall(nd, func(ctx context.Context, c *admin.Client) ([]admin.Peer, error) { return c.Peers(ctx) })
	if err != nil {
		nd.t.Fatalf("node %s: getPeers: %v", nd.Name, err)
	}
	return p
}

// Stats is getStats, failing the test on error.
func (nd *Node) Stats() admin.Stats {
	nd.t.Helper()
	s, err := adminCall(nd, func(ctx context.Context, c *admin.Client) (admin.Stats, error) { return c.Stats(ctx) })
	if err != nil {
		nd.t.Fatalf("node %s: getStats: %v", nd.Name, err)
	}
	return s
}

// Sessions is getSessions, failing the test on error.
func (nd *Node) Sessions() []admin.Session {
	nd.t.Helper()
	s, err := adminCall(nd, func(ctx context.Context, c *admin.Client) ([]admin.Session, error) { return c.Sessions(ctx) })
	if err != nil {
		nd.t.Fatalf("node %s: getSessions: %v", nd.Name, err)
	}
	return s
}

// PeerWith returns nd's peering with other, if there is one.
func (nd *Node) PeerWith(other *Node) (admin.Peer, bool) {
	nd.t.Helper()
	for _, p := range nd.Peers() {
		if p.PublicKey == other.Key.String() {
			return p, true
		}
	}
	return admin.Peer{}, false
}

// WaitPeer waits until nd and other list each other as peers.
func (nd *Node) WaitPeer(other *Node) {
	nd.t.Helper()
	waitFor(nd.t, fmt.Sprintf("%s and %s to peer", nd.Name, other.Name), peerTimeout, 100*time.Millisecond, func() (bool, string) {
		_, ab := nd.PeerWith(other)
		_, ba := other.PeerWith(nd)
		return ab && ba, fmt.Sprintf("%s sees %s: %t, %s sees %s: %t", nd.Name, other.Name, ab, other.Name, nd.Name, ba)
	})
}

// WaitNoPeer waits until nd no longer lists other as a peer.
func (nd *Node) WaitNoPeer(other *Node, within time.Duration) {
	nd.t.Helper()
	waitFor(nd.t, fmt.Sprintf("%s to drop its peering with %s", nd.Name, other.Name), within, 100*time.Millisecond, func() (bool, string) {
		p, ok := nd.PeerWith(other)
		return !ok, fmt.Sprintf("still peered: %+v", p)
	})
}

// logCount is how many lines of nd's log contain every one of parts.
func (nd *Node) logCount(parts ...string) int {
	data, _ := os.ReadFile(nd.LogPath)
	n := 0
	for _, line := range strings.Split(string(data), "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			n++
		}
	}
	return n
}

// WaitLogged waits until nd's log holds at least n lines containing every
// one of parts: the event a negative check waits for where the daemon logs
// one (a refusal, a dialler that has stopped), instead of watching for a
// while.
func (nd *Node) WaitLogged(n int, within time.Duration, parts ...string) {
	nd.t.Helper()
	waitFor(nd.t, fmt.Sprintf("%s to log %d lines with %q", nd.Name, n, parts), within, 100*time.Millisecond, func() (bool, string) {
		got := nd.logCount(parts...)
		return got >= n, fmt.Sprintf("%d logged\n%s", got, nd.logTail(5))
	})
}

// waitFor polls cond every interval until it holds, failing the test
// after within with cond's last non-empty detail (testhelp.WaitEvery).
func waitFor(t *testing.T, what string, within, interval time.Duration, cond func() (bool, string)) {
	t.Helper()
	var detail string
	testhelp.WaitEvery(t, what, within, interval,
		func() bool {
			ok, d := cond()
			if d != "" {
				detail = d
			}
			return ok
		},
		func() string { return detail })
}

// Command builds a command run inside the node's namespace.
func (nd *Node) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", nd.NS, name}, args...)...)
}

// Run runs a command in the namespace (bounded by commandTimeout) and
// returns its combined output.
func (nd *Node) Run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := nd.Command(ctx, name, args...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("%w (killed after %s)", err, commandTimeout)
	}
	return string(out), err
}

// MustRun is Run, failing the test on error.
func (nd *Node) MustRun(name string, args ...string) string {
	nd.t.Helper()
	out, err := nd.Run(name, args...)
	if err != nil {
		nd.t.Fatalf("node %s: %s %s: %v\n%s", nd.Name, name, strings.Join(args, " "), err, out)
	}
	return out
}

// MustIP runs ip with args in the namespace (ip -n).
func (nd *Node) MustIP(args ...string) string {
	nd.t.Helper()
	return mustRun(nd.t, "ip", append([]string{"-n", nd.NS}, args...)...)
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// Ctl runs pineconectl against the node's socket (from the root
// namespace: the socket is a file) and returns stdout, stderr and the
// exit code.
func (nd *Node) Ctl(args ...string) (stdout, stderr string, code int) {
	nd.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, pineconectlBin, append([]string{"--socket", nd.Socket}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		nd.t.Fatalf("pineconectl %s: %v", strings.Join(args, " "), err)
	}
	return o.String(), e.String(), code
}

// Ping6 runs ping -6 in the namespace and returns its output.
func (nd *Node) Ping6(to netip.Addr, args ...string) (string, error) {
	return nd.Run("ping", append([]string{"-6", "-n"}, append(args, to.String())...)...)
}

// WaitReach waits until one ping from nd to addr gets an answer.
func (nd *Node) WaitReach(to netip.Addr) time.Duration {
	nd.t.Helper()
	start := time.Now()
	waitFor(nd.t, fmt.Sprintf("ping from %s to %s", nd.Name, to), reachTimeout, 50*time.Millisecond, func() (bool, string) {
		out, err := nd.Ping6(to, "-c", "1", "-W", "1")
		return err == nil, strings.TrimSpace(lastLines(out, 3))
	})
	return time.Since(start)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Bg is a process the test started in a namespace; it is killed (by PID)
// when the test ends.
type Bg struct {
	Name    string
	cmd     *exec.Cmd
	LogPath string
	done    chan struct{}
	err     error
}

// StartBg starts a long-running command in the namespace with its output
// in a file in the node's directory.
func (nd *Node) StartBg(label, name string, args ...string) *Bg {
	t := nd.t
	t.Helper()
	b := &Bg{Name: label, LogPath: filepath.Join(nd.Dir, fmt.Sprintf("%s-%d.log", label, seq.Add(1))), done: make(chan struct{})}
	f, err := os.Create(b.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command("ip", append([]string{"netns", "exec", nd.NS, name}, args...)...)
	b.cmd.Stdout, b.cmd.Stderr = f, f
	if err := b.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("node %s: starting %s: %v", nd.Name, name, err)
	}
	go func() {
		b.err = b.cmd.Wait()
		f.Close()
		close(b.done)
	}()
	t.Cleanup(func() {
		b.Stop(syscall.SIGKILL)
		if t.Failed() {
			t.Logf("%s on %s:\n%s", label, nd.Name, lastLines(b.Output(), 40))
		}
	})
	return b
}

// Stop signals the process and waits (bounded) for it to exit.
func (b *Bg) Stop(sig syscall.Signal) {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(sig)
	select {
	case <-b.done:
	case <-time.After(stopTimeout):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// Children are the process's child processes.
func (b *Bg) Children() []int {
	pid := b.cmd.Process.Pid
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var kids []int
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			if k, err := strconv.Atoi(s); err == nil {
				kids = append(kids, k)
			}
		}
	}
	return kids
}

// Signal sends sig to the process.
func (b *Bg) Signal(sig syscall.Signal) error {
	return b.cmd.Process.Signal(sig)
}

// Exited reports whether the process has ended.
func (b *Bg) Exited() bool {
	select {
	case <-b.done:
		return true
	default:
		return false
	}
}

// Wait waits up to within for the process to exit by itself.
func (b *Bg) Wait(within time.Duration) (bool, error) {
	select {
	case <-b.done:
		return true, b.err
	case <-time.After(within):
		return false, nil
	}
}

// Output is everything the process has written so far.
func (b *Bg) Output() string {
	data, _ := os.ReadFile(b.LogPath)
	return string(data)
}

// WaitOutput waits until the process has written a line containing s.
func (b *Bg) WaitOutput(t *testing.T, s string, within time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s to print %q", b.Name, s), within, 20*time.Millisecond, func() (bool, string) {
		out := b.Output()
		if strings.Contains(out, s) {
			return true, ""
		}
		if b.Exited() {
			t.Fatalf("%s exited (%v) before printing %q:\n%s", b.Name, b.err, s, out)
		}
		return false, lastLines(out, 5)
	})
}
