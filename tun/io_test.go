package tun

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	wgtun "golang.zx2c4.com/wireguard/tun"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// fakeDev is an in-memory wgtun.Device. Reads come from a channel of
// prepared batches; writes are recorded, and can be held back to let a
// queue fill up.
type fakeDev struct {
	batch  int
	reads  chan fakeRead
	closed chan struct{}
	once   sync.Once

	hold    chan struct{} // if non-nil, each Write waits for a receive
	entered chan struct{} // with hold: told when a Write starts waiting
	mu      sync.Mutex
	writes  [][][]byte // copies of the packets of each Write call
	offsets []int
	werr    error
}

type fakeRead struct {
	pkts [][]byte
	err  error
}

func newFakeDev(batch int) *fakeDev {
	return &fakeDev{batch: batch, reads: make(chan fakeRead, 16), closed: make(chan struct{})}
}

func (f *fakeDev) File() *os.File             { return nil }
func (f *fakeDev) MTU() (int, error)          { return 1280, nil }
func (f *fakeDev) Name() (string, error)      { return "fake0", nil }
func (f *fakeDev) Events() <-chan wgtun.Event { return nil }
func (f *fakeDev) BatchSize() int             { return f.batch }
func (f *fakeDev) Close() error               { f.once.Do(func() { close(f.closed) }); return nil }
func (f *fakeDev) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case <-f.closed:
		return 0, os.ErrClosed
	case r := <-f.reads:
		n := 0
		for i, p := range r.pkts {
			if i == len(bufs) {
				return n, wgtun.ErrTooManySegments
			}
			sizes[i] = len(p)
			copy(bufs[i][offset:], p) // short buffer: cut, like the kernel
			n++
		}
		return n, r.err
	}
}

func (f *fakeDev) Write(bufs [][]byte, offset int) (int, error) {
	if f.hold != nil {
		if f.entered != nil {
			f.entered <- struct{}{}
		}
		select {
		case <-f.hold:
		case <-f.closed:
			return 0, os.ErrClosed
		}
	}
	select {
	case <-f.closed:
		return 0, os.ErrClosed
	default:
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var got [][]byte
	for _, b := range bufs {
		got = append(got, bytes.Clone(b[offset:]))
	}
	f.writes = append(f.writes, got)
	f.offsets = append(f.offsets, offset)
	return len(bufs), f.werr
}

func (f *fakeDev) recorded() ([][][]byte, []int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes, f.offsets
}

func udpTo(dst string, n int) []byte {
	return mkPacket(ourAddr, mustAddr(dst), protoUDP, bytes.Repeat([]byte{byte(n)}, 8+n))
}

func TestReaderClassifiesAndCounts(t *testing.T) {
	dev := newFakeDev(4)
	var c counters
	r := newReader(dev, &c, 1280, Filter{Destinations: OverlayPrefixes})
	good1, good2 := udpTo("fd00::1", 1), udpTo("fc00::2", 2)
	v4 := bytes.Clone(good1)
	v4[0] = 0x45
	dev.reads <- fakeRead{pkts: [][]byte{good1, udpTo("ff02::1", 3), v4, good2}}
	dev.reads <- fakeRead{pkts: [][]byte{make([]byte, 1400)}} // bigger than a buffer
	dev.reads <- fakeRead{pkts: [][]byte{good1, good1, good1, good1, good1}}
	dev.reads <- fakeRead{err: errors.New("bad gso")}

	pkts, hdrs, err := r.Read()
	if err != nil || len(pkts) != 2 || !bytes.Equal(pkts[0], good1) || !bytes.Equal(pkts[1], good2) {
		t.Fatalf("first batch: %d packets, err %v", len(pkts), err)
	}
	if hdrs[1].Dst != mustAddr("fc00::2") {
		t.Fatalf("header dst %v", hdrs[1].Dst)
	}
	if pkts, _, err = r.Read(); err != nil || len(pkts) != 0 {
		t.Fatalf("oversize batch: %d packets, err %v", len(pkts), err)
	}
	if pkts, _, err = r.Read(); err != nil || len(pkts) != 4 {
		t.Fatalf("overflowing batch: %d packets, err %v", len(pkts), err)
	}
	if _, _, err = r.Read(); err == nil {
		t.Fatal("read error swallowed")
	}
	s := c.snapshot()
	want := map[string]uint64{"not_overlay": 1, "not_ipv6": 1, "oversize": 1, "too_many_segments": 1, "read_error": 1}
	for k, v := range want {
		if s.Drops[k] != v {
			t.Errorf("drops[%s] = %d, want %d (all: %v)", k, s.Drops[k], v, s.Drops)
		}
	}
	if s.ReadPackets != 9 || s.ReadBatches != 3 {
		t.Errorf("read packets %d batches %d", s.ReadPackets, s.ReadBatches)
	}
}

func TestReaderRunStopsOnClose(t *testing.T) {
	dev := newFakeDev(8)
	var c counters
	r := newReader(dev, &c, 1280, Filter{Destinations: OverlayPrefixes})
	got := make(chan int, 10)
	done := make(chan error, 1)
	go func() {
		done <- r.Run(func(pkts [][]byte, _ []Header) { got <- len(pkts) })
	}()
	dev.reads <- fakeRead{pkts: [][]byte{udpTo("fd00::1", 1), udpTo("fd00::1", 2)}}
	dev.reads <- fakeRead{err: errors.New("transient")}
	dev.reads <- fakeRead{pkts: [][]byte{udpTo("fd00::1", 3)}}
	for _, want := range []int{2, 1} {
		select {
		case n := <-got:
			if n != want {
				t.Fatalf("batch of %d, want %d", n, want)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no batch delivered")
		}
	}
	dev.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after Close")
	}
}

func TestReaderRunGivesUpOnPersistentErrors(t *testing.T) {
	dev := newFakeDev(1)
	var c counters
	r := newReader(dev, &c, 1280, Filter{Destinations: OverlayPrefixes})
	go func() {
		for range maxConsecutiveReadErrors {
			dev.reads <- fakeRead{err: errors.New("broken")}
		}
	}()
	if err := r.Run(func([][]byte, []Header) {}); err == nil {
		t.Fatal("Run kept going on a broken device")
	}
}

func TestWriterBatchesAndCounts(t *testing.T) {
	dev := newFakeDev(128)
	dev.hold = make(chan struct{})
	dev.entered = make(chan struct{}, 2)
	var c counters
	w := newWriter(dev, &c, WriterConfig{QueueLen: 8})
	defer w.Close()

	first := udpTo("fd00::1", 0)
	if !w.Write(first) {
		t.Fatal("first write refused")
	}
	// Wait until the loop is blocked in the device write with it, so that
	// the next packets pile up in the queue.
	select {
	case <-dev.entered:
	case <-time.After(5 * time.Second):
		t.Fatal("writer never wrote")
	}
	var sent [][]byte
	for i := 1; i <= 8; i++ {
		p := udpTo("fd00::1", i)
		if !w.Write(p) {
			t.Fatalf("write %d refused with room in the queue", i)
		}
		sent = append(sent, p)
	}
	if w.Write(udpTo("fd00::1", 99)) {
		t.Fatal("write accepted into a full queue")
	}
	if w.Write([]byte{0x45, 0, 0}) {
		t.Fatal("IPv4 garbage accepted")
	}
	// The caller's buffer is free once Write returns.
	sent[0][len(sent[0])-1] ^= 0xff
	sent[0][len(sent[0])-1] ^= 0xff

	dev.hold <- struct{}{} // first write (1 packet)
	dev.hold <- struct{}{} // second write: everything queued, in one call
	testhelp.WaitFor(t, "two device writes", 5*time.Second,
		func() bool { w, _ := dev.recorded(); return len(w) == 2 },
		func() string { w, _ := dev.recorded(); return fmt.Sprintf("%d writes recorded", len(w)) })
	writes, offsets := dev.recorded()
	if len(writes[0]) != 1 || !bytes.Equal(writes[0][0], first) {
		t.Fatal("first write wrong")
	}
	if len(writes[1]) != 8 {
		t.Fatalf("second write carried %d packets, want 8 in one call", len(writes[1]))
	}
	for i := range sent {
		if !bytes.Equal(writes[1][i], sent[i]) {
			t.Fatalf("packet %d changed or reordered", i)
		}
	}
	for _, o := range offsets {
		if o < 10 {
			t.Fatalf("offset %d leaves no room for a virtio-net header", o)
		}
	}
	// The writer counts a batch after the device write returns, so the
	// fake device has recorded it a moment before the counters move.
	want := func(s Stats) bool {
		return s.WrittenPackets == 9 && s.WriteBatches == 2 && s.Drops["queue_full"] == 1 && s.Drops["not_ipv6"] == 1
	}
	var last Stats
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("last stats %+v", last)
		}
	})
	testhelp.WaitFor(t, "the writer's counters", 5*time.Second, func() bool { last = c.snapshot(); return want(last) })
}

func TestWriterCloseDropsQueued(t *testing.T) {
	dev := newFakeDev(1)
	dev.hold = make(chan struct{})
	var c counters
	dev.entered = make(chan struct{}, 1)
	w := newWriter(dev, &c, WriterConfig{QueueLen: 4, MaxBatch: 2})
	for range 3 {
		w.Write(udpTo("fd00::1", 1))
	}
	<-dev.entered
	dev.Close() // unblocks the held write with ErrClosed
	if err := w.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Close = %v, want the device-closed error", err)
	}
	if w.Write(udpTo("fd00::1", 1)) {
		t.Fatal("write accepted after close")
	}
	s := c.snapshot()
	if s.Drops["closed"] != 4 || s.WrittenPackets != 0 {
		t.Fatalf("stats %+v", s)
	}
	if err := w.Close(); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("second Close = %v", err)
	}
}

func TestWriterCountsWriteErrors(t *testing.T) {
	dev := newFakeDev(1)
	dev.werr = errors.New("EIO")
	var c counters
	w := newWriter(dev, &c, WriterConfig{})
	w.Write(udpTo("fd00::1", 1))
	testhelp.WaitFor(t, "the write error counted", 5*time.Second,
		func() bool { return c.snapshot().Drops["write_error"] == 1 },
		func() string { return fmt.Sprintf("stats %+v", c.snapshot()) })
	if err := w.Close(); err != nil {
		t.Fatalf("a write error stopped the writer: %v", err)
	}
}
