package link

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay/wire"
)

// frameBuffered is true only once the whole next frame is in the read
// buffer.
func TestFrameBuffered(t *testing.T) {
	small, large := testframe.Of(wire.TypeTraffic, 100, 1), testframe.Of(wire.TypeTraffic, 5000, 2)
	stream := append(append(bytes.Clone(small), large...), small[:wire.HeaderSize-1]...)
	// A 4 KiB buffer holds the small frame and only part of the large one.
	br := bufio.NewReaderSize(bytes.NewReader(stream), 4096)
	if frameBuffered(br) {
		t.Fatal("nothing read yet, but the frame counts as buffered")
	}
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	if !frameBuffered(br) {
		t.Fatal("the small frame is whole in the buffer")
	}
	if _, err := br.Discard(len(small)); err != nil {
		t.Fatal(err)
	}
	if frameBuffered(br) {
		t.Fatal("the large frame is only partly in the buffer")
	}
	if _, err := br.Discard(len(large)); err != nil {
		t.Fatal(err)
	}
	if _, err := br.Peek(1); err != nil {
		t.Fatal(err)
	}
	if frameBuffered(br) {
		t.Fatal("a partial header counts as a buffered frame")
	}
}

// readBody reads the same bytes whether the rest of a frame comes through
// the buffer or straight from the connection, and in order.
func TestReadBodyKeepsOrder(t *testing.T) {
	for _, size := range []int{100, directRead - 1, directRead + 1, 60000} {
		a, b := net.Pipe()
		frames := [][]byte{testframe.Of(wire.TypeTraffic, size, 3), testframe.Of(wire.TypeTraffic, 200, 4), testframe.Of(wire.TypeTraffic, size, 5)}
		go func() {
			for _, f := range frames {
				// Split writes: the reader sees frames cut anywhere.
				_, _ = a.Write(f[:len(f)/3])
				_, _ = a.Write(f[len(f)/3:])
			}
			a.Close()
		}()
		br := bufio.NewReaderSize(b, 4096)
		for i, want := range frames {
			got := make([]byte, len(want))
			if _, err := io.ReadFull(br, got[:wire.HeaderSize]); err != nil {
				t.Fatal(err)
			}
			if n, err := readBody(br, b, got[wire.HeaderSize:]); err != nil || n != len(want)-wire.HeaderSize {
				t.Fatalf("size %d frame %d: read %d, err %v", size, i, n, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("size %d frame %d: bytes differ", size, i)
			}
		}
		b.Close()
	}
}
