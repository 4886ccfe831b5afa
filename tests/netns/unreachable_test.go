package netns

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
	"github.com/pineconed/pineconed/overlay/wire"
)

// TestUnreachable: a packet to an overlay address nobody owns comes back
// as ICMPv6 Destination Unreachable once the lookup gives up, and one to
// an unassigned address in the sender's own /64 is refused at once, both
// without disturbing traffic to a real node.
func TestUnreachable(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	nodes, _ := n.Line(2, "tcp")
	a, b := nodes[0], nodes[1]
	a.WaitReach(b.Addr)

	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	nobody := addressing.NodeAddr(wire.PublicKey(pub))
	// The lookup gives up after about 11 s (requests every 500 ms, then every second);
	// pineconectl's lookup of the same address runs meanwhile.
	type ctlResult struct {
		out  string
		code int
	}
	ctl := make(chan ctlResult, 1)
	go func() {
		o, e, code := a.Ctl("lookup", nobody.String())
		ctl <- ctlResult{o + e, code}
	}()
	start := time.Now()
	out, err := a.Ping6(nobody, "-c", "1", "-W", "20")
	took := time.Since(start)
	if err == nil {
		t.Fatalf("ping to %s, which nobody owns, succeeded:\n%s", nobody, out)
	}
	if !strings.Contains(out, "Destination unreachable") {
		t.Errorf("ping to unowned %s: no ICMPv6 Destination Unreachable after %s:\n%s", nobody, took.Round(time.Millisecond), out)
	} else {
		t.Logf("unowned address: %s after %s", firstMatch(out, "Destination unreachable"), took.Round(time.Millisecond))
	}
	if r := <-ctl; r.code != 1 {
		t.Errorf("pineconectl lookup %s (nobody owns it): exit %d, want 1\n%s", nobody, r.code, r.out)
	} else {
		t.Logf("pineconectl lookup: %s", strings.TrimSpace(r.out))
	}

	// Our own /64, an address not assigned here: refused at once.
	own := addressing.Subnet(a.Key).Addr().Next().Next() // ::2
	start = time.Now()
	out, err = a.Ping6(own, "-c", "1", "-W", "5")
	if err == nil || !strings.Contains(out, "Destination unreachable") {
		t.Errorf("ping to %s in a's own /64: want Destination Unreachable, got %v:\n%s", own, err, out)
	} else if took := time.Since(start); took > 3*time.Second {
		t.Errorf("ping into a's own /64 took %s to be refused; it never needs the network", took)
	}

	if out, err := a.Ping6(b.Addr, "-c", "2", "-i", "0.2", "-W", "2"); err != nil {
		t.Fatalf("a→b after the unreachable pings: %v\n%s", err, out)
	}
}

func firstMatch(out, s string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// TestMTUMismatch: c runs a 1280-byte TUN MTU, a the automatic (large)
// one. A packet from a too big for c gets ICMPv6 Packet Too Big, the
// kernel learns the path MTU, and after that large pings (fragmented by
// a's kernel) and a bulk TCP transfer a→c work.
func TestMTUMismatch(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	a, b, c := n.Node("a"), n.Node("b"), n.Node("c")
	c.MTU = 1280
	n.Chain("tcp", a, b, c)
	if m := c.Self().TunMTU; m != 1280 {
		t.Fatalf("c's tun_mtu %d, want 1280", m)
	}
	a.WaitReach(c.Addr) // the handshake tells a c's MTU

	out, _ := a.Ping6(c.Addr, "-c", "1", "-W", "3", "-M", "do", "-s", "4000")
	if !strings.Contains(strings.ToLower(out), "too big") && !strings.Contains(out, "mtu") {
		t.Errorf("a 4048-byte packet with DF to c (MTU 1280): want Packet Too Big, got:\n%s", out)
	} else {
		t.Logf("4048-byte packet with DF: %s", firstMatch(out, "mtu"))
	}
	if out, err := a.Ping6(c.Addr, "-c", "3", "-i", "0.2", "-W", "3", "-s", "4000"); err != nil || !strings.Contains(out, "3 received") {
		t.Errorf("fragmented 4048-byte pings a→c after Packet Too Big: %v\n%s", err, out)
	}
	dst := netip.AddrPortFrom(c.Addr, 5002).String()
	sink := c.StartHelper("tcpsink", "-listen", dst, "-timeout", "60s")
	sink.WaitOutput(t, "ready", 10*time.Second)
	sent, err := a.RunHelper("tcpsource", "-to", dst, "-bytes", fmt.Sprint(4<<20), "-timeout", "60s")
	if err != nil {
		t.Fatalf("4 MiB over TCP a→c (MTU 1280 at c): %v\n%s", err, sent)
	}
	if ok, err := sink.Wait(30 * time.Second); !ok || err != nil {
		t.Fatalf("tcpsink on c: %v\n%s", err, sink.Output())
	}
	if want, got := strings.TrimPrefix(strings.TrimSpace(sent), "sent "), strings.TrimPrefix(strings.TrimSpace(lastLines(sink.Output(), 1)), "received "); got != want {
		t.Errorf("a→c: sent %s, received %s", want, got)
	}
}
