package accept

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/pineconed/pineconed/internal/testhelp"
)

// owner is a listener owner as the packages using Serve have one: a
// WaitGroup for the goroutines and a closed flag.
type owner struct {
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

func (o *owner) spawn(f func()) bool {
	return Owner{Mu: &o.mu, Closed: &o.closed, WG: &o.wg}.Spawn(f)
}

func (o *owner) close() {
	o.mu.Lock()
	o.closed = true
	o.mu.Unlock()
	o.wg.Wait()
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serveAsync runs Serve on its own goroutine; the returned stop closes the
// listener and waits for Serve and every connection goroutine.
func serveAsync(t *testing.T, ln net.Listener, cfg Config, o *owner) (stop func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); Serve(context.Background(), ln, cfg) }()
	return func() {
		ln.Close()
		<-done
		o.close()
	}
}

// A connection that releases its slot after admission (here: after one
// byte) does not hold it while it stays open, so many more connections
// than slots stay open together.
func TestSlotReleasedAfterAdmission(t *testing.T) {
	testhelp.CheckNoLeak(t)
	const slots, conns = 2, 40
	ln := listen(t)
	o := &owner{}
	var open atomic.Int32
	hold := make(chan struct{})
	stop := serveAsync(t, ln, Config{
		Slots: NewSlots(slots),
		Spawn: o.spawn,
		Serve: func(nc net.Conn, release func()) {
			defer nc.Close()
			var b [1]byte
			if _, err := io.ReadFull(nc, b[:]); err != nil {
				return
			}
			release()
			open.Add(1)
			<-hold
		},
		Refuse: func(net.Conn) { t.Error("connection refused although admissions were over") },
	}, o)
	defer stop()
	defer close(hold)
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	for range conns {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		if _, err := c.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
		// Admit one at a time, as handshakes end.
		testhelp.WaitFor(t, fmt.Sprintf("connection %d admitted", len(clients)), 5*time.Second,
			func() bool { return int(open.Load()) >= len(clients) })
	}
	if n := open.Load(); n != conns {
		t.Fatalf("%d of %d connections open with %d slots", n, conns, slots)
	}
}

// Connections beyond the free slots are refused and closed, not queued;
// when a slot comes back, the next connection is served.
func TestRefusedWhenSlotsTaken(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ln := listen(t)
	o := &owner{}
	// The first two connections wait for first, later ones for later.
	first, later := make(chan struct{}), make(chan struct{})
	var served, refused atomic.Int32
	slots := NewSlots(2)
	stop := serveAsync(t, ln, Config{
		Slots: slots,
		Spawn: o.spawn,
		Serve: func(nc net.Conn, _ func()) {
			defer nc.Close()
			if served.Add(1) <= 2 {
				<-first
			} else {
				<-later
			}
		},
		Refuse: func(nc net.Conn) {
			refused.Add(1)
			nc.Write([]byte("busy"))
		},
	}, o)
	defer stop()
	var clients []net.Conn
	defer func() {
		for _, c := range clients {
			c.Close()
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		return c
	}
	dial()
	dial()
	testhelp.WaitFor(t, "two connections served", 5*time.Second, func() bool { return served.Load() == 2 })
	got, err := io.ReadAll(dial())
	if string(got) != "busy" || err != nil || refused.Load() != 1 {
		t.Fatalf("third connection: read %q, %v; %d refused", got, err, refused.Load())
	}
	if slots.InUse() != 2 || slots.Cap() != 2 {
		t.Fatalf("slots %d of %d in use", slots.InUse(), slots.Cap())
	}
	close(first)
	testhelp.WaitFor(t, "every slot given back", 5*time.Second, func() bool { return slots.InUse() == 0 })
	defer close(later)
	dial()
	testhelp.WaitFor(t, "three connections served", 5*time.Second, func() bool { return served.Load() == 3 })
}

// flakyListener fails its first Accept calls with a transient error.
type flakyListener struct {
	net.Listener
	fails atomic.Int32
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

// An Accept error that is not the listener closing is retried after
// RetryDelay, not fatal and not a busy loop.
func TestAcceptErrorRetried(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ln := &flakyListener{Listener: listen(t)}
	ln.fails.Store(3)
	o := &owner{}
	served := make(chan struct{}, 1)
	start := time.Now()
	stop := serveAsync(t, ln, Config{
		Slots: NewSlots(1),
		Spawn: o.spawn,
		Serve: func(nc net.Conn, _ func()) { nc.Close(); served <- struct{}{} },
	}, o)
	defer stop()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-served:
	case <-time.After(5 * time.Second):
		t.Fatal("connection not served after accept errors")
	}
	if el := time.Since(start); el < 3*RetryDelay {
		t.Fatalf("3 failed accepts retried within %v, want at least %v apart", el, RetryDelay)
	}
}

// When the owner is closing, Serve closes the connection it just accepted,
// gives its slot back and stops.
func TestServeStopsWhenOwnerCloses(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ln := listen(t)
	defer ln.Close()
	o := &owner{}
	o.close()
	slots := NewSlots(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		Serve(context.Background(), ln, Config{Slots: slots, Spawn: o.spawn, Serve: func(net.Conn, func()) { t.Error("served while closing") }})
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return")
	}
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil {
		t.Fatalf("connection not closed: %d, %v", n, err)
	}
	if slots.InUse() != 0 {
		t.Fatal("slot not given back")
	}
}

// A cancelled context stops Serve even while it waits to retry.
func TestServeStopsOnContext(t *testing.T) {
	testhelp.CheckNoLeak(t)
	synctest.Test(t, func(t *testing.T) {
		ln := &flakyListener{Listener: listen(t)}
		defer ln.Close()
		const fails = 1 << 30
		ln.fails.Store(fails)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			Serve(ctx, ln, Config{Slots: NewSlots(1), Spawn: (&owner{}).spawn, Serve: func(nc net.Conn, _ func()) { nc.Close() }})
		}()
		// Serve is now blocked, and only in its retry wait: one failed
		// Accept, no spinning.
		synctest.Wait()
		if n := fails - ln.fails.Load(); n != 1 {
			t.Fatalf("%d Accept calls before the retry delay", n)
		}
		cancel()
		select {
		case <-done:
		case <-time.After(RetryDelay / 2):
			t.Fatal("Serve did not return after cancel, before its retry was due")
		}
	})
}

// With Admit set, the owner's policy decides instead of Slots (here: one
// place, a newcomer evicts the connection holding it unless that one is
// marked busy, as the admin socket does), Refuse hears of the refused
// ones, and each place is released once its connection's Serve returns.
func TestAdmitHookDecides(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ln := listen(t)
	o := &owner{}
	var mu sync.Mutex
	var holder net.Conn // the server side of the admitted connection
	busy := false
	var released, refused atomic.Int32
	served := make(chan net.Conn, 4)
	stop := serveAsync(t, ln, Config{
		Spawn: o.spawn,
		Admit: func(nc net.Conn) (func(), bool) {
			mu.Lock()
			defer mu.Unlock()
			if holder != nil {
				if busy {
					return nil, false
				}
				holder.Close()
			}
			holder = nc
			var once sync.Once
			return func() {
				once.Do(func() {
					released.Add(1)
					mu.Lock()
					if holder == nc {
						holder = nil
					}
					mu.Unlock()
				})
			}, true
		},
		Serve: func(nc net.Conn, _ func()) {
			defer nc.Close()
			served <- nc
			io.Copy(io.Discard, nc)
		},
		Refuse: func(nc net.Conn) {
			refused.Add(1)
			nc.Write([]byte("busy"))
		},
	}, o)
	defer stop()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	first := dial()
	<-served
	second := dial()
	<-served
	// The first connection was evicted to make room for the second.
	first.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := first.Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("evicted connection: read %d, %v; want EOF", n, err)
	}
	testhelp.WaitFor(t, "one place released", 5*time.Second, func() bool { return released.Load() == 1 })
	mu.Lock()
	busy = true
	mu.Unlock()
	got, err := io.ReadAll(dial())
	if string(got) != "busy" || err != nil || refused.Load() != 1 {
		t.Fatalf("third connection: read %q, %v; %d refused", got, err, refused.Load())
	}
	second.Close()
	testhelp.WaitFor(t, "two places released", 5*time.Second, func() bool { return released.Load() == 2 })
	mu.Lock()
	defer mu.Unlock()
	if holder != nil {
		t.Fatal("place not given back after the connection ended")
	}
}
