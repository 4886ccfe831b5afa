package link

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/internal/testhelp/testframe"
	"github.com/pineconed/pineconed/overlay/wire"
)

// transports are the streams a link runs over, for the tests of the link
// contract that must hold on each of them.
var transports = []string{"pipe", "tcp", "ws", "wss"}

// transportConns returns both ends of a fresh connection of the named
// transport; the connections are closed when the test ends.
func transportConns(t *testing.T, name string) (client, server net.Conn) {
	t.Helper()
	switch name {
	case "pipe":
		x, y := net.Pipe()
		t.Cleanup(func() { x.Close(); y.Close() })
		return x, y
	case "tcp":
		return tcpConns(t)
	case "ws", "wss":
		return wsConns(t, name == "wss")
	}
	t.Fatalf("unknown transport %q", name)
	return nil, nil
}

// wsConns returns both ends of a WebSocket stream over loopback, made by
// DialWebSocket and WebSocketHandler as the daemon makes them.
func wsConns(t *testing.T, tlsOn bool) (client, server net.Conn) {
	t.Helper()
	accepted := make(chan net.Conn, 1)
	release := make(chan struct{})
	h := WebSocketHandler("/", func(nc net.Conn, _ *http.Request) {
		accepted <- nc
		// The handler keeps the request open for the life of the stream,
		// as overlay/peers does.
		<-release
	})
	// Cleanups run last-in first-out: the streams close, then the handler
	// returns, then the server shuts down.
	srv := httpServer(t, h, tlsOn)
	t.Cleanup(func() { close(release) })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	client, err := DialWebSocket(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/", srv.Client().Transport.(*http.Transport).TLSClientConfig, 0)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case server = <-accepted:
	case <-ctx.Done():
		t.Fatal("no WebSocket accepted")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// The link contract: a deadline set for a read or write is cleared once
// that operation is done, so a connection left idle holds no expired
// deadline. An expired deadline is harmless on TCP, but the WebSocket
// wrapper fails (and closes) the connection when its write deadline passes
// near the next write. The test runs the defaults' ratio, a write timeout
// equal to the keepalive interval, so every keepalive is written just as
// the previous write's deadline expires; an idle link must ride through
// two dozen such intervals on every transport. (The intervals are long
// enough that a write on a loaded machine, under the race detector, does
// not time out for real: at 100 ms one did, once, with the machine's two
// cores busy.) The idle spell is counted in keepalives each side received
// from the other, not in wall time: a loaded machine that stretches the
// intervals still runs the two dozen, and a detach ends the wait at once.
func TestIdleLinkOutlivesItsDeadlines(t *testing.T) {
	// The transports idle in parallel; the leak check is the whole test's.
	testhelp.CheckNoLeak(t)
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			t.Parallel()
			cfg := Config{
				KeepaliveInterval: 250 * time.Millisecond,
				WriteTimeout:      250 * time.Millisecond,
				ReadTimeout:       2500 * time.Millisecond,
			}
			x, y := transportConns(t, tr)
			a, b, sa, sb := startPair(t, cfg, x, y)
			const intervals = 24
			detached := func() bool { return len(sa.detaches(1))+len(sb.detaches(1)) > 0 }
			testhelp.WaitFor(t, fmt.Sprintf("%d keepalives each way", intervals), 60*time.Second, func() bool {
				return detached() || (keepalivesGot(sb) >= intervals && keepalivesGot(sa) >= intervals)
			}, func() string {
				return fmt.Sprintf("B got %d from A, A got %d from B", keepalivesGot(sb), keepalivesGot(sa))
			})
			for name, s := range map[string]*fakeSwitch{"A": sa, "B": sb} {
				if d := s.detaches(1); len(d) > 0 {
					t.Fatalf("%s detached on an idle link: %v", name, d)
				}
			}
			// Still usable both ways after the idle spell.
			a.Send(testframe.Of(wire.TypeTraffic, 100, 1), false)
			b.Send(testframe.Of(wire.TypeTraffic, 100, 2), false)
			testhelp.WaitFor(t, "traffic after idling", 5*time.Second, func() bool {
				return len(nonKeepalive(sa.got(1))) == 1 && len(nonKeepalive(sb.got(1))) == 1
			})
		})
	}
}

// deadlineProbe wraps a transport's connection and checks, on every call
// the link makes, the contract's order: each read or write the link makes
// runs under a deadline it set for it, and that deadline is cleared before
// the link sets the next one. Violations are kept for the test to report.
type deadlineProbe struct {
	net.Conn
	mu              sync.Mutex
	readDL, writeDL bool // a deadline is set
	wrote           bool // a write ran under the current write deadline
	read            bool // a read ran under the current read deadline
	writes, clears  int
	violations      []string
}

func (p *deadlineProbe) fail(format string, args ...any) {
	if len(p.violations) < 10 {
		p.violations = append(p.violations, fmt.Sprintf(format, args...))
	}
}

func (p *deadlineProbe) Write(b []byte) (int, error) {
	p.mu.Lock()
	if !p.writeDL {
		p.fail("write of %d bytes without a deadline", len(b))
	}
	p.wrote = true
	p.writes++
	p.mu.Unlock()
	return p.Conn.Write(b)
}

func (p *deadlineProbe) Read(b []byte) (int, error) {
	p.mu.Lock()
	if !p.readDL {
		p.fail("read without a deadline")
	}
	p.read = true
	p.mu.Unlock()
	return p.Conn.Read(b)
}

func (p *deadlineProbe) SetWriteDeadline(t time.Time) error {
	p.mu.Lock()
	if t.IsZero() {
		p.clears++
	} else if p.writeDL && p.wrote {
		p.fail("write deadline renewed without clearing the previous write's")
	}
	p.writeDL, p.wrote = !t.IsZero(), false
	p.mu.Unlock()
	return p.Conn.SetWriteDeadline(t)
}

func (p *deadlineProbe) SetReadDeadline(t time.Time) error {
	p.mu.Lock()
	if !t.IsZero() && p.readDL && p.read {
		p.fail("read deadline renewed without clearing the previous frame's")
	}
	p.readDL, p.read = !t.IsZero(), false
	p.mu.Unlock()
	return p.Conn.SetReadDeadline(t)
}

func (p *deadlineProbe) SetDeadline(t time.Time) error {
	if err := p.SetReadDeadline(t); err != nil {
		return err
	}
	return p.SetWriteDeadline(t)
}

// The same contract checked call by call, on every transport: frames both
// ways, keepalives, then an idle link whose write deadline is clear.
func TestLinkClearsDeadlinesAfterEachOperation(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr, func(t *testing.T) {
			testhelp.CheckNoLeak(t)
			cfg := Config{KeepaliveInterval: 30 * time.Millisecond, WriteTimeout: time.Second, ReadTimeout: time.Second}
			x, y := transportConns(t, tr)
			px, py := &deadlineProbe{Conn: x}, &deadlineProbe{Conn: y}
			a, b, sa, sb := startPair(t, cfg, px, py)
			for i := range 20 {
				a.Send(testframe.Of(wire.TypeTraffic, 100+i, byte(i)), false)
				b.Send(testframe.Of(wire.TypeBootstrap, 60+i, byte(i)), true)
				if i%5 == 0 {
					waitKeepalives(t, sa, sb, 1)
				}
			}
			testhelp.WaitFor(t, "frames both ways", 5*time.Second, func() bool {
				return len(nonKeepalive(sa.got(1))) == 20 && len(nonKeepalive(sb.got(1))) == 20
			})
			waitKeepalives(t, sa, sb, 2)
			// The writer is idle between keepalives most of the time; wait
			// for a moment it is, then its deadline must be clear.
			for _, p := range []*deadlineProbe{px, py} {
				testhelp.WaitFor(t, "an idle writer", 5*time.Second, func() bool {
					p.mu.Lock()
					defer p.mu.Unlock()
					return !p.writeDL && p.clears > 0 && p.clears == p.writes
				})
				p.mu.Lock()
				v := append([]string(nil), p.violations...)
				p.mu.Unlock()
				if len(v) > 0 {
					t.Fatalf("deadline contract broken:\n%s", strings.Join(v, "\n"))
				}
			}
		})
	}
}

// keepalivesGot is how many keepalives s has received on port 1: the
// ones the link at the other end wrote that arrived.
func keepalivesGot(s *fakeSwitch) int {
	frames := s.got(1)
	return len(frames) - len(nonKeepalive(frames))
}

// waitKeepalives waits until each of sa and sb, the switches of the two
// ends of a pair, has received n more keepalives from the other end: each
// one is a keepalive interval the other end's writer sat idle, so the
// keepalives are interleaved with the test's frames however slowly the
// machine runs.
func waitKeepalives(t *testing.T, sa, sb *fakeSwitch, n int) {
	t.Helper()
	wantA, wantB := keepalivesGot(sa)+n, keepalivesGot(sb)+n
	testhelp.WaitFor(t, fmt.Sprintf("%d more keepalives each way", n), 10*time.Second, func() bool {
		return keepalivesGot(sa) >= wantA && keepalivesGot(sb) >= wantB
	})
}
