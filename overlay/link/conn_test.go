package link

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// pipePair runs two started links over an unbuffered pipe, both on port 1
// of their own fake switch.
func pipePair(t *testing.T, cfg Config) (a, b *Conn, sa, sb *fakeSwitch) {
	t.Helper()
	x, y := net.Pipe()
	return startPair(t, cfg, x, y)
}

// tcpPair is pipePair over loopback TCP.
func tcpPair(t *testing.T, cfg Config) (a, b *Conn, sa, sb *fakeSwitch) {
	t.Helper()
	x, y := tcpConns(t)
	return startPair(t, cfg, x, y)
}

// startPair starts a link on each end of x–y (a on x, whose remote is key
// B; b on y, whose remote is key A), each on port 1 of its own fake switch,
// and closes both when the test ends.
func startPair(t *testing.T, cfg Config, x, y net.Conn) (a, b *Conn, sa, sb *fakeSwitch) {
	t.Helper()
	a, b = New(x, keyB, cfg), New(y, keyA, cfg)
	sa, sb = newFakeSwitch(), newFakeSwitch()
	a.Start(1, sa)
	b.Start(1, sb)
	t.Cleanup(func() {
		a.Close(nil)
		b.Close(nil)
		<-a.Done()
		<-b.Done()
	})
	return a, b, sa, sb
}

// tcpConns returns both ends of a plain loopback TCP connection.
func tcpConns(t testing.TB) (client, server net.Conn) {
	t.Helper()
	return tcpConnsWith(t, net.ListenConfig{}, net.Dialer{})
}

// nonKeepalive filters keepalives out of what a switch received.
func nonKeepalive(frames [][]byte) [][]byte {
	var out [][]byte
	for _, f := range frames {
		if wire.FrameType(f[5]) != wire.TypeKeepalive {
			out = append(out, f)
		}
	}
	return out
}

func TestFramesBothWays(t *testing.T) {
	for _, transport := range []string{"pipe", "tcp"} {
		t.Run(transport, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			pair := pipePair
			if transport == "tcp" {
				pair = tcpPair
			}
			a, b, sa, sb := pair(t, Config{})
			var want [][]byte
			for i := range 50 {
				f := testframe.Of(wire.TypeTraffic, 12+i*100, byte(i))
				want = append(want, f)
				if !a.Send(f, false) {
					t.Fatalf("send %d refused", i)
				}
			}
			big := testframe.Of(wire.TypeTraffic, wire.MaxFrameSize, 0xee)
			want = append(want, big)
			a.Send(big, false)
			ann := testframe.Of(wire.TypeTreeAnnouncement, 142, 7)
			b.Send(ann, true)

			testhelp.WaitFor(t, "frames A to B", 5*time.Second, func() bool { return len(nonKeepalive(sb.got(1))) == len(want) })
			for i, f := range nonKeepalive(sb.got(1)) {
				if !bytes.Equal(f, want[i]) {
					t.Fatalf("frame %d differs", i)
				}
			}
			testhelp.WaitFor(t, "frame B to A", 5*time.Second, func() bool { return len(nonKeepalive(sa.got(1))) == 1 })
			if !bytes.Equal(nonKeepalive(sa.got(1))[0], ann) {
				t.Fatal("announcement differs")
			}
		})
	}
}

// With nothing to send, the writer sends keepalives; they keep the other
// side's read deadline from expiring.
func TestKeepaliveAfterIdle(t *testing.T) {
	testhelp.CheckNoLeak(t)
	synctest.Test(t, testKeepaliveAfterIdle)
}

// testKeepaliveAfterIdle runs in a synctest bubble: the second of idling
// is the bubble's clock, so the check holds however loaded the machine is.
func testKeepaliveAfterIdle(t *testing.T) {
	cfg := fastConfig() // keepalive 50ms, read timeout 300ms
	_, _, sa, sb := pipePair(t, cfg)
	time.Sleep(time.Second) // more than three read timeouts
	synctest.Wait()
	// Every keepalive a side wrote was reported to its own switch, which
	// counts them for the node's frames_out: with both sides at rest, what
	// each reported is what the other received.
	for _, c := range []struct {
		name     string
		from, to *fakeSwitch
	}{{"A", sa, sb}, {"B", sb, sa}} {
		if got, want := c.from.keepaliveBytes(1), len(c.to.got(1))*len(keepaliveFrame); got == 0 || got != want {
			t.Fatalf("%s reported %d keepalive bytes, the other side received %d", c.name, got, want)
		}
	}
	for name, s := range map[string]*fakeSwitch{"A": sa, "B": sb} {
		if d := s.detaches(1); len(d) > 0 {
			t.Fatalf("%s detached while keepalives were flowing: %v", name, d)
		}
		n := len(s.got(1))
		if n < 5 || n > 40 {
			t.Fatalf("%s got %d keepalives in 1s at a 50ms interval", name, n)
		}
		for _, f := range s.got(1) {
			if !bytes.Equal(f, keepaliveFrame) {
				t.Fatalf("%s got %x, want only keepalives", name, f)
			}
		}
	}
}

// Keepalives only fill silence: a link busy with frames sends none.
func TestNoKeepaliveWhileBusy(t *testing.T) {
	testhelp.CheckNoLeak(t)
	synctest.Test(t, testNoKeepaliveWhileBusy)
}

// testNoKeepaliveWhileBusy runs in a synctest bubble: a slow machine
// cannot stretch the 20 ms gaps past the keepalive interval.
func testNoKeepaliveWhileBusy(t *testing.T) {
	cfg := Config{KeepaliveInterval: 200 * time.Millisecond}
	a, _, sa, sb := pipePair(t, cfg)
	stop := time.Now().Add(time.Second)
	for time.Now().Before(stop) {
		a.Send(testframe.Of(wire.TypeTraffic, 100, 1), false)
		time.Sleep(20 * time.Millisecond)
	}
	synctest.Wait()
	got := sb.got(1)
	if n := len(got) - len(nonKeepalive(got)); n != 0 || sa.keepaliveBytes(1) != 0 {
		t.Fatalf("%d keepalives received from a busy link, %d bytes of them reported", n, sa.keepaliveBytes(1))
	}
	if len(got) < 10 {
		t.Fatal("traffic did not arrive")
	}
}

// A peer that stops sending is dropped by the read deadline, even though
// it keeps reading what we send.
func TestSilentPeerDropped(t *testing.T) {
	testhelp.CheckNoLeak(t)
	synctest.Test(t, testSilentPeerDropped)
}

// testSilentPeerDropped runs in a synctest bubble, whose clock moves only
// when every goroutine waits: the drop comes exactly one read timeout
// after the start, neither early nor stretched by a loaded machine.
func testSilentPeerDropped(t *testing.T) {
	x, raw := net.Pipe()
	defer raw.Close()
	go func() { _, _ = io.Copy(io.Discard, raw) }()
	s := newFakeSwitch()
	cfg := fastConfig()
	c := New(x, keyB, cfg)
	start := time.Now()
	c.Start(3, s)
	<-c.Done()
	el := time.Since(start)
	d := s.detaches(3)
	if len(d) != 1 || !errors.Is(d[0], ErrReadTimeout) {
		t.Fatalf("detaches: %v", d)
	}
	if el != cfg.ReadTimeout {
		t.Fatalf("dropped after %v with a %v read timeout", el, cfg.ReadTimeout)
	}
}

// A peer that stops reading is dropped by the write deadline.
func TestStalledReaderDropped(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, raw := net.Pipe()
	defer raw.Close()
	s := newFakeSwitch()
	cfg := fastConfig()
	cfg.ReadTimeout = -1 // only the write side is under test
	c := New(x, keyB, cfg)
	c.Start(1, s)
	c.Send(testframe.Of(wire.TypeTraffic, 100, 1), false)
	select {
	case <-c.Done():
	case <-time.After(3 * time.Second):
		t.Fatal("not dropped")
	}
	if d := s.detaches(1); len(d) != 1 || !errors.Is(d[0], ErrWriteTimeout) {
		t.Fatalf("detaches: %v", d)
	}
}

// Frames queued before the writer runs (as the node does inside Attach)
// wait; the protocol frame goes out before all the traffic queued ahead
// of it.
func TestProtocolOvertakesTraffic(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, y := net.Pipe()
	a := New(x, keyB, Config{})
	for i := range 100 {
		if !a.Send(testframe.Of(wire.TypeTraffic, 50, byte(i)), false) {
			t.Fatal("traffic refused")
		}
	}
	ann := testframe.Of(wire.TypeTreeAnnouncement, 142, 0xaa)
	a.Send(ann, true)
	s := newFakeSwitch()
	a.Start(1, s)
	defer func() { a.Close(nil); <-a.Done() }()
	first := make([]byte, len(ann))
	if _, err := io.ReadFull(y, first); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first, ann) {
		t.Fatalf("first frame on the wire is type %d, want the announcement", first[5])
	}
	rest := make([]byte, 100*50)
	if _, err := io.ReadFull(y, rest); err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		if rest[i*50+12] != byte(i) {
			t.Fatalf("traffic frame %d out of order", i)
		}
	}
	y.Close()
}

// Protocol frames also overtake traffic on a running link whose peer reads
// slowly: whatever is queued behind a blocked write waits, the protocol
// frame does not.
func TestProtocolOvertakesOnBusyLink(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, y := net.Pipe()
	cfg := Config{WriteBuffer: 64}
	a := New(x, keyB, cfg)
	a.Start(1, newFakeSwitch())
	defer func() { a.Close(nil); <-a.Done() }()
	defer y.Close()
	// The peer is not reading, so the first frame blocks in a write and
	// the others queue up behind it.
	for i := range 20 {
		a.Send(testframe.Of(wire.TypeTraffic, 60, byte(i)), false)
	}
	testhelp.WaitFor(t, "traffic to queue", 2*time.Second, func() bool { return a.Stats().TrafficQueued >= 18 })
	ann := testframe.Of(wire.TypeTreeAnnouncement, 60, 0xaa)
	a.Send(ann, true)
	pos := -1
	for i := range 21 {
		f := make([]byte, 60)
		if _, err := io.ReadFull(y, f); err != nil {
			t.Fatal(err)
		}
		if f[5] == byte(wire.TypeTreeAnnouncement) {
			pos = i
		}
	}
	if pos < 0 || pos > 2 {
		t.Fatalf("announcement was frame %d on the wire; 18+ traffic frames were queued before it", pos)
	}
}

func TestQueueFullDrops(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, y := net.Pipe()
	defer y.Close()
	a := New(x, keyB, Config{ProtocolQueue: 4, TrafficQueue: 8, TrafficQueueBytes: 1000})
	defer a.Close(nil)
	ok := 0
	for range 10 {
		if a.Send(testframe.Of(wire.TypeBootstrap, 50, 0), true) {
			ok++
		}
	}
	if ok != 4 {
		t.Fatalf("protocol queue took %d of 10 frames, want 4", ok)
	}
	ok = 0
	for range 12 {
		if a.Send(testframe.Of(wire.TypeTraffic, 50, 0), false) {
			ok++
		}
	}
	if ok != 8 {
		t.Fatalf("traffic queue took %d of 12 frames, want 8", ok)
	}
	st := a.Stats()
	if st.Drops[DropProtocolQueueFull.String()] != 6 || st.Drops[DropTrafficQueueFull.String()] != 4 {
		t.Fatalf("drops %v", st.Drops)
	}
	// The byte cap: 8 frames of 50 use 400 of 1000 bytes; a frame of 700
	// does not fit even after the frame-count queue has room.
	b := New(x, keyB, Config{TrafficQueue: 100, TrafficQueueBytes: 1000})
	if !b.Send(testframe.Of(wire.TypeTraffic, 600, 0), false) || b.Send(testframe.Of(wire.TypeTraffic, 600, 0), false) {
		t.Fatal("byte cap not applied")
	}
	if !b.Send(testframe.Of(wire.TypeTraffic, 400, 0), false) {
		t.Fatal("a frame within the byte cap refused")
	}
	if st := b.Stats(); st.Drops[DropTrafficQueueFull.String()] != 1 || st.TrafficQueued != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// The byte caps count what a queued frame holds: a small frame built in a
// large pool buffer is moved to a small one first (and counts that), and
// the protocol queue has a byte cap of its own.
func TestQueueBytesCountCapacity(t *testing.T) {
	x, y := net.Pipe()
	defer y.Close()
	a := New(x, keyB, Config{ProtocolQueue: 100, ProtocolQueueBytes: 3000, TrafficQueue: 100, TrafficQueueBytes: 10000})
	defer a.Close(nil)
	pooled := func(t wire.FrameType, size int) []byte {
		buf := bufpool.Get()
		h := bufpool.Headroom(buf)
		frame := buf[h-80 : h-80+size]
		copy(frame, testframe.Of(t, size, 0))
		return frame
	}
	for range 4 {
		if !a.Send(pooled(wire.TypeTraffic, 1400), false) {
			t.Fatal("small traffic frame refused")
		}
	}
	// Four 1 400-byte frames in 2 040-byte buffers: 8 160 bytes, where
	// their 64 KiB buffers would not have fitted even once.
	if st := a.Stats(); st.TrafficQueued != 4 || st.TrafficQueuedBytes != 4*2040 {
		t.Fatalf("traffic queue: %d frames, %d bytes; want 4, %d", st.TrafficQueued, st.TrafficQueuedBytes, 4*2040)
	}
	if a.Send(pooled(wire.TypeTraffic, 1400), false) {
		t.Fatal("a fifth 2 040-byte buffer fitted in a 10 000-byte budget")
	}
	ok := 0
	for range 5 {
		if a.Send(pooled(wire.TypeBootstrap, 900), true) {
			ok++
		}
	}
	// 900 bytes fit 1 016-byte buffers: two in 3 000 bytes, not three.
	if st := a.Stats(); ok != 2 || st.ProtocolQueuedBytes != 2*1016 || st.Drops[DropProtocolQueueFull.String()] != 3 {
		t.Fatalf("protocol queue took %d frames holding %d bytes, drops %v", ok, st.ProtocolQueuedBytes, st.Drops)
	}
}

func TestSendRefusesMalformed(t *testing.T) {
	x, y := net.Pipe()
	defer y.Close()
	a := New(x, keyB, Config{})
	defer a.Close(nil)
	bad := [][]byte{
		nil,
		[]byte("pine"),
		testframe.Of(wire.TypeTraffic, 12, 0)[:11],       // header says 12
		append(testframe.Of(wire.TypeTraffic, 12, 0), 0), // header says 12, 13 given
		append([]byte("PINE"), testframe.Of(wire.TypeTraffic, 12, 0)[4:]...),
	}
	for i, f := range bad {
		if a.Send(f, false) {
			t.Fatalf("malformed frame %d accepted", i)
		}
	}
	if n := a.Stats().Drops[DropMalformed.String()]; n != uint64(len(bad)) {
		t.Fatalf("malformed drops %d, want %d", n, len(bad))
	}
	a.Close(nil)
	if a.Send(testframe.Of(wire.TypeTraffic, 12, 0), false) || a.Stats().Drops[DropClosed.String()] != 1 {
		t.Fatal("send after close not refused and counted")
	}
}

// The writer flushes only when its queues are empty: a burst of small
// frames costs far fewer writes than frames.
func TestWriterBatches(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, y := net.Pipe()
	a := New(x, keyB, Config{TrafficQueue: 2000})
	for i := range 1000 {
		a.Send(testframe.Of(wire.TypeTraffic, 100, byte(i)), false)
	}
	a.Start(1, newFakeSwitch())
	defer func() { a.Close(nil); <-a.Done() }()
	if _, err := io.CopyN(io.Discard, y, 1000*100); err != nil {
		t.Fatal(err)
	}
	y.Close()
	st := a.Stats()
	t.Logf("1000 frames of 100 bytes in %d writes", st.Writes)
	if st.Writes > 10 {
		t.Fatalf("%d writes for 1000 queued frames: not batching", st.Writes)
	}
}

// Close from either side, any number of times, from many goroutines: each
// side detaches exactly once and nothing is left running.
func TestCloseBothSides(t *testing.T) {
	for _, transport := range []string{"pipe", "tcp"} {
		for _, closer := range []string{"local", "remote"} {
			t.Run(transport+"/"+closer, func(t *testing.T) {
				testhelp.CheckNoLeak(t)
				pair := pipePair
				if transport == "tcp" {
					pair = tcpPair
				}
				a, b, sa, sb := pair(t, Config{})
				why := errors.New("operator said so")
				c := a
				if closer == "remote" {
					c = b
				}
				var wg sync.WaitGroup
				for range 10 {
					wg.Add(1)
					go func() { defer wg.Done(); c.Close(why) }()
				}
				wg.Wait()
				for _, l := range []*Conn{a, b} {
					select {
					case <-l.Done():
					case <-time.After(3 * time.Second):
						t.Fatal("link did not finish")
					}
				}
				closedSw, otherSw := sa, sb
				if closer == "remote" {
					closedSw, otherSw = sb, sa
				}
				if d := closedSw.detaches(1); len(d) != 1 || !errors.Is(d[0], why) {
					t.Fatalf("closing side detaches: %v", d)
				}
				if d := otherSw.detaches(1); len(d) != 1 || !errors.Is(d[0], ErrRemoteClosed) {
					t.Fatalf("other side detaches: %v", d)
				}
				c.Close(errors.New("again"))
				if d := closedSw.detaches(1); len(d) != 1 {
					t.Fatalf("detached %d times", len(d))
				}
			})
		}
	}
}

// Closing before Start (the node gave up inside Attach) still detaches
// once Start is called, and closing a link never started closes its
// connection.
func TestCloseBeforeStart(t *testing.T) {
	testhelp.CheckNoLeak(t)
	x, y := net.Pipe()
	defer y.Close()
	a := New(x, keyB, Config{})
	a.Close(fmt.Errorf("no free switch ports"))
	if _, err := y.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("connection not closed: %v", err)
	}
	s := newFakeSwitch()
	a.Start(9, s)
	<-a.Done()
	if d := s.detaches(9); len(d) != 1 {
		t.Fatalf("detaches %v", d)
	}
}

// An error from Receive ends the link with that error as the reason.
func TestReceiveErrorCloses(t *testing.T) {
	testhelp.CheckNoLeak(t)
	a, b, _, sb := pipePair(t, Config{})
	bad := errors.New("announcement signature does not verify")
	sb.mu.Lock()
	sb.hook = func(_ router.Port, f []byte) error {
		if wire.FrameType(f[5]) == wire.TypeTreeAnnouncement {
			return bad
		}
		return nil
	}
	sb.mu.Unlock()
	a.Send(testframe.Of(wire.TypeTraffic, 20, 0), false)
	a.Send(testframe.Of(wire.TypeTreeAnnouncement, 20, 0), true)
	<-b.Done()
	d := sb.detaches(1)
	if len(d) != 1 || !errors.Is(d[0], ErrRejected) || !errors.Is(d[0], bad) {
		t.Fatalf("detaches: %v", d)
	}
	<-a.Done()
}

// The node counts the keepalives a link makes itself in its frames_out,
// node-wide and for the peering (issue 10: they stayed at 0), and keeps
// the node-wide count once the peering is gone.
func TestKeepalivesCountedByNode(t *testing.T) {
	testhelp.CheckNoLeak(t)
	node := overlay.New(privA, overlay.Config{})
	defer node.Close()
	x, y := net.Pipe()
	l := New(x, keyB, fastConfig())
	port, err := node.Attach(overlay.PeerInfo{Key: keyB, Transport: "tcp"}, l)
	if err != nil {
		t.Fatal(err)
	}
	l.Start(port, node)
	remote := New(y, keyA, fastConfig())
	heard := newFakeSwitch()
	remote.Start(1, heard)
	defer func() { remote.Close(nil); <-remote.Done() }()

	testhelp.WaitFor(t, "keepalives from the node's link", 5*time.Second, func() bool {
		return keepalivesGot(heard) >= 3
	})
	peers := node.Peers()
	if len(peers) != 1 || peers[0].Out["keepalive"].Frames == 0 {
		t.Fatalf("peer counters: %+v", peers)
	}
	l.Close(nil)
	<-l.Done()
	// The remote's reader ends on the closed pipe, after every frame that
	// crossed it has been received.
	<-remote.Done()
	arrived := uint64(keepalivesGot(heard))
	got := node.Stats().FramesOut["keepalive"]
	// The link reports a keepalive once it is in the write buffer, before
	// the flush that puts it on the pipe, and flushes before it makes the
	// next: the close can catch at most one reported keepalive short of
	// the remote.
	if got.Frames < arrived || got.Frames > arrived+1 || got.Bytes != got.Frames*wire.HeaderSize {
		t.Fatalf("node counts keepalives out %+v, the remote received %d", got, arrived)
	}
}
