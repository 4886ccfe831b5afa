package link

import (
	"fmt"
	"net"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// TCPUserTimeout is how long data we sent may stay unacknowledged before
// the kernel gives the TCP connection up (TCP_USER_TIMEOUT, RFC 5482). A
// peer whose path died while we had frames in flight (traffic, or the
// keepalive written after KeepaliveInterval of silence) is then noticed
// after this long instead of after the ReadTimeout of silence. 1.5 s is
// several retransmissions on any path with a round trip below ~300 ms
// (the minimum RTO is 200 ms); a link that loses every retransmission for
// that long is of no use to interactive traffic, and routing moves it to
// another path, which is what an overlay is for. The cost is a peering that
// flaps and is re-dialled on paths with multi-second stalls.
const TCPUserTimeout = 1500 * time.Millisecond

// ControlTCP is a net.Dialer or net.ListenConfig Control function that
// sets TCPUserTimeout on TCP sockets. Set on a listening socket it holds
// for every connection accepted from it: Linux copies the option to the
// accepted socket.
func ControlTCP(network, _ string, c syscall.RawConn) error {
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		return nil
	}
	var serr error
	if err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, int(TCPUserTimeout/time.Millisecond))
	}); err != nil {
		return fmt.Errorf("TCP_USER_TIMEOUT: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("TCP_USER_TIMEOUT: %w", serr)
	}
	return nil
}

// TCPKeepAlive is the kernel's TCP keepalive on peerings: a probe after 1 s
// without anything received, then every second. Probes cost a bare TCP
// segment, are answered by the peer's kernel and are invisible to stock
// Pinecone nodes. They give a silent link something unacknowledged, so that
// TCPUserTimeout ends a dead peering within about 2 s even when we have
// nothing to send: without them, the side of a dead link that only
// receives waits for its next keepalive frame (after 3 s of silence) or the
// 5 s read timeout. Set it as net.Dialer.KeepAliveConfig or
// net.ListenConfig.KeepAliveConfig.
func TCPKeepAlive() net.KeepAliveConfig {
	return net.KeepAliveConfig{Enable: true, Idle: time.Second, Interval: time.Second, Count: 3}
}
