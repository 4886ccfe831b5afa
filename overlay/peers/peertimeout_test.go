package peers

import (
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pineconed/pineconed/internal/limits"
	"github.com/pineconed/pineconed/internal/testhelp"
)

// The configured peer timeout reaches the kernel: a static peering and the
// peering accepted for it carry their managers' TCP_USER_TIMEOUT, read back
// with getsockopt from the sockets themselves. The listener was opened
// before SetPeerTimeout (a reload), so its socket holds the old value: the
// accepted peering must still get the new one.
func TestPeerTimeoutReachesTheSocket(t *testing.T) {
	testhelp.CheckNoLeak(t)
	ma, na := newManager(t, Config{Listen: mkURIs("tcp://127.0.0.1:0"), PeerTimeout: 3700 * time.Millisecond}, privA)
	if err := ma.SetPeerTimeout(4100 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	listenAddr := ma.ListenAddrs()[0].String()
	_, nb := newManager(t, Config{Static: mkURIs(listenAddr), PeerTimeout: 2300 * time.Millisecond}, privB)
	testhelp.WaitFor(t, "peered", 10*time.Second, func() bool { return na.live() == 1 && nb.live() == 1 })

	if got := userTimeoutTo(t, listenAddr); got != 2300*time.Millisecond {
		t.Errorf("dialled socket: TCP_USER_TIMEOUT %v, want 2.3s", got)
	}
	if got := userTimeoutTo(t, na.remote(1)); got != 4100*time.Millisecond {
		t.Errorf("accepted socket: TCP_USER_TIMEOUT %v, want 4.1s (the value set after the listener opened)", got)
	}
}

func TestSetPeerTimeoutBounds(t *testing.T) {
	m, _ := newManager(t, Config{}, privA)
	if got := m.PeerTimeout(); got != limits.DefaultPeerTimeout {
		t.Fatalf("default peer timeout %v, want %v", got, limits.DefaultPeerTimeout)
	}
	for _, d := range []time.Duration{limits.MinPeerTimeout - 1, limits.MaxPeerTimeout + 1, -time.Second} {
		if err := m.SetPeerTimeout(d); err == nil {
			t.Errorf("SetPeerTimeout(%v) accepted", d)
		}
	}
	if got := m.PeerTimeout(); got != limits.DefaultPeerTimeout {
		t.Fatalf("a refused value changed the peer timeout to %v", got)
	}
}

// userTimeoutTo finds this process's one TCP socket connected to remote
// and returns its TCP_USER_TIMEOUT.
func userTimeoutTo(t *testing.T, remote string) time.Duration {
	t.Helper()
	want, err := netip.ParseAddrPort(remote)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	found := -1
	var ms int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		sa, err := unix.Getpeername(fd)
		if err != nil {
			continue
		}
		var peer netip.AddrPort
		switch sa := sa.(type) {
		case *unix.SockaddrInet4:
			peer = netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port))
		case *unix.SockaddrInet6:
			peer = netip.AddrPortFrom(netip.AddrFrom16(sa.Addr).Unmap(), uint16(sa.Port))
		default:
			continue
		}
		if peer != want {
			continue
		}
		if found >= 0 {
			t.Fatalf("two sockets connected to %s (fds %d and %d)", remote, found, fd)
		}
		found = fd
		if ms, err = unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT); err != nil {
			t.Fatalf("getsockopt TCP_USER_TIMEOUT on fd %d: %v", fd, err)
		}
	}
	if found < 0 {
		t.Fatalf("no socket connected to %s", remote)
	}
	return time.Duration(ms) * time.Millisecond
}
