// Package bufpool recycles the large buffers the data path builds Traffic
// frames in, so that a 64 KiB packet costs neither a fresh allocation (which
// Go zeroes) nor garbage collection.
//
// # Layout
//
// Every buffer has PayloadRoom bytes at its end for a payload (a session
// transport message) and Headroom(b) bytes in front of that, between
// MinHeadroom and MaxHeadroom, for the Traffic frame header. The sender puts
// the payload at b[Headroom(b):] and the overlay writes the frame header
// just in front of it, so the frame is built without copying the payload.
// Headers vary in size (tree coordinates, SNEK watermark): a frame that
// starts k bytes into its buffer is given back as a buffer whose headroom is
// k bytes smaller. Buffers soon settle at the header size their flows need.
//
// # Ownership
//
// A buffer from Get belongs to whoever holds it; handing it on (a
// SendBuffer callback, overlay.Link.Send, overlay.Delivery) hands on that
// ownership, and the last owner calls Put once nothing reads or writes it
// any more. Forgetting Put is harmless (the garbage collector takes the
// buffer); calling Put while another goroutine still uses the buffer is a
// data race. Put ignores slices too small to be pool buffers, so any
// owned slice may be passed to it.
package bufpool

import "sync"

const (
	// PayloadRoom is the room at the end of every buffer: the largest
	// Traffic frame.
	PayloadRoom = 0xffff
	// MinHeadroom is the least headroom a recycled buffer keeps; a frame
	// whose buffer would have less is not recycled.
	MinHeadroom = 64
	// MaxHeadroom is the headroom of a new buffer, enough for any header
	// with a few hundred bytes of coordinates.
	MaxHeadroom = 512
)

var pool = sync.Pool{New: func() any {
	b := make([]byte, PayloadRoom+MaxHeadroom)
	return &b
}}

// Get returns a buffer of length cap(b), at least PayloadRoom+MinHeadroom
// bytes. Its contents are arbitrary.
func Get() []byte {
	bp := pool.Get().(*[]byte)
	return *bp
}

// Headroom is how many bytes of b lie in front of its PayloadRoom.
func Headroom(b []byte) int { return cap(b) - PayloadRoom }

// Put gives b back for reuse. Only b's capacity counts: b may be any
// reslice of a pool buffer that reaches to its end, such as a frame built
// in it. Slices with too little or too much capacity are left to the
// garbage collector.
func Put(b []byte) {
	c := cap(b)
	if c < PayloadRoom+MinHeadroom || c > PayloadRoom+MaxHeadroom {
		return
	}
	b = b[:c]
	pool.Put(&b)
}
