package multicast

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/link"
	"github.com/pineconed/pineconed/overlay/peers"
	"github.com/pineconed/pineconed/overlay/router"
)

// TestManyInboundLANNeighbours: more LAN neighbours than handshake slots
// (maxInboundHandshakes, 32) connect to our discovery listener and all
// stay peered. Each slot is held only while its handshake runs; when it
// was held for the life of the link, the 33rd neighbour was refused as
// "too many handshakes". The neighbours are real nodes in this process,
// each with a real TCP connection and handshake, to a discovery listener
// on loopback that stands for a LAN interface.
func TestManyInboundLANNeighbours(t *testing.T) {
	testhelp.CheckNoLeak(t)
	const neighbours = 3*maxInboundHandshakes/2 + 1 // 49
	log, logs := testhelp.NewLogger(t)
	hubKey := testhelp.SeedKey(1)
	hub := overlay.New(hubKey, overlay.Config{})
	defer hub.Close()
	m, err := peers.New(peers.Config{PrivateKey: hubKey, MaxPeers: int(router.MaxPort), Logger: log}, hub)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	d := newDiscovery(Config{Key: hub.PublicKey(), Interfaces: []*regexp.Regexp{regexp.MustCompile(`^lan0$`)}, Logger: log}, m)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d.ln = ln
	d.ifaces["lan0"] = &iface{ifi: net.Interface{Index: 9, Name: "lan0"}, v4: netip.MustParseAddr("127.0.0.1")}
	d.wg.Add(1)
	go d.acceptLoop()
	defer d.Close()

	var nodes []*overlay.Node
	var links []*link.Conn
	defer func() {
		for _, n := range nodes {
			n.Close()
		}
	}()
	for i := range neighbours {
		priv := testhelp.SeedKey(byte(10 + i))
		n := overlay.New(priv, overlay.Config{})
		nodes = append(nodes, n)
		nc, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		remote, err := link.Handshake(ctx, nc, priv)
		cancel()
		if err != nil {
			nc.Close()
			t.Fatalf("neighbour %d: handshake: %v", i, err)
		}
		c := link.New(nc, remote, link.Config{Logger: log})
		port, err := n.Attach(overlay.PeerInfo{Key: remote, Type: router.PeerMulticast, Origin: overlay.OriginLAN, Interface: "lan0"}, c)
		if err != nil {
			t.Fatal(err)
		}
		c.Start(port, n)
		links = append(links, c)
	}
	testhelp.WaitFor(t, "every neighbour peered", 10*time.Second, func() bool { return len(hub.Peerings()) >= neighbours },
		func() string { return fmt.Sprintf("%d of %d", len(hub.Peerings()), neighbours) })
	// They stay up: each neighbour hears from the hub over its link, which
	// a refused neighbour's link, closed by the hub, would not; one ending
	// stops the wait at once.
	heard := func(n *overlay.Node) bool {
		for _, p := range n.Peers() {
			for _, fc := range p.In {
				if fc.Frames > 0 {
					return true
				}
			}
		}
		return false
	}
	var ended []int
	testhelp.WaitFor(t, "every neighbour to hear from the hub", 10*time.Second, func() bool {
		all := true
		for i, c := range links {
			select {
			case <-c.Done():
				ended = append(ended, i)
				return true
			default:
			}
			all = all && heard(nodes[i])
		}
		return all
	})
	if len(ended) > 0 {
		t.Fatalf("neighbour %d's link ended", ended[0])
	}
	ps := hub.Peerings()
	if len(ps) != neighbours {
		t.Fatalf("%d of %d LAN neighbours peered (handshake slots: %d)", len(ps), neighbours, maxInboundHandshakes)
	}
	for _, p := range ps {
		if p.Info.Type != router.PeerMulticast || p.Info.Origin != overlay.OriginLAN || p.Info.Interface != "lan0" || !p.Info.Inbound {
			t.Fatalf("peering %+v is not an inbound LAN peering on lan0", p.Info)
		}
	}
	if refused := logs.Lines("too many handshakes"); len(refused) > 0 {
		t.Fatalf("neighbours refused: %q", refused)
	}
	if n := d.slots.InUse(); n != 0 {
		t.Fatalf("%d handshake slots still taken with every handshake over", n)
	}
}
