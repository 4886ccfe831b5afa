package netns

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestFirstBurstQueued: ten UDP datagrams written back to back to a node
// never contacted before all arrive. The first needs an address lookup and
// a session handshake; the packets written meanwhile must wait in the
// per-destination queues, not be dropped.
func TestFirstBurstQueued(t *testing.T) {
	n := newNet(t)
	nodes, _ := n.Line(3, "tcp")
	a, b, c := nodes[0], nodes[1], nodes[2]

	// Let the overlay settle without a ever talking to c: b (the
	// middle) reaches both ends, which needs the tree and SNEK in place.
	b.WaitReach(a.Addr)
	b.WaitReach(c.Addr)
	for _, s := range a.Sessions() {
		if s.RemoteKey == c.Key.String() {
			t.Fatalf("a already has a session with c before the burst: %+v", s)
		}
	}
	lookupsBefore := sumMap(a.Stats().Lookups)

	const count = 10
	dst := netip.AddrPortFrom(c.Addr, 5555).String()
	recv := c.StartHelper("udprecv", "-listen", dst, "-n", fmt.Sprint(count), "-timeout", "20s")
	recv.WaitOutput(t, "ready", 10*time.Second)
	if out, err := a.RunHelper("udpsend", "-to", dst, "-n", fmt.Sprint(count), "-prefix", "burst"); err != nil {
		t.Fatalf("udpsend from a: %v\n%s", err, out)
	}
	exited, err := recv.Wait(30 * time.Second)
	got := strings.Count(recv.Output(), "burst-")
	if !exited || err != nil {
		st := a.Stats()
		t.Fatalf("c received %d of %d datagrams of the first burst (receiver: exited %t, %v)\na drops: %v, lookups: %v, handshakes: %v",
			got, count, exited, err, st.Drops, st.Lookups, st.Handshakes)
	}
	if got != count {
		t.Fatalf("c received %d of %d datagrams:\n%s", got, count, recv.Output())
	}
	if sumMap(a.Stats().Lookups) <= lookupsBefore {
		t.Errorf("a's lookup counters did not move (%d before); was c's key already known?", lookupsBefore)
	}
	t.Logf("all %d datagrams of the first burst from a reached c", count)
}

func sumMap(m map[string]uint64) uint64 {
	var s uint64
	for _, v := range m {
		s += v
	}
	return s
}

// TestUnderlayCarriesNoPlaintext: a marker sent from a to c over the
// overlay crosses b's veths only encrypted (a capture of every interface in
// b's namespace never contains it), while c's TUN device delivers it.
func TestUnderlayCarriesNoPlaintext(t *testing.T) {
	needTool(t, "tcpdump", "ping")
	n := newNet(t)
	nodes, links := n.Line(3, "tcp")
	a, b, c := nodes[0], nodes[1], nodes[2]
	a.WaitReach(c.Addr)

	// 16 bytes, the most ping -p repeats; random so that nothing else
	// in the capture can contain it by chance.
	rnd := make([]byte, 4)
	if _, err := rand.Read(rnd); err != nil {
		t.Fatal(err)
	}
	marker := []byte("PCDMARK-" + hex.EncodeToString(rnd))
	// The control: the same kind of marker sent in the clear over the
	// veth itself must show up in b's capture.
	control := []byte("PCDCLEAR" + hex.EncodeToString(rnd))

	tcpdump, _ := lookTool("tcpdump")
	underlay := filepath.Join(b.Dir, "underlay.pcap")
	delivered := filepath.Join(c.Dir, "tun.pcap")
	// -U writes each packet at once; SIGINT flushes and exits.
	capB := b.StartBg("tcpdump-b", tcpdump, "-i", "any", "-n", "-U", "--immediate-mode", "-s", "0", "-w", underlay)
	capC := c.StartBg("tcpdump-c", tcpdump, "-i", tunName, "-n", "-U", "--immediate-mode", "-s", "0", "-w", delivered)
	capB.WaitOutput(t, "listening on", 15*time.Second)
	capC.WaitOutput(t, "listening on", 15*time.Second)

	const pings, size = 5, 400
	out, err := a.Ping6(c.Addr, "-c", fmt.Sprint(pings), "-i", "0.1", "-W", "2", "-s", fmt.Sprint(size), "-p", hex.EncodeToString(marker))
	if err != nil || !strings.Contains(out, fmt.Sprintf("%d received", pings)) {
		t.Fatalf("ping with the marker from a to c: %v\n%s", err, out)
	}
	out, err = a.Ping6(links[0].AddrB, "-c", "2", "-i", "0.1", "-W", "2", "-s", fmt.Sprint(size), "-p", hex.EncodeToString(control))
	if err != nil {
		t.Fatalf("ping over the bare veth from a to b: %v\n%s", err, out)
	}
	capB.Stop(syscall.SIGINT)
	capC.Stop(syscall.SIGINT)

	under := readPcap(t, underlay)
	tun := readPcap(t, delivered)
	// Every request and reply crosses both of b's veths at least once.
	big := 0
	for _, p := range under.packets {
		if len(p) >= size {
			big++
		}
	}
	if big < 2*pings {
		t.Fatalf("b's capture holds %d packets of at least %d bytes (of %d in all), want ≥ %d: did it see the traffic?",
			big, size, len(under.packets), 2*pings)
	}
	if !bytes.Contains(under.raw, control) {
		t.Fatalf("control marker %q sent in the clear over the veth is not in b's capture: the capture cannot see plaintext", control)
	}
	if i := bytes.Index(under.raw, marker); i >= 0 {
		t.Fatalf("plaintext marker %q found in the underlay capture %s at byte %d", marker, underlay, i)
	}
	if half := marker[:8]; bytes.Contains(under.raw, half) {
		t.Fatalf("half the marker (%q) found in the underlay capture %s", half, underlay)
	}
	if !bytes.Contains(tun.raw, marker) {
		t.Fatalf("marker %q not found in c's TUN capture (%d packets): the control failed, the test proves nothing", marker, len(tun.packets))
	}
	t.Logf("marker %q: absent from %d underlay packets in b (which do show the clear control %q), present in c's TUN capture (%d packets)",
		marker, len(under.packets), control, len(tun.packets))
}

// pcap is a capture file read whole: its bytes and each packet's data.
type pcap struct {
	raw     []byte
	packets [][]byte
}

// readPcap reads a classic pcap file (what tcpdump -w writes).
func readPcap(t *testing.T, path string) pcap {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) < 24 {
		t.Fatalf("%s: %d bytes, not a pcap file", path, len(raw))
	}
	var bo binary.ByteOrder
	switch m := binary.LittleEndian.Uint32(raw); m {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		t.Fatalf("%s: magic %#x, not a pcap file", path, m)
	}
	p := pcap{raw: raw}
	for off := 24; off < len(raw); {
		if off+16 > len(raw) {
			t.Fatalf("%s: truncated record header at %d", path, off)
		}
		n := int(bo.Uint32(raw[off+8:]))
		off += 16
		if off+n > len(raw) {
			t.Fatalf("%s: truncated packet at %d", path, off)
		}
		p.packets = append(p.packets, raw[off:off+n])
		off += n
	}
	return p
}

// TestBulkTCPIntegrity: 32 MiB each way at once between a and c, through
// b, arrive complete and unaltered (SHA-256 of what was sent and what was
// received agree). This goes through the TUN offloads, batching and the
// per-link queues under load.
func TestBulkTCPIntegrity(t *testing.T) {
	n := newNet(t)
	nodes, _ := n.Line(3, "tcp")
	a, c := nodes[0], nodes[2]
	a.WaitReach(c.Addr)
	c.WaitReach(a.Addr)

	const size = 32 << 20
	type dir struct {
		from, to *Node
		sink     *Bg
		dst      string
	}
	dirs := []*dir{{from: a, to: c}, {from: c, to: a}}
	for _, d := range dirs {
		d.dst = netip.AddrPortFrom(d.to.Addr, 5001).String()
		d.sink = d.to.StartHelper("tcpsink", "-listen", d.dst, "-timeout", "120s")
		d.sink.WaitOutput(t, "ready", 10*time.Second)
	}
	start := time.Now()
	sent := make([]string, len(dirs))
	errs := make([]error, len(dirs))
	done := make(chan int, len(dirs))
	for i, d := range dirs {
		go func() {
			sent[i], errs[i] = d.from.RunHelper("tcpsource", "-to", d.dst, "-bytes", fmt.Sprint(size), "-seed", fmt.Sprint(i+1), "-timeout", "120s")
			done <- i
		}()
	}
	for range dirs {
		<-done
	}
	took := time.Since(start)
	for i, d := range dirs {
		if errs[i] != nil {
			t.Fatalf("tcpsource %s→%s: %v\n%s", d.from.Name, d.to.Name, errs[i], sent[i])
		}
		if ok, err := d.sink.Wait(30 * time.Second); !ok || err != nil {
			t.Fatalf("tcpsink on %s: exited %t, %v\n%s", d.to.Name, ok, err, d.sink.Output())
		}
		want := strings.TrimPrefix(strings.TrimSpace(sent[i]), "sent ")
		got := strings.TrimPrefix(strings.TrimSpace(lastLines(d.sink.Output(), 1)), "received ")
		if got != want {
			t.Errorf("%s→%s: sent %s, received %s", d.from.Name, d.to.Name, want, got)
		}
	}
	t.Logf("%d MiB each way a⇄c through b in %s (%.0f Mbit/s total)", size>>20, took.Round(time.Millisecond),
		float64(2*size*8)/took.Seconds()/1e6)
}

// TestLargePackets: echo requests from the IPv6 minimum MTU up to the
// largest the overlay MTU carries cross two hops whole, and the TUN MTU
// is the one getSelf reports.
func TestLargePackets(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	nodes, _ := n.Line(3, "tcp")
	a, c := nodes[0], nodes[2]
	a.WaitReach(c.Addr)
	mtu := a.Self().TunMTU
	link := a.MustIP("-o", "link", "show", "dev", tunName)
	if !strings.Contains(link, fmt.Sprintf(" mtu %d ", mtu)) {
		t.Errorf("getSelf tun_mtu %d, but the device says: %s", mtu, link)
	}
	// Payload sizes: IPv6 (40) + ICMPv6 (8) headers come on top.
	for _, size := range []int{1232, 1452, 8952, 16384, mtu - 48} {
		out, err := a.Ping6(c.Addr, "-c", "2", "-i", "0.2", "-W", "3", "-M", "do", "-s", fmt.Sprint(size))
		if err != nil || !strings.Contains(out, "2 received") {
			t.Errorf("ping -s %d (packet %d, MTU %d) a→c: %v\n%s", size, size+48, mtu, err, lastLines(out, 4))
		}
	}
	// One byte more than the MTU must not be sent as one packet.
	if out, err := a.Ping6(c.Addr, "-c", "1", "-W", "2", "-M", "do", "-s", fmt.Sprint(mtu-47)); err == nil {
		t.Errorf("ping -M do -s %d (one byte over MTU %d) succeeded:\n%s", mtu-47, mtu, out)
	}
}

// TestRelayOnlyMiddle: b runs without a TUN device ([tun] enable = false)
// and still carries a→c.
func TestRelayOnlyMiddle(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	a, b, c := n.Node("a"), n.Node("b"), n.Node("c")
	b.NoTUN = true
	n.Chain("tcp", a, b, c)
	if self := b.Self(); self.TunName != "" {
		t.Errorf("relay-only b reports tun_name %q, want \"\"", self.TunName)
	}
	if out, err := b.Run("ip", "link", "show", "dev", tunName); err == nil {
		t.Errorf("relay-only b has a %s device:\n%s", tunName, out)
	}
	a.WaitReach(c.Addr)
	if out, err := a.Ping6(c.Addr, "-c", "3", "-i", "0.2", "-W", "2"); err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping -c 3 a→c through relay-only b: %v\n%s", err, out)
	}
}
