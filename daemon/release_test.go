package daemon

import (
	"bytes"
	"testing"
	"time"

	"github.com/pineconed/pineconed/envelope"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// TestDeliveriesReleased: every payload the overlay delivers goes back to
// the pool and to the delivery queue's byte budget once its layer has
// handled it, handshake initiations and lookups included (they used to be
// left to the garbage collector, outside the budget's accounting).
func TestDeliveriesReleased(t *testing.T) {
	n := startNode(t, "")
	node := n.d.node
	initMsg, err := envelope.HandshakeInit{Sender: 7, Noise: make([]byte, envelope.NoiseInitSize)}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	lookup, err := envelope.LookupRequest{Kind: envelope.LookupNode, Nonce: 1, Prefix: make([]byte, envelope.LookupNode.PrefixLen())}.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Sent to our own key, each is delivered to us and handled (and
	// refused: an initiation from our own key, a lookup we sent).
	for range 3000 {
		for _, p := range [][]byte{initMsg, lookup} {
			if err := node.SendBuffer(n.d.key, bytes.Clone(p), 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	testhelp.WaitFor(t, "every delivery released", 10*time.Second, func() bool {
		return len(node.Deliveries()) == 0 && node.DeliveryBytes() == 0
	})
}
