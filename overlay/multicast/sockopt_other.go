//go:build !unix

package multicast

import "syscall"

// reusePort is a no-op where SO_REUSEPORT does not exist; there only one
// process can receive beacons on a host.
func reusePort(_, _ string, _ syscall.RawConn) error { return nil }
