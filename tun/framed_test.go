package tun

import (
	"bytes"
	"testing"
)

// Every packet the Reader returns has a free byte in front of it in its
// buffer (Framed), for the session layer's inner type byte.
func TestReaderLeavesRoomInFront(t *testing.T) {
	dev := newFakeDev(4)
	var c counters
	r := newReader(dev, &c, 1280, Filter{Destinations: OverlayPrefixes})
	p1, p2 := udpTo("fd00::1", 1), udpTo("fd00::2", 2)
	dev.reads <- fakeRead{pkts: [][]byte{p1, udpTo("ff02::1", 3), p2}}
	pkts, _, err := r.Read()
	if err != nil || len(pkts) != 2 {
		t.Fatalf("%d packets, err %v", len(pkts), err)
	}
	for i, want := range [][]byte{p1, p2} {
		f := r.Framed(i)
		if len(f) != len(want)+1 || !bytes.Equal(f[1:], want) || &f[1] != &pkts[i][0] {
			t.Fatalf("Framed(%d) is not packet %d with one byte in front", i, i)
		}
		f[0] = 0xff // the byte is free: writing it leaves the packet alone
		if !bytes.Equal(pkts[i], want) {
			t.Fatalf("packet %d changed", i)
		}
	}
}
