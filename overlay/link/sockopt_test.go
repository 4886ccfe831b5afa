package link

import (
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// tcpSockopt reads one IPPROTO_TCP option of a connected socket.
func tcpSockopt(t *testing.T, c net.Conn, opt int) int {
	t.Helper()
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, opt) }); err != nil {
		t.Fatal(err)
	}
	if gerr != nil {
		t.Fatal(gerr)
	}
	return v
}

// TestControlTCPSetsOptions checks that both ends of a real loopback
// connection, the dialed one and the one accepted from a listener made
// with ControlTCP, carry the user timeout and the short unsent queue.
func TestControlTCPSetsOptions(t *testing.T) {
	client, server := tcpConnsWith(t,
		net.ListenConfig{Control: ControlTCP(1500 * time.Millisecond)},
		net.Dialer{Control: ControlTCP(1500 * time.Millisecond)})
	for name, c := range map[string]net.Conn{"dialed": client, "accepted": server} {
		if got := tcpSockopt(t, c, unix.TCP_NOTSENT_LOWAT); got != NotSentLowat {
			t.Errorf("%s: TCP_NOTSENT_LOWAT = %d, want %d", name, got, NotSentLowat)
		}
		if got := tcpSockopt(t, c, unix.TCP_USER_TIMEOUT); got != 1500 {
			t.Errorf("%s: TCP_USER_TIMEOUT = %d ms, want 1500", name, got)
		}
	}
}
