package netns

import (
	"strings"
	"testing"
)

// TestLANDiscovery: two namespaces joined by a veth with link-local
// addresses only, multicast discovery on, no static peers and no
// listeners: they find each other by beacons, peer, and ping over the
// overlay.
func TestLANDiscovery(t *testing.T) {
	needTool(t, "ping")
	n := newNet(t)
	a, b := n.Node("a"), n.Node("b")
	l := n.Connect(a, b, false)
	for _, nd := range []*Node{a, b} {
		nd.Multicast = true
		nd.MulticastIfaces = []string{"v" + runTag + ".*"}
	}
	// The veths have only fe80:: addresses.
	for _, c := range []struct {
		nd    *Node
		iface string
	}{{a, l.IfA}, {b, l.IfB}} {
		out := c.nd.MustIP("-6", "addr", "show", "dev", c.iface)
		if !strings.Contains(out, "inet6 fe80:") || strings.Contains(out, "scope global") {
			t.Fatalf("%s %s should have only a link-local address:\n%s", c.nd.Name, c.iface, out)
		}
	}
	n.StartAll()
	a.WaitPeer(b)

	for _, c := range []struct {
		nd, other *Node
		iface     string
	}{{a, b, l.IfA}, {b, a, l.IfB}} {
		p, _ := c.nd.PeerWith(c.other)
		if p.Transport != "multicast" || p.Origin != "lan" || p.Interface != c.iface {
			t.Errorf("%s's peering with %s: transport %q origin %q interface %q, want multicast from lan on %s", c.nd.Name, c.other.Name, p.Transport, p.Origin, p.Interface, c.iface)
		}
	}
	a.WaitReach(b.Addr)
	if out, err := b.Ping6(a.Addr, "-c", "3", "-i", "0.2", "-W", "2"); err != nil || !strings.Contains(out, "3 received") {
		t.Fatalf("ping -c 3 b→a over the discovered peering: %v\n%s", err, out)
	}
}
