package tun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// requireNetNS skips unless we are root with `ip netns` available.
func requireNetNS(tb testing.TB) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces and TUN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs iproute2 (`ip netns`), not installed")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		tb.Skip("needs /dev/net/tun: " + err.Error())
	}
}

// newNetNS creates a namespace with a per-run unique name, removed at cleanup.
func newNetNS(tb testing.TB) string {
	tb.Helper()
	var rnd [4]byte
	rand.Read(rnd[:])
	name := fmt.Sprintf("pctun-%d-%s", os.Getpid(), hex.EncodeToString(rnd[:]))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Skipf("cannot create a network namespace (`ip netns add`): %v: %s", err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name
}

// inNetNS runs fn on a thread switched into the namespace. Sockets made in
// fn stay in that namespace afterwards.
func inNetNS(tb testing.TB, name string, fn func()) {
	tb.Helper()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatal(err)
	}
	defer orig.Close()
	target, err := netns.GetFromName(name)
	if err != nil {
		runtime.UnlockOSThread()
		tb.Fatal(err)
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		tb.Fatal(err)
	}
	fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime discards it.
		tb.Fatalf("cannot return to the original netns: %v", err)
	}
	runtime.UnlockOSThread()
}

// nodeAddr makes a node address fdXX… from one distinguishing byte.
func nodeAddr(b byte) netip.Addr {
	var a [16]byte
	a[0] = 0xfd
	for i := 1; i < 16; i++ {
		a[i] = b ^ byte(i*17)
	}
	return netip.AddrFrom16(a)
}

func openIn(tb testing.TB, ns string, addr netip.Addr, mtu int) *Device {
	tb.Helper()
	d, err := Open(Config{
		Name:      "pctun0",
		MTU:       mtu,
		Addresses: []netip.Prefix{netip.PrefixFrom(addr, 8)},
		NetNSPath: "/run/netns/" + ns,
	})
	if err != nil {
		tb.Fatalf("open TUN in %s: %v", ns, err)
	}
	tb.Cleanup(func() { d.Close() })
	return d
}

func ipIn(tb testing.TB, ns string, args ...string) string {
	tb.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		tb.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestOpenRefusesSmallMTU(t *testing.T) {
	_, err := Open(Config{MTU: 1279})
	if err == nil || !strings.Contains(err.Error(), "1280") {
		t.Fatalf("MTU 1279: err = %v", err)
	}
}

func TestDeviceSetupAndClose(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	addr := nodeAddr(1)
	d := openIn(t, ns, addr, 1400)
	if d.Name() != "pctun0" || d.MTU() != 1400 {
		t.Fatalf("name %q mtu %d", d.Name(), d.MTU())
	}
	t.Logf("offloads: %v, batch size %d", d.Offloads(), d.BatchSize())
	link := ipIn(t, ns, "link", "show", "pctun0")
	if !strings.Contains(link, "UP") || !strings.Contains(link, "mtu 1400") {
		t.Fatalf("link: %s", link)
	}
	addrs := ipIn(t, ns, "-6", "addr", "show", "dev", "pctun0")
	if !strings.Contains(addrs, addr.String()+"/8") || strings.Contains(addrs, "tentative") {
		t.Fatalf("addresses: %s", addrs)
	}
	if strings.Contains(addrs, "fe80") {
		t.Errorf("link-local address present: %s", addrs)
	}
	for _, dst := range []string{"fd99::1", "fc12::1"} {
		if r := ipIn(t, ns, "-6", "route", "get", dst); !strings.Contains(r, "dev pctun0") {
			t.Fatalf("route to %s: %s", dst, r)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	h, err := netlink.NewHandleAt(mustNS(t, ns))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if _, err := h.LinkByName("pctun0"); err == nil {
		t.Fatal("device still present after Close")
	}
}

func mustNS(tb testing.TB, name string) netns.NsHandle {
	h, err := netns.GetFromName(name)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { h.Close() })
	return h
}

// echoResponder answers every echo request read from d, until d is closed.
func echoResponder(t *testing.T, d *Device) (requests *atomic.Int64, stop func()) {
	requests = new(atomic.Int64)
	r := d.NewReader(Filter{Destinations: OverlayPrefixes})
	w := d.NewWriter(WriterConfig{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var buf []byte
		err := r.Run(func(pkts [][]byte, hdrs []Header) {
			for _, p := range pkts {
				reply, err := EchoReply(buf[:0], p)
				if err != nil {
					continue // e.g. something else the kernel sent
				}
				requests.Add(1)
				buf = reply
				w.Write(reply)
			}
		})
		if err != nil {
			t.Errorf("reader: %v", err)
		}
	}()
	return requests, func() { d.Close(); wg.Wait() }
}

func TestPingThroughTUN(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	d := openIn(t, ns, nodeAddr(2), 1280)
	requests, stop := echoResponder(t, d)
	defer stop()
	target := nodeAddr(3).String()

	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping not installed (Debian package iputils-ping)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", "netns", "exec", ns,
		"ping", "-6", "-c", "3", "-W", "1", "-i", "0.2", target).CombinedOutput()
	if err != nil {
		t.Fatalf("ping: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "3 received") {
		t.Fatalf("ping output:\n%s", out)
	}
	if requests.Load() != 3 {
		t.Fatalf("responder saw %d echo requests", requests.Load())
	}
	s := d.Stats()
	if s.WrittenPackets != 3 || s.ReadPackets < 3 {
		t.Fatalf("stats %+v", s)
	}
}

// pair is two namespaces, each with a TUN, bridged by the test: whatever one
// TUN reads is written into the other. It is the data path without the
// overlay in between.
type pair struct {
	a, b       *Device
	addrA      netip.Addr
	addrB      netip.Addr
	nsA, nsB   string
	maxPkt     atomic.Int64 // largest packet read
	multiBatch atomic.Int64 // read batches with more than one packet
	wg         sync.WaitGroup
}

func newPair(tb testing.TB, mtu, writeBatch int) *pair {
	requireNetNS(tb)
	p := &pair{nsA: newNetNS(tb), nsB: newNetNS(tb), addrA: nodeAddr(0x10), addrB: nodeAddr(0x20)}
	p.a = openIn(tb, p.nsA, p.addrA, mtu)
	p.b = openIn(tb, p.nsB, p.addrB, mtu)
	bridge := func(from, to *Device) {
		r := from.NewReader(Filter{Destinations: OverlayPrefixes})
		w := to.NewWriter(WriterConfig{MaxBatch: writeBatch})
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			r.Run(func(pkts [][]byte, _ []Header) {
				if len(pkts) > 1 {
					p.multiBatch.Add(1)
				}
				for _, pkt := range pkts {
					if n := int64(len(pkt)); n > p.maxPkt.Load() {
						p.maxPkt.Store(n)
					}
					w.Write(pkt)
				}
			})
		}()
	}
	bridge(p.a, p.b)
	bridge(p.b, p.a)
	tb.Cleanup(p.close)
	return p
}

func (p *pair) close() {
	p.a.Close()
	p.b.Close()
	p.wg.Wait()
}

// connect makes a TCP connection from namespace A to a listener in B.
func (p *pair) connect(tb testing.TB) (client, server net.Conn) {
	tb.Helper()
	var ln net.Listener
	var err error
	inNetNS(tb, p.nsB, func() {
		ln, err = net.Listen("tcp6", net.JoinHostPort(p.addrB.String(), "5201"))
	})
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	inNetNS(tb, p.nsA, func() {
		client, err = net.DialTimeout("tcp6", net.JoinHostPort(p.addrB.String(), "5201"), 10*time.Second)
	})
	if err != nil {
		tb.Fatalf("dial through the TUNs: %v", err)
	}
	select {
	case server = <-accepted:
	case <-time.After(10 * time.Second):
	}
	if server == nil {
		client.Close()
		tb.Fatal("no connection accepted")
	}
	tb.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func TestTCPStreamThroughTUNs(t *testing.T) {
	const mtu = 1280
	p := newPair(t, mtu, 0)
	client, server := p.connect(t)
	want := pattern(8 << 20)
	deadline := time.Now().Add(60 * time.Second)
	client.SetDeadline(deadline)
	server.SetDeadline(deadline)
	errc := make(chan error, 1)
	go func() {
		_, err := client.Write(want)
		if cerr := client.(*net.TCPConn).CloseWrite(); err == nil {
			err = cerr
		}
		errc <- err
	}()
	got, err := io.ReadAll(server)
	if err != nil {
		t.Fatalf("read: %v (after %d bytes)", err, len(got))
	}
	if err := <-errc; err != nil {
		t.Fatalf("write: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("stream corrupted: got %d bytes", len(got))
	}
	if m := p.maxPkt.Load(); m > mtu {
		t.Fatalf("read a %d-byte packet from a TUN with MTU %d", m, mtu)
	}
	sa, sb := p.a.Stats(), p.b.Stats()
	t.Logf("offloads %v; A read %d packets in %d batches (%d multi-packet); B wrote %d packets in %d writes; max packet %d",
		p.a.Offloads(), sa.ReadPackets, sa.ReadBatches, p.multiBatch.Load(), sb.WrittenPackets, sb.WriteBatches, p.maxPkt.Load())
	if p.a.Offloads() && p.multiBatch.Load() == 0 {
		t.Fatal("offloads on but no read ever returned more than one packet: GSO splitting not exercised")
	}
	if sa.ReadPackets < uint64(len(want)/mtu) {
		t.Fatalf("only %d packets read for %d bytes", sa.ReadPackets, len(want))
	}
	for _, s := range []Stats{sa, sb} {
		for k, v := range s.Drops {
			switch {
			case v == 0:
			case k == "queue_full":
				// The bridge reads faster than it writes at times; like
				// a real link, TCP recovers from the loss.
				t.Logf("drops[%s] = %d", k, v)
			default:
				t.Errorf("drops[%s] = %d", k, v)
			}
		}
	}
}

// TestPacketTooBigLowersPathMTU writes a Packet Too Big into the TUN for a
// packet the kernel sent and checks the kernel now uses the smaller MTU for
// that destination.
func TestPacketTooBigLowersPathMTU(t *testing.T) {
	requireNetNS(t)
	ns := newNetNS(t)
	ours := nodeAddr(4)
	far := nodeAddr(5)
	d := openIn(t, ns, ours, 1500)
	r := d.NewReader(Filter{Destinations: OverlayPrefixes})
	w := d.NewWriter(WriterConfig{})

	var conn net.Conn
	var err error
	inNetNS(t, ns, func() {
		conn, err = net.Dial("udp6", net.JoinHostPort(far.String(), "9"))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write(make([]byte, 1400)); err != nil {
		t.Fatal(err)
	}
	var big []byte
	for tries := 0; big == nil && tries < 10; tries++ {
		pkts, hdrs, err := r.Read()
		if err != nil {
			t.Fatal(err)
		}
		for i, p := range pkts {
			if hdrs[i].Dst == far && len(p) > 1400 {
				big = bytes.Clone(p)
			}
		}
	}
	if big == nil {
		t.Fatal("the 1400-byte datagram never came out of the TUN")
	}
	ptb, err := PacketTooBig(nil, ours, 1300, big)
	if err != nil {
		t.Fatal(err)
	}
	if !w.Write(ptb) {
		t.Fatal("PTB not queued")
	}
	var route string
	testhelp.WaitEvery(t, "the path MTU lowered to 1300 by the Packet Too Big", 5*time.Second, 20*time.Millisecond,
		func() bool {
			route = ipIn(t, ns, "-6", "route", "get", far.String())
			return strings.Contains(route, "mtu 1300")
		},
		func() string {
			snmp, _ := exec.Command("ip", "netns", "exec", ns, "grep", "-E", "Icmp6In|Ip6In", "/proc/net/snmp6").CombinedOutput()
			return fmt.Sprintf("route %s, stats %+v, snmp6:\n%s", route, d.Stats(), snmp)
		})
}

func BenchmarkTCPThroughTUNs(b *testing.B) {
	for _, c := range []struct {
		name  string
		batch int
	}{{"write-batch-1", 1}, {"write-batched", 0}} {
		b.Run(c.name, func(b *testing.B) {
			p := newPair(b, 1280, c.batch)
			client, server := p.connect(b)
			chunk := pattern(64 << 10)
			done := make(chan error, 1)
			go func() {
				_, err := io.Copy(io.Discard, server)
				done <- err
			}()
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := client.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			client.(*net.TCPConn).CloseWrite()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, net.ErrClosed) {
					b.Fatal(err)
				}
			case <-time.After(60 * time.Second):
				b.Fatal("receiver did not finish")
			}
			b.StopTimer()
			sa, sb := p.a.Stats(), p.b.Stats()
			b.ReportMetric(float64(sa.ReadPackets)/float64(max(sa.ReadBatches, 1)), "pkts/read")
			b.ReportMetric(float64(sb.WrittenPackets)/float64(max(sb.WriteBatches, 1)), "pkts/write")
		})
	}
}
