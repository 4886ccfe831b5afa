package overlay

import (
	"bytes"
	"testing"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// trafficFrame encodes a Traffic frame for n's own key, as a peer would
// send it, in a pool buffer as a link reads it.
func trafficFrame(t *testing.T, n *Node, payload []byte) []byte {
	t.Helper()
	f := n.snap.Load().NewTraffic(n.now(), n.PublicKey(), payload)
	enc, err := f.Append(nil)
	if err != nil {
		t.Fatal(err)
	}
	frame := bufpool.Alloc(len(enc))
	copy(frame, enc)
	return frame
}

// A frame from a link is delivered in the buffer the link read it into,
// to the HandleDeliveries receiver on the link's goroutine when there is
// one; the node's sends to itself still go to Deliveries; nil goes back to
// queueing.
func TestHandleDeliveriesTakesLinkFramesInPlace(t *testing.T) {
	n := newNode(t, 1, Config{})
	port, err := n.Attach(PeerInfo{Key: wire.PublicKeyOf(testhelp.SeedKey(2)), Transport: "mem"}, sinkLink{})
	if err != nil {
		t.Fatal(err)
	}
	payload := bytes.Repeat([]byte{0xa5}, 40000)
	var got []Delivery
	n.HandleDeliveries(func(d Delivery) { got = append(got, d) })

	frame := trafficFrame(t, n, payload)
	if err := n.Receive(port, frame); err != nil {
		t.Fatal(err)
	}
	// No lock guards got: the receiver ran on this goroutine, within
	// Receive (the race detector would see another goroutine).
	if len(got) != 1 || !bytes.Equal(got[0].Payload, payload) {
		t.Fatalf("%d direct deliveries, want the payload once", len(got))
	}
	d := got[0]
	if &d.Payload[0] != &frame[len(frame)-len(payload)] {
		t.Fatal("payload copied out of the frame's buffer")
	}
	if b := d.Take(); &b[0] != &frame[0] || cap(b) != cap(frame) {
		t.Fatal("Take does not give back the frame's whole buffer")
	}
	bufpool.Put(frame)

	if err := n.SendBuffer(n.PublicKey(), []byte("to myself"), 0); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(n.Deliveries()) != 1 {
		t.Fatalf("a send to ourselves: %d direct, %d queued; want it queued", len(got)-1, len(n.Deliveries()))
	}
	(<-n.Deliveries()).Release()

	n.HandleDeliveries(nil)
	frame = trafficFrame(t, n, payload)
	if err := n.Receive(port, frame); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || len(n.Deliveries()) != 1 {
		t.Fatalf("after HandleDeliveries(nil): %d direct, %d queued; want it queued", len(got)-1, len(n.Deliveries()))
	}
	q := <-n.Deliveries()
	if &q.Payload[0] != &frame[len(frame)-len(payload)] {
		t.Fatal("queued payload copied out of the frame's buffer")
	}
	if n.DeliveryBytes() != int64(cap(frame)) {
		t.Fatalf("queue holds %d bytes, want the frame buffer's %d", n.DeliveryBytes(), cap(frame))
	}
	q.Release()
	if n.DeliveryBytes() != 0 {
		t.Fatalf("%d bytes still held after Release", n.DeliveryBytes())
	}
}
