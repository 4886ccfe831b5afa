package multicast

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// The namespace test runs each discoverer as a separate process inside its
// namespace (`ip netns exec`), because a network namespace belongs to an
// OS thread and a discoverer's goroutines, dials and interface scans run on
// whatever threads the Go scheduler picks. The helper is this test binary,
// re-executed with helperEnv set.
const helperEnv = "PINECONED_MULTICAST_HELPER"

// helperSwitch is the node inside a helper process: it prints every attach
// and detach as a line on stdout for the parent test to read.
type helperSwitch struct {
	mu    sync.Mutex
	ports map[router.Port]overlay.Peering
}

func (s *helperSwitch) Attach(info overlay.PeerInfo, l overlay.Link) (router.Port, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p := router.Port(1); p <= router.MaxPort; p++ {
		if _, used := s.ports[p]; !used {
			s.ports[p] = overlay.Peering{Port: p, Info: info, Link: l}
			fmt.Printf("ATTACH %s %s %v %d\n", info.Key, info.Interface, info.Inbound, info.Type)
			return p, nil
		}
	}
	return 0, fmt.Errorf("no free switch ports")
}

func (s *helperSwitch) Receive(router.Port, []byte) error { return nil }

func (s *helperSwitch) KeepaliveSent(router.Port, int) {}

func (s *helperSwitch) Detach(p router.Port, reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.ports, p)
	fmt.Printf("DETACH %d %v\n", p, reason)
}

func (s *helperSwitch) Peerings() []overlay.Peering {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]overlay.Peering, 0, len(s.ports))
	for _, p := range s.ports {
		out = append(out, p)
	}
	return out
}

// TestHelperProcess is not a test: it is the discoverer process that
// TestDiscoveryInNamespaces starts inside a namespace. Run directly, it
// skips.
func TestHelperProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestDiscoveryInNamespaces, only run by it")
	}
	seed, _ := strconv.Atoi(os.Getenv("HELPER_SEED"))
	priv := testhelp.SeedKey(byte(seed))
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sw := &helperSwitch{ports: map[router.Port]overlay.Peering{}}
	m, err := peers.New(peers.Config{PrivateKey: priv, Logger: log}, sw)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	d, err := New(Config{
		Key:            wire.PublicKeyOf(priv),
		Interfaces:     []*regexp.Regexp{regexp.MustCompile("^" + os.Getenv("HELPER_IFACE") + "$")},
		BeaconInterval: 200 * time.Millisecond,
		RescanInterval: 500 * time.Millisecond,
		Logger:         log,
	}, m)
	if err != nil {
		fmt.Println("ERROR", err)
		os.Exit(1)
	}
	fmt.Println("READY", d.Port())
	// Each line the parent writes asks for the counters so far; the
	// parent closes stdin to stop us.
	for sc := bufio.NewScanner(os.Stdin); sc.Scan(); {
		st, _ := json.Marshal(d.Stats())
		fmt.Println("SNAPSHOT", string(st))
	}
	st, _ := json.Marshal(d.Stats())
	fmt.Println("STATS", string(st))
	if err := d.Close(); err != nil {
		fmt.Println("ERROR", err)
	}
	if err := m.Close(); err != nil {
		fmt.Println("ERROR", err)
	}
	fmt.Println("CLOSED")
	os.Exit(0)
}

// helper is a running helper process as the parent sees it.
type helper struct {
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func (h *helper) has(prefix string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, l := range h.lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// stats asks the helper for its discoverer's counters and returns them.
func (h *helper) stats(t *testing.T) Stats {
	t.Helper()
	n := len(h.matching("SNAPSHOT "))
	if _, err := io.WriteString(h.stdin, "snapshot\n"); err != nil {
		t.Fatalf("%s: asking for counters: %v", h.name, err)
	}
	testhelp.WaitFor(t, h.name+"'s counters", 10*time.Second, func() bool { return len(h.matching("SNAPSHOT ")) > n })
	s := h.matching("SNAPSHOT ")
	var st Stats
	if err := json.Unmarshal([]byte(strings.TrimPrefix(s[len(s)-1], "SNAPSHOT ")), &st); err != nil {
		t.Fatalf("%s: counters %q: %v", h.name, s[len(s)-1], err)
	}
	return st
}

func (h *helper) matching(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, l := range h.lines {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return out
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func startHelper(t *testing.T, ns, name string, seed int, ifname string) *helper {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"=1", "HELPER_SEED="+strconv.Itoa(seed), "HELPER_IFACE="+ifname)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{name: name, cmd: cmd, stdin: stdin, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.mu.Lock()
			h.lines = append(h.lines, sc.Text())
			h.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-h.done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill() // only the process we started, by PID
			<-h.done
		}
		_ = cmd.Wait()
		if t.Failed() {
			h.mu.Lock()
			t.Logf("%s stdout:\n%s\n%s stderr (tail):\n%s", name, strings.Join(h.lines, "\n"), name, tail(stderr.String(), 4000))
			h.mu.Unlock()
		}
	})
	testhelp.WaitFor(t, name+" to start", 10*time.Second, func() bool { return h.has("READY") || h.has("ERROR") })
	if h.has("ERROR") {
		t.Fatalf("%s failed: %v", name, h.matching("ERROR"))
	}
	return h
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces and veth pairs")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) for network namespaces")
	}
}

// inNamespace runs f on a thread switched into ns. Sockets f opens stay in
// ns for their whole life, whichever thread uses them later.
func inNamespace(ns string, f func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	ferr := f()
	if err := netns.Set(orig); err != nil {
		panic("cannot return to the original network namespace: " + err.Error())
	}
	return ferr
}

// sendInNamespace sends datagrams to the beacon group from inside ns, out
// of the interface with index ifindex there.
func sendInNamespace(ns string, ifindex int, payloads [][]byte) error {
	var pc net.PacketConn
	if err := inNamespace(ns, func() (err error) {
		pc, err = net.ListenPacket("udp6", "[::]:0")
		return err
	}); err != nil {
		return err
	}
	defer pc.Close()
	dst := &net.UDPAddr{IP: GroupV6.AsSlice(), Port: UDPPort, Zone: strconv.Itoa(ifindex)}
	for _, p := range payloads {
		if _, err := pc.WriteTo(p, dst); err != nil {
			return fmt.Errorf("send garbage: %w", err)
		}
	}
	return nil
}

// stockSocket binds UDP port 60606 in ns the way the reference does: with
// SO_REUSEPORT only. Linux lets a second socket share the port only if it
// sets SO_REUSEPORT too.
func stockSocket(t *testing.T, ns string) {
	t.Helper()
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}); err != nil {
			return err
		}
		return serr
	}}
	var pc net.PacketConn
	if err := inNamespace(ns, func() (err error) {
		pc, err = lc.ListenPacket(context.Background(), "udp6", fmt.Sprintf("[::]:%d", UDPPort))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
}

// Two namespaces joined by a veth pair with only link-local addresses. B
// starts first and is showered with short and garbage datagrams; then A and
// C start in the other namespace (both on UDP port 60606 there, which needs
// SO_REUSEPORT, as does the stock-like socket opened there first). B finds both and they find B, each peering attached with
// the veth's name as its zone and the multicast peer type.
func TestDiscoveryInNamespaces(t *testing.T) {
	requireNetns(t)
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	nsA, nsB := "pcmcA"+id, "pcmcB"+id
	vA, vB := "pmcA"+id, "pmcB"+id // at most 15 bytes
	for _, ns := range []string{nsA, nsB} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	run(t, "ip", "link", "add", vA, "type", "veth", "peer", "name", vB)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "exec", nsA, "ip", "link", "del", vA).Run() })
	run(t, "ip", "link", "set", vA, "netns", nsA)
	run(t, "ip", "link", "set", vB, "netns", nsB)
	for _, x := range [][2]string{{nsA, vA}, {nsB, vB}} {
		ns, v := x[0], x[1]
		// No duplicate address detection: the link-local address is
		// usable as soon as the link is up.
		run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf."+v+".accept_dad=0")
		run(t, "ip", "-n", ns, "link", "set", "lo", "up")
		run(t, "ip", "-n", ns, "link", "set", v, "up")
	}
	// The link-local address appears once both ends are up.
	for _, x := range [][2]string{{nsA, vA}, {nsB, vB}} {
		ns, v := x[0], x[1]
		testhelp.WaitFor(t, "link-local address on "+v, 10*time.Second, func() bool {
			out, _ := exec.Command("ip", "-n", ns, "-6", "addr", "show", "dev", v, "scope", "link").Output()
			return strings.Contains(string(out), "fe80::") && !strings.Contains(string(out), "tentative")
		})
	}
	ifindexA, err := strconv.Atoi(strings.TrimSpace(run(t, "ip", "netns", "exec", nsA, "cat", "/sys/class/net/"+vA+"/ifindex")))
	if err != nil {
		t.Fatal(err)
	}

	b := startHelper(t, nsB, "B", 2, vB)
	keyC := wire.PublicKeyOf(testhelp.SeedKey(3))
	garbage := [][]byte{nil, {0}, make([]byte, 33), make([]byte, 35), wire.AppendBeacon(nil, keyC, 0), []byte("not a beacon at all")}
	// Garbage keeps arriving at B from before A and C exist until they
	// have been found. B has the lowest key, so B has to do the dialling:
	// if garbage stopped its discovery, A and C would only dial B after
	// their grace period, and B's peerings would show up as inbound.
	var batches atomic.Int64
	stopGarbage := make(chan struct{})
	garbageDone := make(chan error, 1)
	go func() {
		for {
			if err := sendInNamespace(nsA, ifindexA, garbage); err != nil {
				garbageDone <- err
				return
			}
			batches.Add(1)
			select {
			case <-stopGarbage:
				garbageDone <- nil
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	testhelp.WaitFor(t, "garbage sent", 5*time.Second, func() bool { return batches.Load() >= 10 })

	// A stock node's socket already holds port 60606 in A's namespace.
	stockSocket(t, nsA)
	a := startHelper(t, nsA, "A", 1, vA)
	c := startHelper(t, nsA, "C", 3, vA)

	for _, w := range []struct {
		h    *helper
		line string
	}{
		{b, fmt.Sprintf("ATTACH %s %s", keyA, vB)},
		{b, fmt.Sprintf("ATTACH %s %s", keyC, vB)},
		{a, fmt.Sprintf("ATTACH %s %s", keyB, vA)},
		{c, fmt.Sprintf("ATTACH %s %s", keyB, vA)},
	} {
		testhelp.WaitFor(t, w.h.name+": "+w.line, 20*time.Second, func() bool { return w.h.has(w.line) })
	}
	close(stopGarbage)
	if err := <-garbageDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("%d batches of %d garbage datagrams sent", batches.Load(), len(garbage))

	// B has the lowest key, so B dialled both; A and C saw B inbound.
	typ := fmt.Sprint(uint8(router.PeerMulticast))
	for _, w := range []struct {
		h    *helper
		line string
	}{
		{b, fmt.Sprintf("ATTACH %s %s false %s", keyA, vB, typ)},
		{b, fmt.Sprintf("ATTACH %s %s false %s", keyC, vB, typ)},
		{a, fmt.Sprintf("ATTACH %s %s true %s", keyB, vA, typ)},
		{c, fmt.Sprintf("ATTACH %s %s true %s", keyB, vA, typ)},
	} {
		if !w.h.has(w.line) {
			t.Errorf("%s: no %q in %v", w.h.name, w.line, w.h.matching("ATTACH"))
		}
	}
	// Several of B's beacons later, still one peering between A and B:
	// the grace period kept A from dialling B as well, and A passes over
	// B's beacons as already peered. The wait counts those beacons, not
	// the time they take to come.
	passed := a.stats(t).Ignored["connected"]
	testhelp.WaitEvery(t, "A to pass over 3 more beacons as already peered", 10*time.Second, 100*time.Millisecond, func() bool {
		return a.stats(t).Ignored["connected"] >= passed+3
	})
	if n := len(a.matching(fmt.Sprintf("ATTACH %s", keyB))); n != 1 {
		t.Errorf("A attached B %d times", n)
	}

	b.stdin.Close()
	testhelp.WaitFor(t, "B to stop", 10*time.Second, func() bool { return b.has("CLOSED") })
	var st Stats
	if s := b.matching("STATS "); len(s) != 1 || json.Unmarshal([]byte(strings.TrimPrefix(s[0], "STATS ")), &st) != nil {
		t.Fatalf("no stats from B: %v", s)
	}
	t.Logf("B: %+v", st)
	if st.Ignored["malformed"] < 5*uint64(len(garbage)) || st.BeaconsSent == 0 || st.Dials < 2 {
		t.Errorf("B's stats do not show garbage ignored and beacons sent: %+v", st)
	}
	if len(st.Interfaces) != 1 || st.Interfaces[0] != vB {
		t.Errorf("B used interfaces %v, want only %s", st.Interfaces, vB)
	}
}
