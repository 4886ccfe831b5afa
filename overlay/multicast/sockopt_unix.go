//go:build unix

package multicast

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// reusePort lets several processes bind UDP port 60606 on one host, so a
// pineconed daemon, a second one, and stock Pinecone nodes coexist; every
// one of them receives each multicast beacon.
func reusePort(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		if serr == nil {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		}
	})
	if err != nil {
		return err
	}
	return serr
}
