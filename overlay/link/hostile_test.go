package link

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// hostileConn is a real loopback TCP connection whose far end has done a
// valid handshake with us and is then driven by the test byte by byte.
// Our end runs as a link on port on the switch s.
func hostileConn(t *testing.T, s *fakeSwitch, port router.Port, cfg Config) (raw net.Conn, l *Conn) {
	t.Helper()
	client, server := tcpConns(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res := handshakeAsync(ctx, client, privB)
	k, err := Handshake(ctx, server, privA)
	if err != nil || k != keyB {
		t.Fatalf("handshake: %s %v", k, err)
	}
	if r := <-res; r.err != nil {
		t.Fatal(r.err)
	}
	l = New(server, k, cfg)
	l.Start(port, s)
	t.Cleanup(func() { l.Close(nil); <-l.Done() })
	return client, l
}

func header(t wire.FrameType, length int) []byte {
	h := []byte{'p', 'i', 'n', 'e', 0, byte(t), 0, 0, 0, 0}
	binary.BigEndian.PutUint16(h[8:], uint16(length))
	return h
}

// Each frame that crashes a stock node (docs/protocol.md §3.8), a bad magic, and a
// frame that never finishes: the peer is dropped with the right reason,
// the node never sees the frame, and we do not crash.
func TestHostileFrames(t *testing.T) {
	cases := []struct {
		name  string
		bytes []byte
		want  error
	}{
		{"declared length 5", header(wire.TypeKeepalive, 5), ErrBadFrame},
		{"declared length 0", header(wire.TypeTraffic, 0), ErrBadFrame},
		{"announcement of 10 bytes", header(wire.TypeTreeAnnouncement, 10), ErrBadFrame},
		{"announcement of 11 bytes", append(header(wire.TypeTreeAnnouncement, 11), 0), ErrBadFrame},
		{"traffic of 10 bytes", header(wire.TypeTraffic, 10), ErrBadFrame},
		{"traffic of 11 bytes", append(header(wire.TypeTraffic, 11), 0), ErrBadFrame},
		{"bootstrap of 11 bytes", append(header(wire.TypeBootstrap, 11), 0), ErrBadFrame},
		{"wakeup of 10 bytes", header(wire.TypeWakeupBroadcast, 10), ErrBadFrame},
		{"bad magic", []byte("PINE\x00\x00\x00\x00\x00\x0a"), wire.ErrBadMagic},
		{"HTTP instead of Pinecone", []byte("GET / HTTP/1.1\r\n\r\n"), wire.ErrBadMagic},
		{"length beyond what is sent", append(header(wire.TypeTraffic, 1000), make([]byte, 20)...), ErrReadTimeout},
		{"half a header", []byte("pine\x00"), ErrReadTimeout},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			s := newFakeSwitch()
			raw, l := hostileConn(t, s, 7, fastConfig())
			// A valid frame first: the link is working until the bad one.
			good := testframe.Of(wire.TypeTraffic, 40, 1)
			if _, err := raw.Write(append(good, tc.bytes...)); err != nil {
				t.Fatal(err)
			}
			select {
			case <-l.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("hostile peer not dropped")
			}
			d := s.detaches(7)
			if len(d) != 1 || !errors.Is(d[0], tc.want) {
				t.Fatalf("detach reasons %v, want %v", d, tc.want)
			}
			if got := s.got(7); len(got) != 1 || len(got[0]) != 40 {
				t.Fatalf("node received %d frames, want only the valid one", len(got))
			}
			t.Logf("dropped: %v", d[0])
			// Our side closed the socket.
			_ = raw.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 256)
			for {
				if _, err := raw.Read(buf); err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						t.Fatal("our side did not close the connection")
					}
					break
				}
			}
		})
	}
}

// A peer floods valid-looking frames far faster than the node takes them.
// The reader only reads as fast as Receive returns, so what the flooder
// manages to write is bounded by the socket buffers, our memory does not
// grow with the flood, and two other peers on the same switch keep
// exchanging traffic meanwhile.
func TestFloodIsThrottledNotQueued(t *testing.T) {
	testhelp.CheckNoLeak(t)
	const floodPort, pPort, qPort = 1, 2, 3
	s := newFakeSwitch()
	var consumed atomic.Int64
	cfg := Config{} // protocol timings: the flood must not trip them
	raw, flood := hostileConn(t, s, floodPort, cfg)

	// P and Q are two well-behaved peers; the switch forwards what P sends
	// to Q's link.
	rawP, _ := hostileConn(t, s, pPort, cfg)
	rawQ, linkQ := hostileConn(t, s, qPort, cfg)
	s.mu.Lock()
	s.hook = func(port router.Port, f []byte) error {
		switch port {
		case floodPort:
			consumed.Add(int64(len(f)))
			time.Sleep(time.Millisecond) // a busy node
		case pPort:
			if wire.FrameType(f[5]) == wire.TypeTraffic {
				linkQ.Send(append([]byte(nil), f...), false)
			}
		}
		return nil
	}
	s.mu.Unlock()
	// Small socket buffers make the bound tight; the kernel doubles them.
	if tc, ok := raw.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(64 << 10)
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)

	var written atomic.Int64
	var stopFlood atomic.Bool
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		f := testframe.Of(wire.TypeTraffic, 1024, 0x55)
		batch := make([]byte, 0, 64*len(f))
		for range 64 {
			batch = append(batch, f...)
		}
		for !stopFlood.Load() {
			n, err := raw.Write(batch)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}()

	// Meanwhile P sends 200 frames to Q through the switch.
	qGot := make(chan int, 1)
	go func() {
		n := 0
		buf := make([]byte, 100)
		_ = rawQ.SetReadDeadline(time.Now().Add(10 * time.Second))
		for n < 200 {
			if _, err := readFrame(rawQ, buf); err != nil {
				break
			}
			if wire.FrameType(buf[5]) == wire.TypeTraffic {
				n++
			}
		}
		qGot <- n
	}()
	for i := range 200 {
		if _, err := rawP.Write(testframe.Of(wire.TypeTraffic, 100, byte(i))); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond)
	}
	if n := <-qGot; n != 200 {
		t.Fatalf("Q got %d of 200 frames from P during the flood", n)
	}
	// The flood goes on until the busy node has taken a mebibyte of it: at
	// a millisecond a frame, a second or more in which a reader without
	// backpressure would let the flooder write far more than the bound.
	testhelp.WaitFor(t, "the node to consume 1 MiB of the flood", 60*time.Second, func() bool {
		return consumed.Load() >= 1<<20
	}, func() string { return fmt.Sprintf("consumed %d bytes", consumed.Load()) })

	var after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&after)
	backlog := written.Load() - consumed.Load()
	growth := int64(after.HeapInuse) - int64(before.HeapInuse)
	t.Logf("flooder wrote %d KiB, node consumed %d KiB, in flight %d KiB; heap in use grew %d KiB",
		written.Load()>>10, consumed.Load()>>10, backlog>>10, growth>>10)
	if consumed.Load() == 0 {
		t.Fatal("the node got none of the flood")
	}
	// Everything written and not consumed sits in kernel socket buffers
	// and our 64 KiB read buffer. Without backpressure the flooder would
	// have written hundreds of megabytes by now.
	if backlog > 16<<20 {
		t.Fatalf("%d bytes written but not consumed: the reader is not applying backpressure", backlog)
	}
	if growth > 8<<20 {
		t.Fatalf("heap grew by %d bytes during the flood", growth)
	}
	if d := s.detaches(floodPort); len(d) != 0 {
		t.Fatalf("flooder dropped although it sent only valid frames: %v", d)
	}
	// The flood ends with a frame that breaks the stream: dropped with
	// that reason, once the backlog in front of it has been read.
	s.mu.Lock()
	s.hook = nil
	s.mu.Unlock()
	stopFlood.Store(true)
	<-floodDone
	if _, err := raw.Write([]byte("PINE\x00\x03\x00\x0a\x00\x0a")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-flood.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("flooder's link did not end")
	}
	if d := s.detaches(floodPort); len(d) != 1 || !errors.Is(d[0], wire.ErrBadMagic) {
		t.Fatalf("flooder detach: %v", d)
	}
}

// readFrame reads one whole frame into buf (which must be large enough).
func readFrame(c net.Conn, buf []byte) (int, error) {
	if _, err := io.ReadFull(c, buf[:wire.HeaderSize]); err != nil {
		return 0, err
	}
	h, err := wire.ParseHeader(buf[:wire.HeaderSize])
	if err != nil {
		return 0, err
	}
	if h.Length > len(buf) {
		return 0, errors.New("frame larger than the test buffer")
	}
	_, err = io.ReadFull(c, buf[wire.HeaderSize:h.Length])
	return h.Length, err
}
