package link

import (
	"context"
	"net"
	"testing"
)

// tcpConnsWith returns both ends of a loopback TCP connection, the client
// dialled with d and the server accepted from a listener made with lc, so
// that a test can see what their Control functions set on each end. Both
// are closed when the test ends.
func tcpConnsWith(t testing.TB, lc net.ListenConfig, d net.Dialer) (client, server net.Conn) {
	t.Helper()
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = d.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		client.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
