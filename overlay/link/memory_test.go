package link

import (
	"fmt"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pineconed/pineconed/internal/bufpool"
	"github.com/pineconed/pineconed/internal/testhelp"
	"github.com/pineconed/pineconed/overlay"
	"github.com/pineconed/pineconed/overlay/router"
	"github.com/pineconed/pineconed/overlay/wire"
)

// heapInUse is the live heap after the garbage collector has run twice,
// which also empties sync.Pool (and so internal/bufpool) of idle buffers.
func heapInUse() int64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}

// stallConn is a net.Conn whose reads block, from the moment stall is
// closed until the connection is closed: a peer that stops reading.
type stallConn struct {
	net.Conn
	stall, closed chan struct{}
	once          sync.Once
}

func (c *stallConn) Read(p []byte) (int, error) {
	select {
	case <-c.stall:
		<-c.closed
		return 0, net.ErrClosed
	default:
		return c.Conn.Read(p)
	}
}

func (c *stallConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

// TestSlowReadersHoldBoundedHeap: peers that stop reading while the node
// sends them small frames (1 280-byte packets, as the session layer seals
// them into pool buffers) or large ones (60 KiB) cannot make the
// node's heap grow by more than Config.MaxHeldBytes per peer. Before the
// queues counted buffer capacity, 512 small frames held 512 64 KiB
// buffers: 33 MiB per peer.
func TestSlowReadersHoldBoundedHeap(t *testing.T) {
	testhelp.CheckNoLeak(t)
	const peers = 4
	// No timers: the links must stay up holding what they queued.
	cfg := Config{KeepaliveInterval: -1, ReadTimeout: -1, WriteTimeout: -1}
	node := overlay.New(testhelp.SeedKey(1), overlay.Config{})
	stall := make(chan struct{})
	var links []*Conn
	var remotes []*overlay.Node
	defer func() {
		node.Close()
		for _, r := range remotes {
			r.Close()
		}
		for _, c := range links {
			<-c.Done()
		}
	}()
	attach := func(n *overlay.Node, nc net.Conn, remote wire.PublicKey) {
		c := New(nc, remote, cfg)
		port, err := n.Attach(overlay.PeerInfo{Key: remote, Type: router.PeerRemote}, c)
		if err != nil {
			t.Fatal(err)
		}
		c.Start(port, n)
		links = append(links, c)
	}
	for i := range peers {
		r := overlay.New(testhelp.SeedKey(byte(10+i)), overlay.Config{})
		remotes = append(remotes, r)
		x, y := net.Pipe()
		attach(node, x, r.PublicKey())
		attach(r, &stallConn{Conn: y, stall: stall, closed: make(chan struct{})}, node.PublicKey())
	}
	// Routes form, then the peers stop reading.
	for _, r := range remotes {
		waitRoute(t, node, r)
	}
	var ours []*Conn // the node's ends; the odd ones are the remotes'
	for i := 0; i < len(links); i += 2 {
		ours = append(ours, links[i])
	}
	before := heapInUse()
	close(stall)
	send := func(rs []*overlay.Node, size, count int) {
		for range count {
			for _, r := range rs {
				buf := bufpool.Get()
				off := bufpool.Headroom(buf)
				if err := node.SendBuffer(r.PublicKey(), buf[:off+size], off); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	// Half the peers get small frames, half large ones. How many small
	// frames the stalled sockets take first depends on the kernel's buffer
	// autotuning, so they come in rounds until each small peer's queue has
	// refused one: full.
	full := func() bool {
		for _, c := range ours[:peers/2] {
			if c.Stats().Drops[DropTrafficQueueFull.String()] == 0 {
				return false
			}
		}
		return true
	}
	for round := 0; round < 40 && (round < 3 || !full()); round++ {
		send(remotes[:peers/2], 1280, DefaultTrafficQueue)
	}
	send(remotes[peers/2:], 60<<10, 200)
	grown := heapInUse() - before
	bound := int64(peers * cfg.MaxHeldBytes())
	t.Logf("heap growth with %d slow peers: %.1f MiB; bound %.1f MiB (%.2f MiB per peer)",
		peers, float64(grown)/(1<<20), float64(bound)/(1<<20), float64(cfg.MaxHeldBytes())/(1<<20))
	for i, c := range ours {
		st := c.Stats()
		t.Logf("peer %d: %d traffic frames queued holding %d bytes", i, st.TrafficQueued, st.TrafficQueuedBytes)
		// The queues are really full, by the frame bound for small
		// frames (each in a 2 KiB buffer) and by the byte bound for
		// large ones.
		if i < peers/2 && (st.TrafficQueued < DefaultTrafficQueue-1 || st.TrafficQueuedBytes > int64(DefaultTrafficQueue*2040)) ||
			i >= peers/2 && (st.TrafficQueuedBytes > DefaultTrafficQueueBytes || st.TrafficQueuedBytes < DefaultTrafficQueueBytes*3/4) {
			t.Errorf("peer %d: %d frames holding %d bytes queued", i, st.TrafficQueued, st.TrafficQueuedBytes)
		}
	}
	if grown > bound {
		t.Fatalf("heap grew by %d bytes, more than the bound of %d", grown, bound)
	}
}

// waitRoute waits until a payload from n reaches r.
func waitRoute(t *testing.T, n, r *overlay.Node) {
	t.Helper()
	testhelp.WaitFor(t, fmt.Sprintf("a route from %s to %s", n.PublicKey(), r.PublicKey()), 10*time.Second, func() bool {
		if err := n.SendBuffer(r.PublicKey(), []byte("ping"), 0); err != nil {
			t.Fatal(err)
		}
		select {
		case d := <-r.Deliveries():
			d.Release()
			return true
		case <-time.After(50 * time.Millisecond):
			return false
		}
	})
}
