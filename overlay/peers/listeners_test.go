package peers

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// Listeners opened and closed on a running manager: a new one accepts
// peerings at once; a removed one refuses new connections while the
// peerings it accepted earlier stay attached and keep carrying frames.
func TestAddRemoveListener(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, na := newManager(t, Config{}, privA)
	if len(ma.ListenAddrs()) != 0 {
		t.Fatal("listeners without configuration")
	}
	if err := ma.AddListener(mkURI("tcp://127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := ma.AddListener(mkURI("ws://[::1]:0/pc")); err != nil {
		t.Fatal(err)
	}
	if err := ma.AddListener(mkURI("tcp://127.0.0.1:0")); !errors.Is(err, ErrListenerExists) {
		t.Fatalf("the same listener twice: %v", err)
	}
	if err := ma.AddListener(mkURI("tcp://h:1?key=" + keyB.String())); err == nil {
		t.Fatal("a listener with a pinned key was accepted")
	}
	if got := ma.ListenURIs(); len(got) != 2 || got[0].String() != "tcp://127.0.0.1:0" || got[1].String() != "ws://[::1]:0/pc" {
		t.Fatalf("listen URIs %q", got)
	}
	addrs := ma.ListenAddrs()
	tcpAddr, wsAddr := addrs[0].String(), addrs[1].String()

	_, nb := newManager(t, Config{Static: mkURIs("tcp://" + tcpAddr)}, privB)
	_, nc := newManager(t, Config{Static: mkURIs("ws://" + wsAddr + "/pc")}, privC)
	// Both ends attached: A's two peerings, and B's and C's one each.
	testhelp.WaitFor(t, "peerings through the new listeners", 5*time.Second, func() bool {
		return na.live() == 2 && nb.live() == 1 && nc.live() == 1
	})
	pb, _ := na.portFor(keyB)
	pc, _ := na.portFor(keyC)

	if err := ma.RemoveListener(mkURI("tcp://127.0.0.1:0")); err != nil {
		t.Fatal(err)
	}
	if err := ma.RemoveListener(mkURI("ws://[::1]:0/pc")); err != nil {
		t.Fatal(err)
	}
	if err := ma.RemoveListener(mkURI("ws://[::1]:0/pc")); !errors.Is(err, ErrUnknownListener) {
		t.Fatalf("removing twice: %v", err)
	}
	if n := len(ma.ListenAddrs()); n != 0 {
		t.Fatalf("%d listeners left", n)
	}
	for _, a := range []string{tcpAddr, wsAddr} {
		if c, err := net.DialTimeout("tcp", a, time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections", a)
		}
	}

	// The peerings made through them work, and are the same ones: a frame
	// each way over each of them comes first, so that a peering the removal
	// had closed has ended (its link stops with the close) by the time its
	// port and the detaches are checked.
	// A fresh frame for every Send: the link owns what it is given.
	frame := func() []byte { return testframe.Of(wire.TypeTraffic, 100, 0x42) }
	for _, c := range []struct {
		n    *fakeNode
		port router.Port
		key  wire.PublicKey
	}{{nb, pb, keyB}, {nc, pc, keyC}} {
		toA, _ := c.n.portFor(keyA)
		before := len(c.n.got(toA))
		if !na.send(c.port, frame()) {
			t.Fatal("send refused")
		}
		testhelp.WaitFor(t, fmt.Sprintf("frame from A to %s over a peering of a removed listener", c.key), 5*time.Second, func() bool {
			return len(c.n.got(toA)) > before
		})
	}
	for _, c := range []struct {
		n   *fakeNode
		key wire.PublicKey
	}{{nb, keyA}, {nc, keyA}} {
		p, _ := c.n.portFor(c.key)
		before := len(na.got(pb)) + len(na.got(pc))
		if !c.n.send(p, frame()) {
			t.Fatal("send refused")
		}
		testhelp.WaitFor(t, "frame over a peering of a removed listener", 5*time.Second, func() bool {
			return len(na.got(pb))+len(na.got(pc)) > before
		})
	}
	if p, ok := na.portFor(keyB); !ok || p != pb {
		t.Fatalf("B's peering changed: port %d, %v (was %d)", p, ok, pb)
	}
	if p, ok := na.portFor(keyC); !ok || p != pc {
		t.Fatalf("C's peering changed: port %d, %v (was %d)", p, ok, pc)
	}
	if r := na.detachReasons(); len(r) != 0 {
		t.Fatalf("peerings ended: %v", r)
	}

	// Added again on the same address: accepts again.
	if err := ma.AddListener(mkURI("tcp://" + tcpAddr)); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", tcpAddr, time.Second)
	if err != nil {
		t.Fatalf("re-added listener: %v", err)
	}
	c.Close()

	ma.Close()
	if err := ma.AddListener(mkURI("tcp://127.0.0.1:0")); !errors.Is(err, ErrClosed) {
		t.Fatalf("AddListener after Close: %v", err)
	}
}
