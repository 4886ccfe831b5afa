package netns

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pineconed/pineconed/addressing"
)

// TestSubnetRouting: an address in c's routed /64 (fc…, derived from c's
// key), put on c's loopback as a host behind c would have it, is reachable
// from a through the overlay: the lookup resolves the subnet prefix to c.
func TestSubnetRouting(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	nodes, _ := n.Line(3, "tcp")
	a, c := nodes[0], nodes[2]
	subnet := addressing.Subnet(c.Key)
	if got := c.Self().Subnet; got != subnet.String() {
		t.Fatalf("c's getSelf subnet %s, want %s", got, subnet)
	}
	host := subnet.Addr().Next() // <subnet>::1
	c.MustIP("addr", "add", host.String()+"/128", "dev", "lo", "nodad")
	a.WaitReach(host)
	if out, err := a.Ping6(host, "-c", "3", "-i", "0.2", "-W", "2"); err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping -c 3 a→%s (in c's subnet %s): %v\n%s", host, subnet, err, out)
	}
}

// TestSpoofedSourceDropped: c puts b's overlay address on its loopback and
// sends to a from it. a must not deliver those packets (the inner source
// must belong to the key of the session they came in on), while datagrams
// from c's own address arrive.
func TestSpoofedSourceDropped(t *testing.T) {
	n := newNet(t)
	nodes, _ := n.Line(3, "tcp")
	a, b, c := nodes[0], nodes[1], nodes[2]
	c.WaitReach(a.Addr)
	c.MustIP("addr", "add", b.Addr.String()+"/128", "dev", "lo", "nodad")

	dst := netip.AddrPortFrom(a.Addr, 5556).String()
	const count = 5
	tunBefore := c.Stats().Tun.PacketsRead
	dropsBefore := sumMap(a.Stats().Drops) + sumMap(c.Stats().Drops)
	recv := a.StartHelper("udprecv", "-listen", dst, "-n", "1000", "-timeout", "6s")
	recv.WaitOutput(t, "ready", 10*time.Second)
	if out, err := c.RunHelper("udpsend", "-to", dst, "-n", "5", "-prefix", "spoofed", "-from", b.Addr.String()); err != nil {
		// Refused on c's side already: fine, nothing left c.
		t.Logf("c refused to send from b's address: %v %s", err, out)
	}
	if out, err := c.RunHelper("udpsend", "-to", dst, "-n", "5", "-prefix", "genuine", "-from", c.Addr.String()); err != nil {
		t.Fatalf("udpsend from c's own address: %v\n%s", err, out)
	}
	waitFor(t, "the genuine datagrams at a", 10*time.Second, 50*time.Millisecond, func() (bool, string) {
		return strings.Count(recv.Output(), "genuine-") == count, recv.Output()
	})
	// The receiver runs out its 6 s; the spoofed datagrams, sent first,
	// had all that time to arrive.
	recv.Wait(15 * time.Second)
	if out := recv.Output(); strings.Contains(out, "spoofed-") {
		t.Fatalf("a delivered datagrams from b's address sent by c:\n%s", out)
	}
	// The spoofed datagrams did enter c's daemon, and a drop counter on
	// one side or the other says why they went no further.
	sa, sc := a.Stats(), c.Stats()
	if read := sc.Tun.PacketsRead - tunBefore; read < 2*count {
		t.Errorf("c's daemon read %d packets from its TUN, want ≥ %d: did the spoofed datagrams leave c's kernel?", read, 2*count)
	}
	if dropped := sumMap(sa.Drops) + sumMap(sc.Drops) - dropsBefore; dropped < count {
		t.Errorf("drop counters moved by %d, want ≥ %d (a: %v, c: %v)", dropped, count, sa.Drops, sc.Drops)
	}
	t.Logf("drops: a %v, c %v", sa.Drops, sc.Drops)
}
