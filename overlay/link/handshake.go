package link

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pineconed/pineconed/overlay/wire"
)

// HandshakeTimeout bounds the whole hello exchange, both the write and the
// read, as in the reference (docs/protocol.md §1.4).
const HandshakeTimeout = 10 * time.Second

// Handshake errors. Refusals of the remote hello itself wrap the wire
// package's errors (wire.ErrHelloVersion, wire.ErrHelloCapabilities,
// wire.ErrHelloSignature).
var (
	// ErrShortHello means the stream ended before 104 hello bytes arrived.
	ErrShortHello = errors.New("short hello")
	// ErrHandshakeTimeout means the exchange did not finish in time.
	ErrHandshakeTimeout = errors.New("handshake timed out")
)

// Handshake exchanges hellos on a fresh connection and returns the remote
// node's key, proven by the signature in its hello.
//
// Our hello is written while theirs is read: the protocol has no initiator,
// both sides write first, and over a transport without buffering (net.Pipe)
// a write-then-read on both ends would block forever. The exchange must end
// within HandshakeTimeout, or earlier if ctx has an earlier deadline; a
// cancelled ctx aborts it. On success the connection's deadlines are
// cleared. On failure the caller closes conn.
func Handshake(ctx context.Context, conn net.Conn, priv ed25519.PrivateKey) (wire.PublicKey, error) {
	deadline := time.Now().Add(HandshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	if err := conn.SetDeadline(deadline); err != nil {
		return wire.PublicKey{}, fmt.Errorf("handshake: set deadline: %w", err)
	}
	// A deadline in the past wakes whichever of the read and write is
	// still blocked.
	abort := func() { _ = conn.SetDeadline(time.Unix(1, 0)) }
	stop := context.AfterFunc(ctx, abort)

	hello := wire.NewHello(priv)
	werr := make(chan error, 1)
	go func() {
		_, err := conn.Write(hello[:])
		werr <- err
	}()
	var buf [wire.HelloSize]byte
	n, rerr := io.ReadFull(conn, buf[:])
	if rerr != nil {
		abort()
	}
	wErr := <-werr
	if !stop() && rerr == nil && wErr == nil {
		// ctx ended just as the exchange finished; abort may yet set a
		// deadline in the past, so this connection cannot be used.
		return wire.PublicKey{}, fmt.Errorf("handshake: %w", context.Cause(ctx))
	}

	timedOut := !time.Now().Before(deadline) || errors.Is(ctx.Err(), context.DeadlineExceeded)
	switch {
	case rerr == nil && wErr == nil:
	case timedOut && rerr != nil:
		return wire.PublicKey{}, fmt.Errorf("%w: read %d of %d hello bytes", ErrHandshakeTimeout, n, wire.HelloSize)
	case timedOut:
		return wire.PublicKey{}, fmt.Errorf("%w: writing our hello: %w", ErrHandshakeTimeout, wErr)
	case ctx.Err() != nil:
		return wire.PublicKey{}, fmt.Errorf("handshake: %w", ctx.Err())
	case rerr != nil:
		return wire.PublicKey{}, fmt.Errorf("handshake: %w: read %d of %d bytes: %w", ErrShortHello, n, wire.HelloSize, rerr)
	default:
		return wire.PublicKey{}, fmt.Errorf("handshake: write hello: %w", wErr)
	}
	key, err := wire.ParseHello(buf[:])
	if err != nil {
		return wire.PublicKey{}, fmt.Errorf("handshake: remote hello refused: %w", err)
	}
	if err := conn.SetDeadline(time.Time{}); err != nil {
		return wire.PublicKey{}, fmt.Errorf("handshake: clear deadline: %w", err)
	}
	return key, nil
}
