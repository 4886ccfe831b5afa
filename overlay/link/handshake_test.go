package link

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay/wire"
)

// helloA is example E2 of the protocol document: A's hello, byte for byte.
const helloA = "01000000" + "0000003b" +
	"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c" +
	"3888c1c321b4c4ff5d1ff4cd028726811e36b907215f6054b068af993ad5342f550fc7650169dbbeb6dbe16ccb71a450e114b6656e5219798c918604c6452001"

type result struct {
	key wire.PublicKey
	err error
}

func handshakeAsync(ctx context.Context, c net.Conn, priv ed25519.PrivateKey) <-chan result {
	ch := make(chan result, 1)
	go func() {
		k, err := Handshake(ctx, c, priv)
		ch <- result{k, err}
	}()
	return ch
}

// Both ends of an unbuffered pipe run Handshake at once. A write-then-read
// handshake blocks forever here: each side's write waits for a read the
// other side never reaches.
func TestHandshakeOverUnbufferedPipe(t *testing.T) {
	testhelp.CheckNoLeak(t)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ra, rb := handshakeAsync(ctx, a, privA), handshakeAsync(ctx, b, privB)
	x, y := <-ra, <-rb
	if x.err != nil || y.err != nil {
		t.Fatalf("handshake errors: %v / %v", x.err, y.err)
	}
	if x.key != keyB || y.key != keyA {
		t.Fatalf("keys: A saw %s, B saw %s", x.key, y.key)
	}
}

func TestHandshakeOverLoopbackTCP(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	server := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			server <- result{err: err}
			return
		}
		defer c.Close()
		k, err := Handshake(ctx, c, privB)
		server <- result{k, err}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	k, err := Handshake(ctx, c, privA)
	if err != nil || k != keyB {
		t.Fatalf("client: key %s err %v", k, err)
	}
	if s := <-server; s.err != nil || s.key != keyA {
		t.Fatalf("server: key %s err %v", s.key, s.err)
	}
}

// The bytes we put on the wire are example E2, and a raw peer's hello is
// accepted.
func TestHandshakeWireBytes(t *testing.T) {
	testhelp.CheckNoLeak(t)
	a, raw := net.Pipe()
	defer a.Close()
	defer raw.Close()
	res := handshakeAsync(context.Background(), a, privA)
	got := make([]byte, wire.HelloSize)
	if _, err := io.ReadFull(raw, got); err != nil {
		t.Fatal(err)
	}
	if want, _ := hex.DecodeString(helloA); !bytes.Equal(got, want) {
		t.Fatalf("hello on the wire:\n got %x\nwant %x", got, want)
	}
	hb := wire.NewHello(privB)
	if _, err := raw.Write(hb[:]); err != nil {
		t.Fatal(err)
	}
	if r := <-res; r.err != nil || r.key != keyB {
		t.Fatalf("key %s err %v", r.key, r.err)
	}
}

// resign fixes the signature after a test has changed the signed bytes, so
// that the refusal is for the change and not for the signature.
func resign(h []byte, priv ed25519.PrivateKey) {
	copy(h[40:], ed25519.Sign(priv, h[:40]))
}

func TestHandshakeRefusals(t *testing.T) {
	good := wire.NewHello(privB)
	cases := []struct {
		name  string
		hello func() []byte
		want  error
	}{
		{"version 2", func() []byte { h := good; h[0] = 2; resign(h[:], privB); return h[:] }, wire.ErrHelloVersion},
		{"capabilities 0x3f", func() []byte { h := good; h[7] = 0x3f; resign(h[:], privB); return h[:] }, wire.ErrHelloCapabilities},
		{"bad signature", func() []byte { h := good; h[103] ^= 1; return h[:] }, wire.ErrHelloSignature},
		{"key not matching signature", func() []byte { h := good; copy(h[8:40], keyA[:]); return h[:] }, wire.ErrHelloSignature},
		{"short hello", func() []byte { return good[:50] }, ErrShortHello},
		{"nothing at all", func() []byte { return nil }, ErrShortHello},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			a, raw := net.Pipe()
			defer a.Close()
			res := handshakeAsync(context.Background(), a, privA)
			go func() {
				// Drain our hello so our write completes, send theirs,
				// then end the stream (which is what makes a short
				// hello short rather than slow).
				_, _ = io.CopyN(io.Discard, raw, wire.HelloSize)
				_, _ = raw.Write(tc.hello())
				raw.Close()
			}()
			r := <-res
			if !errors.Is(r.err, tc.want) {
				t.Fatalf("got %v, want %v", r.err, tc.want)
			}
			t.Logf("refused: %v", r.err)
		})
	}
}

// A peer that never answers, and one that does not even read our hello,
// are given up on when the deadline passes.
func TestHandshakeDeadline(t *testing.T) {
	for _, readsOurs := range []bool{true, false} {
		name := map[bool]string{true: "silent", false: "not reading"}[readsOurs]
		t.Run(name, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			// In a synctest bubble the clock moves only when every
			// goroutine waits, so the handshake gives up exactly at its
			// deadline however loaded the machine is.
			synctest.Test(t, func(t *testing.T) {
				a, raw := net.Pipe()
				defer a.Close()
				defer raw.Close()
				if readsOurs {
					go func() { _, _ = io.Copy(io.Discard, raw) }()
				}
				const limit = 200 * time.Millisecond
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				defer cancel()
				start := time.Now()
				_, err := Handshake(ctx, a, privA)
				if !errors.Is(err, ErrHandshakeTimeout) {
					t.Fatalf("got %v, want a timeout", err)
				}
				if el := time.Since(start); el != limit {
					t.Fatalf("gave up after %v, deadline was %v", el, limit)
				}
			})
		})
	}
}

func TestHandshakeCancelled(t *testing.T) {
	testhelp.CheckNoLeak(t)
	synctest.Test(t, testHandshakeCancelled)
}

// testHandshakeCancelled runs in a synctest bubble, so the cancel comes
// once the handshake is blocked on the silent peer, not after a guess.
func testHandshakeCancelled(t *testing.T) {
	a, raw := net.Pipe()
	defer a.Close()
	defer raw.Close()
	ctx, cancel := context.WithCancel(context.Background())
	res := handshakeAsync(ctx, a, privA)
	synctest.Wait()
	select {
	case r := <-res:
		t.Fatalf("the handshake ended before the cancel: %v", r.err)
	default:
	}
	cancel()
	select {
	case r := <-res:
		if !errors.Is(r.err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", r.err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("cancelled handshake did not return")
	}
}
