package tun

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// aliasDev is a fakeDev that also records where each written packet
// starts in memory, so a test can tell a packet written from the caller's
// buffer from a copy.
type aliasDev struct {
	*fakeDev
	amu   sync.Mutex
	addrs []*byte
}

func (d *aliasDev) Write(bufs [][]byte, offset int) (int, error) {
	d.amu.Lock()
	for _, b := range bufs {
		d.addrs = append(d.addrs, &b[offset])
	}
	d.amu.Unlock()
	return d.fakeDev.Write(bufs, offset)
}

func (d *aliasDev) written() []*byte {
	d.amu.Lock()
	defer d.amu.Unlock()
	return append([]*byte(nil), d.addrs...)
}

// placed puts pkt off bytes into buf and returns the slice it occupies.
func placed(buf []byte, off int, pkt []byte) []byte {
	return buf[off : off+copy(buf[off:], pkt)]
}

// WriteBuffer hands the device the caller's buffer itself when GRO has
// room in it (a large pool buffer) or GRO is off, copies a packet that
// GRO could not grow in place or that lacks headroom, and refuses what
// Write refuses.
func TestWriteBufferWritesInPlace(t *testing.T) {
	pkt := udpTo("fd00::1", 7)
	for _, tc := range []struct {
		name    string
		batch   int // 1: no offloads, no GRO
		buf     []byte
		off     int
		inPlace bool
	}{
		{"large buffer, GRO", 128, bufpool.Get(), 200, true},
		// A large buffer a frame was built in has less headroom.
		{"recycled large buffer, GRO", 128, bufpool.Get()[bufpool.MaxHeadroom-bufpool.MinHeadroom:], 200, true},
		{"class buffer, GRO", 128, bufpool.Alloc(1016), 100, false},
		{"class buffer, no GRO", 1, bufpool.Alloc(1016), 100, true},
		{"no headroom", 1, bufpool.Alloc(1016), WriteHeadroom - 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dev := &aliasDev{fakeDev: newFakeDev(tc.batch)}
			var c counters
			w := newWriter(dev, &c, WriterConfig{})
			defer w.Close()
			p := placed(tc.buf, tc.off, pkt)
			if !w.WriteBuffer(tc.buf, p) {
				t.Fatal("packet refused")
			}
			testhelp.WaitFor(t, "the device write", 5*time.Second, func() bool { return len(dev.written()) == 1 })
			writes, _ := dev.recorded()
			if !bytes.Equal(writes[0][0], pkt) {
				t.Fatal("packet changed on its way to the device")
			}
			if got := dev.written()[0] == &p[0]; got != tc.inPlace {
				t.Fatalf("written from the caller's buffer: %v, want %v", got, tc.inPlace)
			}
		})
	}
}

func TestWriteBufferRefuses(t *testing.T) {
	dev := &aliasDev{fakeDev: newFakeDev(128)}
	var c counters
	w := newWriter(dev, &c, WriterConfig{})
	buf := bufpool.Get()
	if w.WriteBuffer(buf, placed(buf, 100, []byte{0x45, 0, 0})) {
		t.Fatal("IPv4 garbage accepted")
	}
	// A packet outside the buffer is copied, as Write would.
	other := udpTo("fd00::1", 3)
	if !w.WriteBuffer(bufpool.Get(), other) {
		t.Fatal("packet outside its buffer refused")
	}
	testhelp.WaitFor(t, "the device write", 5*time.Second, func() bool { return len(dev.written()) == 1 },
		func() string { return fmt.Sprintf("stats %+v", c.snapshot()) })
	if dev.written()[0] == &other[0] {
		t.Fatal("a packet outside the given buffer was written in place")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	buf = bufpool.Get()
	if w.WriteBuffer(buf, placed(buf, 100, other)) {
		t.Fatal("accepted after Close")
	}
	s := c.snapshot()
	if s.Drops["not_ipv6"] != 1 || s.Drops["closed"] != 1 || s.WrittenPackets != 1 {
		t.Fatalf("stats %+v", s)
	}
}
