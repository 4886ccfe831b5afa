package peers

import (
	"crypto/tls"
	"net"
)

// tlsListener wraps ln so that accepted connections speak TLS with tc.
func tlsListener(ln net.Listener, tc *tls.Config) net.Listener { return tls.NewListener(ln, tc) }
