package link

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pineconed/pineconed/internal/limits"
)

// ControlTCP returns a net.Dialer or net.ListenConfig Control function that
// sets TCP_USER_TIMEOUT to userTimeout on TCP sockets: how long data we sent
// may stay unacknowledged before the kernel gives the connection up, so a
// peer whose path died while we had frames in flight is noticed after that
// long instead of after the ReadTimeout of silence. 0 means
// limits.DefaultPeerTimeout (whose comment gives the trade-off); the
// operator's value is peers.peer_timeout. Set on a listening socket it holds
// for every connection accepted from it: Linux copies the option to the
// accepted socket. The function may also be called on a connected socket's
// RawConn (net.TCPConn.SyscallConn) to change the value of that connection.
//
// It also sets TCP_NOTSENT_LOWAT to NotSentLowat (see there), copied to
// accepted sockets in the same way.
func ControlTCP(userTimeout time.Duration) func(network, address string, c syscall.RawConn) error {
	if userTimeout <= 0 {
		userTimeout = limits.DefaultPeerTimeout
	}
	ms := int(userTimeout / time.Millisecond)
	return func(network, _ string, c syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return nil
		}
		var serr error
		if err := c.Control(func(fd uintptr) {
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms); err != nil {
				serr = fmt.Errorf("TCP_USER_TIMEOUT: %w", err)
				return
			}
			if err := unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NOTSENT_LOWAT, NotSentLowat); err != nil {
				serr = fmt.Errorf("TCP_NOTSENT_LOWAT: %w", err)
			}
		}); err != nil {
			return fmt.Errorf("peering socket options: %w", err)
		}
		return serr
	}
}

// NotSentLowat is the TCP_NOTSENT_LOWAT of peering sockets: the kernel
// accepts more bytes from the writer only while fewer than this many are
// still unsent. Without it the send buffer grows (autotuning) to megabytes,
// and every frame the link writer hands over, however urgent, waits
// behind all of them first in, first out; with it the backlog stays in the
// link's own queues, where protocol frames go first and traffic is served
// fairly per destination. Bytes sent but not yet acknowledged do not count,
// so the congestion window is not limited: 128 KiB is two full writer
// buffers, enough to keep a fast link busy between two wakeups of the
// writer, and about 0.1 ms of delay at 10 Gbit/s.
const NotSentLowat = 128 << 10

// TCPKeepAlive is the kernel's TCP keepalive on peerings: a probe after 1 s
// without anything received, then every second. Probes cost a bare TCP
// segment, are answered by the peer's kernel and are invisible to stock
// Pinecone nodes. They give a silent link something unacknowledged, so that
// the TCP user timeout ends a dead peering within about 2 s even when we have
// nothing to send: without them, the side of a dead link that only
// receives waits for its next keepalive frame (after 3 s of silence) or the
// 5 s read timeout. Set it as net.Dialer.KeepAliveConfig or
// net.ListenConfig.KeepAliveConfig.
func TCPKeepAlive() net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}
}
