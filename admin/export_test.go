package admin

import (
	"net"
	"syscall"
)

// ServerClosed reports whether the server has closed c's connection: a
// peek at the socket, which takes nothing from the stream, reads its end.
// It is the event the test of the client's redial waits for, where a
// sleep past the server's timeout could still find the connection open.
func (c *Client) ServerClosed() bool {
	c.connMu.Lock()
	conn := c.conn
	c.connMu.Unlock()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return false
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return false
	}
	closed := false
	_ = rc.Read(func(fd uintptr) bool {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		closed = n == 0 && err == nil
		return true // done: never wait for the socket to become readable
	})
	return closed
}
