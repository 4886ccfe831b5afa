package peers

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
)

// Two real nodes (package overlay) peered by two managers over loopback
// TCP and over WebSocket route payloads to each other: the handshake, the
// first announcement, the tree, SNEK or tree forwarding and the link
// reader and writer all take part. A third node behind B checks that a
// frame crosses two links.
func TestNodesOverRealLinks(t *testing.T) {
	testhelp.CheckNoLeak(t)
	log, _ := testhelp.NewLogger(t)
	nodeA := overlay.New(privA, overlay.Config{Logger: log})
	nodeB := overlay.New(privB, overlay.Config{Logger: log})
	nodeC := overlay.New(privC, overlay.Config{Logger: log})
	for _, n := range []*overlay.Node{nodeA, nodeB, nodeC} {
		t.Cleanup(func() { n.Close() })
	}
	ma := startManager(t, Config{PrivateKey: privA, Listen: mkURIs("tcp://127.0.0.1:0"), Logger: log}, nodeA)
	mb := startManager(t, Config{PrivateKey: privB, Logger: log, Listen: mkURIs("ws://[::1]:0/pc"),
		Static: mkURIs(ma.ListenAddrs()[0].String() + "?key=" + keyA.String())}, nodeB)
	startManager(t, Config{PrivateKey: privC, Logger: log,
		Static: mkURIs("ws://" + mb.ListenAddrs()[0].String() + "/pc")}, nodeC)

	testhelp.WaitFor(t, "peerings", 10*time.Second, func() bool {
		return len(nodeA.Peerings()) == 1 && len(nodeB.Peerings()) == 2 && len(nodeC.Peerings()) == 1
	})

	// Routes take a moment to form, so a payload is resent until one copy
	// gets through; the later copies may still arrive, after the next
	// payload is sent, and are told apart by their contents.
	sent := map[string]bool{}
	lateCopy := func(d overlay.Delivery) bool { return sent[string(d.Payload)] }
	send := func(from, to *overlay.Node, payload []byte) {
		t.Helper()
		testhelp.WaitFor(t, fmt.Sprintf("%q delivered", payload), 15*time.Second, func() bool {
			if err := from.SendBuffer(to.PublicKey(), bytes.Clone(payload), 0); err != nil {
				t.Fatal(err)
			}
			wait := time.After(200 * time.Millisecond)
			for {
				select {
				case d := <-to.Deliveries():
					match := bytes.Equal(d.Payload, payload) && d.Source == from.PublicKey()
					if !match && !lateCopy(d) {
						t.Fatalf("delivered %q from %s", d.Payload, d.Source)
					}
					d.Release()
					if match {
						return true
					}
				case <-wait:
					return false
				}
			}
		})
		sent[string(payload)] = true
	}
	for _, c := range []struct {
		from, to *overlay.Node
		name     string
	}{
		{nodeA, nodeB, "A→B over TCP"},
		{nodeB, nodeA, "B→A over TCP"},
		{nodeC, nodeB, "C→B over WebSocket"},
		{nodeA, nodeC, "A→C over TCP then WebSocket"},
		{nodeC, nodeA, "C→A over WebSocket then TCP"},
	} {
		send(c.from, c.to, []byte(c.name))
	}

	// Both of B's peerings carried announcements and traffic in each
	// direction, as B's node counted them. A frame is counted just after
	// it is queued on its link, so the far end may deliver it before
	// the count is made: on a loaded machine CI once read B's counters
	// before its forwarding goroutine had counted the frame C already
	// had. The counts are waited for, not assumed.
	var last string
	testhelp.WaitFor(t, "B's per-peering counters", 2*time.Second, func() bool {
		for _, p := range nodeB.Peers() {
			if p.In["tree_announcement"].Frames == 0 || p.Out["tree_announcement"].Frames == 0 ||
				p.In["traffic"].Frames == 0 || p.Out["traffic"].Frames == 0 {
				last = fmt.Sprintf("B's peering with %s: in %+v, out %+v", p.Info.Key, p.In, p.Out)
				return false
			}
		}
		return true
	}, func() string { return last })

	// A stream of payloads from A to C arrives complete and in order.
	const n = 500
	for i := range n {
		if err := nodeA.SendBuffer(nodeC.PublicKey(), []byte(fmt.Sprintf("%04d", i)), 0); err != nil {
			t.Fatal(err)
		}
		if i%50 == 49 {
			time.Sleep(5 * time.Millisecond) // stay under the queue bounds
		}
	}
	for i := 0; i < n; {
		select {
		case d := <-nodeC.Deliveries():
			if late := lateCopy(d); !late {
				if want := fmt.Sprintf("%04d", i); string(d.Payload) != want {
					t.Fatalf("payload %d is %q", i, d.Payload)
				}
				i++
			}
			d.Release()
		case <-time.After(5 * time.Second):
			t.Fatalf("only %d of %d payloads arrived", i, n)
		}
	}
}
