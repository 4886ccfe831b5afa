// Package testframe builds frames for the tests of the packages that move
// frames without decoding them (overlay/link, overlay/peers). It is apart
// from testhelp because it needs overlay/wire, whose own tests use
// testhelp.
package testframe

import (
	"encoding/binary"

	"github.com/pineconed/pineconed/overlay/wire"
)

// Of builds a frame of type t and total length n (at least 12) whose body
// is filled with fill. It only has to look like a frame to code that reads
// the header: the 2-byte payload length is set, the body is not valid.
func Of(t wire.FrameType, n int, fill byte) []byte {
	f := make([]byte, n)
	copy(f, wire.Magic[:])
	f[5] = byte(t)
	binary.BigEndian.PutUint16(f[8:], uint16(n))
	binary.BigEndian.PutUint16(f[10:], uint16(n-12))
	for i := 12; i < n; i++ {
		f[i] = fill
	}
	return f
}
