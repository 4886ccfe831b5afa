package netns

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRestartKeepsAddress: the daemon in b (the middle of a–b–c, with a key
// it created itself on first start) is killed and started again with the
// same configuration. It comes back with the same key and address, its
// neighbours peer with it again and a→c traffic flows again.
func TestRestartKeepsAddress(t *testing.T) {
	n := newNet(t)
	a, b, c := n.Node("a"), n.Node("b", true), n.Node("c")
	n.Chain("tcp", a, b, c)

	st, err := os.Stat(b.KeyPath)
	if err != nil {
		t.Fatalf("b's daemon did not create its key file: %v", err)
	}
	if perm := st.Mode().Perm(); perm != 0o600 {
		t.Errorf("b's new key file has mode %04o, want 0600", perm)
	}
	key, addr := b.Key, b.Addr
	// The identity flags read the same key file.
	if out, err := exec.Command(pineconedBin, "-address", "-config", b.ConfigPath).CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != addr.String() {
		t.Errorf("pineconed -address -config: %q (%v), want %s", out, err, addr)
	}
	a.WaitReach(c.Addr)

	// A crash, not a clean stop: the admin socket file stays behind.
	if _, err := b.Stop(syscall.SIGKILL); err == nil {
		t.Fatal("SIGKILL: daemon exited without an error status")
	}
	a.WaitNoPeer(b, 20*time.Second)
	if out, err := a.Ping6(c.Addr, "-c", "1", "-W", "1"); err == nil {
		t.Fatalf("a still reaches c with b down; is traffic not going through b?\n%s", out)
	}

	restart := time.Now()
	b.Start() // checks getSelf's key and address against the first start
	if b.Key != key || b.Addr != addr {
		t.Fatalf("b came back as %s / %s, was %s / %s", b.Key, b.Addr, key, addr)
	}
	a.WaitPeer(b)
	b.WaitPeer(c)
	a.WaitReach(c.Addr)
	t.Logf("a→c works again %s after b's restart (same address %s)", time.Since(restart).Round(time.Millisecond), addr)
	out, err := a.Ping6(c.Addr, "-c", "3", "-i", "0.2", "-W", "2")
	if err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping -c 3 a→c after b's restart: %v\n%s", err, out)
	}
}

// TestSquareFailover: in the ring a–b–c–d–a, the link a uses towards c is
// cut. Traffic a→c must recover through the other side of the ring; the
// outage is measured with a ping every 100 ms and logged. When the link
// comes back, the peering is made again. The link is cut in two ways, and
// each must be noticed by the mechanism meant for it, which the daemon's
// "peer disconnected" reason shows:
//   - a's interface goes down: the netlink watch drops the peering at once;
//   - the link silently drops everything while the pings flow (a blackhole
//     qdisc at both ends, the interfaces stay up): TCP_USER_TIMEOUT gives
//     the connection up once a's data stayed unacknowledged for
//     limits.DefaultPeerTimeout (peers.peer_timeout), long before the 5 s read timeout.
func TestSquareFailover(t *testing.T) {
	needTool(t, "ping", "tc")
	for _, tc := range []struct {
		name string
		// cut and restore act on the link's interface in a's namespace
		// (ifA) and in the neighbour's (ifB).
		cut, restore func(a, via *Node, ifA, ifB string)
		reason       string
	}{
		{"interface down",
			func(a, _ *Node, ifA, _ string) { a.MustIP("link", "set", ifA, "down") },
			func(a, _ *Node, ifA, _ string) { a.MustIP("link", "set", ifA, "up") },
			"network interface down"},
		{"blackhole while traffic flows",
			func(a, via *Node, ifA, ifB string) { blackhole(a, ifA, true); blackhole(via, ifB, true) },
			func(a, via *Node, ifA, ifB string) { blackhole(a, ifA, false); blackhole(via, ifB, false) },
			"connection timed out"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, via, ifA, ifB, c, other := squareRing(t)
			// ping every 100 ms, each waiting at most 1 s; -D stamps each line.
			pinger := a.StartBg("ping-a-c", "ping", "-6", "-n", "-D", "-O", "-i", "0.1", "-W", "1", "-w", "150", c.Addr.String())
			waitFor(t, "steady pings a→c", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
				r := parsePing(pinger.Output())
				return len(r.ok) >= 10, fmt.Sprintf("%d replies", len(r.ok))
			})
			down := time.Now()
			tc.cut(a, via, ifA, ifB)
			// Recovered when 10 pings in a row sent after the cut are answered.
			var res pingRun
			waitFor(t, "a→c to recover through "+other.Name, 60*time.Second, 50*time.Millisecond, func() (bool, string) {
				res = parsePing(pinger.Output())
				return res.recoveredAfter(down, 10), fmt.Sprintf("%d replies, last seq %d", len(res.ok), res.lastSeq)
			})
			pinger.Stop(syscall.SIGINT)
			res = parsePing(pinger.Output())
			outage, lost := res.outage(down)
			t.Logf("OUTAGE a→c (%s on %s): %.2f s until the first reply (%d pings lost at 100 ms intervals)", tc.name, ifA, outage.Seconds(), lost)

			a.WaitNoPeer(via, 10*time.Second)
			reason := disconnectReason(t, a, via)
			t.Logf("a dropped %s: %s", via.Name, reason)
			if !strings.Contains(reason, tc.reason) {
				t.Errorf("a dropped %s for %q, want the reason to say %q", via.Name, reason, tc.reason)
			}
			if out, err := a.Ping6(c.Addr, "-c", "3", "-i", "0.2", "-W", "2"); err != nil {
				t.Fatalf("ping a→c after failover: %v\n%s", err, out)
			}

			// The static peering is re-made once the link is back (the
			// dialler is in back-off, at most a minute).
			up := time.Now()
			tc.restore(a, via, ifA, ifB)
			waitFor(t, fmt.Sprintf("a and %s to peer again", via.Name), 90*time.Second, 200*time.Millisecond, func() (bool, string) {
				_, ok := a.PeerWith(via)
				return ok, ""
			})
			t.Logf("a and %s peered again %s after the link came back", via.Name, time.Since(up).Round(time.Millisecond))
			a.WaitReach(c.Addr)
		})
	}
}

// TestSquareFailoverIdle: the same ring, the link a uses towards c silently
// drops everything while no traffic flows. Nothing of ours is in flight,
// so neither netlink nor TCP_USER_TIMEOUT can tell; the link's keepalives
// (sent after 3 s of silence) then stay unacknowledged, or the 5 s read
// timeout ends the peering. The time until a drops the peering is logged.
func TestSquareFailoverIdle(t *testing.T) {
	needTool(t, "ping", "tc", "ss")
	a, via, ifA, ifB, c, _ := squareRing(t)
	// The link falls idle once the last test traffic is acknowledged:
	// nothing is left in either end's TCP send queues.
	for _, nd := range []*Node{a, via} {
		waitFor(t, nd.Name+"'s TCP send queues to empty", 10*time.Second, 20*time.Millisecond, func() (bool, string) {
			out := nd.MustRun("ss", "-tnH", "state", "established")
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				// Recv-Q Send-Q Local Peer (the state column is left out).
				if f := strings.Fields(line); len(f) >= 2 && f[1] != "0" {
					return false, out
				}
			}
			return true, ""
		})
	}
	down := time.Now()
	blackhole(a, ifA, true)
	blackhole(via, ifB, true)
	waitFor(t, fmt.Sprintf("a to drop %s", via.Name), 30*time.Second, 20*time.Millisecond, func() (bool, string) {
		_, ok := a.PeerWith(via)
		return !ok, ""
	})
	detected := time.Since(down)
	reach := a.WaitReach(c.Addr)
	t.Logf("IDLE CUT: a dropped %s after %.2f s (%s); a→c answered again %.2f s after the cut",
		via.Name, detected.Seconds(), disconnectReason(t, a, via), (detected + reach).Seconds())
	blackhole(a, ifA, false)
	blackhole(via, ifB, false)
}

// squareRing builds the ring a–b–c–d–a over TCP and finds which neighbour
// of a carries a→c: the one whose peering's bytes_out grow by the volume of
// a burst of large pings. It returns a, that neighbour, the link's
// interface in a's and in the neighbour's namespace, c, and a's other
// neighbour.
func squareRing(t *testing.T) (a, via *Node, ifA, ifB string, c, other *Node) {
	t.Helper()
	n := newNet(t)
	a, b, c, d := n.Node("a"), n.Node("b"), n.Node("c"), n.Node("d")
	ab, bc, cd, da := n.Connect(a, b, true), n.Connect(b, c, true), n.Connect(c, d, true), n.Connect(d, a, true)
	n.Peer(a, b, ab, "tcp")
	n.Peer(b, c, bc, "tcp")
	n.Peer(c, d, cd, "tcp")
	n.Peer(d, a, da, "tcp")
	n.StartAll()
	a.WaitPeer(b)
	b.WaitPeer(c)
	c.WaitPeer(d)
	d.WaitPeer(a)
	a.WaitReach(c.Addr)

	const burst, size = 30, 1000
	before := bytesOut(a)
	if out, err := a.Ping6(c.Addr, "-c", fmt.Sprint(burst), "-i", "0.01", "-s", fmt.Sprint(size), "-W", "2"); err != nil {
		t.Fatalf("burst a→c: %v\n%s", err, out)
	}
	after := bytesOut(a)
	via, other, link := b, d, ab
	if after[d.Key.String()]-before[d.Key.String()] > after[b.Key.String()]-before[b.Key.String()] {
		via, other, link = d, b, da
	}
	grew := after[via.Key.String()] - before[via.Key.String()]
	if grew < burst*size {
		t.Fatalf("neither peering of a carried the burst: bytes_out grew by %d via b, %d via d, want ≥ %d",
			after[b.Key.String()]-before[b.Key.String()], after[d.Key.String()]-before[d.Key.String()], burst*size)
	}
	ifA, ifB = link.IfA, link.IfB
	if link.B == a {
		ifA, ifB = link.IfB, link.IfA
	}
	t.Logf("a→c goes via %s (bytes_out +%d) over a's %s", via.Name, grew, ifA)
	return a, via, ifA, ifB, c, other
}

// blackhole makes an interface drop everything it sends (on) or lifts
// that (off). The interface stays up: to the kernel the link is fine.
func blackhole(nd *Node, iface string, on bool) {
	if on {
		nd.MustRun("tc", "qdisc", "replace", "dev", iface, "root", "blackhole")
		return
	}
	nd.MustRun("tc", "qdisc", "del", "dev", iface, "root")
}

// disconnectReason is the reason nd's daemon logged for its last
// disconnect from other.
func disconnectReason(t *testing.T, nd, other *Node) string {
	t.Helper()
	data, err := os.ReadFile(nd.LogPath)
	if err != nil {
		t.Fatalf("log of %s: %v", nd.Name, err)
	}
	last := ""
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, "peer disconnected") && strings.Contains(l, other.Key.String()) {
			last = l
		}
	}
	if last == "" {
		t.Fatalf("%s logged no disconnect from %s", nd.Name, other.Name)
	}
	if _, r, ok := strings.Cut(last, "reason="); ok {
		return r
	}
	return last
}

// bytesOut maps each of nd's peers (by key) to bytes sent to it.
func bytesOut(nd *Node) map[string]uint64 {
	m := map[string]uint64{}
	for _, p := range nd.Peers() {
		m[p.PublicKey] += p.BytesOut
	}
	return m
}

// pingRun is what ping -D printed: when each answered sequence number's
// reply came.
type pingRun struct {
	ok      map[int]time.Time
	lastSeq int
}

var pingReply = regexp.MustCompile(`^\[(\d+)\.(\d+)\] \d+ bytes from .*icmp_seq=(\d+)`)
var pingAny = regexp.MustCompile(`icmp_seq=(\d+)`)

func parsePing(out string) pingRun {
	r := pingRun{ok: map[int]time.Time{}}
	for _, line := range strings.Split(out, "\n") {
		if m := pingAny.FindStringSubmatch(line); m != nil {
			if s, _ := strconv.Atoi(m[1]); s > r.lastSeq {
				r.lastSeq = s
			}
		}
		m := pingReply.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		sec, _ := strconv.ParseInt(m[1], 10, 64)
		frac := m[2]
		for len(frac) < 9 {
			frac += "0"
		}
		nsec, _ := strconv.ParseInt(frac[:9], 10, 64)
		seq, _ := strconv.Atoi(m[3])
		if _, dup := r.ok[seq]; !dup {
			r.ok[seq] = time.Unix(sec, nsec)
		}
	}
	return r
}

// seqs are the answered sequence numbers in order.
func (r pingRun) seqs() []int {
	s := make([]int, 0, len(r.ok))
	for k := range r.ok {
		s = append(s, k)
	}
	sort.Ints(s)
	return s
}

// recoveredAfter reports whether n consecutive sequence numbers were
// answered after t following a gap (or with none lost at all).
func (r pingRun) recoveredAfter(t time.Time, n int) bool {
	run := 0
	for _, s := range r.seqs() {
		if !r.ok[s].After(t) {
			continue
		}
		if _, prev := r.ok[s-1]; prev && r.ok[s-1].After(t) {
			run++
		} else {
			run = 1
		}
		if run >= n {
			return true
		}
	}
	return false
}

// outage measures the first run of lost pings after the last reply that
// came before t: how long after t the reply ending it came, and how many
// pings it lost. No loss at all is an outage of 0.
func (r pingRun) outage(t time.Time) (time.Duration, int) {
	seqs := r.seqs()
	last := 0
	for _, s := range seqs {
		if !r.ok[s].After(t) {
			last = s
		}
	}
	prev := last
	for _, s := range seqs {
		if s <= last {
			continue
		}
		if s > prev+1 {
			return r.ok[s].Sub(t), s - prev - 1
		}
		prev = s
	}
	return 0, 0
}

func TestPingRunOutage(t *testing.T) {
	base := time.Unix(1000, 0)
	at := func(ms int) time.Time { return base.Add(time.Duration(ms) * time.Millisecond) }
	var b strings.Builder
	// seqs 1-5 before the cut at 550 ms, 6-9 lost, 10-25 answered.
	for s := 1; s <= 25; s++ {
		if s >= 6 && s <= 9 {
			fmt.Fprintf(&b, "[%d.%06d] no answer yet for icmp_seq=%d\n", at(s*100).Unix(), at(s*100).Nanosecond()/1000, s)
			continue
		}
		ts := at(s*100 + 1)
		fmt.Fprintf(&b, "[%d.%06d] 64 bytes from fd00::1: icmp_seq=%d ttl=64 time=0.5 ms\n", ts.Unix(), ts.Nanosecond()/1000, s)
	}
	r := parsePing(b.String())
	if len(r.ok) != 21 || r.lastSeq != 25 {
		t.Fatalf("parsed %d replies, last seq %d; want 21, 25", len(r.ok), r.lastSeq)
	}
	cut := at(550)
	d, lost := r.outage(cut)
	if lost != 4 || d != 451*time.Millisecond {
		t.Errorf("outage = %v, %d lost; want 451ms, 4", d, lost)
	}
	if !r.recoveredAfter(cut, 10) || r.recoveredAfter(cut, 17) {
		t.Errorf("recoveredAfter: 16 in a row after the cut, wrong answer for 10 or 17")
	}
	if d, lost := r.outage(at(2000)); d != 0 || lost != 0 {
		t.Errorf("outage with no loss = %v, %d", d, lost)
	}
}

// TestReload: SIGHUP applies a changed static peer list at once, and a
// broken file is refused without harm: the daemon keeps running on the
// configuration it had.
func TestReload(t *testing.T) {
	n := newNet(t)
	a, b := n.Node("a"), n.Node("b")
	ab := n.Connect(a, b, true)
	b.listenOn("tcp")
	n.StartAll()
	if len(a.Peers()) != 0 {
		t.Fatalf("a has peers before any are configured: %+v", a.Peers())
	}

	// Add b as a static peer.
	a.Static = []string{uri("tcp", ab.AddrB)}
	a.Reload()
	a.WaitPeer(b)
	a.WaitReach(b.Addr)

	// A file with a syntax error and an unknown option: refused, the
	// daemon stays up and keeps its peering.
	good := a.configText()
	a.ReloadWith(good + "\n[peers\nstatc = [\"tcp://[fd00::1]:1\"]\n")
	pid := a.PID()
	// Give the daemon the time to act on the signal; the admin socket
	// answering afterwards proves it is still serving.
	waitFor(t, "a to log an error naming its configuration file", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		data, _ := os.ReadFile(a.LogPath)
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, a.ConfigPath) {
				return true, ""
			}
		}
		return false, lastLines(string(data), 3)
	})
	if !a.Running() || a.PID() != pid {
		t.Fatalf("a exited after a reload with a broken configuration: %v\n%s", a.exitErr(), a.logTail(20))
	}
	if _, ok := a.PeerWith(b); !ok {
		t.Fatal("a lost its peering with b after a refused reload")
	}

	// Remove the static peer: the peering goes and stays gone. a logs the
	// removal once the peer's dialer has stopped, so nothing dials b
	// after it.
	if len(a.Static) != 1 {
		t.Fatalf("a's static peers %q, want the one to b", a.Static)
	}
	uriB := a.Static[0]
	removed := a.logCount(`msg="static peer removed"`, uriB)
	a.Static = nil
	a.Reload()
	a.WaitLogged(removed+1, 10*time.Second, `msg="static peer removed"`, uriB)
	a.WaitNoPeer(b, 10*time.Second)
}

// TestGarbageOnPeering: a's peering with b runs through a proxy in the
// test that injects 64 bytes of garbage into the a→b stream. b must drop
// that peering (a malformed stream ends the link, nothing else), both
// daemons stay up, a dials again and a→c traffic resumes.
func TestGarbageOnPeering(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	a, b, c := n.Node("a"), n.Node("b"), n.Node("c")
	ab, bc := n.Connect(a, b, true), n.Connect(b, c, true)
	b.listenOn("tcp")
	n.Peer(b, c, bc, "tcp")
	// a dials a proxy on its own loopback, which forwards to b.
	proxy := a.StartHelper("tcpproxy", "-listen", "[::1]:7000", "-to", netip.AddrPortFrom(ab.AddrB, tcpPort).String())
	proxy.WaitOutput(t, "ready", 10*time.Second)
	a.Static = []string{"tcp://[::1]:7000"}
	n.StartAll()
	a.WaitPeer(b)
	b.WaitPeer(c)
	a.WaitReach(c.Addr)
	proxy.WaitOutput(t, "accepted 1", 5*time.Second)

	if err := proxy.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	proxy.WaitOutput(t, "injected", 10*time.Second)
	// Keepalives flow every few seconds even when idle; the garbage is
	// noticed at the next frame at the latest. a dials again through the
	// proxy (back-off starts at a second).
	proxy.WaitOutput(t, "accepted 2", 30*time.Second)
	if !a.Running() || !b.Running() {
		t.Fatalf("a daemon died from garbage on a peering: a running %t, b running %t", a.Running(), b.Running())
	}
	a.WaitPeer(b)
	a.WaitReach(c.Addr)
	data, _ := os.ReadFile(b.LogPath)
	t.Logf("b on the garbage: %s", firstMatch(string(data), "peer disconnected"))
}
